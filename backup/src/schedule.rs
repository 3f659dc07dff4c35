//! When scheduled backups run: `daily HH:MM` (UTC), `hourly`, or `every DURATION`.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// Each day at this minute of the day, UTC.
    Daily { hour: u8, minute: u8 },
    /// This long after the previous one started (the first: this long after start).
    Every(Duration),
}

impl std::str::FromStr for Schedule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim().to_ascii_lowercase();
        let bad = || {
            format!("'{s}' is not a schedule: write `daily 03:00` (UTC), `hourly`, or `every 6h`")
        };
        if s == "hourly" {
            return Ok(Self::Every(Duration::from_secs(3600)));
        }
        if s == "daily" {
            return Ok(Self::Daily { hour: 3, minute: 0 });
        }
        if let Some(at) = s.strip_prefix("daily") {
            let (h, m) = at.trim().split_once(':').ok_or_else(bad)?;
            let hour: u8 = h.parse().map_err(|_| bad())?;
            let minute: u8 = m
                .trim_end_matches("utc")
                .trim()
                .parse()
                .map_err(|_| bad())?;
            if hour > 23 || minute > 59 {
                return Err(bad());
            }
            return Ok(Self::Daily { hour, minute });
        }
        let every = s.strip_prefix("every").unwrap_or(&s).trim();
        let interval = perch_time::parse_duration(every).map_err(|_| bad())?;
        if interval < Duration::from_secs(1) {
            return Err(format!("'{s}': the interval must be a second or more"));
        }
        Ok(Self::Every(interval))
    }
}

impl Schedule {
    /// The next run after `now` (Unix seconds); `last` is when the previous one started.
    pub fn next(&self, now: i64, last: Option<i64>) -> i64 {
        match *self {
            Self::Every(interval) => {
                let step = i64::try_from(interval.as_secs()).unwrap_or(i64::MAX).max(1);
                last.map_or(now + step, |l| (l + step).max(now))
            }
            Self::Daily { hour, minute } => {
                let at = i64::from(hour) * 3600 + i64::from(minute) * 60;
                let today = now - now.rem_euclid(86_400) + at;
                if today > now { today } else { today + 86_400 }
            }
        }
    }

    pub fn describe(&self) -> String {
        match *self {
            Self::Daily { hour, minute } => format!("daily at {hour:02}:{minute:02} UTC"),
            Self::Every(d) => format!("every {}", short(d)),
        }
    }
}

/// `6h`, `90m`, `2s`: the largest unit that divides the interval.
fn short(d: Duration) -> String {
    let s = d.as_secs();
    [(86_400, "d"), (3600, "h"), (60, "m")]
        .iter()
        .find(|(unit, _)| s.is_multiple_of(*unit))
        .map_or(format!("{s}s"), |(unit, name)| {
            format!("{}{name}", s / unit)
        })
}

#[cfg(test)]
mod tests {
    use super::Schedule;
    use std::time::Duration;

    #[test]
    fn schedules_parse_and_step() {
        let daily: Schedule = "daily 03:00".parse().unwrap();
        assert_eq!(daily, Schedule::Daily { hour: 3, minute: 0 });
        // 2026-12-07 01:00 UTC -> 03:00 the same day; 04:00 -> 03:00 the next.
        let one_am = 1_796_605_200;
        assert_eq!(daily.next(one_am, None), one_am + 2 * 3600);
        assert_eq!(daily.next(one_am + 3 * 3600, None), one_am + 26 * 3600);
        let every: Schedule = "every 6h".parse().unwrap();
        assert_eq!(every, Schedule::Every(Duration::from_secs(6 * 3600)));
        assert_eq!(every.next(100, None), 100 + 6 * 3600);
        assert_eq!(every.next(100, Some(50)), 50 + 6 * 3600);
        // A run that took longer than the interval: the next starts now.
        assert_eq!(every.next(100_000, Some(50)), 100_000);
        assert_eq!(
            "2s".parse::<Schedule>().unwrap(),
            Schedule::Every(Duration::from_secs(2))
        );
        for bad in ["daily 25:00", "weekly", "every", "daily 3", "every 0s"] {
            assert!(bad.parse::<Schedule>().is_err(), "{bad}");
        }
    }
}
