//! `/proc/loadavg`: the 1, 5 and 15 minute load averages.

use super::ParseError;

/// Parses the first three fields of /proc/loadavg.
pub(crate) fn parse_loadavg(text: &str) -> Result<[f64; 3], ParseError> {
    let mut fields = text.split_ascii_whitespace();
    let mut out = [0.0; 3];
    for slot in &mut out {
        *slot = fields
            .next()
            .and_then(|f| f.parse::<f64>().ok())
            .filter(|v| v.is_finite())
            .ok_or(ParseError {
                line: 1,
                reason: "fewer than three load averages",
            })?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample() {
        let text = include_str!("../../tests/data/proc/loadavg");
        assert_eq!(parse_loadavg(text), Ok([0.52, 0.58, 0.59]));
    }

    #[test]
    fn bad() {
        assert!(parse_loadavg("0.1 0.2").is_err());
        assert!(parse_loadavg("0.1 x 0.3 1/2 3").is_err());
        assert!(parse_loadavg("").is_err());
    }
}
