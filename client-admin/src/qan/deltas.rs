//! From the sources' cumulative counters to what happened in one interval: per fingerprint
//! the difference from the previous reading, safe across counter resets and truncated or
//! rotated digest tables, then the busiest N by time and the rest summed.

use std::collections::HashMap;

use perch_qan::{Figures, QueryRow};

/// A fingerprint as a source keys it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    /// The fingerprint id; empty for the source's own overflow row (MySQL's NULL digest).
    pub id: String,
    pub schema: String,
    pub username: String,
}

/// A fingerprint's counters since the source last reset them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counters {
    pub figures: Figures,
    /// Changes when the source re-creates the row (MySQL's `FIRST_SEEN`): the counters
    /// started again from zero.
    pub epoch: String,
}

/// One reading of a source: every fingerprint's counters, and the source's own reset mark
/// (PostgreSQL's `pg_stat_statements_info.stats_reset`).
#[derive(Debug, Clone, Default)]
pub struct Reading {
    pub rows: HashMap<Key, Counters>,
    pub reset_mark: Option<String>,
}

impl Reading {
    /// Adds a row; rows with the same key (PostgreSQL's top-level and nested statements)
    /// are summed.
    pub fn add(&mut self, key: Key, counters: Counters) {
        match self.rows.get_mut(&key) {
            Some(c) => {
                c.figures.add(&counters.figures);
                if c.epoch < counters.epoch {
                    c.epoch = counters.epoch;
                }
            }
            None => {
                self.rows.insert(key, counters);
            }
        }
    }
}

fn du(now: u64, before: u64) -> u64 {
    now.saturating_sub(before)
}

fn df(now: f64, before: f64) -> f64 {
    (now - before).max(0.0)
}

/// What happened between `before` and `now` to one fingerprint.
fn delta(now: &Figures, before: &Figures) -> Figures {
    let mut d = Figures {
        count: du(now.count, before.count),
        time_s: df(now.time_s, before.time_s),
        max_s: 0.0,
        lock_s: df(now.lock_s, before.lock_s),
        rows_examined: du(now.rows_examined, before.rows_examined),
        rows_sent: du(now.rows_sent, before.rows_sent),
        rows_affected: du(now.rows_affected, before.rows_affected),
        errors: du(now.errors, before.errors),
        warnings: du(now.warnings, before.warnings),
        tmp_tables: du(now.tmp_tables, before.tmp_tables),
        tmp_disk_tables: du(now.tmp_disk_tables, before.tmp_disk_tables),
        full_joins: du(now.full_joins, before.full_joins),
        no_index_used: du(now.no_index_used, before.no_index_used),
        shared_blks_hit: du(now.shared_blks_hit, before.shared_blks_hit),
        shared_blks_read: du(now.shared_blks_read, before.shared_blks_read),
        temp_blks_read: du(now.temp_blks_read, before.temp_blks_read),
        temp_blks_written: du(now.temp_blks_written, before.temp_blks_written),
    };
    // The sources keep the longest run since their reset: when it grew, it ran in this
    // interval; one run is its own longest; otherwise it is at most the interval's total.
    d.max_s = if d.count == 1 {
        d.time_s
    } else if now.max_s > before.max_s {
        now.max_s
    } else {
        now.max_s.min(d.time_s)
    };
    d
}

/// The counters from scratch: a row new since the last reading, or reset.
fn fresh(now: &Figures) -> Figures {
    let mut d = *now;
    if d.count <= 1 {
        d.max_s = d.time_s;
    }
    d
}

/// What each fingerprint did between `before` and `now`: only those that ran.
pub fn deltas(before: &Reading, now: &Reading) -> Vec<QueryRow> {
    let reset = before.reset_mark != now.reset_mark;
    let mut out = Vec::new();
    for (key, counters) in &now.rows {
        let d = match before.rows.get(key) {
            // A reset (or a row re-created since) shows in its mark, or in counters that
            // went down: everything it holds now happened since.
            Some(b)
                if !reset
                    && b.epoch == counters.epoch
                    && counters.figures.count >= b.figures.count
                    && counters.figures.time_s >= b.figures.time_s =>
            {
                delta(&counters.figures, &b.figures)
            }
            _ => fresh(&counters.figures),
        };
        if d.count > 0 && d.is_sane() {
            out.push(QueryRow {
                id: key.id.clone(),
                schema: key.schema.clone(),
                username: key.username.clone(),
                figures: d,
            });
        }
    }
    out
}

