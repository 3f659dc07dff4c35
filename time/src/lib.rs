//! Time as Perch reads and writes it: the wall clock as Unix time (the one place every
//! Perch crate reads it), and durations as operators write them in flags and files
//! (`500ms`, `10s`, `5m`, `1h`, `2d`, or plain seconds), so that a flag means the same on the
//! server and the client.
#![forbid(unsafe_code)]

use std::time::Duration;

/// Seconds since the Unix epoch (UTC).
pub fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Milliseconds since the Unix epoch (UTC), as remote-write timestamps count.
pub fn unix_now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Unix seconds as UTC RFC 3339, `2026-12-07T05:10:00Z` (`@<seconds>` out of its range).
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("@{unix}"))
}

/// An uptime or age in whole units, the largest two: `3d 4h`, `5h 12m`, `42m`, `30s`. A
/// zero second part is left out (`2d`, `1h`), and seconds once there are minutes.
pub fn format_duration_s(s: u64) -> String {
    let (d, h, m, sec) = (s / 86400, s % 86400 / 3600, s % 3600 / 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{sec}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// Why a duration could not be read; its text names the input and what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("'{0}' is not a duration like 500ms, 10s, 5m or 1h")]
    NotANumber(String),
    #[error("'{input}': unknown unit '{unit}' (use ms, s, m, h or d)")]
    UnknownUnit { input: String, unit: String },
    #[error("'{0}' is too long")]
    TooLong(String),
}

/// A whole number followed by `ms`, `s`, `m`, `h` or `d` (none means seconds); white space
/// around it is ignored.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| DurationError::NotANumber(s.to_owned()))?;
    let seconds = |per: u64| {
        n.checked_mul(per)
            .map(Duration::from_secs)
            .ok_or_else(|| DurationError::TooLong(s.to_owned()))
    };
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => seconds(1),
        "m" => seconds(60),
        "h" => seconds(3600),
        "d" => seconds(86_400),
        _ => Err(DurationError::UnknownUnit {
            input: s.to_owned(),
            unit: unit.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_spans_as_people_read_them() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_796_620_200), "2026-12-07T05:10:00Z");
        assert_eq!(format_duration_s(0), "0s");
        assert_eq!(format_duration_s(45), "45s");
        assert_eq!(format_duration_s(184), "3m");
        assert_eq!(format_duration_s(7200), "2h");
        assert_eq!(format_duration_s(90_000), "1d 1h");
    }

    #[test]
    fn the_clock_reads_now() {
        let (s, ms) = (unix_now(), unix_now_ms());
        assert!(s > 1_700_000_000, "{s}");
        assert!((ms / 1000 - s).abs() <= 1, "{ms} {s}");
    }

    #[test]
    fn units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration(" 7 "), Ok(Duration::from_secs(7)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
    }

    #[test]
    fn refusals_name_the_input() {
        assert_eq!(
            parse_duration("ten"),
            Err(DurationError::NotANumber("ten".into()))
        );
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-1s").is_err());
        let e = parse_duration("5w").unwrap_err().to_string();
        assert!(e.contains("'5w'") && e.contains("unknown unit 'w'"), "{e}");
        assert_eq!(
            parse_duration("99999999999999999d"),
            Err(DurationError::TooLong("99999999999999999d".into()))
        );
    }
}
