//! The password policy, one module for every path that sets a password (setup, change,
//! admin reset, the start-up secret file). NIST SP 800-63B style: length and guessability,
//! no composition rules.
//!
//! Rules, in the order they are checked:
//! 1. length, counted in characters after Unicode NFKC normalisation: at least the
//!    configured minimum (default 12, never below 8) and at most 128;
//! 2. not one of the bundled common and breached passwords (case-insensitive);
//! 3. not containing the user name (case-insensitive, for names of 3 characters or more);
//! 4. zxcvbn score at least 3 of 4, with the user name and "perch" as context;
//! 5. (checked by the caller, which holds the hashes) not one of the user's last 5.

use std::collections::HashSet;
use std::sync::OnceLock;

use unicode_normalization::UnicodeNormalization;

pub const MAX_LEN: usize = 128;
/// Bytes a password field may hold: anything longer is refused before it is normalised or
/// hashed, on every path (NFKC can make a string 18 times longer, and no password the
/// policy accepts comes near this).
pub const MAX_INPUT_BYTES: usize = 1024;
pub const DEFAULT_MIN_LEN: usize = 12;
pub const FLOOR_MIN_LEN: usize = 8;
const MIN_SCORE: u8 = 3;

const COMMON: &str = include_str!("common-passwords.txt");

fn common() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| {
        COMMON
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .collect()
    })
}

/// Which rule refused a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Default-ignorable code points (zero-width spaces, soft hyphens, ...): invisible, they
    /// would count towards the length and hide a common word or the user's name.
    Invisible,
    TooShort,
    TooLong,
    Common,
    ContainsUserName,
    TooGuessable,
    Reused,
}

impl Rule {
    pub fn code(self) -> &'static str {
        match self {
            Rule::Invisible => "password_invisible_characters",
            Rule::TooShort => "password_too_short",
            Rule::TooLong => "password_too_long",
            Rule::Common => "password_common",
            Rule::ContainsUserName => "password_contains_user_name",
            Rule::TooGuessable => "password_too_guessable",
            Rule::Reused => "password_reused",
        }
    }
}

/// Why a password was refused, fit to show the person choosing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub rule: Rule,
    pub message: String,
    /// zxcvbn's advice, when it has some.
    pub suggestion: Option<String>,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        if let Some(s) = &self.suggestion {
            write!(f, " {s}")?;
        }
        Ok(())
    }
}

/// Refuses a password field over [`MAX_INPUT_BYTES`], before anything else looks at it.
pub fn within_input_limit(password: &str) -> Result<&str, Refusal> {
    if password.len() > MAX_INPUT_BYTES {
        return Err(Refusal {
            rule: Rule::TooLong,
            message: format!(
                "The password is over {MAX_INPUT_BYTES} bytes; use at most {MAX_LEN} characters."
            ),
            suggestion: None,
        });
    }
    Ok(password)
}

/// The configured policy.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    min_len: usize,
}

impl Policy {
    /// A policy with this minimum length; below [`FLOOR_MIN_LEN`] is refused.
    pub fn new(min_len: usize) -> Result<Self, String> {
        if !(FLOOR_MIN_LEN..=MAX_LEN).contains(&min_len) {
            return Err(format!(
                "the minimum password length must be between {FLOOR_MIN_LEN} and {MAX_LEN}, not {min_len}"
            ));
        }
        Ok(Self { min_len })
    }

    pub fn min_len(&self) -> usize {
        self.min_len
    }

    /// The form in which a password is hashed and compared: NFKC. Over
    /// [`MAX_INPUT_BYTES`] is refused without being looked at.
    pub fn normalize(password: &str) -> Result<String, Refusal> {
        Ok(within_input_limit(password)?.nfkc().collect())
    }

    /// Checks rules 1 to 4; returns the normalised password to hash.
    pub fn check(&self, user_name: &str, password: &str) -> Result<String, Refusal> {
        let normalized = Self::normalize(password)?;
        let len = normalized.chars().count();
        let refuse = |rule, message: String, suggestion| Refusal {
            rule,
            message,
            suggestion,
        };
        if let Some(c) = normalized.chars().find(|c| is_default_ignorable(*c)) {
            return Err(refuse(
                Rule::Invisible,
                format!(
                    "The password holds an invisible character (U+{:04X}); type it again without it.",
                    u32::from(c)
                ),
                None,
            ));
        }
        if len < self.min_len {
            return Err(refuse(
                Rule::TooShort,
                format!(
                    "The password has {len} characters; use at least {}.",
                    self.min_len
                ),
                Some("A few unrelated words make a long password that is easy to remember.".into()),
            ));
        }
        if len > MAX_LEN {
            return Err(refuse(
                Rule::TooLong,
                format!("The password has {len} characters; use at most {MAX_LEN}."),
                None,
            ));
        }
        let lower = normalized.to_lowercase();
        if common().contains(lower.as_str()) {
            return Err(refuse(
                Rule::Common,
                "This password is on a list of common and breached passwords.".into(),
                Some("Choose something nobody else would.".into()),
            ));
        }
        let name = user_name.trim().to_lowercase();
        if name.chars().count() >= 3 && lower.contains(&name) {
            return Err(refuse(
                Rule::ContainsUserName,
                "The password contains the user name.".into(),
                None,
            ));
        }
        let entropy = zxcvbn::zxcvbn(&normalized, &[user_name.trim(), "perch"]);
        if u8::from(entropy.score()) < MIN_SCORE {
            let feedback = entropy.feedback();
            let warning = feedback.and_then(|f| f.warning()).map(|w| w.to_string());
            let suggestions: Vec<String> = feedback
                .map(|f| f.suggestions().iter().map(|s| s.to_string()).collect())
                .unwrap_or_default();
            let mut message = "This password is too easy to guess.".to_owned();
            if let Some(w) = warning {
                message = format!("{message} {w}");
            }
            let suggestion = if suggestions.is_empty() {
                Some("Add another word or two; uncommon words are better.".into())
            } else {
                Some(suggestions.join(" "))
            };
            return Err(refuse(Rule::TooGuessable, message, suggestion));
        }
        Ok(normalized)
    }
}

