//! The whole collector over the sample /proc in tests/data/proc, with a scratch root
//! directory standing in for the mounted file systems.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use perch_collector::{CollectError, Collected, Collector, Options};

const NOW_MS: i64 = 1_714_600_000_123;

fn data_proc() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/proc")
}

/// A fresh directory under the system temp dir, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "perch-collector-{tag}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The sample's mount points that survive node_exporter's default exclusions, less
/// `/home`, left missing so that its statfs fails.
fn root_with_mount_points() -> Scratch {
    let root = Scratch::new("root");
    for d in [
        "run/user/1000",
        "boot/efi",
        "srv/backup disk",
        "var/lib/docker",
        "data",
        "etc",
    ] {
        std::fs::create_dir_all(root.0.join(d)).unwrap();
    }
    // A file bind-mounted over another, as Docker mounts /etc/resolv.conf.
    std::fs::write(root.0.join("etc/resolv.conf"), "nameserver 10.0.0.1\n").unwrap();
    root
}

type Labels = BTreeMap<String, String>;
/// name -> (labels without `__name__` -> value).
type Index = BTreeMap<String, BTreeMap<Labels, f64>>;

/// The node_exporter collectors this crate reports on, each with
/// `node_scrape_collector_{success,duration_seconds}{collector}`.
const PARTS: [&str; 9] = [
    "cpu",
    "stat",
    "meminfo",
    "loadavg",
    "diskstats",
    "netdev",
    "filesystem",
    "time",
    "uname",
];

/// Indexes the series, checking each one's shape on the way.
fn index(c: &Collected) -> Index {
    let mut out = Index::new();
    for ts in &c.series {
        assert_eq!(ts.labels[0].name, "__name__", "{ts:?}");
        assert!(
            ts.labels.windows(2).all(|w| w[0].name < w[1].name),
            "labels not sorted: {ts:?}"
        );
        assert_eq!(ts.samples.len(), 1);
        assert_eq!(ts.samples[0].timestamp, NOW_MS);
        let labels: Labels = ts.labels[1..]
            .iter()
            .map(|l| (l.name.clone(), l.value.clone()))
            .collect();
        let fam = out.entry(ts.labels[0].value.clone()).or_default();
        assert!(
            fam.insert(labels, ts.samples[0].value).is_none(),
            "duplicate series {ts:?}"
        );
    }
    out
}

