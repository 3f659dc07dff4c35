//! The collector: reads each source into one reused buffer, parses it, and writes
//! series. A source that cannot be read or parsed costs only its own metrics.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use perch_remote_write::TimeSeries;

use crate::cpu::CpuCounters;
use crate::filter;
use crate::parse::stat::{CPU_MODES, CpuTimes, GUEST_MODES};
use crate::parse::{ParseError, diskstats, loadavg, meminfo, mounts, netdev, stat};
use crate::series::{Writer, fmt_u64};
use crate::statfs::{StatfsError, Statter};

/// Where to read from, as node_exporter's `--path.procfs` and `--path.rootfs`.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where procfs is mounted: `/proc`, or the host's /proc mounted into a container.
    pub proc_path: PathBuf,
    /// The root of the file systems to report: `/`, or the host's `/` mounted into a
    /// container. Mount points are reported with this prefix removed, and statfs(2)
    /// is called on this path joined with the mount point.
    pub root_path: PathBuf,
    /// How long one statfs(2) may take; a mount point that does not answer in time is
    /// reported with `node_filesystem_device_error 1` until its call returns.
    pub mount_timeout: Duration,
}

impl Default for Options {
    /// `/proc`, `/` and 5 s (node_exporter's defaults).
    fn default() -> Self {
        Options {
            proc_path: PathBuf::from("/proc"),
            root_path: PathBuf::from("/"),
            mount_timeout: Duration::from_secs(5),
        }
    }
}

/// Why part of a collection is missing.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("parsing {path}: {source}")]
    Parse { path: PathBuf, source: ParseError },
    #[error("file system at {mount_point}: {source}")]
    Statfs {
        mount_point: String,
        source: StatfsError,
    },
    #[error("uname: {0}")]
    Uname(nix::errno::Errno),
}

/// An error in one node_exporter collector's part of a collection. For `filesystem`,
/// a single mount point that cannot be statted is reported here too, but it does not
/// make the collector fail (it shows as `node_filesystem_device_error 1`, as in
/// node_exporter); every other error means the collector exported nothing and
/// `node_scrape_collector_success{collector}` is 0.
#[derive(Debug, thiserror::Error)]
#[error("{collector}: {error}")]
pub struct PartError {
    /// node_exporter's name for the collector: `cpu`, `filesystem`, ...
    pub collector: &'static str,
    pub error: CollectError,
}

/// The result of one collection.
#[derive(Debug, Default)]
pub struct Collected {
    /// The series, each with `__name__` and labels sorted by name, and one sample.
    pub series: Vec<TimeSeries>,
    /// What went wrong without stopping the rest.
    pub errors: Vec<PartError>,
}

struct Paths {
    stat: PathBuf,
    meminfo: PathBuf,
    loadavg: PathBuf,
    diskstats: PathBuf,
    net_dev: PathBuf,
    mounts_pid1: PathBuf,
    mounts_self: PathBuf,
}

impl Paths {
    fn get(&self, source: Source) -> &Path {
        match source {
            Source::Stat => &self.stat,
            Source::Meminfo => &self.meminfo,
            Source::Loadavg => &self.loadavg,
            Source::Diskstats => &self.diskstats,
            Source::NetDev => &self.net_dev,
        }
    }
}

/// The node collector. Keeps buffers and per-CPU history between collections.
pub struct Collector {
    paths: Paths,
    root_path: PathBuf,
    /// `root_path` as a string without a trailing `/`; `None` when it is `/`.
    root_prefix: Option<String>,
    buf: String,
    cpus: Vec<CpuTimes>,
    /// /proc/stat's totals, parsed by `cpu` for `stat` in the same collection.
    stat_totals: Option<stat::StatTotals>,
    cpu_counters: CpuCounters,
    statter: Statter,
    mount_point: String,
    key: String,
    seen: Vec<String>,
}

impl std::fmt::Debug for Collector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collector")
            .field("proc_path", &self.paths.stat.parent())
            .field("root_path", &self.root_path)
            .finish_non_exhaustive()
    }
}

/// node_exporter's collectors that this one reproduces.
#[derive(Debug, Clone, Copy)]
enum Part {
    Cpu,
    Stat,
    Meminfo,
    Loadavg,
    Diskstats,
    Netdev,
    Filesystem,
    Time,
    Uname,
}

impl Part {
    /// In the order they run: `stat` right after `cpu`, which parses /proc/stat for both.
    const ALL: [Part; 9] = [
        Part::Cpu,
        Part::Stat,
        Part::Meminfo,
        Part::Loadavg,
        Part::Diskstats,
        Part::Netdev,
        Part::Filesystem,
        Part::Time,
        Part::Uname,
    ];

