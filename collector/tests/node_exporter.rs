//! Side by side with the real node_exporter: for every metric family this crate
//! produces, node_exporter (run with upstream's default exclusions) must have the same
//! series (same label names and values), and counters must agree within a tolerance.
//! Fails when no node_exporter binary is installed (Debian:
//! `apt-get install prometheus-node-exporter`, as .ci/run does; or set PERCH_NODE_EXPORTER).
//!
//! Also the `bench` test (ignored; run with `--release -- --ignored bench`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use perch_collector::{Collected, Collector, Options};
use perch_exposition::{Format, ScrapeOptions, TargetLabels, parse};
use perch_remote_write::TimeSeries;

type Labels = BTreeMap<String, String>;
type Families = BTreeMap<String, BTreeMap<Labels, f64>>;

/// node_exporter's upstream defaults (1.8+), passed explicitly because distribution
/// builds change them (Debian excludes /run, /mnt, /media and `lo`).
const UPSTREAM_FLAGS: [&str; 5] = [
    "--collector.filesystem.mount-points-exclude=^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)",
    "--collector.filesystem.fs-types-exclude=^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|erofs|sysfs|tracefs)$",
    r"--collector.diskstats.device-exclude=^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$",
    // Upstream excludes no network device; `^$` matches no interface name.
    "--collector.netdev.device-exclude=^$",
    "--collector.disable-defaults",
];

fn find_node_exporter() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PERCH_NODE_EXPORTER") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|d| [d.join("prometheus-node-exporter"), d.join("node_exporter")])
        .find(|p| p.is_file())
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http_get(port: u16, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut body = String::new();
    s.read_to_string(&mut body)?;
    let (head, body) = body
        .split_once("\r\n\r\n")
        .ok_or(std::io::ErrorKind::InvalidData)?;
    if !head.starts_with("HTTP/1.") || head.split_whitespace().nth(1) != Some("200") {
        return Err(std::io::Error::other(format!(
            "status: {}",
            head.lines().next().unwrap_or("")
        )));
    }
    Ok(body.to_owned())
}

/// name -> (labels without `__name__` -> value).
fn families(series: &[TimeSeries]) -> Families {
    let mut out = Families::new();
    for ts in series {
        let mut name = String::new();
        let mut labels = Labels::new();
        for l in &ts.labels {
            if l.name == "__name__" {
                name.clone_from(&l.value);
            } else {
                labels.insert(l.name.clone(), l.value.clone());
            }
        }
        out.entry(name)
            .or_default()
            .insert(labels, ts.samples[0].value);
    }
    out
}

/// node_exporter's answer (text format 0.0.4, as it serves without an Accept header),
/// read by perch-exposition with no target labels.
fn parse_exposition(text: &str) -> Families {
    let options = ScrapeOptions {
        target_labels: TargetLabels::default(),
        honor_labels: false,
        max_series: 100_000,
    };
    match parse(text.as_bytes(), Format::Text004, 0, &options) {
        Ok(e) => families(&e.series),
        Err(e) => panic!("node_exporter's answer does not parse: {e}"),
    }
}

/// How values of a family are compared: `None` = not compared (gauges that move on
/// their own), `Some((relative, absolute))` = |ours - theirs| within either bound.
fn tolerance(name: &str) -> Option<(f64, f64)> {
    match name {
        "node_boot_time_seconds"
        | "node_uname_info"
        | "node_scrape_collector_success"
        | "node_memory_MemTotal_bytes"
        | "node_memory_SwapTotal_bytes"
        | "node_memory_HugePages_Total"
        | "node_memory_Hugepagesize_bytes"
        | "node_memory_VmallocTotal_bytes"
        | "node_memory_CommitLimit_bytes"
        | "node_filesystem_size_bytes"
        | "node_filesystem_readonly"
        | "node_filesystem_device_error"
        | "node_filesystem_files" => Some((0.0, 0.0)),
        "node_time_seconds" => Some((0.0, 5.0)),
        "node_filesystem_free_bytes" | "node_filesystem_avail_bytes" => Some((0.05, 1e9)),
        "node_filesystem_files_free" => Some((0.05, 10_000.0)),
        n if n.ends_with("_total") && n.contains("bytes") => Some((0.10, 256e6)),
        n if n.ends_with("_seconds_total") => Some((0.10, 50.0)),
        n if n.ends_with("_total") => Some((0.10, 10_000.0)),
        _ => None,
    }
}

