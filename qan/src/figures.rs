//! A fingerprint's figures in one interval, and the series each becomes in the engine.

use serde::{Deserialize, Serialize};

fn is_zero_u(v: &u64) -> bool {
    *v == 0
}

fn is_zero_f(v: &f64) -> bool {
    *v == 0.0
}

/// What one fingerprint did in one interval. Zero figures are left out of the JSON.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// Statements run.
    #[serde(default, skip_serializing_if = "is_zero_u")]
    pub count: u64,
    /// Their total execution time, seconds.
    #[serde(default, skip_serializing_if = "is_zero_f")]
    pub time_s: f64,
    /// The longest one, seconds (at most the interval's total: the sources keep the
    /// longest since their last reset, not per interval).
    #[serde(default, skip_serializing_if = "is_zero_f")]
    pub max_s: f64,
    /// Time spent waiting for table locks, seconds (MySQL).
    #[serde(default, skip_serializing_if = "is_zero_f")]
    pub lock_s: f64,
    #[serde(default, skip_serializing_if = "is_zero_u")]
    pub rows_examined: u64,
    /// Rows returned (PostgreSQL's `rows`: returned or affected).
    #[serde(default, skip_serializing_if = "is_zero_u")]
    pub rows_sent: u64,
    #[serde(default, skip_serializing_if = "is_zero_u")]
    pub rows_affected: u64,
    #[serde(default, skip_serializing_if = "is_zero_u")]
    pub errors: u64,
    #[serde(default, skip_serializing_if = "is_zero_u")]
    pub warnings: u64,
    #[serde(default, skip_serializing_if = "is_zero_u")]
    pub tmp_tables: u64,
    #[serde(default, skip_serializing_if = "is_zero_u")]
    pub tmp_disk_tables: u64,
    #[serde(default, skip_serializing_if = "is_zero_u")]
    pub full_joins: u64,
    #[serde(default, skip_serializing_if = "is_zero_u")]
    pub no_index_used: u64,
    /// PostgreSQL's shared buffer blocks found in the cache and read.
    #[serde(default, skip_serializing_if = "is_zero_u")]
    pub shared_blks_hit: u64,
    #[serde(default, skip_serializing_if = "is_zero_u")]
    pub shared_blks_read: u64,
    /// PostgreSQL's temporary blocks read and written (sorts and hashes that spilled).
    #[serde(default, skip_serializing_if = "is_zero_u")]
    pub temp_blks_read: u64,
    #[serde(default, skip_serializing_if = "is_zero_u")]
    pub temp_blks_written: u64,
}

impl Figures {
    /// Adds `other` to these (the longest is the longer of the two).
    pub fn add(&mut self, other: &Figures) {
        self.count = self.count.saturating_add(other.count);
        self.time_s += other.time_s;
        self.max_s = self.max_s.max(other.max_s);
        self.lock_s += other.lock_s;
        self.rows_examined = self.rows_examined.saturating_add(other.rows_examined);
        self.rows_sent = self.rows_sent.saturating_add(other.rows_sent);
        self.rows_affected = self.rows_affected.saturating_add(other.rows_affected);
        self.errors = self.errors.saturating_add(other.errors);
        self.warnings = self.warnings.saturating_add(other.warnings);
        self.tmp_tables = self.tmp_tables.saturating_add(other.tmp_tables);
        self.tmp_disk_tables = self.tmp_disk_tables.saturating_add(other.tmp_disk_tables);
        self.full_joins = self.full_joins.saturating_add(other.full_joins);
        self.no_index_used = self.no_index_used.saturating_add(other.no_index_used);
        self.shared_blks_hit = self.shared_blks_hit.saturating_add(other.shared_blks_hit);
        self.shared_blks_read = self.shared_blks_read.saturating_add(other.shared_blks_read);
        self.temp_blks_read = self.temp_blks_read.saturating_add(other.temp_blks_read);
        self.temp_blks_written = self
            .temp_blks_written
            .saturating_add(other.temp_blks_written);
    }

    /// Whether nothing happened.
    pub fn is_empty(&self) -> bool {
        *self == Figures::default()
    }