    /// The `collector` label, as node_exporter names it.
    fn name(self) -> &'static str {
        match self {
            Part::Cpu => "cpu",
            Part::Stat => "stat",
            Part::Meminfo => "meminfo",
            Part::Loadavg => "loadavg",
            Part::Diskstats => "diskstats",
            Part::Netdev => "netdev",
            Part::Filesystem => "filesystem",
            Part::Time => "time",
            Part::Uname => "uname",
        }
    }
}

impl Collector {
    pub fn new(options: Options) -> Self {
        let p = &options.proc_path;
        let root = options.root_path.to_string_lossy();
        let trimmed = root.trim_end_matches('/');
        let root_prefix = (!trimmed.is_empty()).then(|| trimmed.to_owned());
        Collector {
            paths: Paths {
                stat: p.join("stat"),
                meminfo: p.join("meminfo"),
                loadavg: p.join("loadavg"),
                diskstats: p.join("diskstats"),
                net_dev: p.join("net/dev"),
                mounts_pid1: p.join("1/mounts"),
                mounts_self: p.join("mounts"),
            },
            root_path: options.root_path.clone(),
            root_prefix,
            buf: String::with_capacity(16 * 1024),
            cpus: Vec::new(),
            stat_totals: None,
            cpu_counters: CpuCounters::default(),
            statter: Statter::new(options.mount_timeout),
            mount_point: String::new(),
            key: String::new(),
            seen: Vec::new(),
        }
    }

    /// Collects everything into a new [`Collected`], stamped `now_ms` (milliseconds
    /// since the Unix epoch, also the value of `node_time_seconds`).
    pub fn collect(&mut self, now_ms: i64) -> Collected {
        let mut out = Collected::default();
        self.collect_into(now_ms, &mut out);
        out
    }

    /// Like [`Collector::collect`], but overwrites `out`, reusing its buffers: pass the
    /// same `Collected` every time and a steady machine costs no allocation.
    pub fn collect_into(&mut self, now_ms: i64, out: &mut Collected) {
        out.errors.clear();
        let mut w = Writer::new(&mut out.series, now_ms);
        let mut ok = [true; Part::ALL.len()];
        let mut took = [0.0f64; Part::ALL.len()];
        for (i, part) in Part::ALL.into_iter().enumerate() {
            let start = Instant::now();
            let mark = w.mark();
            let result = match part {
                // /proc/stat feeds both cpu and stat: read and parsed once, for cpu.
                Part::Cpu => self.read(Source::Stat).and_then(|()| self.cpu(&mut w)),
                Part::Stat => self.stat(&mut w),
                Part::Meminfo => self
                    .read(Source::Meminfo)
                    .and_then(|()| self.meminfo(&mut w)),
                Part::Loadavg => self
                    .read(Source::Loadavg)
                    .and_then(|()| self.loadavg(&mut w)),
                Part::Diskstats => self
                    .read(Source::Diskstats)
                    .and_then(|()| self.diskstats(&mut w)),
                Part::Netdev => self.read(Source::NetDev).and_then(|()| self.netdev(&mut w)),
                Part::Filesystem => self.filesystem(&mut w, &mut out.errors),
                Part::Time => {
                    w.push(&["node_time_seconds"], &[], now_ms as f64 / 1000.0);
                    Ok(())
                }
                Part::Uname => uname(&mut w),
            };
            if let Err(error) = result {
                w.rollback(mark);
                ok[i] = false;
                out.errors.push(PartError {
                    collector: part.name(),
                    error,
                });
            }
            took[i] = start.elapsed().as_secs_f64();
        }
        for (i, part) in Part::ALL.into_iter().enumerate() {
            let labels = [("collector", part.name())];
            w.push(
                &["node_scrape_collector_duration_seconds"],
                &labels,
                took[i],
            );
            w.push(
                &["node_scrape_collector_success"],
                &labels,
                if ok[i] { 1.0 } else { 0.0 },
            );
        }
        w.finish();
    }

    /// Reads a source into `self.buf`; after an error `self.buf` is empty.
    fn read(&mut self, source: Source) -> Result<(), CollectError> {
        let path = self.paths.get(source);
        read_file(path, &mut self.buf).map_err(|source| CollectError::Read {
            path: path.to_owned(),
            source,
        })
    }

    fn parse_error(&self, source: Source, e: ParseError) -> CollectError {
        CollectError::Parse {
            path: self.paths.get(source).to_owned(),
            source: e,
        }
    }

