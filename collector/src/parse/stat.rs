//! `/proc/stat`: per-CPU times and the kernel's activity counters.

use super::{ParseError, uint};

/// The kernel's USER_HZ: /proc/stat counts CPU time in 1/100 s on every Linux ABI,
/// and node_exporter divides by 100 as well.
pub(crate) const USER_HZ: f64 = 100.0;

/// The modes of `node_cpu_seconds_total`, in /proc/stat's column order.
pub(crate) const CPU_MODES: [&str; 8] = [
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
];
/// The modes of `node_cpu_guest_seconds_total`: columns 9 (guest) and 10 (guest_nice).
pub(crate) const GUEST_MODES: [&str; 2] = ["user", "nice"];

/// One `cpuN` line: N and its ten columns in seconds (user, nice, system, idle, iowait,
/// irq, softirq, steal, guest, guest_nice); columns an older kernel lacks are 0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CpuTimes {
    pub id: u32,
    pub seconds: [f64; 10],
}

/// The single-value lines of /proc/stat; `None` when the line is absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct StatTotals {
    /// `btime`: boot time, seconds since the Unix epoch.
    pub boot_time: Option<u64>,
    /// `ctxt`: context switches since boot.
    pub context_switches: Option<u64>,
    /// First number of `intr`: interrupts serviced since boot.
    pub interrupts: Option<u64>,
    /// `processes`: forks since boot.
    pub forks: Option<u64>,
    /// `procs_running`: threads runnable now.
    pub procs_running: Option<u64>,
    /// `procs_blocked`: threads blocked on I/O now.
    pub procs_blocked: Option<u64>,
}

/// Parses /proc/stat. Fills `cpus` (cleared first) with the per-CPU lines in file
/// order; the aggregate `cpu` line is skipped, as node_exporter does.
pub(crate) fn parse_stat(text: &str, cpus: &mut Vec<CpuTimes>) -> Result<StatTotals, ParseError> {
    cpus.clear();
    let mut totals = StatTotals::default();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let mut fields = line.split_ascii_whitespace();
        let Some(key) = fields.next() else { continue };
        if let Some(id) = key.strip_prefix("cpu") {
            if id.is_empty() {
                continue;
            }
            let id = id.parse::<u32>().map_err(|_| ParseError {
                line: n,
                reason: "cpu line without a cpu number",
            })?;
            let mut seconds = [0.0; 10];
            for (slot, field) in seconds.iter_mut().zip(fields) {
                *slot = uint(field, n, "cpu time is not a whole number")? as f64 / USER_HZ;
            }
            cpus.push(CpuTimes { id, seconds });
            continue;
        }
        let slot = match key {
            "btime" => &mut totals.boot_time,
            "ctxt" => &mut totals.context_switches,
            "intr" => &mut totals.interrupts,
            "processes" => &mut totals.forks,
            "procs_running" => &mut totals.procs_running,
            "procs_blocked" => &mut totals.procs_blocked,
            _ => continue,
        };
        let value = fields.next().ok_or(ParseError {
            line: n,
            reason: "line without a value",
        })?;
        *slot = Some(uint(value, n, "value is not a whole number")?);
    }
    Ok(totals)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = include_str!("../../tests/data/proc/stat");

    #[test]
    fn sample() {
        let mut cpus = Vec::new();
        let t = parse_stat(STAT, &mut cpus).unwrap();
        assert_eq!(cpus.len(), 4);
        assert_eq!(cpus[0].id, 0);
        assert_eq!(
            cpus[0].seconds,
            [
                4705.96, 1.5, 1396.42, 1217549.51, 312.73, 0.0, 58.41, 12.34, 105.02, 0.03
            ]
        );
        assert_eq!(cpus[3].id, 3);
        assert_eq!(cpus[3].seconds[3], 1219230.99);
        assert_eq!(
            t,
            StatTotals {
                boot_time: Some(1_714_553_521),
                context_switches: Some(2_398_734_512),
                interrupts: Some(1_077_412_893),
                forks: Some(4_012_387),
                procs_running: Some(3),
                procs_blocked: Some(1),
            }
        );
    }

    #[test]
    fn short_cpu_lines_and_missing_totals() {
        let mut cpus = Vec::new();
        let t = parse_stat("cpu  1 2 3 4\ncpu7 100 200 300 400\n", &mut cpus).unwrap();
        assert_eq!(
            cpus,
            [CpuTimes {
                id: 7,
                seconds: [1.0, 2.0, 3.0, 4.0, 0., 0., 0., 0., 0., 0.]
            }]
        );
        assert_eq!(t, StatTotals::default());
    }

    #[test]
    fn bad_lines() {
        let mut cpus = Vec::new();
        assert_eq!(
            parse_stat("cpu0 1 x 3\n", &mut cpus),
            Err(ParseError {
                line: 1,
                reason: "cpu time is not a whole number"
            })
        );
        assert_eq!(
            parse_stat("cpu 1\ncpuX 1\n", &mut cpus),
            Err(ParseError {
                line: 2,
                reason: "cpu line without a cpu number"
            })
        );
        assert_eq!(
            parse_stat("btime\n", &mut cpus),
            Err(ParseError {
                line: 1,
                reason: "line without a value"
            })
        );
        assert_eq!(
            parse_stat("ctxt -5\n", &mut cpus),
            Err(ParseError {
                line: 1,
                reason: "value is not a whole number"
            })
        );
    }
}