#[test]
fn same_series_as_node_exporter() {
    let bin = find_node_exporter().expect(
        "node_exporter is needed: apt-get install prometheus-node-exporter, or set PERCH_NODE_EXPORTER",
    );
    // node_exporter runs exactly the collectors we report on.
    let mut collector = Collector::new(Options::default());
    let parts: Vec<String> = families(&collector.collect(0).series)
        .remove("node_scrape_collector_success")
        .expect("node_scrape_collector_success")
        .into_keys()
        .map(|mut l| l.remove("collector").expect("collector label"))
        .collect();
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut cmd = Command::new(&bin);
    cmd.arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .args(UPSTREAM_FLAGS)
        .args(parts.iter().map(|c| format!("--collector.{c}")))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = KillOnDrop(cmd.spawn().expect("start node_exporter"));

    let deadline = Instant::now() + Duration::from_secs(15);
    let text = loop {
        match http_get(port, "/metrics") {
            Ok(t) => break t,
            Err(e) => {
                if let Ok(Some(status)) = child.0.try_wait() {
                    let mut err = String::new();
                    if let Some(mut s) = child.0.stderr.take() {
                        let _ = s.read_to_string(&mut err);
                    }
                    panic!("node_exporter exited ({status}): {err}");
                }
                assert!(
                    Instant::now() < deadline,
                    "node_exporter did not answer on port {port}: {e}"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    };
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let collected = collector.collect(now_ms);
    drop(child);

    let ours = families(&collected.series);
    let theirs = without_deliberate_differences(parse_exposition(&text), &ours);
    for e in &collected.errors {
        eprintln!("note: our collection reported: {e}");
    }

    let mut problems = Vec::new();
    let mut compared_values = 0;
    for (name, our_series) in &ours {
        if name == "node_scrape_collector_duration_seconds" {
            continue;
        }
        let Some(their_series) = theirs.get(name) else {
            problems.push(format!("{name}: node_exporter has no such family"));
            continue;
        };
        let names = |f: &BTreeMap<Labels, f64>| -> BTreeSet<BTreeSet<String>> {
            f.keys().map(|l| l.keys().cloned().collect()).collect()
        };
        if names(our_series) != names(their_series) {
            problems.push(format!(
                "{name}: label names differ: ours {:?}, node_exporter {:?}",
                names(our_series),
                names(their_series)
            ));
            continue;
        }
        let ours_only: Vec<&Labels> = our_series
            .keys()
            .filter(|l| !their_series.contains_key(*l))
            .collect();
        let theirs_only: Vec<&Labels> = their_series
            .keys()
            .filter(|l| !our_series.contains_key(*l))
            .collect();
        if !ours_only.is_empty() || !theirs_only.is_empty() {
            problems.push(format!(
                "{name}: series only in ours {ours_only:?}; only in node_exporter {theirs_only:?}"
            ));
        }
        let Some((rel, abs)) = tolerance(name) else {
            continue;
        };
        for (labels, o) in our_series {
            let Some(t) = their_series.get(labels) else {
                continue;
            };
            compared_values += 1;
            let diff = (o - t).abs();
            if diff > abs && diff > rel * t.abs().max(o.abs()) {
                problems.push(format!("{name}{labels:?}: ours {o}, node_exporter {t}"));
            }
        }
    }
    // Families in our scope that node_exporter has and we do not.
    let ours_scope = [
        "node_memory_",
        "node_cpu_seconds_total",
        "node_cpu_guest_seconds_total",
        "node_filesystem_",
    ];
    for name in theirs.keys() {
        if ours_scope.iter().any(|p| name.starts_with(p)) && !ours.contains_key(name) {
            problems.push(format!("{name}: only node_exporter has this family"));
        }
    }
    let not_ours: Vec<&String> = theirs
        .keys()
        .filter(|n| {
            (n.starts_with("node_disk_") || n.starts_with("node_network_"))
                && !ours.contains_key(*n)
        })
        .collect();
    eprintln!(
        "node_exporter families we do not produce (udev, sysfs or netlink only): {not_ours:?}"
    );
    eprintln!(
        "compared {} families, {} series, {compared_values} values",
        ours.len(),
        ours.values().map(BTreeMap::len).sum::<usize>()
    );
    for p in &problems {
        eprintln!("DIFF {p}");
    }
    assert!(
        problems.is_empty(),
        "{} differences from node_exporter (see DIFF lines)",
        problems.len()
    );
}

/// node_exporter's file system series less what this crate leaves out on purpose: a file
/// bind-mounted over another (Docker's /etc/hosts, /etc/hostname, /etc/resolv.conf), and a
/// block device at a second place (a container's volumes on the host's one disk), which we
/// show once, where node_exporter repeats it.
fn without_deliberate_differences(mut theirs: Families, ours: &Families) -> Families {
    let our_devices: BTreeSet<&String> = ours
        .get("node_filesystem_size_bytes")
        .into_iter()
        .flat_map(|f| f.keys())
        .chain(
            ours.get("node_filesystem_device_error")
                .into_iter()
                .flat_map(|f| f.keys()),
        )
        .filter_map(|l| l.get("device"))
        .collect();
    for (name, series) in theirs.iter_mut() {
        if !name.starts_with("node_filesystem_") {
            continue;
        }
        let our_family = ours.get(name);
        series.retain(|labels, _| {
            if our_family.is_some_and(|f| f.contains_key(labels)) {
                return true;
            }
            let mountpoint = labels.get("mountpoint").map_or("", String::as_str);
            let device = labels.get("device").map_or("", String::as_str);
            let bind_mounted_file = std::fs::metadata(mountpoint).is_ok_and(|m| m.is_file());
            let shown_elsewhere =
                device.starts_with("/dev/") && our_devices.contains(&device.to_owned());
            !(bind_mounted_file || shown_elsewhere)
        });
    }
    theirs
}

/// Time and series count of one collection of this machine; 1000 rounds.
#[test]
#[ignore = "benchmark: run with --release -- --ignored bench"]
fn bench() {
    let rounds: u32 = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let mut collector = Collector::new(Options::default());
    let mut out = Collected::default();
    collector.collect_into(0, &mut out); // warm the buffers
    let start = Instant::now();
    for i in 0..rounds {
        collector.collect_into(i64::from(i), &mut out);
    }
    let per_call = start.elapsed() / rounds.max(1);
    eprintln!(
        "collect_into: {rounds} rounds, {:?} per call, {} series, {} errors",
        per_call,
        out.series.len(),
        out.errors.len()
    );
    assert!(!out.series.is_empty());
}