    /// Needs /proc/stat in `self.buf`; parses it into `self.cpus`, and its totals into
    /// `self.stat_totals` for `stat`.
    fn cpu(&mut self, w: &mut Writer) -> Result<(), CollectError> {
        self.stat_totals = None;
        let totals = stat::parse_stat(&self.buf, &mut self.cpus)
            .map_err(|e| self.parse_error(Source::Stat, e))?;
        self.stat_totals = Some(totals);
        let mut num = [0u8; 20];
        for c in self.cpu_counters.update(&self.cpus) {
            let id = fmt_u64(u64::from(c.id), &mut num);
            for (mode, v) in CPU_MODES.iter().zip(&c.seconds) {
                w.push(
                    &["node_cpu_seconds_total"],
                    &[("cpu", id), ("mode", mode)],
                    *v,
                );
            }
            for (mode, v) in GUEST_MODES.iter().zip(&c.seconds[8..]) {
                w.push(
                    &["node_cpu_guest_seconds_total"],
                    &[("cpu", id), ("mode", mode)],
                    *v,
                );
            }
        }
        Ok(())
    }

    /// Runs after `cpu`, with the totals it parsed; when `cpu` failed, reads and parses
    /// /proc/stat again for this part's own error.
    fn stat(&mut self, w: &mut Writer) -> Result<(), CollectError> {
        let t = match self.stat_totals.take() {
            Some(t) => t,
            None => {
                self.read(Source::Stat)?;
                stat::parse_stat(&self.buf, &mut self.cpus)
                    .map_err(|e| self.parse_error(Source::Stat, e))?
            }
        };
        let gauges = [
            ("node_boot_time_seconds", t.boot_time),
            ("node_context_switches_total", t.context_switches),
            ("node_intr_total", t.interrupts),
            ("node_forks_total", t.forks),
            ("node_procs_running", t.procs_running),
            ("node_procs_blocked", t.procs_blocked),
        ];
        for (name, v) in gauges {
            if let Some(v) = v {
                w.push(&[name], &[], v as f64);
            }
        }
        Ok(())
    }

    fn meminfo(&mut self, w: &mut Writer) -> Result<(), CollectError> {
        for entry in meminfo::entries(&self.buf) {
            let e = entry.map_err(|e| self.parse_error(Source::Meminfo, e))?;
            if let Some(name) = e.name_parts() {
                w.push(&name, &[], e.value);
            }
        }
        Ok(())
    }

    fn loadavg(&mut self, w: &mut Writer) -> Result<(), CollectError> {
        let [l1, l5, l15] =
            loadavg::parse_loadavg(&self.buf).map_err(|e| self.parse_error(Source::Loadavg, e))?;
        w.push(&["node_load1"], &[], l1);
        w.push(&["node_load5"], &[], l5);
        w.push(&["node_load15"], &[], l15);
        Ok(())
    }

    fn diskstats(&mut self, w: &mut Writer) -> Result<(), CollectError> {
        for line in diskstats::lines(&self.buf) {
            let d = line.map_err(|e| self.parse_error(Source::Diskstats, e))?;
            if filter::disk_excluded(d.name) {
                continue;
            }
            let labels = [("device", d.name)];
            for ((name, factor), v) in diskstats::DISK_METRICS.iter().zip(&d.values).take(d.count) {
                w.push(&[name], &labels, *v as f64 * factor);
            }
        }
        Ok(())
    }

    fn netdev(&mut self, w: &mut Writer) -> Result<(), CollectError> {
        for line in netdev::lines(&self.buf) {
            let d = line.map_err(|e| self.parse_error(Source::NetDev, e))?;
            let labels = [("device", d.name)];
            for (name, v) in netdev::NETDEV_METRICS.iter().zip(&d.values) {
                w.push(&[name], &labels, *v as f64);
            }
        }
        Ok(())
    }

