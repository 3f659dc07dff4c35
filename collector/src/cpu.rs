//! node_exporter's guard on per-CPU counters (collector/cpu_linux.go, `updateCPUStats`):
//! the kernel's idle and iowait times can step backwards (NO_HZ accounting), which a
//! counter must never do. Per CPU, a column that went down keeps its previous value;
//! if idle went down by 3 s or more the CPU is taken to have been replugged and its
//! history is dropped. CPUs no longer listed are forgotten.

use crate::parse::stat::CpuTimes;

const JUMP_BACK_SECONDS: f64 = 3.0;
const IDLE: usize = 3;

#[derive(Debug, Default)]
pub(crate) struct CpuCounters {
    current: Vec<CpuTimes>,
    next: Vec<CpuTimes>,
}

impl CpuCounters {
    /// Folds a new reading in and returns the values to export, in the reading's order.
    pub(crate) fn update(&mut self, reading: &[CpuTimes]) -> &[CpuTimes] {
        self.next.clear();
        for (i, new) in reading.iter().enumerate() {
            // CPUs keep their order in /proc/stat, so the same index is the usual hit.
            let prev = match self.current.get(i) {
                Some(p) if p.id == new.id => Some(p),
                _ => self.current.iter().find(|p| p.id == new.id),
            };
            let mut kept = match prev {
                Some(p) if p.seconds[IDLE] - new.seconds[IDLE] < JUMP_BACK_SECONDS => *p,
                _ => CpuTimes {
                    id: new.id,
                    seconds: [0.0; 10],
                },
            };
            for (k, n) in kept.seconds.iter_mut().zip(new.seconds) {
                if n >= *k {
                    *k = n;
                }
            }
            self.next.push(kept);
        }
        std::mem::swap(&mut self.current, &mut self.next);
        &self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu(id: u32, user: f64, idle: f64) -> CpuTimes {
        let mut seconds = [0.0; 10];
        seconds[0] = user;
        seconds[IDLE] = idle;
        CpuTimes { id, seconds }
    }

    #[test]
    fn never_goes_backwards_and_resets_on_a_big_jump() {
        let mut c = CpuCounters::default();
        assert_eq!(
            c.update(&[cpu(0, 10.0, 100.0), cpu(1, 5.0, 50.0)]),
            [cpu(0, 10.0, 100.0), cpu(1, 5.0, 50.0)]
        );
        // Small step back in idle: keep the old idle, take the new user.
        assert_eq!(
            c.update(&[cpu(0, 11.0, 99.0), cpu(1, 6.0, 51.0)]),
            [cpu(0, 11.0, 100.0), cpu(1, 6.0, 51.0)]
        );
        // idle 3 s or more back: a replug, start over from the new values.
        assert_eq!(
            c.update(&[cpu(0, 1.0, 97.0), cpu(1, 7.0, 52.0)]),
            [cpu(0, 1.0, 97.0), cpu(1, 7.0, 52.0)]
        );
        // CPU 1 goes offline and comes back with smaller numbers: no history kept.
        assert_eq!(c.update(&[cpu(0, 2.0, 98.0)]), [cpu(0, 2.0, 98.0)]);
        assert_eq!(
            c.update(&[cpu(0, 3.0, 99.0), cpu(1, 1.0, 1.0)]),
            [cpu(0, 3.0, 99.0), cpu(1, 1.0, 1.0)]
        );
    }
}
