//! perch-admin's built-in node collector: reads /proc and statfs(2) and names what it
//! finds as Prometheus node_exporter does, so existing dashboards and alerts work.
//!
//! One [`Collector`] is kept for the life of the agent and called once per interval;
//! [`Collector::collect_into`] rewrites the previous [`Collected`] in place, so on a
//! steady machine a collection allocates nothing. Every series carries `__name__` and
//! its labels sorted by name, and one sample stamped with the caller's time.
//!
//! What is exported, per node_exporter collector (each also reports
//! `node_scrape_collector_success{collector}` and
//! `node_scrape_collector_duration_seconds{collector}`):
//!
//! | collector  | source               | metrics |
//! |------------|----------------------|---------|
//! | cpu        | /proc/stat           | `node_cpu_seconds_total{cpu,mode}`, `node_cpu_guest_seconds_total{cpu,mode}` |
//! | stat       | /proc/stat           | `node_boot_time_seconds`, `node_context_switches_total`, `node_intr_total`, `node_forks_total`, `node_procs_running`, `node_procs_blocked` |
//! | meminfo    | /proc/meminfo        | `node_memory_<Key>_bytes`, or `node_memory_<Key>` for unitless lines |
//! | loadavg    | /proc/loadavg        | `node_load1`, `node_load5`, `node_load15` |
//! | filesystem | /proc/1/mounts, statfs(2) | `node_filesystem_{size,free,avail}_bytes`, `node_filesystem_files`, `node_filesystem_files_free`, `node_filesystem_readonly`, `node_filesystem_device_error`, `{device,fstype,mountpoint}` |
//! | diskstats  | /proc/diskstats      | `node_disk_*{device}` |
//! | netdev     | /proc/net/dev        | `node_network_{receive,transmit}_*_total{device}` |
//! | time       | the caller's clock   | `node_time_seconds` |
//! | uname      | uname(2)             | `node_uname_info{domainname,machine,nodename,release,sysname,version}` |
//!
//! node_exporter's default exclusions apply (file system types, mount points, disk
//! partitions: see the `filter` module); no network device is excluded, as upstream.
#![forbid(unsafe_code)]

mod collector;
mod cpu;
mod filter;
mod parse;
mod series;
mod statfs;

pub use collector::{CollectError, Collected, Collector, Options, PartError};
pub use parse::ParseError;
pub use statfs::StatfsError;
