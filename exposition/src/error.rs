//! Errors: every parse error names the 1-based line it was found on and what is wrong.

/// A body that could not be parsed. Displays as `line N: what is wrong`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {kind}")]
pub struct ParseError {
    /// 1-based line number. For a missing `# EOF` it is the line after the last one.
    pub line: usize,
    /// What is wrong on that line.
    pub kind: ErrorKind,
}

/// What is wrong with a line. Texts quoted from the body are cut to at most
/// [`EXCERPT_CHARS`] characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    #[error("the body is not valid UTF-8")]
    InvalidUtf8,
    #[error("expected {expected}, found {found}")]
    Expected {
        expected: &'static str,
        found: String,
    },
    #[error("unterminated label value")]
    UnterminatedLabelValue,
    #[error("unterminated label set (no closing `}}`)")]
    UnterminatedLabelSet,
    #[error("invalid escape sequence `\\{escape}`")]
    InvalidEscape { escape: String },
    #[error("duplicate label name `{name}`")]
    DuplicateLabel { name: String },
    #[error("invalid sample value `{text}`")]
    InvalidValue { text: String },
    #[error("invalid timestamp `{text}`")]
    InvalidTimestamp { text: String },
    #[error("unknown metric type `{text}`")]
    UnknownType { text: String },
    #[error("second {keyword} line for metric `{name}`")]
    DuplicateMetadata { keyword: &'static str, name: String },
    #[error("{keyword} line for metric `{name}` after its samples")]
    MetadataAfterSamples { keyword: &'static str, name: String },
    #[error("metric family `{name}` appears again after another family")]
    InterleavedFamily { name: String },
    #[error(
        "sample `{sample}` does not fit {kind} `{family}`: expected a name ending in {expected}"
    )]
    SampleNameMismatch {
        sample: String,
        family: String,
        kind: &'static str,
        expected: &'static str,
    },
    #[error("sample `{sample}` has no `{label}` label")]
    MissingLabel { sample: String, label: String },
    #[error("`{label}` label value `{value}` is not a number")]
    InvalidLabelNumber { label: &'static str, value: String },
    #[error("comment not allowed in OpenMetrics (only # HELP, # TYPE, # UNIT and # EOF)")]
    InvalidComment,
    #[error("blank line (not allowed in OpenMetrics)")]
    BlankLine,
    #[error("missing `# EOF` at the end of an OpenMetrics body")]
    MissingEof,
    #[error("content after `# EOF`")]
    ContentAfterEof,
    #[error("the body has more than {limit} series")]
    TooManySeries { limit: usize },
}

/// The most characters of body text an error message quotes.
pub const EXCERPT_CHARS: usize = 40;

/// At most [`EXCERPT_CHARS`] characters of `text`, with `...` appended when cut.
pub(crate) fn excerpt(text: &str) -> String {
    match text.char_indices().nth(EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}

/// Why target labels were refused by [`crate::TargetLabels::new`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TargetLabelError {
    #[error("target label name `{name}` is not a valid label name")]
    InvalidName { name: String },
    #[error("target label name `{name}` is reserved (names starting with `__`)")]
    ReservedName { name: String },
    #[error("target label `{name}` is given twice")]
    Duplicate { name: String },
    #[error("target label `{name}` has an empty value")]
    EmptyValue { name: String },
}
