//! The time range and auto-refresh of a dashboard page, read from and written back to the
//! URL (`?range=6h&refresh=1m`, or `?from=…&to=…`), so that a link shows the same view.

use std::fmt::Write as _;

use time::format_description::BorrowedFormatItem;
use time::{OffsetDateTime, PrimitiveDateTime};

/// `2025-11-24T16:00`.
const DATETIME_LOCAL: &[BorrowedFormatItem<'_>] =
    time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");

/// The ranges offered as one-click choices.
pub const PRESETS: &[(&str, i64)] = &[
    ("15m", 900),
    ("1h", 3600),
    ("6h", 21_600),
    ("24h", 86_400),
    ("7d", 604_800),
];

/// Auto-refresh choices, in seconds (`off` is none).
pub const REFRESH: &[(&str, u32)] = &[("off", 0), ("30s", 30), ("1m", 60), ("5m", 300)];

/// About this many points per chart: enough for a 1280 px page, small on the wire.
const POINTS: i64 = 120;
/// Steps a chart may use, in seconds.
const STEPS: &[i64] = &[
    15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400,
];
/// Longest custom range: a year.
const MAX_RANGE: i64 = 366 * 86_400;

/// A page's time range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeRange {
    pub start: i64,
    pub end: i64,
    /// Seconds between points.
    pub step: i64,
    /// The preset (`1h`), or `custom`.
    pub key: String,
    /// Seconds; 0 is off.
    pub refresh: u32,
    pub refresh_key: &'static str,
}

impl TimeRange {
    /// From a URL query at time `now` (unix seconds). Unknown or missing values fall back
    /// to the last hour without refresh; a custom range that cannot be read is an error
    /// naming the field.
    pub fn from_query(query: &str, now: i64) -> Result<Self, String> {
        let mut range = None;
        let mut from = None;
        let mut to = None;
        let mut refresh = None;
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            match k.as_ref() {
                "range" => range = Some(v.into_owned()),
                "from" if !v.is_empty() => from = Some(v.into_owned()),
                "to" if !v.is_empty() => to = Some(v.into_owned()),
                "refresh" => refresh = Some(v.into_owned()),
                _ => {}
            }
        }
        let (refresh_key, refresh) = REFRESH
            .iter()
            .find(|(k, _)| Some(*k) == refresh.as_deref())
            .copied()
            .unwrap_or(REFRESH[0]);
        let (start, end, key) = match (from, to) {
            (None, None) => {
                let (key, len) = PRESETS
                    .iter()
                    .find(|(k, _)| Some(*k) == range.as_deref())
                    .copied()
                    .unwrap_or(PRESETS[1]);
                (now - len, now, key.to_owned())
            }
            (from, to) => {
                let start = match from {
                    Some(f) => parse_time(&f).ok_or_else(|| bad_time("from", &f))?,
                    None => now - 3600,
                };
                let end = match to {
                    Some(t) => parse_time(&t).ok_or_else(|| bad_time("to", &t))?,
                    None => now,
                };
                if end <= start {
                    return Err("the range ends before it starts: 'to' must be after 'from'".into());
                }
                if end - start > MAX_RANGE {
                    return Err("the range is longer than a year; choose a shorter one".into());
                }
                (start, end, "custom".to_owned())
            }
        };
        let step = step_for(end - start);
        // Whole steps, so that a refreshed page lines up with the last one.
        let end = end - end.rem_euclid(step);
        let start = start - start.rem_euclid(step);
        Ok(Self {
            start,
            end,
            step,
            key,
            refresh,
            refresh_key,
        })
    }

    /// The rate window for this step: two steps, and never under a minute (four of the
    /// agent's default 15 s intervals).
    pub fn rate(&self) -> String {
        let secs = (2 * self.step).max(60);
        if secs % 60 == 0 {
            format!("{}m", secs / 60)
        } else {
            format!("{secs}s")
        }
    }

    /// The query string that shows this view again (without a leading `?`).
    pub fn query(&self) -> String {
        let mut q = if self.key == "custom" {
            format!("from={}&to={}", self.start, self.end)
        } else {
            format!("range={}", self.key)
        };
        if self.refresh > 0 {
            let _ = write!(q, "&refresh={}", self.refresh_key);
        }
        q
    }

    /// The same view with another preset range.
    pub fn with_preset(&self, key: &str) -> String {
        let mut q = format!("range={key}");
        if self.refresh > 0 {
            let _ = write!(q, "&refresh={}", self.refresh_key);
        }
        q
    }

    /// The same view with another refresh choice.
    pub fn with_refresh(&self, key: &str) -> String {
        let base = if self.key == "custom" {
            format!("from={}&to={}", self.start, self.end)
        } else {
            format!("range={}", self.key)
        };
        if key == "off" {
            base
        } else {
            format!("{base}&refresh={key}")
        }
    }

    /// `from` and `to` as a `datetime-local` input shows them (UTC).
    pub fn inputs(&self) -> (String, String) {
        (datetime_local(self.start), datetime_local(self.end))
    }
}