fn l(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn value(ix: &Index, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    ix.get(name)?.get(&l(labels)).copied()
}

fn label_values(ix: &Index, name: &str, label: &str) -> BTreeSet<String> {
    ix.get(name)
        .map(|f| f.keys().filter_map(|k| k.get(label).cloned()).collect())
        .unwrap_or_default()
}

/// Family, labels without `__name__`, and the value wanted (`None`: no such series).
type Want<'a> = (&'a str, &'a [(&'a str, &'a str)], Option<f64>);

/// Checks every wanted value and reports all that differ at once.
fn assert_values(ix: &Index, wanted: &[Want]) {
    let wrong: Vec<String> = wanted
        .iter()
        .filter_map(|&(name, labels, want)| {
            let got = value(ix, name, labels);
            (got != want).then(|| format!("{name}{labels:?}: want {want:?}, got {got:?}"))
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// `node_scrape_collector_success` by collector: 0 for the `failed` parts, 1 for the rest.
fn assert_success(ix: &Index, failed: &[&str]) {
    let got: BTreeMap<String, f64> = ix["node_scrape_collector_success"]
        .iter()
        .map(|(labels, v)| (labels["collector"].clone(), *v))
        .collect();
    let want: BTreeMap<String, f64> = PARTS
        .iter()
        .map(|p| (p.to_string(), if failed.contains(p) { 0.0 } else { 1.0 }))
        .collect();
    assert_eq!(got, want);
    assert_eq!(
        label_values(ix, "node_scrape_collector_duration_seconds", "collector"),
        set(&PARTS)
    );
}

#[test]
fn sample_proc_gives_node_exporter_series() {
    let root = root_with_mount_points();
    let mut c = Collector::new(Options {
        proc_path: data_proc(),
        root_path: root.0.clone(),
        mount_timeout: Duration::from_secs(5),
    });
    let got = c.collect(NOW_MS);
    let ix = index(&got);

    // cpu: 4 CPUs x 8 modes, and the two guest modes; /proc/stat jiffies / 100.
    assert_eq!(ix["node_cpu_seconds_total"].len(), 32);
    assert_eq!(
        label_values(&ix, "node_cpu_seconds_total", "cpu"),
        set(&["0", "1", "2", "3"])
    );
    assert_eq!(
        label_values(&ix, "node_cpu_seconds_total", "mode"),
        set(&[
            "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user"
        ])
    );
    assert_eq!(ix["node_cpu_guest_seconds_total"].len(), 8);
    // meminfo: every line, kB * 1024, unitless lines without _bytes.
    let mem = ix.keys().filter(|k| k.starts_with("node_memory_")).count();
    assert_eq!(mem, 56);
    // diskstats: partitions, loop, ram and zram excluded; fields as many as the kernel gives.
    assert_eq!(
        label_values(&ix, "node_disk_reads_completed_total", "device"),
        set(&["dm-0", "md0", "nvme0n1", "sda", "sdaa", "sdaa1", "xvdb"])
    );
    assert_eq!(ix["node_disk_flush_requests_total"].len(), 3);
    // netdev: every interface, 16 counters each.
    assert_eq!(
        label_values(&ix, "node_network_receive_bytes_total", "device"),
        set(&["docker0", "eth0", "lo", "veth3a1b2c4", "wg0"])
    );
    let net = ix.keys().filter(|k| k.starts_with("node_network_")).count();
    assert_eq!(net, 16);
    // filesystem: what survives the default exclusions, once each; /home is not in the
    // scratch root, so only its device_error series is there. A block device is shown
    // once, at the first folder it is mounted on (the root's device is not shown again at
    // /var/lib/docker), and a file bind-mounted over another (/etc/resolv.conf) is not a
    // file system of its own: /dev/sdb1 is shown at /data.
    assert_eq!(
        label_values(&ix, "node_filesystem_device_error", "mountpoint"),
        set(&[
            "/",
            "/boot/efi",
            "/data",
            "/home",
            "/run",
            "/run/user/1000",
            "/srv/backup disk",
        ])
    );
    assert_eq!(
        label_values(&ix, "node_filesystem_size_bytes", "mountpoint"),
        set(&[
            "/",
            "/boot/efi",
            "/data",
            "/run",
            "/run/user/1000",
            "/srv/backup disk",
        ])
    );

    let nvme: &[(&str, &str)] = &[("device", "nvme0n1")];
    let sda: &[(&str, &str)] = &[("device", "sda")];
    let xvdb: &[(&str, &str)] = &[("device", "xvdb")];
    let eth0: &[(&str, &str)] = &[("device", "eth0")];
    let home: &[(&str, &str)] = &[
        ("device", "nas:/export/home"),
        ("fstype", "nfs4"),
        ("mountpoint", "/home"),
    ];
    let backup: &[(&str, &str)] = &[
        ("device", "/dev/sda1"),
        ("fstype", "ext4"),
        ("mountpoint", "/srv/backup disk"),
    ];
    let slash: &[(&str, &str)] = &[
        ("device", "/dev/mapper/vg0-root"),
        ("fstype", "ext4"),
        ("mountpoint", "/"),
    ];
    let cpu = "node_cpu_seconds_total";
    let guest = "node_cpu_guest_seconds_total";
    assert_values(
        &ix,
        &[
            (cpu, &[("cpu", "0"), ("mode", "user")], Some(4705.96)),
            (cpu, &[("cpu", "3"), ("mode", "idle")], Some(1219230.99)),
            (cpu, &[("cpu", "1"), ("mode", "steal")], Some(12.45)),
            (guest, &[("cpu", "2"), ("mode", "user")], Some(105.11)),
            (guest, &[("cpu", "2"), ("mode", "nice")], Some(0.03)),
            ("node_boot_time_seconds", &[], Some(1_714_553_521.0)),
            ("node_context_switches_total", &[], Some(2_398_734_512.0)),
            ("node_intr_total", &[], Some(1_077_412_893.0)),
            ("node_forks_total", &[], Some(4_012_387.0)),
            ("node_procs_running", &[], Some(3.0)),
            ("node_procs_blocked", &[], Some(1.0)),
            (
                "node_memory_MemTotal_bytes",
                &[],
                Some(65_768_940.0 * 1024.0),
            ),
            (
                "node_memory_MemAvailable_bytes",
                &[],
                Some(41_253_804.0 * 1024.0),
            ),
            (
                "node_memory_Active_anon_bytes",
                &[],
                Some(18_104_968.0 * 1024.0),
            ),
            ("node_memory_HugePages_Total", &[], Some(16.0)),
            ("node_memory_Hugepagesize_bytes", &[], Some(2_097_152.0)),
            ("node_load1", &[], Some(0.52)),
            ("node_load5", &[], Some(0.58)),
            ("node_load15", &[], Some(0.59)),
            ("node_disk_reads_completed_total", nvme, Some(4_852_961.0)),
            (
                "node_disk_read_bytes_total",
                nvme,
                Some(325_768_402.0 * 512.0),
            ),
            ("node_disk_read_time_seconds_total", nvme, Some(1593.025)),
            (
                "node_disk_written_bytes_total",
                nvme,
                Some(1_310_398_236.0 * 512.0),
            ),
            ("node_disk_io_now", sda, Some(2.0)),
            ("node_disk_io_time_seconds_total", sda, Some(1401.032)),
            (
                "node_disk_io_time_weighted_seconds_total",
                sda,
                Some(6074.154),
            ),
            (
                "node_disk_discarded_sectors_total",
                nvme,
                Some(83_902_984.0),
            ),
            // ms * (1.0 / 1000.0), as node_exporter computes it (not ms / 1000).
            (
                "node_disk_flush_requests_time_seconds_total",
                nvme,
                Some(590.1850000000001),
            ),
            // sda has the 11 pre-4.18 columns: no discard or flush series; xvdb has 15:
            // no flush.
            ("node_disk_discards_completed_total", sda, None),
            ("node_disk_discards_completed_total", xvdb, Some(0.0)),
            ("node_disk_flush_requests_total", xvdb, None),
            (
                "node_network_receive_bytes_total",
                eth0,
                Some(98_174_218_311.0),
            ),
            ("node_network_receive_drop_total", eth0, Some(41.0)),
            (
                "node_network_receive_multicast_total",
                eth0,
                Some(288_314.0),
            ),
            ("node_network_transmit_carrier_total", eth0, Some(1.0)),
            (
                "node_network_transmit_packets_total",
                &[("device", "docker0")],
                Some(16_432.0),
            ),
            ("node_filesystem_device_error", home, Some(1.0)),
            ("node_filesystem_device_error", backup, Some(0.0)),
            ("node_filesystem_readonly", backup, Some(1.0)),
            ("node_filesystem_readonly", slash, Some(0.0)),
            ("node_time_seconds", &[], Some(1_714_600_000.123)),
        ],
    );

    // The real file system under the scratch root.
    let size = value(&ix, "node_filesystem_size_bytes", slash).unwrap();
    let avail = value(&ix, "node_filesystem_avail_bytes", slash).unwrap();
    let free = value(&ix, "node_filesystem_free_bytes", slash).unwrap();
    assert!(
        size > 0.0 && avail <= free && free <= size,
        "{size} {free} {avail}"
    );
    assert!(value(&ix, "node_filesystem_files", slash).is_some());
    assert!(value(&ix, "node_filesystem_files_free", slash).is_some());

    let uname = &ix["node_uname_info"];
    assert_eq!(uname.len(), 1);
    let (labels, v) = uname.iter().next().unwrap();
    assert_eq!(*v, 1.0);
    assert_eq!(
        labels.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "domainname",
            "machine",
            "nodename",
            "release",
            "sysname",
            "version"
        ]
    );
    assert_eq!(labels["sysname"], "Linux");

    // Every part succeeded; the one failed statfs is reported without failing it.
    assert_success(&ix, &[]);
    assert_eq!(got.errors.len(), 1, "{:?}", got.errors);
    assert_eq!(got.errors[0].collector, "filesystem");
    assert!(
        matches!(&got.errors[0].error, CollectError::Statfs { mount_point, .. } if mount_point == "/home"),
        "{:?}",
        got.errors
    );
}

#[test]
fn collect_into_reuses_the_previous_buffers() {
    let root = root_with_mount_points();
    let mut c = Collector::new(Options {
        proc_path: data_proc(),
        root_path: root.0.clone(),
        ..Options::default()
    });
    let mut out = Collected::default();
    c.collect_into(NOW_MS, &mut out);
    let mut first = index(&out);
    let series_ptr = out.series.as_ptr();
    let label_ptrs: Vec<*const u8> = out
        .series
        .iter()
        .map(|s| s.labels[0].value.as_ptr())
        .collect();
    c.collect_into(NOW_MS, &mut out);
    assert_eq!(out.series.as_ptr(), series_ptr);
    let same: usize = out
        .series
        .iter()
        .zip(&label_ptrs)
        .filter(|(s, p)| s.labels[0].value.as_ptr() == **p)
        .count();
    assert_eq!(same, label_ptrs.len());
    let mut second = index(&out);
    // Only the timings and the real file systems' free space may differ between the two.
    for fam in [
        "node_scrape_collector_duration_seconds",
        "node_filesystem_free_bytes",
        "node_filesystem_avail_bytes",
        "node_filesystem_files_free",
    ] {
        let (a, b) = (first.remove(fam).unwrap(), second.remove(fam).unwrap());
        assert_eq!(
            a.keys().collect::<Vec<_>>(),
            b.keys().collect::<Vec<_>>(),
            "{fam}"
        );
    }
    if first != second {
        panic!(
            "second collection differs: {:?}",
            first.keys().zip(second.keys()).find(|(a, b)| a != b)
        );
    }
}

#[test]
fn an_unreadable_file_costs_only_its_own_metrics() {
    let proc = Scratch::new("proc");
    std::fs::create_dir_all(proc.0.join("net")).unwrap();
    std::fs::create_dir_all(proc.0.join("1")).unwrap();
    for f in ["stat", "diskstats", "net/dev", "1/mounts"] {
        std::fs::copy(data_proc().join(f), proc.0.join(f)).unwrap();
    }
    // No meminfo at all; a loadavg that is not one.
    std::fs::write(proc.0.join("loadavg"), "garbage\n").unwrap();
    // A diskstats line cut short: the whole diskstats part is dropped, as node_exporter does.
    let mut disk = std::fs::read_to_string(proc.0.join("diskstats")).unwrap();
    disk.push_str("   8 32 sdc 1 2 3\n");
    std::fs::write(proc.0.join("diskstats"), disk).unwrap();

    let root = root_with_mount_points();
    let mut c = Collector::new(Options {
        proc_path: proc.0.clone(),
        root_path: root.0.clone(),
        ..Options::default()
    });
    let got = c.collect(NOW_MS);
    let ix = index(&got);
    assert_success(&ix, &["meminfo", "loadavg", "diskstats"]);
    assert!(!ix.keys().any(|k| k.starts_with("node_memory_")
        || k.starts_with("node_load")
        || k.starts_with("node_disk_")));
    assert_eq!(ix["node_cpu_seconds_total"].len(), 32);
    assert_eq!(
        value(&ix, "node_network_receive_bytes_total", &[("device", "lo")]),
        Some(8_820_711_543.0)
    );

    let failed: BTreeSet<&str> = got.errors.iter().map(|e| e.collector).collect();
    assert_eq!(
        failed,
        ["diskstats", "filesystem", "loadavg", "meminfo"].into()
    );
    let msg: Vec<String> = got.errors.iter().map(ToString::to_string).collect();
    assert!(
        msg.iter()
            .any(|m| m.starts_with("meminfo: reading ") && m.contains("meminfo")),
        "{msg:?}"
    );
    assert!(
        msg.iter()
            .any(|m| m.contains("diskstats") && m.contains("line 16: fewer than 11 counters")),
        "{msg:?}"
    );

    // With no /proc at all, every file-based part fails and time and uname still work.
    let mut c = Collector::new(Options {
        proc_path: proc.0.join("missing"),
        ..Options::default()
    });
    let ix = index(&c.collect(NOW_MS));
    assert_success(
        &ix,
        &[
            "cpu",
            "stat",
            "meminfo",
            "loadavg",
            "diskstats",
            "netdev",
            "filesystem",
        ],
    );
}
