//! The appliance image (docker/build.sh, FROM scratch) in a real Docker engine: generated
//! certificates verified with the CA from the volume, a first admin from the logged setup
//! code, an agent in a second container on a private network, certificates copied in while
//! running, `docker stop`, a new container on the same volume (read-only, no capabilities),
//! mounted and incompletely mounted certificate directories. Skipped, with a note, where no
//! Docker engine answers.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use perch_e2e::{Body, Http, STRONG, TestPki, client_config, connect, peer_leaf};
use rustls_pki_types::pem::PemObject;

const IMAGE: &str = "perch/server:latest";

fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("run docker")
}

/// stdout of a docker command that must succeed.
fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Builds the image once per test run with docker/build.sh; false (and a note) when no
/// Docker engine answers.
fn image() -> bool {
    static BUILT: OnceLock<bool> = OnceLock::new();
    *BUILT.get_or_init(|| {
        if !Command::new("docker")
            .args(["info", "--format", "{{.ServerVersion}}"])
            .output()
            .is_ok_and(|o| o.status.success())
        {
            eprintln!("image tests skipped: no Docker engine answers");
            return false;
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let status = Command::new("bash")
            .arg(root.join("docker/build.sh"))
            .current_dir(root)
            .status()
            .expect("run docker/build.sh");
        assert!(status.success(), "docker/build.sh failed");
        true
    })
}

/// A name unique to this test run.
fn unique(what: &str) -> String {
    format!("perch-test-{what}-{}", std::process::id())
}

/// Removed (forcibly) when dropped.
struct Resource {
    kind: &'static str,
    name: String,
}

impl Resource {
    fn container(name: String) -> Self {
        let _ = docker(&["rm", "-f", "-v", &name]);
        Self {
            kind: "container",
            name,
        }
    }
    fn volume(name: String) -> Self {
        let _ = docker(&["volume", "rm", "-f", &name]);
        Self {
            kind: "volume",
            name,
        }
    }
    fn network(name: String) -> Self {
        let _ = docker(&["network", "rm", &name]);
        docker_ok(&["network", "create", &name]);
        Self {
            kind: "network",
            name,
        }
    }
}

impl Drop for Resource {
    fn drop(&mut self) {
        let _ = match self.kind {
            "container" => docker(&["rm", "-f", "-v", &self.name]),
            "volume" => docker(&["volume", "rm", "-f", &self.name]),
            _ => docker(&["network", "rm", &self.name]),
        };
    }
}

fn published_443(container: &str) -> SocketAddr {
    let mapping = docker_ok(&["port", container, "443/tcp"]);
    mapping
        .lines()
        .find_map(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no published 443: {mapping}"))
}

fn state(container: &str, field: &str) -> String {
    docker_ok(&["inspect", "-f", field, container])
}

/// Waits (bounded) until Docker reports the container healthy; returns how long it took.
fn wait_healthy(container: &str, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let health = state(container, "{{.State.Health.Status}}");
        if health == "healthy" {
            return start.elapsed();
        }
        if start.elapsed() > within {
            panic!(
                "{container} not healthy ({health}) in {within:?}:\n{}",
                docker_ok(&["logs", container])
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Copies a file out of a container.
fn copy_out(container: &str, path: &str, to: &Path) {
    docker_ok(&["cp", &format!("{container}:{path}"), to.to_str().unwrap()]);
}

/// The leaf certificate served at `addr`, verified with `ca`.
async fn served_leaf(addr: SocketAddr, ca: &Path) -> Vec<u8> {
    let tls = connect(addr, "localhost", client_config(ca, &[b"http/1.1"]))
        .await
        .expect("TLS with the CA");
    peer_leaf(&tls).to_vec()
}

fn logs(container: &str) -> String {
    let out = docker(&["logs", container]);
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn setup_code(container: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = logs(container);
        if let Some(code) = text
            .lines()
            .map(str::trim)
            .find(|l| l.len() == 31 && l.split('-').count() == 6)
        {
            return code.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no setup code in the log:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A directory uid 10001 (the image's user) can read.
fn readable_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_appliance_image_end_to_end() {
    if !image() {
        return;
    }
    let work = readable_dir();
    let net = Resource::network(unique("net"));
    let volume = Resource::volume(unique("data"));
    let agent_volume = Resource::volume(unique("agent"));
    let name = unique("perch");
    let server = Resource::container(name.clone());
    // Only 443 is published (on loopback, an ephemeral port).
    docker_ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        &net.name,
        "-p",
        "127.0.0.1::443",
        "-v",
        &format!("{}:/srv", volume.name),
        "-e",
        &format!("PERCH_TLS_SAN={name}"),
        // The second factor is tested against the binary (tests/second_factor.rs); here
        // the admin signs in with a password alone.
        "-e",
        "PERCH_REQUIRE_2FA=off",
        IMAGE,
    ]);
    let healthy_after = wait_healthy(&name, Duration::from_secs(60));
    eprintln!("healthy {healthy_after:?} after docker run");
    let addr = published_443(&name);
    // Healthy means the engine, vmalert and Alertmanager all answer; all of it in < 100 MB.
    let size: u64 = String::from_utf8_lossy(
        &docker(&["image", "inspect", IMAGE, "--format", "{{.Size}}"]).stdout,
    )
    .trim()
    .parse()
    .expect("image size");
    assert!(size < 100_000_000, "the image is {size} bytes, over 100 MB");
    let children = String::from_utf8_lossy(&docker(&["top", &name]).stdout).into_owned();
    for child in ["victoria-metrics", "vmalert", "prometheus-alertmanager"] {
        assert!(
            children.contains(child),
            "{child} does not run in the container:\n{children}"
        );
    }

    // The generated certificate, verified with the CA from the volume.
    let ca = work.path().join("ca-certs.pem");
    copy_out(&name, "/srv/nginx/ca-certs.pem", &ca);
    let first_leaf = served_leaf(addr, &ca).await;
    assert_eq!(state(&name, "{{.Config.User}}"), "10001:0");
    let log = logs(&name);
    assert!(
        log.contains("\"level\":\"INFO\""),
        "JSON logs on stdout:\n{log}"
    );

    // The first admin, with the setup code from `docker logs`.
    let code = setup_code(&name);
    let mut admin = Http::to(addr, &ca);
    let r = admin
        .send(
            "POST",
            "/v1/setup",
            Body::Json(serde_json::json!({"code": code, "name": "admin", "password": STRONG})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    // The access log has the setup request (written within 100 ms) and none of Docker's
    // health probes, which ran at least once before the container was healthy.
    let deadline = Instant::now() + Duration::from_secs(5);
    let log = loop {
        let log = logs(&name);
        if log.contains("\"path\":\"/v1/setup\"") || Instant::now() > deadline {
            break log;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        log.contains("\"path\":\"/v1/setup\""),
        "an access log:\n{log}"
    );
    assert!(
        !log.contains("\"path\":\"/v1/readyz\""),
        "Docker's health probes are not in the access log:\n{log}"
    );
    let token = admin.enroll_token().await["token"]
        .as_str()
        .unwrap()
        .to_owned();

    // An agent in a second container on the private network, by the appliance's name.
    // perch-admin from the same image, as root (as an agent runs), its config in a volume.
    let agent_cfg = format!("{}:/etc/perch", agent_volume.name);
    let perch_admin = |run: &[&str], args: &[&str]| -> Vec<String> {
        let head = [
            "run",
            "--network",
            &net.name,
            "--user",
            "0",
            "-v",
            &agent_cfg,
        ];
        let image = ["--entrypoint", "/usr/local/bin/perch-admin", IMAGE];
        [&head[..], run, &image[..], args]
            .concat()
            .into_iter()
            .map(str::to_owned)
            .collect()
    };
    let args = perch_admin(
        &["--rm"],
        &[
            "config",
            "--server",
            &name,
            "--server-insecure-ssl",
            "--enroll-token",
            &token,
            "--node-name",
            "container-node",
            "--interval",
            "2s",
        ],
    );
    let out = docker(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        out.status.success(),
        "perch-admin config in a container: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let agent_name = unique("agent");
    let _agent = Resource::container(agent_name.clone());
    let args = perch_admin(&["-d", "--name", &agent_name], &["agent"]);
    docker_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    admin
        .wait_query(
            r#"node_load1{node_name="container-node"}"#,
            Duration::from_secs(30),
            |r| !r.is_empty(),
        )
        .await;
    let _ = docker(&["rm", "-f", "-v", &agent_name]);

    // New certificate files copied into the running container: served within 5 s.
    let pki = TestPki::current(&["localhost", &name]);
    let certs = readable_dir();
    pki.install(certs.path());
    for file in ["certificate.crt", "certificate.key", "ca-certs.pem"] {
        docker_ok(&[
            "cp",
            certs.path().join(file).to_str().unwrap(),
            &format!("{name}:/srv/nginx/{file}"),
        ]);
    }
    let copied = Instant::now();
    let new_ca = certs.path().join("ca-certs.pem");
    loop {
        if let Ok(tls) = connect(addr, "localhost", client_config(&new_ca, &[b"http/1.1"])).await
            && peer_leaf(&tls).to_vec() != first_leaf
        {
            break;
        }
        assert!(
            copied.elapsed() < Duration::from_secs(5),
            "the copied certificate is not served within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // docker stop: exit 0 within 10 s.
    let stopping = Instant::now();
    docker_ok(&["stop", "-t", "10", &name]);
    let took = stopping.elapsed();
    assert!(took < Duration::from_secs(10), "docker stop took {took:?}");
    assert_eq!(state(&name, "{{.State.ExitCode}}"), "0", "{}", logs(&name));
    drop(server);

    // A new container on the same volume, read-only and without capabilities, keeps users,
    // nodes, metrics and certificates.
    let name2 = unique("perch2");
    let _server2 = Resource::container(name2.clone());
    docker_ok(&[
        "run",
        "-d",
        "--name",
        &name2,
        "--read-only",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "-p",
        "127.0.0.1::443",
        "-v",
        &format!("{}:/srv", volume.name),
        "-e",
        "PERCH_REQUIRE_2FA=off",
        IMAGE,
    ]);
    wait_healthy(&name2, Duration::from_secs(60));
    let addr2 = published_443(&name2);
    let mut again = Http::to(addr2, &new_ca);
    let r = again
        .send(
            "POST",
            "/v1/login",
            Body::Json(serde_json::json!({"name": "admin", "password": STRONG})),
        )
        .await;
    assert_eq!(r.status, 200, "the admin survives: {}", r.text());
    let nodes = again.send("GET", "/v1/nodes", Body::None).await.json();
    assert_eq!(nodes["nodes"][0]["name"], "container-node", "{nodes}");
    let r = again
        .wait_query(
            r#"max_over_time(node_load1{node_name="container-node"}[10m])"#,
            Duration::from_secs(30),
            |r| !r.is_empty(),
        )
        .await;
    assert!(r[0]["value"][1].is_string(), "{r:?}");
    assert!(
        !logs(&name2).contains("one-time code"),
        "no setup once an admin exists"
    );

    // A backup while it runs (read-only, no capabilities), streamed out with docker exec,
    // restored into a new volume by the image, and a third container on it: the admin
    // signs in, the metrics are there, and the agent's node token pushes to it.
    let keys = readable_dir();
    let key = keys.path().join("key.txt");
    let made = Command::new("age-keygen")
        .arg("-o")
        .arg(&key)
        .output()
        .unwrap();
    assert!(made.status.success());
    // The image's user reads the key from the bind mount (a test key, made for this).
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let recipient = std::fs::read_to_string(&key)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("# public key: ").map(str::to_owned))
        .unwrap();
    let archive = keys.path().join("perch.age");
    let out = Command::new("docker")
        .args([
            "exec",
            &name2,
            "perch-server",
            "backup",
            "--to",
            "-",
            "--recipient",
            &recipient,
        ])
        .stdout(std::fs::File::create(&archive).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let backed_up_at = time::OffsetDateTime::now_utc().unix_timestamp();
    std::fs::set_permissions(&archive, std::fs::Permissions::from_mode(0o644)).unwrap();
    let restored = Resource::volume(unique("restored"));
    let mount = format!("{}:/backup:ro", keys.path().display());
    let out = docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/srv", restored.name),
        "-v",
        &mount,
        IMAGE,
        "restore",
        "--from",
        "/backup/perch.age",
        "--identity",
        "/backup/key.txt",
        "--data-dir",
        "/srv",
    ]);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "restore in the image: {said}");
    assert!(said.contains("1 node"), "{said}");
    docker_ok(&["stop", "-t", "10", &name2]);
    let name3 = unique("perch3");
    let _server3 = Resource::container(name3.clone());
    docker_ok(&[
        "run",
        "-d",
        "--name",
        &name3,
        "--network",
        &net.name,
        // The agent's configuration names the first container.
        "--network-alias",
        &name,
        "-p",
        "127.0.0.1::443",
        "-v",
        &format!("{}:/srv", restored.name),
        "-e",
        "PERCH_REQUIRE_2FA=off",
        IMAGE,
    ]);
    wait_healthy(&name3, Duration::from_secs(60));
    let mut third = Http::to(published_443(&name3), &new_ca);
    let r = third
        .send(
            "POST",
            "/v1/login",
            Body::Json(serde_json::json!({"name": "admin", "password": STRONG})),
        )
        .await;
    assert_eq!(r.status, 200, "the admin is restored: {}", r.text());
    third
        .wait_query(
            &format!(r#"max_over_time(timestamp(node_load1{{node_name="container-node"}})[30m:15s]) < {backed_up_at}"#),
            Duration::from_secs(30),
            |r| !r.is_empty(),
        )
        .await;
    // The agent's node token (from its configuration in the volume; the agent itself pins
    // the key it first saw, replaced above) pushes to the restored server.
    let holder = unique("agent-cfg");
    let _holder = Resource::container(holder.clone());
    docker_ok(&["create", "--name", &holder, "-v", &agent_cfg, IMAGE]);
    let cfg_file = keys.path().join("agent.toml");
    copy_out(&holder, "/etc/perch/agent.toml", &cfg_file);
    let cfg: toml::Value = toml::from_str(&std::fs::read_to_string(&cfg_file).unwrap()).unwrap();
    let mut node = Http::to(published_443(&name3), &new_ca);
    node.bearer = Some(cfg["token"].as_str().unwrap().to_owned());
    let body = perch_e2e::remote_write_body(
        "node_load1",
        &[("job", "node")],
        0.5,
        (backed_up_at + 5) * 1000,
    );
    let r = node
        .send(
            "POST",
            "/v1/metrics/write",
            Body::Raw("application/x-protobuf", body),
        )
        .await;
    assert_eq!(r.status, 204, "the node token pushes: {}", r.text());
    third
        .wait_query(
            &format!(r#"timestamp(node_load1{{node_name="container-node"}}) > {backed_up_at}"#),
            Duration::from_secs(30),
            |r| !r.is_empty(),
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mounted_certificates_and_an_incomplete_mount() {
    if !image() {
        return;
    }
    // A complete directory mounted read-only: served as is.
    let certs = readable_dir();
    let pki = TestPki::current(&["localhost"]);
    pki.install(certs.path());
    let name = unique("mounted");
    let _c = Resource::container(name.clone());
    let mount = format!("{}:/srv/nginx:ro", certs.path().display());
    docker_ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "-p",
        "127.0.0.1::443",
        "--tmpfs",
        "/srv:uid=10001,gid=10001",
        "-v",
        &mount,
        IMAGE,
    ]);
    wait_healthy(&name, Duration::from_secs(60));
    let leaf = served_leaf(published_443(&name), &certs.path().join("ca-certs.pem")).await;
    let expected = rustls_pki_types::CertificateDer::from_pem_slice(pki.leaf_pem.as_bytes())
        .unwrap()
        .to_vec();
    assert_eq!(leaf, expected);

    // Incomplete and read-only: the start fails, naming the missing files.
    let partial: PathBuf = readable_dir().keep();
    std::fs::write(partial.join("dhparam.pem"), "x").unwrap();
    let name = unique("incomplete");
    let _c = Resource::container(name.clone());
    let mount = format!("{}:/srv/nginx:ro", partial.display());
    let out = docker(&[
        "run",
        "--name",
        &name,
        "--tmpfs",
        "/srv:uid=10001,gid=10001",
        "-v",
        &mount,
        IMAGE,
    ]);
    let _ = std::fs::remove_dir_all(&partial);
    assert_eq!(out.status.code(), Some(2), "{}", logs(&name));
    let text = logs(&name);
    assert!(
        text.contains("read-only and incomplete")
            && text.contains("certificate.crt")
            && text.contains("certificate.key"),
        "{text}"
    );
}