/// The `top` busiest rows by time (then count), and the rest (and the source's overflow
/// row) summed.
pub fn top(mut rows: Vec<QueryRow>, top: usize) -> (Vec<QueryRow>, Option<Figures>) {
    let mut other: Option<Figures> = None;
    let mut sum = |f: &Figures| other.get_or_insert_with(Figures::default).add(f);
    rows.retain(|r| {
        if r.id.is_empty() {
            sum(&r.figures);
        }
        !r.id.is_empty()
    });
    rows.sort_by(|a, b| {
        b.figures
            .time_s
            .total_cmp(&a.figures.time_s)
            .then(b.figures.count.cmp(&a.figures.count))
            .then_with(|| a.id.cmp(&b.id))
    });
    for r in rows.iter().skip(top) {
        sum(&r.figures);
    }
    rows.truncate(top);
    (rows, other)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(rows: &[(&str, u64, f64, &str)]) -> Reading {
        let mut r = Reading::default();
        for (id, count, time_s, epoch) in rows {
            r.add(
                Key {
                    id: (*id).into(),
                    schema: "shop".into(),
                    username: String::new(),
                },
                Counters {
                    figures: Figures {
                        count: *count,
                        time_s: *time_s,
                        max_s: 0.5,
                        rows_sent: *count * 2,
                        ..Figures::default()
                    },
                    epoch: (*epoch).into(),
                },
            );
        }
        r
    }

    fn find<'a>(rows: &'a [QueryRow], id: &str) -> Option<&'a QueryRow> {
        rows.iter().find(|r| r.id == id)
    }

    #[test]
    fn differences_of_rows_that_ran() {
        let a = reading(&[("q1", 10, 1.0, "t0"), ("q2", 5, 0.5, "t0")]);
        let b = reading(&[
            ("q1", 14, 1.8, "t0"),
            ("q2", 5, 0.5, "t0"),
            ("q3", 2, 0.1, "t1"),
        ]);
        let d = deltas(&a, &b);
        assert_eq!(d.len(), 2, "{d:?}");
        let q1 = find(&d, "q1").unwrap();
        assert_eq!(q1.figures.count, 4);
        assert!((q1.figures.time_s - 0.8).abs() < 1e-9);
        assert_eq!(q1.figures.rows_sent, 8);
        assert!(q1.figures.max_s <= q1.figures.time_s);
        // A row new since the last reading: all of it happened since.
        assert_eq!(find(&d, "q3").unwrap().figures.count, 2);
    }

    #[test]
    fn resets_and_truncations_give_no_negative_nor_doubled_figures() {
        let a = reading(&[("q1", 100, 10.0, "t0"), ("q2", 50, 5.0, "t0")]);
        // TRUNCATE, then q1 ran 3 times: its row is new (FIRST_SEEN moved on).
        let b = reading(&[("q1", 3, 0.3, "t9")]);
        let d = deltas(&a, &b);
        assert_eq!(d.len(), 1);
        assert_eq!(find(&d, "q1").unwrap().figures.count, 3);
        // Counters that went down without a new epoch (pg_stat_statements_reset() of one
        // entry) count from zero too.
        let c = reading(&[("q1", 1, 0.1, "t9")]);
        assert_eq!(find(&deltas(&b, &c), "q1").unwrap().figures.count, 1);
        // A source-wide reset mark: even grown counters are fresh.
        let mut e = reading(&[("q1", 200, 20.0, "t0")]);
        e.reset_mark = Some("2026-12-07".into());
        assert_eq!(find(&deltas(&a, &e), "q1").unwrap().figures.count, 200);
        for r in deltas(&a, &b).iter().chain(&deltas(&b, &c)) {
            assert!(r.figures.is_sane());
        }
    }

    #[test]
    fn the_busiest_are_kept_and_the_rest_summed() {
        let rows: Vec<QueryRow> = (0..10)
            .map(|i| QueryRow {
                id: format!("q{i}"),
                figures: Figures {
                    count: 1,
                    time_s: f64::from(i),
                    ..Figures::default()
                },
                ..QueryRow::default()
            })
            .chain([QueryRow {
                id: String::new(),
                figures: Figures {
                    count: 7,
                    time_s: 0.5,
                    ..Figures::default()
                },
                ..QueryRow::default()
            }])
            .collect();
        let (kept, other) = top(rows, 3);
        let ids: Vec<&str> = kept.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["q9", "q8", "q7"]);
        let other = other.unwrap();
        assert_eq!(other.count, 7 + 7);
        assert!((other.time_s - (0.5 + 21.0)).abs() < 1e-9);
    }
}