    fn filesystem(
        &mut self,
        w: &mut Writer,
        errors: &mut Vec<PartError>,
    ) -> Result<(), CollectError> {
        // PID 1's mounts are the host's when procfs is the host's; without access to it
        // (hidepid), our own.
        let mounts_path = match read_file(&self.paths.mounts_pid1, &mut self.buf) {
            Ok(()) => &self.paths.mounts_pid1,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied
                ) =>
            {
                read_file(&self.paths.mounts_self, &mut self.buf).map_err(|source| {
                    CollectError::Read {
                        path: self.paths.mounts_self.clone(),
                        source,
                    }
                })?;
                &self.paths.mounts_self
            }
            Err(source) => {
                return Err(CollectError::Read {
                    path: self.paths.mounts_pid1.clone(),
                    source,
                });
            }
        };
        self.statter.reap();
        let mut seen = 0;
        for line in mounts::lines(&self.buf) {
            let m = line.map_err(|source| CollectError::Parse {
                path: mounts_path.clone(),
                source,
            })?;
            mounts::unescape_into(m.mount_point, &mut self.mount_point);
            let mp = strip_root(self.root_prefix.as_deref(), &self.mount_point);
            if filter::mount_point_excluded(mp) || filter::fs_type_excluded(m.fs_type) {
                continue;
            }
            // A file system is exported once: a block device at the first folder it is
            // mounted on (a container's volumes are folders of the host's one disk), any
            // other (tmpfs, NFS, ...) once at each place.
            self.key.clear();
            let parts = if m.device.starts_with("/dev/") {
                [m.device, "\0", "", "\0", m.fs_type]
            } else {
                [m.device, "\0", mp, "\0", m.fs_type]
            };
            for part in parts {
                self.key.push_str(part);
            }
            if self.seen[..seen].contains(&self.key) {
                continue;
            }

            let labels = [
                ("device", m.device),
                ("fstype", m.fs_type),
                ("mountpoint", mp),
            ];
            let stat = self.statter.stat(&self.root_path, mp);
            // A file bind-mounted over another (Docker's /etc/hosts) is not a file system
            // of its own, nor the place its device is shown.
            if stat.as_ref().is_ok_and(|s| s.is_file) {
                continue;
            }
            match self.seen.get_mut(seen) {
                Some(slot) => slot.clone_from(&self.key),
                None => self.seen.push(self.key.clone()),
            }
            seen += 1;
            match stat {
                Ok(s) => {
                    w.push(&["node_filesystem_device_error"], &labels, 0.0);
                    w.push(&["node_filesystem_size_bytes"], &labels, s.size_bytes);
                    w.push(&["node_filesystem_free_bytes"], &labels, s.free_bytes);
                    w.push(&["node_filesystem_avail_bytes"], &labels, s.avail_bytes);
                    w.push(&["node_filesystem_files"], &labels, s.files);
                    w.push(&["node_filesystem_files_free"], &labels, s.files_free);
                    let ro = if m.read_only() { 1.0 } else { 0.0 };
                    w.push(&["node_filesystem_readonly"], &labels, ro);
                }
                Err(source) => {
                    w.push(&["node_filesystem_device_error"], &labels, 1.0);
                    errors.push(PartError {
                        collector: "filesystem",
                        error: CollectError::Statfs {
                            mount_point: mp.to_owned(),
                            source,
                        },
                    });
                }
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy)]
enum Source {
    Stat,
    Meminfo,
    Loadavg,
    Diskstats,
    NetDev,
}

/// Reads a whole file into `buf` (cleared first; left empty on error).
fn read_file(path: &Path, buf: &mut String) -> io::Result<()> {
    buf.clear();
    let result = std::fs::File::open(path).and_then(|mut f| f.read_to_string(buf));
    if result.is_err() {
        buf.clear();
    }
    result.map(|_| ())
}

/// node_exporter's `rootfsStripPrefix`: the mount point as seen from inside `root`
/// (`/host/home` -> `/home`, `/host` -> `/`); a mount point outside it is unchanged.
fn strip_root<'a>(root: Option<&str>, mount_point: &'a str) -> &'a str {
    let Some(root) = root else { return mount_point };
    match mount_point.strip_prefix(root) {
        Some("") => "/",
        Some(rest) if rest.starts_with('/') => rest,
        _ => mount_point,
    }
}

fn uname(w: &mut Writer) -> Result<(), CollectError> {
    let u = nix::sys::utsname::uname().map_err(CollectError::Uname)?;
    let domainname = u.domainname().to_string_lossy();
    let machine = u.machine().to_string_lossy();
    let nodename = u.nodename().to_string_lossy();
    let release = u.release().to_string_lossy();
    let sysname = u.sysname().to_string_lossy();
    let version = u.version().to_string_lossy();
    w.push(
        &["node_uname_info"],
        &[
            ("domainname", &*domainname),
            ("machine", &*machine),
            ("nodename", &*nodename),
            ("release", &*release),
            ("sysname", &*sysname),
            ("version", &*version),
        ],
        1.0,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_the_root_like_node_exporter() {
        assert_eq!(strip_root(None, "/home"), "/home");
        assert_eq!(strip_root(Some("/host"), "/host"), "/");
        assert_eq!(strip_root(Some("/host"), "/host/home"), "/home");
        assert_eq!(strip_root(Some("/host"), "/hostile"), "/hostile");
        assert_eq!(strip_root(Some("/host"), "/"), "/");
    }
}
