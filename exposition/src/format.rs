//! Which text format a body is in, from its Content-Type, and the Accept header to send.

/// The `Accept` header value a scraper sends: OpenMetrics 1.0.0 preferred, the Prometheus
/// text format 0.0.4 as the fallback, anything else last (it is then parsed as 0.0.4).
/// The same preference order Prometheus uses, without the formats this crate cannot parse.
pub const ACCEPT: &str = "application/openmetrics-text;version=1.0.0;q=0.5,\
                          text/plain;version=0.0.4;q=0.3,*/*;q=0.1";

/// A text exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// Prometheus text format 0.0.4 (`text/plain; version=0.0.4`). Timestamps are integer
    /// milliseconds.
    #[default]
    Text004,
    /// OpenMetrics 1.0 text (`application/openmetrics-text; version=1.0.0`). Timestamps are
    /// seconds, possibly with a fraction; the body must end with `# EOF`.
    OpenMetrics1,
}

impl Format {
    /// The format of a response with this `Content-Type` header value; pass `""` when the
    /// header is absent. `application/openmetrics-text` (media type compared ASCII
    /// case-insensitively, any `version` parameter, as Prometheus does) is
    /// [`Format::OpenMetrics1`]; anything else, including an absent or unparsable header,
    /// is [`Format::Text004`].
    pub fn from_content_type(content_type: &str) -> Format {
        let media_type = content_type.split(';').next().unwrap_or("").trim();
        if media_type.eq_ignore_ascii_case("application/openmetrics-text") {
            Format::OpenMetrics1
        } else {
            Format::Text004
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        let cases = [
            (
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                Format::OpenMetrics1,
            ),
            (
                "application/openmetrics-text;version=0.0.1",
                Format::OpenMetrics1,
            ),
            ("Application/OpenMetrics-Text", Format::OpenMetrics1),
            ("text/plain; version=0.0.4; charset=utf-8", Format::Text004),
            ("text/plain", Format::Text004),
            ("application/json", Format::Text004),
            ("", Format::Text004),
            (";;;", Format::Text004),
        ];
        for (header, want) in cases {
            assert_eq!(Format::from_content_type(header), want, "{header}");
        }
    }

    #[test]
    fn accept_prefers_openmetrics() {
        let types: Vec<&str> = ACCEPT
            .split(',')
            .map(|t| t.split(';').next().unwrap_or(""))
            .collect();
        assert_eq!(types, ["application/openmetrics-text", "text/plain", "*/*"]);
        assert!(!ACCEPT.contains(' '));
    }
}
