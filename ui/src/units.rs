//! Value formatting for chart axes, legends and tooltips, in the manner of Grafana's units.
//! `static/chart.js` reimplements [`format`]; keep the two in step.

/// How a chart's values are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// IEC: B, KiB, MiB, GiB, TiB.
    Bytes,
    /// IEC per second: B/s, KiB/s, MiB/s...
    BytesPerSecond,
    /// SI: b/s, kb/s, Mb/s, Gb/s.
    BitsPerSecond,
    /// 0..100 shown as `42.1%`.
    Percent,
    /// 0..1 shown as a percentage.
    PercentUnit,
    /// µs, ms, s, min, h, d.
    Seconds,
    /// SI suffixes and `/s`: `1.2k/s`.
    PerSecond,
    /// SI suffixes: `1.2k`, `3.4M`.
    Count,
    /// The plain number.
    None,
}

impl Unit {
    /// Every unit, in declaration order.
    pub const ALL: [Unit; 9] = [
        Unit::Bytes,
        Unit::BytesPerSecond,
        Unit::BitsPerSecond,
        Unit::Percent,
        Unit::PercentUnit,
        Unit::Seconds,
        Unit::PerSecond,
        Unit::Count,
        Unit::None,
    ];

    /// A unit by its dashboard name: `bytes`, `bytes/s`, `bits/s`, `percent`, `percentunit`,
    /// `seconds`, `ops/s`, `short` or `count`, `none` (ASCII case is ignored).
    pub fn parse(s: &str) -> Option<Unit> {
        let unit = match s.trim().to_ascii_lowercase().as_str() {
            "bytes" => Unit::Bytes,
            "bytes/s" => Unit::BytesPerSecond,
            "bits/s" => Unit::BitsPerSecond,
            "percent" => Unit::Percent,
            "percentunit" => Unit::PercentUnit,
            "seconds" => Unit::Seconds,
            "ops/s" => Unit::PerSecond,
            "short" | "count" => Unit::Count,
            "none" => Unit::None,
            _ => return Option::None,
        };
        Some(unit)
    }

    /// The name [`Unit::parse`] reads (and `chart.js` formats by).
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Bytes => "bytes",
            Unit::BytesPerSecond => "bytes/s",
            Unit::BitsPerSecond => "bits/s",
            Unit::Percent => "percent",
            Unit::PercentUnit => "percentunit",
            Unit::Seconds => "seconds",
            Unit::PerSecond => "ops/s",
            Unit::Count => "count",
            Unit::None => "none",
        }
    }
}

/// What a value that is not a number (NaN, ±∞) is shown as.
pub const MISSING: &str = "—";

const KI: f64 = 1024.0;
const IEC: [(f64, &str); 6] = [
    (1.0, "B"),
    (KI, "KiB"),
    (KI * KI, "MiB"),
    (KI * KI * KI, "GiB"),
    (KI * KI * KI * KI, "TiB"),
    (KI * KI * KI * KI * KI, "PiB"),
];
const IEC_PER_S: [(f64, &str); 6] = [
    (1.0, "B/s"),
    (KI, "KiB/s"),
    (KI * KI, "MiB/s"),
    (KI * KI * KI, "GiB/s"),
    (KI * KI * KI * KI, "TiB/s"),
    (KI * KI * KI * KI * KI, "PiB/s"),
];
const BITS: [(f64, &str); 6] = [
    (1.0, "b/s"),
    (1e3, "kb/s"),
    (1e6, "Mb/s"),
    (1e9, "Gb/s"),
    (1e12, "Tb/s"),
    (1e15, "Pb/s"),
];
const TIME: [(f64, &str); 6] = [
    (1e-6, "µs"),
    (1e-3, "ms"),
    (1.0, "s"),
    (60.0, "min"),
    (3600.0, "h"),
    (86400.0, "d"),
];
const SI: [(f64, &str); 6] = [
    (1.0, ""),
    (1e3, "k"),
    (1e6, "M"),
    (1e9, "G"),
    (1e12, "T"),
    (1e15, "P"),
];