/// The refusal for rule 5.
/// Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt, Unicode 15.1): shown
/// as nothing at all.
fn is_default_ignorable(c: char) -> bool {
    matches!(
        u32::from(c),
        0x00AD
            | 0x034F
            | 0x061C
            | 0x115F..=0x1160
            | 0x17B4..=0x17B5
            | 0x180B..=0x180F
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x206F
            | 0x3164
            | 0xFE00..=0xFE0F
            | 0xFEFF
            | 0xFFA0
            | 0xFFF0..=0xFFF8
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0000..=0xE0FFF
    )
}

pub fn reused() -> Refusal {
    Refusal {
        rule: Rule::Reused,
        message: "This password was one of your last 5; choose a new one.".into(),
        suggestion: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (user, password, expected rule or None for accepted)
    const TABLE: &[(&str, &str, Option<Rule>)] = &[
        (
            "alice",
            "pass\u{200b}word\u{200b}1234",
            Some(Rule::Invisible),
        ),
        ("alice", "pass\u{ad}word\u{ad}1234", Some(Rule::Invisible)),
        (
            "alice",
            "a\u{200b}l\u{200b}i\u{200b}c\u{200b}e-harbour-71",
            Some(Rule::Invisible),
        ),
        (
            "alice",
            "violet-tractor\u{feff}-lantern-9",
            Some(Rule::Invisible),
        ),
        ("alice", "short", Some(Rule::TooShort)),
        ("alice", "elevenchars", Some(Rule::TooShort)),
        ("alice", "password1234", Some(Rule::Common)),
        ("alice", "PASSWORD1234", Some(Rule::Common)),
        ("alice", "qwertyuiop123", Some(Rule::Common)),
        (
            "alice",
            "iamalice-and-i-like-it",
            Some(Rule::ContainsUserName),
        ),
        (
            "alice",
            "ALICE was here 2024!",
            Some(Rule::ContainsUserName),
        ),
        ("alice", "aaaaaaaaaaaaaaaa", Some(Rule::TooGuessable)),
        ("alice", "abcdefghijklmnop", Some(Rule::TooGuessable)),
        ("alice", "perchperchperch1", Some(Rule::TooGuessable)),
        ("alice", "1234567890123", Some(Rule::TooGuessable)),
        ("alice", "correct horse battery staple", None),
        ("alice", "violet-tractor-lantern-9", None),
        ("alice", "Zq8#mT2!vR5@kL", None),
        // Composition does not matter: a long lower-case phrase passes.
        ("bob", "the quiet heron fishes at dawn", None),
        ("al", "al-gives-maple-syrup-to-otters", None),
    ];

    #[test]
    fn the_policy_table() {
        let policy = Policy::new(DEFAULT_MIN_LEN).unwrap();
        for (user, password, want) in TABLE {
            let got = policy.check(user, password).err().map(|r| r.rule);
            assert_eq!(got, *want, "{user} / {password}");
        }
    }

    #[test]
    fn refusals_say_why_and_suggest() {
        let policy = Policy::new(12).unwrap();
        let r = policy.check("alice", "aaaaaaaaaaaaaaaa").unwrap_err();
        assert!(r.message.contains("too easy to guess"), "{r}");
        assert!(r.suggestion.is_some());
        let r = policy.check("alice", "short").unwrap_err();
        assert!(
            r.message.contains("5 characters") && r.message.contains("12"),
            "{r}"
        );
    }

    #[test]
    fn length_is_counted_after_nfkc_and_capped() {
        let policy = Policy::new(8).unwrap();
        // U+FB01 (the "fi" ligature) becomes two characters under NFKC.
        assert_eq!(Policy::normalize("\u{FB01}").unwrap(), "fi");
        let long = "x7".repeat(65);
        assert_eq!(
            policy.check("alice", &long).unwrap_err().rule,
            Rule::TooLong
        );
    }

    #[test]
    fn minimum_never_below_8() {
        assert!(Policy::new(7).is_err());
        assert!(Policy::new(8).is_ok());
    }
}