    /// Whether every figure is a real, non-negative number.
    pub fn is_sane(&self) -> bool {
        METRICS.iter().all(|m| {
            let v = (m.get)(self);
            v.is_finite() && v >= 0.0
        })
    }
}

/// One figure as a series in the metrics engine: `name{node_id, node_name, service_name,
/// service_type, fingerprint, schema, username, ...}`, one sample an interval, at its end,
/// holding what happened in that interval (sum them over a range with `sum_over_time`; the
/// longest with `max_over_time`).
#[derive(Debug)]
pub struct Metric {
    pub name: &'static str,
    /// The field of [`Figures`] it holds (`count`, `time_s`, ...), as the API names it.
    pub field: &'static str,
    pub get: fn(&Figures) -> f64,
    /// Over a range its samples are added up; `false` for the longest (max).
    pub summed: bool,
}

macro_rules! metrics {
    ($($name:literal => $field:ident, $summed:expr;)*) => {
        /// Every figure's series.
        pub const METRICS: &[Metric] = &[$(
            Metric {
                name: $name,
                field: stringify!($field),
                get: |f: &Figures| f.$field as f64,
                summed: $summed,
            },
        )*];
        /// Their names: Query Analytics' reports alone write them (remote write may not).
        pub const SERIES_NAMES: &[&str] = &[$($name),*];
    };
}

metrics! {
    "perch_qan_queries" => count, true;
    "perch_qan_query_seconds" => time_s, true;
    "perch_qan_query_max_seconds" => max_s, false;
    "perch_qan_lock_seconds" => lock_s, true;
    "perch_qan_rows_examined" => rows_examined, true;
    "perch_qan_rows_sent" => rows_sent, true;
    "perch_qan_rows_affected" => rows_affected, true;
    "perch_qan_errors" => errors, true;
    "perch_qan_warnings" => warnings, true;
    "perch_qan_tmp_tables" => tmp_tables, true;
    "perch_qan_tmp_disk_tables" => tmp_disk_tables, true;
    "perch_qan_full_joins" => full_joins, true;
    "perch_qan_no_index_used" => no_index_used, true;
    "perch_qan_shared_blocks_hit" => shared_blks_hit, true;
    "perch_qan_shared_blocks_read" => shared_blks_read, true;
    "perch_qan_temp_blocks_read" => temp_blks_read, true;
    "perch_qan_temp_blocks_written" => temp_blks_written, true;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adding_sums_and_keeps_the_longest() {
        let mut a = Figures {
            count: 2,
            time_s: 1.0,
            max_s: 0.8,
            ..Figures::default()
        };
        a.add(&Figures {
            count: 1,
            time_s: 0.5,
            max_s: 0.5,
            rows_sent: 4,
            ..Figures::default()
        });
        assert_eq!((a.count, a.time_s, a.max_s, a.rows_sent), (3, 1.5, 0.8, 4));
        assert!(a.is_sane());
        assert!(!Figures { time_s: -1.0, ..a }.is_sane());
        assert!(Figures::default().is_empty());
    }

    #[test]
    fn every_metric_reads_its_own_field() {
        let f = Figures {
            count: 1,
            time_s: 2.0,
            max_s: 3.0,
            lock_s: 4.0,
            rows_examined: 5,
            rows_sent: 6,
            rows_affected: 7,
            errors: 8,
            warnings: 9,
            tmp_tables: 10,
            tmp_disk_tables: 11,
            full_joins: 12,
            no_index_used: 13,
            shared_blks_hit: 14,
            shared_blks_read: 15,
            temp_blks_read: 16,
            temp_blks_written: 17,
        };
        let values: Vec<f64> = METRICS.iter().map(|m| (m.get)(&f)).collect();
        assert_eq!(values, (1..=17).map(f64::from).collect::<Vec<_>>());
        let json = serde_json::to_value(f).unwrap();
        for m in METRICS {
            assert_eq!(json[m.field].as_f64(), Some((m.get)(&f)), "{}", m.field);
        }
    }
}