/// `v` as text in `unit`, with up to 3 significant digits: `1.5 GiB`, `850 kb/s`, `42.1%`,
/// `350 ms`, `1.2k`. NaN and infinities are `—`; negative values keep their sign.
pub fn format(v: f64, unit: Unit) -> String {
    if !v.is_finite() {
        return MISSING.to_owned();
    }
    let neg = v < 0.0;
    let abs = v.abs();
    let text = match unit {
        Unit::Bytes => scaled(abs, &IEC, 0, " ", ""),
        Unit::BytesPerSecond => scaled(abs, &IEC_PER_S, 0, " ", ""),
        Unit::BitsPerSecond => scaled(abs, &BITS, 0, " ", ""),
        Unit::Seconds => scaled(abs, &TIME, 2, " ", ""),
        Unit::Count => scaled(abs, &SI, 0, "", ""),
        Unit::PerSecond => scaled(abs, &SI, 0, "", "/s"),
        Unit::Percent => sig3(abs) + "%",
        Unit::PercentUnit => sig3(abs * 100.0) + "%",
        Unit::None => sig3(abs),
    };
    // A tiny negative value that rounds to zero loses its sign.
    if neg && text.bytes().any(|b| (b'1'..=b'9').contains(&b)) {
        format!("-{text}")
    } else {
        text
    }
}

/// `abs` (≥ 0) scaled by the largest factor in `scales` not above it; `zero` picks the scale
/// for 0. A mantissa that rounds up to the next scale's factor moves to it (`1024 B` → `1 KiB`).
fn scaled(abs: f64, scales: &[(f64, &str)], zero: usize, sep: &str, tail: &str) -> String {
    let mut i = if abs == 0.0 {
        zero
    } else {
        scales.iter().rposition(|s| abs >= s.0).unwrap_or(0)
    };
    let mut mantissa = sig3(abs / scales[i].0);
    if let Some(next) = scales.get(i + 1) {
        let m: f64 = mantissa.parse().unwrap_or(0.0);
        if m >= next.0 / scales[i].0 - 1e-9 {
            i += 1;
            mantissa = sig3(abs / scales[i].0);
        }
    }
    format!("{mantissa}{sep}{}{tail}", scales[i].1)
}

/// A non-negative finite number with up to 3 significant digits (all integer digits are kept),
/// without trailing zeros: `1.5`, `12.3`, `512`, `1023`, `0.0123`.
fn sig3(abs: f64) -> String {
    if abs == 0.0 || !abs.is_finite() {
        return "0".to_owned();
    }
    let mag = abs.log10().floor() as i32;
    let decimals = (2 - mag).clamp(0, 6) as usize;
    let mut s = format!("{abs:.decimals$}");
    trim_fraction(&mut s);
    s
}

/// Drops trailing zeros after a decimal point, and the point if nothing follows it.
pub(crate) fn trim_fraction(s: &mut String) {
    if s.contains('.') {
        let keep = s.trim_end_matches('0').trim_end_matches('.').len();
        s.truncate(keep);
    }
}

