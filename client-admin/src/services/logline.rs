//! The exporters' log lines (logfmt: `ts=... level=error msg="..." err="..."`): which are
//! errors, whether one is about a single collector or the whole connection, and the
//! database's own words. Every line is scrubbed of the service's password before it is
//! kept or printed (postgres_exporter prints its connection string when it fails).

/// One parsed line.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LogLine {
    pub level: String,
    pub msg: String,
    pub err: String,
    /// The collector a collector's error is about (`scraper=` or `name=`).
    pub collector: Option<String>,
}

impl LogLine {
    pub fn is_error(&self) -> bool {
        self.level == "error"
    }

    /// The error in the database's own words when there are some.
    pub fn text(&self) -> String {
        let err = self.err.trim();
        if err.is_empty() {
            self.msg.clone()
        } else {
            // postgres_exporter: "Error opening connection to database (DSN): pq: reason".
            match err.rsplit_once("): ") {
                Some((head, reason)) if head.contains('(') => reason.to_owned(),
                _ => err.to_owned(),
            }
        }
    }
}

/// Splits a logfmt line into its fields.
fn fields(line: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek() == Some(&' ') {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ' ' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.is_empty() && chars.peek().is_none() {
            return out;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'=') {
            chars.next();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                value.push(match n {
                                    'n' => '\n',
                                    't' => '\t',
                                    other => other,
                                });
                            }
                        }
                        '"' => break,
                        c => value.push(c),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ' ' {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
            }
        } else if key.is_empty() {
            chars.next();
            continue;
        }
        out.push((key, value));
    }
}

pub fn parse(line: &str) -> LogLine {
    let mut out = LogLine::default();
    for (k, v) in fields(line) {
        match k.as_str() {
            "level" => out.level = v.to_ascii_lowercase(),
            "msg" => out.msg = v,
            "err" => out.err = v,
            "scraper" | "name" => out.collector = Some(v),
            _ => {}
        }
    }
    out
}

/// `text` with every secret replaced by `***`.
pub fn scrub(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_owned();
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(s.as_str(), "***");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exporter_lines() {
        let l = parse(
            r#"ts=2026-12-07T04:54:52.680Z caller=exporter.go:174 level=error msg="Error from scraper" scraper=slave_status err="Error 1227: Access denied; you need (at least one of) the SUPER, SLAVE MONITOR privilege(s) for this operation""#,
        );
        assert!(l.is_error());
        assert_eq!(l.collector.as_deref(), Some("slave_status"));
        assert!(l.text().starts_with("Error 1227: Access denied"));
        let l = parse(
            r#"ts=2026 caller=postgres_exporter.go:714 level=error err="Error opening connection to database (postgresql://weak:PASSWORD_REMOVED@127.0.0.1:5432/postgres): pq: password authentication failed for user \"weak\"""#,
        );
        assert!(l.is_error() && l.collector.is_none());
        assert_eq!(
            l.text(),
            "pq: password authentication failed for user \"weak\""
        );
        let l = parse(r#"ts=1 level=info msg="Listening on" address=127.0.0.1:1"#);
        assert!(!l.is_error());
        assert_eq!(parse("garbage without fields").level, "");
    }

    #[test]
    fn secrets_are_scrubbed() {
        assert_eq!(
            scrub(
                "user=x password=hunter2 and hunter%212",
                &["hunter2".into(), "hunter%212".into()]
            ),
            "user=x password=*** and ***"
        );
    }
}
