//! Start-up with bad certificate input: exit code 2 and one line naming the file and fault.

use std::path::Path;

use perch_e2e::{Options, Server, TestPki};

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Starts with the certificate directory prepared by `setup`; expects exit 2 and a stderr
/// line naming `file` and containing `fault`.
fn expect_refusal(name: &str, setup: impl FnOnce(&Path), file: &str, fault: &str) {
    let data = tempfile::tempdir().unwrap();
    let certs = data.path().join("nginx");
    std::fs::create_dir_all(&certs).unwrap();
    setup(&certs);
    let out = Server::run_to_exit(data.path(), Options::default());
    assert_eq!(
        out.status.code(),
        Some(2),
        "{name}: {}\n{}",
        out.stderr,
        out.stdout
    );
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{name}: one line on stderr, got {lines:?}");
    let line = lines[0];
    assert!(
        line.contains(&certs.join(file).display().to_string()) || line.contains(file),
        "{name}: {line}"
    );
    assert!(
        line.contains(fault),
        "{name}: expected '{fault}' in: {line}"
    );
}

#[test]
fn each_bad_input_names_the_file_and_the_fault() {
    let good = TestPki::current(&["localhost"]);
    let other = TestPki::current(&["localhost"]);
    let expired = TestPki::new(&["localhost"], now() - 3 * 86_400, now() - 86_400);

    expect_refusal(
        "crt not PEM",
        |d| {
            good.install(d);
            std::fs::write(d.join("certificate.crt"), "hello").unwrap();
        },
        "certificate.crt",
        "not PEM",
    );
    expect_refusal(
        "crt holds a key",
        |d| {
            good.install(d);
            std::fs::write(d.join("certificate.crt"), &good.leaf_key_pem).unwrap();
        },
        "certificate.crt",
        "no certificate",
    );
    expect_refusal(
        "crt unreadable",
        |d| {
            good.install(d);
            std::fs::remove_file(d.join("certificate.crt")).unwrap();
            std::fs::create_dir(d.join("certificate.crt")).unwrap();
        },
        "certificate.crt",
        "cannot read",
    );
    expect_refusal(
        "key not PEM",
        |d| {
            good.install(d);
            std::fs::write(d.join("certificate.key"), "\x00\x01binary").unwrap();
        },
        "certificate.key",
        "not PEM",
    );
    expect_refusal(
        "key file holds a certificate",
        |d| {
            good.install(d);
            std::fs::write(d.join("certificate.key"), &good.leaf_pem).unwrap();
        },
        "certificate.key",
        "no private key",
    );
    expect_refusal(
        "key missing",
        |d| {
            good.install(d);
            std::fs::remove_file(d.join("certificate.key")).unwrap();
        },
        "certificate.key",
        "missing",
    );
    expect_refusal(
        "key does not match",
        |d| {
            good.install(d);
            std::fs::write(d.join("certificate.key"), &other.leaf_key_pem).unwrap();
        },
        "certificate.key",
        "does not match",
    );
    expect_refusal(
        "expired",
        |d| expired.install(d),
        "certificate.crt",
        "expired",
    );
}

#[test]
fn an_expired_certificate_starts_only_with_the_flag_and_a_loud_warning() {
    let data = tempfile::tempdir().unwrap();
    let expired = TestPki::new(&["localhost"], now() - 3 * 86_400, now() - 86_400);
    expired.install(&data.path().join("nginx"));
    // Not waiting for readiness: no client trusts an expired certificate.
    let server = Server::start_in(
        data,
        Options {
            not_ready: true,
            ..Options::default()
        }
        .arg("--allow-expired-cert"),
    );
    let warning = server.wait_for_log("HAS EXPIRED", std::time::Duration::from_secs(2));
    assert!(
        warning.is_some_and(|l| l.contains("\"level\":\"ERROR\"")),
        "{:?}",
        server.log()
    );
}

/// A read-only, empty certificate directory: a tmpfs mounted read-only when we are root
/// (root ignores permission bits), a 0555 directory otherwise.
struct ReadOnlyDir {
    path: std::path::PathBuf,
    mounted: bool,
}

impl ReadOnlyDir {
    fn new(parent: &Path) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let path = parent.join("ro-certs");
        std::fs::create_dir_all(&path).unwrap();
        let is_root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .map(|o| o.stdout == b"0\n")
            .unwrap_or(false);
        let mounted = is_root
            && std::process::Command::new("mount")
                .args(["-t", "tmpfs", "-o", "ro,size=64k", "tmpfs"])
                .arg(&path)
                .status()
                .is_ok_and(|s| s.success());
        if !mounted {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o555)).unwrap();
        }
        Self { path, mounted }
    }
}

impl Drop for ReadOnlyDir {
    fn drop(&mut self) {
        if self.mounted {
            let _ = std::process::Command::new("umount")
                .arg(&self.path)
                .status();
        }
    }
}

#[test]
fn a_read_only_incomplete_directory_lists_the_missing_files() {
    let data = tempfile::tempdir().unwrap();
    let ro = ReadOnlyDir::new(data.path());
    let probe = std::fs::write(ro.path.join("probe"), "x");
    assert!(
        probe.is_err(),
        "the test could not make a read-only directory"
    );
    let out = Server::run_to_exit(
        data.path(),
        Options {
            cert_dir: Some(ro.path.clone()),
            ..Options::default()
        },
    );
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    let line = out.stderr.trim();
    assert!(line.contains("read-only"), "{line}");
    for file in ["certificate.crt", "certificate.key", "ca-certs.pem"] {
        assert!(line.contains(file), "{file} not named in: {line}");
    }
}

#[test]
fn a_bad_tls_san_is_refused() {
    let data = tempfile::tempdir().unwrap();
    let out = Server::run_to_exit(
        data.path(),
        Options::default().arg("--tls-san").arg("not a name"),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        out.stderr.contains("--tls-san") && out.stderr.contains("not a name"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_second_server_on_the_same_data_refuses_to_start() {
    let first = Server::start(Options::default());
    let out = Server::run_to_exit(first.data.path(), Options::default());
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("in use by another perch-server"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1);
}