/// An uptime or age in whole units, the largest two: `3d 4h`, `5h 12m`, `42m`, `30s`.
/// A zero second part is left out (`2d`, `1h`); negative or non-finite input is `—`.
pub fn format_duration_s(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return MISSING.to_owned();
    }
    perch_time::format_duration_s(secs.floor() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_grafana() {
        let gib = 1024.0 * 1024.0 * 1024.0;
        let cases: &[(f64, Unit, &str)] = &[
            (1.5 * gib, Unit::Bytes, "1.5 GiB"),
            (512.0, Unit::Bytes, "512 B"),
            (0.0, Unit::Bytes, "0 B"),
            (1024.0, Unit::Bytes, "1 KiB"),
            (1023.9, Unit::Bytes, "1 KiB"),
            (1000.0, Unit::Bytes, "1000 B"),
            (1536.0, Unit::Bytes, "1.5 KiB"),
            (123.456 * 1024.0 * 1024.0, Unit::Bytes, "123 MiB"),
            (2.0 * gib * 1024.0, Unit::Bytes, "2 TiB"),
            (-1536.0, Unit::Bytes, "-1.5 KiB"),
            (3.0 * 1024.0 * 1024.0, Unit::BytesPerSecond, "3 MiB/s"),
            (100.0, Unit::BytesPerSecond, "100 B/s"),
            (1.2e6, Unit::BitsPerSecond, "1.2 Mb/s"),
            (850e3, Unit::BitsPerSecond, "850 kb/s"),
            (999.9e3, Unit::BitsPerSecond, "1 Mb/s"),
            (12.0, Unit::BitsPerSecond, "12 b/s"),
            (42.123, Unit::Percent, "42.1%"),
            (100.0, Unit::Percent, "100%"),
            (0.421, Unit::PercentUnit, "42.1%"),
            (1.0, Unit::PercentUnit, "100%"),
            (0.35, Unit::Seconds, "350 ms"),
            (12.5, Unit::Seconds, "12.5 s"),
            (192.0, Unit::Seconds, "3.2 min"),
            (5.1 * 3600.0, Unit::Seconds, "5.1 h"),
            (2.3 * 86400.0, Unit::Seconds, "2.3 d"),
            (0.000_012, Unit::Seconds, "12 µs"),
            (0.0, Unit::Seconds, "0 s"),
            (59.999, Unit::Seconds, "1 min"),
            (-0.5, Unit::Seconds, "-500 ms"),
            (1200.0, Unit::Count, "1.2k"),
            (3.4e6, Unit::Count, "3.4M"),
            (7e9, Unit::Count, "7G"),
            (42.0, Unit::Count, "42"),
            (0.5, Unit::Count, "0.5"),
            (0.0123, Unit::Count, "0.0123"),
            (1200.0, Unit::PerSecond, "1.2k/s"),
            (3.0, Unit::PerSecond, "3/s"),
            (999_999.0, Unit::PerSecond, "1M/s"),
            (123_456.0, Unit::None, "123456"),
            (1.23456, Unit::None, "1.23"),
            (-0.000_000_01, Unit::None, "0"),
            (f64::NAN, Unit::Bytes, "—"),
            (f64::INFINITY, Unit::Percent, "—"),
            (f64::NEG_INFINITY, Unit::Count, "—"),
        ];
        for &(v, unit, want) in cases {
            assert_eq!(format(v, unit), want, "{v} {unit:?}");
        }
    }

    #[test]
    fn parses_unit_names() {
        for unit in Unit::ALL {
            assert_eq!(Unit::parse(unit.as_str()), Some(unit));
        }
        assert_eq!(Unit::parse("short"), Some(Unit::Count));
        assert_eq!(Unit::parse("Bytes"), Some(Unit::Bytes));
        assert_eq!(Unit::parse("ops/s"), Some(Unit::PerSecond));
        assert_eq!(Unit::parse("furlongs"), None);
        assert_eq!(Unit::parse(""), None);
    }

    #[test]
    fn formats_durations() {
        assert_eq!(
            format_duration_s((3 * 86400 + 4 * 3600 + 59) as f64),
            "3d 4h"
        );
        assert_eq!(format_duration_s((5 * 3600 + 12 * 60 + 7) as f64), "5h 12m");
        assert_eq!(format_duration_s(42.0 * 60.0 + 30.0), "42m");
        assert_eq!(format_duration_s(30.9), "30s");
        assert_eq!(format_duration_s(0.0), "0s");
        assert_eq!(format_duration_s(2.0 * 86400.0), "2d");
        assert_eq!(format_duration_s(3600.0), "1h");
        assert_eq!(format_duration_s(-1.0), "—");
        assert_eq!(format_duration_s(f64::NAN), "—");
    }
}