fn bad_time(field: &str, value: &str) -> String {
    let shown: String = value.chars().take(40).collect();
    format!("'{field}' is not a time: '{shown}' (use unix seconds or 2026-01-31T14:00, UTC)")
}

/// A step from the fixed list giving at most about [`POINTS`] points.
pub fn step_for(range: i64) -> i64 {
    let want = (range / POINTS).max(1);
    STEPS.iter().copied().find(|s| *s >= want).unwrap_or(86_400)
}

/// Unix seconds, or `YYYY-MM-DDTHH:MM[:SS]` (UTC), as a `datetime-local` input sends.
pub fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i64>() {
        return (0..=32_503_680_000).contains(&n).then_some(n);
    }
    let s = s.strip_suffix('Z').unwrap_or(s);
    let with_seconds =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let t = PrimitiveDateTime::parse(s, DATETIME_LOCAL)
        .or_else(|_| PrimitiveDateTime::parse(s, with_seconds))
        .ok()?;
    (1970..=2999)
        .contains(&t.year())
        .then(|| t.assume_utc().unix_timestamp())
}

/// `YYYY-MM-DDTHH:MM` in UTC, as `<input type="datetime-local">` takes it.
pub fn datetime_local(t: i64) -> String {
    OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|t| t.format(DATETIME_LOCAL).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_764_000_000; // 2025-11-24T16:00:00Z

    #[test]
    fn presets_steps_and_round_trips() {
        let r = TimeRange::from_query("range=24h&refresh=1m", NOW).unwrap();
        assert_eq!(r.key, "24h");
        assert_eq!(r.step, 900);
        assert_eq!(r.refresh, 60);
        assert_eq!(r.rate(), "30m");
        assert_eq!(r.query(), "range=24h&refresh=1m");
        assert_eq!(r.end % 900, 0);
        assert!((r.end - r.start) / r.step <= 120);
        let r = TimeRange::from_query("", NOW).unwrap();
        assert_eq!((r.key.as_str(), r.step, r.refresh), ("1h", 30, 0));
        assert_eq!(r.rate(), "1m");
        let r = TimeRange::from_query("range=bogus&refresh=1s", NOW).unwrap();
        assert_eq!(r.query(), "range=1h");
        assert_eq!(r.with_preset("7d"), "range=7d");
        assert_eq!(r.with_refresh("30s"), "range=1h&refresh=30s");
    }

    #[test]
    fn custom_ranges() {
        let r = TimeRange::from_query("from=2025-11-24T10:00&to=2025-11-24T12:00", NOW).unwrap();
        assert_eq!(r.key, "custom");
        assert_eq!(r.end - r.start, 7200);
        assert_eq!(r.inputs().0, "2025-11-24T10:00");
        let again = TimeRange::from_query(&r.query(), NOW).unwrap();
        assert_eq!(again, r);
        let err = TimeRange::from_query("from=yesterday", NOW).unwrap_err();
        assert!(err.contains("'from' is not a time"), "{err}");
        let err = TimeRange::from_query("from=2000&to=1000", NOW).unwrap_err();
        assert!(err.contains("ends before it starts"), "{err}");
        assert_eq!(parse_time("1970-01-01T00:00"), Some(0));
        assert_eq!(datetime_local(NOW), "2025-11-24T16:00");
        assert_eq!(parse_time("2025-11-24T16:00:00Z"), Some(NOW));
        assert_eq!(parse_time("2025-02-31T00:00"), None);
    }
}
