//! Literals out of query texts. The databases normalise their fingerprints already (MySQL's
//! `DIGEST_TEXT`, PostgreSQL's `$1`), but not every statement: PostgreSQL keeps utility
//! statements (`SET`, `CREATE ... DEFAULT 5`) as written, and a comment can hold anything.
//! Every text goes through [`scrub`] before it leaves the agent.

/// Which quotes hold strings: MySQL's `"..."` is a string, PostgreSQL's an identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    MySql,
    PostgreSql,
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$' || c == '@'
}

/// `text` with every string, number and comment replaced by `?` (comments dropped),
/// whitespace runs folded into one space, identifiers and placeholders kept.
pub fn scrub(text: &str, dialect: Dialect) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let push_space = |out: &mut String| {
        if !out.is_empty() && !out.ends_with(' ') {
            out.push(' ');
        }
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            // Comments: `-- ...`, `# ...` (MySQL), `/* ... */`.
            '-' if next == Some('-') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                push_space(&mut out);
            }
            '#' if dialect == Dialect::MySql => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                push_space(&mut out);
            }
            '/' if next == Some('*') => {
                i = comment_end(&chars, i, dialect == Dialect::PostgreSql);
                push_space(&mut out);
            }
            '\'' => {
                i = skip_quoted(
                    &chars,
                    i,
                    '\'',
                    dialect == Dialect::MySql || is_e_string(&out),
                );
                // `E'...'`, `B'...'`, `X'...'`, `N'...'`: the prefix goes with the string.
                if out.ends_with(['E', 'e', 'B', 'b', 'X', 'x', 'N', 'n'])
                    && !out[..out.len() - 1].ends_with(is_ident)
                {
                    out.pop();
                }
                out.push('?');
            }
            '"' if dialect == Dialect::MySql => {
                i = skip_quoted(&chars, i, '"', true);
                out.push('?');
            }
            '"' | '`' => {
                // An identifier: kept as written.
                let end = skip_quoted(&chars, i, c, false);
                out.extend(&chars[i..end.min(chars.len())]);
                i = end;
            }
            '$' if dialect == Dialect::PostgreSql && !out.ends_with(is_ident) => {
                match dollar_quote(&chars, i) {
                    Some(end) => {
                        out.push('?');
                        i = end;
                    }
                    None => {
                        // `$1`: a placeholder.
                        out.push('$');
                        i += 1;
                        while i < chars.len() && chars[i].is_ascii_digit() {
                            out.push(chars[i]);
                            i += 1;
                        }
                    }
                }
            }
            c if c.is_ascii_digit() && !out.ends_with(is_ident) => {
                // A number: digits, a fraction, an exponent, hex (`0x1F`).
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric()
                        || chars[i] == '.'
                        || ((chars[i] == '-' || chars[i] == '+')
                            && matches!(chars[i - 1], 'e' | 'E')))
                {
                    i += 1;
                }
                out.push('?');
            }
            '.' if next.is_some_and(|n| n.is_ascii_digit()) && !out.ends_with(is_ident) => {
                i += 1;
                while i < chars.len() && chars[i].is_ascii_alphanumeric() {
                    i += 1;
                }
                out.push('?');
            }
            c if c.is_whitespace() => {
                push_space(&mut out);
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out.trim().to_owned()
}

fn is_e_string(out: &str) -> bool {
    out.ends_with(['E', 'e']) && !out[..out.len() - 1].ends_with(is_ident)
}

/// The index after the quoted run that opens at `start`; a doubled quote stays inside, and
/// so does a backslash-escaped one when `backslash`.
fn skip_quoted(chars: &[char], start: usize, quote: char, backslash: bool) -> usize {
    let mut i = start + 1;
    while i < chars.len() {
        if backslash && chars[i] == '\\' {
            i += 2;
            continue;
        }
        if chars[i] == quote {
            if chars.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    chars.len()
}

/// The index after the block comment that opens at `start`; PostgreSQL's nest
/// (`/* a /* b */ still a comment */`), MySQL's do not.
fn comment_end(chars: &[char], start: usize, nested: bool) -> usize {
    let mut depth = 0usize;
    let mut i = start;
    while i < chars.len() {
        match (chars[i], chars.get(i + 1)) {
            ('/', Some('*')) if depth == 0 || nested => {
                depth += 1;
                i += 2;
            }
            ('*', Some('/')) => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    chars.len()
}

/// A PostgreSQL dollar-quoted string (`$$...$$`, `$tag$...$tag$`) opening at `start`: the
/// index after it.
fn dollar_quote(chars: &[char], start: usize) -> Option<usize> {
    let mut j = start + 1;
    while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
        if j == start + 1 && chars[j].is_ascii_digit() {
            return None;
        }
        j += 1;
    }
    if chars.get(j) != Some(&'$') {
        return None;
    }
    let tag: Vec<char> = chars[start..=j].to_vec();
    let mut i = j + 1;
    while i + tag.len() <= chars.len() {
        if chars[i..i + tag.len()] == tag[..] {
            return Some(i + tag.len());
        }
        i += 1;
    }
    Some(chars.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_numbers_and_comments_go() {
        let pg = |s| scrub(s, Dialect::PostgreSql);
        let my = |s| scrub(s, Dialect::MySql);
        assert_eq!(pg("SET work_mem = '64MB'  -- secret-1"), "SET work_mem = ?");
        assert_eq!(
            pg("SELECT * FROM t WHERE a = $1 AND b = 'it''s' AND c = 42.5e-3"),
            "SELECT * FROM t WHERE a = $1 AND b = ? AND c = ?"
        );
        assert_eq!(
            pg("select \"Col9\" from t2 /* user 1234 */ where x=E'a\\'b' and y = $$lit$$"),
            "select \"Col9\" from t2 where x=? and y = ?"
        );
        assert_eq!(
            pg("CREATE TABLE t1 (a int DEFAULT 7)"),
            "CREATE TABLE t1 (a int DEFAULT ?)"
        );
        assert_eq!(
            my("SELECT `a1` FROM `t` WHERE `b` = \"x\\\"y\" AND c IN (1, 0x1F) # 99"),
            "SELECT `a1` FROM `t` WHERE `b` = ? AND c IN (?, ?)"
        );
        assert_eq!(
            my("SELECT SLEEP (?) , ? FROM `shop` . `orders` LIMIT ?"),
            "SELECT SLEEP (?) , ? FROM `shop` . `orders` LIMIT ?"
        );
        assert_eq!(my("SELECT .5, x'ff', @v1"), "SELECT ?, ?, @v1");
    }

    #[test]
    fn odd_input_never_panics_nor_keeps_a_literal() {
        for s in [
            "'", "\"", "/*", "$", "$a", "$$x", "1e", "--", "E'", "'\\", ".", "é'",
        ] {
            scrub(s, Dialect::PostgreSql);
            scrub(s, Dialect::MySql);
        }
        assert_eq!(scrub("$$secret", Dialect::PostgreSql), "?");
        assert_eq!(
            scrub(
                "SELECT 1 /* a /* b */ secret-2 */ FROM t",
                Dialect::PostgreSql
            ),
            "SELECT ? FROM t",
            "PostgreSQL's comments nest"
        );
        assert_eq!(
            scrub("SELECT 1 /* a /* b */ FROM t", Dialect::MySql),
            "SELECT ? FROM t",
            "MySQL's do not"
        );
        assert_eq!(scrub("/* /* */", Dialect::PostgreSql), "");
        assert_eq!(
            scrub("select 'unterminated secret", Dialect::MySql),
            "select ?"
        );
    }
}
