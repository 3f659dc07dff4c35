//! Backups with the real binaries: `perch-server backup` against a running server while a
//! node pushes, `perch-server restore` into a new directory and a new server on it; archives
//! refused whole when damaged, cut or opened with the wrong key; the schedule keeping N;
//! the API by role; Debian's `age` reading what Perch wrote.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use perch_e2e::{Body, Http, OWN, Options, STRONG, Server, binary, remote_write_body};

/// An age identity made by Debian's age-keygen, and its recipient.
fn keypair(dir: &Path) -> (PathBuf, String) {
    let key = dir.join("key.txt");
    let out = Command::new("age-keygen")
        .arg("-o")
        .arg(&key)
        .output()
        .expect("age-keygen (Debian's age package)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&key).unwrap();
    let recipient = text
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .expect("public key line")
        .to_owned();
    (key, recipient)
}

fn perch_server(args: &[&str]) -> Output {
    Command::new(binary("perch-server"))
        .args(args)
        .env_remove("PERCH_DATA_DIR")
        .output()
        .expect("run perch-server")
}

/// `perch-server restore --from ARCHIVE --identity KEY --data-dir INTO`, and `extra`.
fn restore_with_key(archive: &Path, key: &Path, into: &Path, extra: &[&str]) -> Output {
    let head = [
        "restore",
        "--from",
        path(archive),
        "--identity",
        path(key),
        "--data-dir",
        path(into),
    ];
    perch_server(&[&head[..], extra].concat())
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Enrolls a node as the admin; its token.
async fn node_token(server: &Server, name: &str) -> String {
    let mut admin = server.login("admin", STRONG).await;
    let r = admin
        .send(
            "POST",
            "/v1/nodes",
            Body::Json(serde_json::json!({"name": name})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["token"].as_str().unwrap().to_owned()
}

async fn push(http: &mut Http, name: &str, value: f64, at_ms: i64) -> u16 {
    let body = remote_write_body(name, &[("job", "backup-e2e")], value, at_ms);
    http.send(
        "POST",
        "/v1/metrics/write",
        Body::Raw("application/x-protobuf", body),
    )
    .await
    .status
}

fn now_ms() -> i64 {
    perch_time::unix_now_ms()
}

#[tokio::test]
async fn a_backup_taken_while_a_node_pushes_restores_into_a_server_that_works() {
    let work = tempfile::tempdir().unwrap();
    let (key, recipient) = keypair(work.path());
    let server = Server::start_with_admin(Options::default());
    let _viewer = server.user("viewer1", "viewer").await;
    let api_token = server.token("viewer").await;
    let token = node_token(&server, "db-1").await;

    let mut node = Http::new(&server);
    node.bearer = Some(token.clone());
    // Before the backup: a series it must hold.
    let before_at = now_ms() - 60_000;
    assert_eq!(push(&mut node, "bk_before", 7.0, before_at).await, 204);
    // A Query Analytics report: its text is in the backup too.
    let end = before_at / 1000;
    let r = node
        .send(
            "POST",
            "/v1/qan/report",
            Body::Json(serde_json::json!({
                "service": "db-1-mysql", "service_type": "mysql", "source": "perfschema",
                "start": end - 10, "end": end,
                "queries": [{"id": "b4c1", "schema": "shop", "count": 3, "time_s": 0.5}],
                "texts": [{"id": "b4c1", "text": "SELECT * FROM `orders` WHERE `id` = ?"}],
            })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());

    // Alerting: a contact point (with its secret) and a rule file of the operator's own.
    let mut admin = server.login("admin", STRONG).await;
    let r = admin
        .send(
            "POST",
            "/v1/receivers",
            Body::Json(serde_json::json!({"name": "bk-hook", "kind": "webhook",
                "fields": {"url": "https://hooks.example.test/x", "token": "bk-secret-9"}})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let team_rules =
        "groups:\n- name: team\n  rules:\n  - alert: TeamAlways\n    expr: vector(1)\n";
    std::fs::write(
        server.data.path().join("alerts").join("team.yml"),
        team_rules,
    )
    .unwrap();

    // A node pushing all through the backup.
    let stop = Arc::new(AtomicBool::new(false));
    let pushed = Arc::new(AtomicU64::new(0));
    let pusher = {
        let (stop, pushed) = (stop.clone(), pushed.clone());
        let mut node = Http::new(&server);
        node.bearer = Some(token.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) && i < 2000 {
                let status = push(&mut node, "bk_load", i as f64, now_ms() - 30_000).await;
                assert_eq!(status, 204, "pushes go on during the backup");
                pushed.fetch_add(1, Ordering::Relaxed);
                i += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    while pushed.load(Ordering::Relaxed) < 5 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let archive = work.path().join("perch.age");
    let data = server.data.path().to_owned();
    let out = tokio::task::spawn_blocking({
        let (archive, data, recipient) = (archive.clone(), data.clone(), recipient.clone());
        move || {
            perch_server(&[
                "backup",
                "--data-dir",
                path(&data),
                "--to",
                path(&archive),
                "--recipient",
                &recipient,
            ])
        }
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("metrics included"),
        "{}",
        stderr(&out)
    );
    let during = pushed.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    pusher.await.unwrap();
    assert!(during >= 5);
    assert_eq!(mode(&archive), 0o600);
    assert!(!work.path().join("perch.age.partial").exists());
    // After the backup: a series it must not hold.
    assert_eq!(
        push(&mut node, "bk_after", 1.0, now_ms() - 20_000).await,
        204
    );

    // Debian's age opens it, and inside is a tar with the manifest last.
    let listing = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "age -d -i '{}' '{}' | tar -t",
            path(&key),
            path(&archive)
        ))
        .output()
        .unwrap();
    let names = String::from_utf8_lossy(&listing.stdout).into_owned();
    assert!(listing.status.success(), "{}", stderr(&listing));
    for part in [
        "perch/store.records",
        "perch/ca/ca.key",
        "perch/second-factor.key",
        "nginx/certificate.key",
        "victoriametrics/",
    ] {
        assert!(names.contains(part), "{part} in:\n{names}");
    }
    assert_eq!(names.lines().last(), Some("MANIFEST.json"));
    assert!(!names.contains("perch/db/"), "the store goes as records");

    // Refused whole: one flipped byte, a cut archive, another key; nothing is written.
    let bytes = std::fs::read(&archive).unwrap();
    let mut flipped = bytes.clone();
    flipped[bytes.len() / 2] ^= 0x20;
    let bad = work.path().join("flipped.age");
    std::fs::write(&bad, &flipped).unwrap();
    let cut = work.path().join("cut.age");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let other = tempfile::tempdir().unwrap();
    let (other_key, _) = keypair(other.path());
    for (file, identity, says) in [
        (&bad, &key, "damaged"),
        (&cut, &key, "cut short"),
        (&archive, &other_key, "the key does not open this backup"),
    ] {
        let target = work.path().join("refused");
        let out = restore_with_key(file, identity, &target, &[]);
        assert!(!out.status.success());
        assert!(stderr(&out).contains(says), "{says}: {}", stderr(&out));
        assert!(
            !target.exists(),
            "nothing left behind by {}",
            file.display()
        );
    }
    // Not into the directory of a running server, even with --force.
    let out = restore_with_key(&archive, &key, &data, &["--force"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("in use"), "{}", stderr(&out));

    // Restored into a new directory, a new server works as the old one did.
    let restored = tempfile::tempdir().unwrap();
    let out = restore_with_key(&archive, &key, restored.path(), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("2 users"), "{}", stderr(&out));
    assert_eq!(mode(&restored.path().join("perch/db")), 0o700);
    // Not over it again without --force.
    let out = restore_with_key(&archive, &key, restored.path(), &[]);
    assert!(stderr(&out).contains("not empty"), "{}", stderr(&out));

    let second = Server::start_in(restored, Options::default());
    assert!(!second.log().join("\n").contains("not set up yet"));
    second.login("viewer1", OWN).await;
    let mut admin = second.login("admin", STRONG).await;
    let receivers = admin.send("GET", "/v1/receivers", Body::None).await.json();
    assert_eq!(receivers["receivers"][0]["name"], "bk-hook", "{receivers}");
    assert_eq!(
        receivers["receivers"][0]["secrets_set"],
        serde_json::json!(["token"])
    );
    assert_eq!(
        std::fs::read_to_string(second.data.path().join("alerts").join("team.yml")).unwrap(),
        team_rules
    );
    let mut by_token = Http::new(&second);
    by_token.bearer = Some(api_token);
    assert_eq!(
        by_token.send("GET", "/v1/nodes", Body::None).await.status,
        200,
        "the API token still works"
    );
    let mut node = Http::new(&second);
    node.bearer = Some(token);
    assert_eq!(
        push(&mut node, "bk_restored", 3.0, now_ms() - 10_000).await,
        204,
        "the node token still pushes"
    );
    admin
        .wait_query(
            "bk_before{node_name=\"db-1\"}",
            Duration::from_secs(20),
            |r| r.len() == 1 && r[0]["value"][1] == "7",
        )
        .await;
    let load = admin
        .wait_query(
            "count_over_time(bk_load[10m])",
            Duration::from_secs(20),
            |r| r.len() == 1,
        )
        .await;
    let kept: u64 = load[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(
        (5..=during).contains(&kept),
        "samples up to the backup: {kept} of {during} pushed by its end"
    );
    admin
        .wait_query("bk_restored", Duration::from_secs(20), |r| r.len() == 1)
        .await;
    let one = admin
        .send("GET", "/v1/qan/queries/b4c1?range=1h", Body::None)
        .await
        .json();
    assert_eq!(
        one["text"], "SELECT * FROM `orders` WHERE `id` = ?",
        "Query Analytics' text came back: {one}"
    );
    assert_eq!(one["count"], 3.0, "{one}");
    let after = admin
        .wait_query("bk_after", Duration::from_secs(5), |_| true)
        .await;
    assert!(after.is_empty(), "nothing from after the backup: {after:?}");
}

#[tokio::test]
async fn scheduled_backups_keep_the_newest_and_only_admins_reach_them() {
    let work = tempfile::tempdir().unwrap();
    let (key, recipient) = keypair(work.path());
    let dir = work.path().join("backups");
    let server = Server::start_with_admin(
        Options::default()
            .arg("--backup-dir")
            .arg(path(&dir))
            .arg("--backup-schedule")
            .arg("every 1s")
            .arg("--backup-keep")
            .arg("2")
            .arg("--backup-recipient")
            .arg(&recipient),
    );
    let mut admin = server.login("admin", STRONG).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let listing = loop {
        let l = admin.send("GET", "/v1/backups", Body::None).await.json();
        let ok = l["runs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["error"].is_null())
            .count();
        if ok >= 3 && l["running"] == false {
            break l;
        }
        assert!(Instant::now() < deadline, "three scheduled backups: {l}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let files = listing["files"].as_array().unwrap();
    assert_eq!(files.len(), 2, "--backup-keep 2: {listing}");
    assert_eq!(listing["schedule"], "every 1s");
    assert_eq!(mode(&dir), 0o700);
    for f in files {
        assert_eq!(mode(&dir.join(f["name"].as_str().unwrap())), 0o600);
    }
    let metrics = admin.send("GET", "/metrics", Body::None).await.text();
    let last: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("perch_backup_last_success_timestamp_seconds "))
        .expect("the metric")
        .parse()
        .unwrap();
    assert!(last > 1.7e9, "{last}");

    // Downloaded by an admin: the archive itself, which restore can check.
    let name = files[0]["name"].as_str().unwrap();
    let r = admin
        .send("GET", &format!("/v1/backups/{name}"), Body::None)
        .await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-disposition")
            .is_some_and(|d| d.contains(name))
    );
    let downloaded = work.path().join("downloaded.age");
    std::fs::write(&downloaded, &r.body).unwrap();
    let target = work.path().join("check");
    let out = restore_with_key(&downloaded, &key, &target, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Names outside the folder's archives are not served.
    for bad in [
        "perch-backups.json",
        "..%2Fadmin-password",
        "perch-backup-x.age",
    ] {
        let r = admin
            .send("GET", &format!("/v1/backups/{bad}"), Body::None)
            .await;
        assert_eq!(r.status, 404, "{bad}");
    }
    // Editors and viewers do not see backups; the API answers the admin's POST when done.
    for role in ["viewer", "editor"] {
        let mut other = server.with_token(role).await;
        for (method, p) in [
            ("GET", "/v1/backups".to_owned()),
            ("POST", "/v1/backups".to_owned()),
            ("GET", format!("/v1/backups/{name}")),
        ] {
            let r = other
                .send(method, &p, Body::Json(serde_json::json!({})))
                .await;
            assert_eq!(r.status, 403, "{role} {method} {p}");
        }
    }
    let audit = admin
        .send("GET", "/v1/audit?kind=backup_downloaded", Body::None)
        .await
        .json();
    assert_eq!(audit["events"][0]["detail"], name, "{audit}");
}

#[tokio::test]
async fn a_passphrase_backup_to_standard_output_restores_with_that_passphrase() {
    let work = tempfile::tempdir().unwrap();
    let pass = work.path().join("pass");
    std::fs::write(&pass, "correct horse battery staple\n").unwrap();
    let server = Server::start_with_admin(Options::default());
    let archive = work.path().join("stdout.age");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{}' backup --data-dir '{}' --to - --passphrase-file '{}' > '{}'",
            binary("perch-server").display(),
            server.data.path().display(),
            pass.display(),
            archive.display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let restore = |passphrase: &str, into: &Path| {
        std::fs::write(&pass, passphrase).unwrap();
        perch_server(&[
            "restore",
            "--from",
            path(&archive),
            "--passphrase-file",
            path(&pass),
            "--data-dir",
            path(into),
        ])
    };
    // An existing file is never overwritten.
    let out = perch_server(&[
        "backup",
        "--data-dir",
        path(server.data.path()),
        "--to",
        path(&archive),
        "--passphrase-file",
        path(&pass),
    ]);
    assert!(stderr(&out).contains("exists"), "{}", stderr(&out));
    // Another local user cannot reach the control socket (0600 in a 0700 folder, and the
    // peer's uid is checked).
    if Command::new("id").arg("-u").output().unwrap().stdout == b"0\n" {
        let (_, recipient) = keypair(work.path());
        let data = server.data.path();
        // Even with the folders opened up, the socket itself is the owner's.
        for dir in [data.to_owned(), data.join("perch")] {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(binary("perch-server"))
            .args(["backup", "--data-dir", path(data), "--to", "-"])
            .args(["--recipient", &recipient])
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(out.stdout.is_empty(), "no archive for another user");
        if stderr(&out).contains("failed to execute") {
            eprintln!("skipped: user 65534 cannot run the test binary here");
        } else {
            assert!(
                stderr(&out).contains("control.sock: permission denied"),
                "{}",
                stderr(&out)
            );
        }
    }
    let out = restore("wrong horse\n", &work.path().join("a"));
    assert!(
        stderr(&out).contains("passphrase does not open"),
        "{}",
        stderr(&out)
    );
    let out = restore("correct horse battery staple\n", &work.path().join("b"));
    assert!(out.status.success(), "{}", stderr(&out));
    // No server there: a clear word, nothing written.
    let out = perch_server(&[
        "backup",
        "--data-dir",
        path(&work.path().join("b")),
        "--to",
        path(&work.path().join("none.age")),
        "--passphrase-file",
        path(&pass),
    ]);
    assert!(
        stderr(&out).contains("no perch-server is running"),
        "{}",
        stderr(&out)
    );
    assert!(!work.path().join("none.age").exists());
    assert!(!work.path().join("none.age.partial").exists());
}

#[test]
fn a_backup_folder_without_a_key_stops_the_start() {
    let data = tempfile::tempdir().unwrap();
    let exited = Server::run_to_exit(
        data.path(),
        Options::default()
            .arg("--backup-dir")
            .arg(path(&data.path().join("backups"))),
    );
    assert_eq!(exited.status.code(), Some(2), "{}", exited.stderr);
    assert!(
        exited.stderr.contains("always encrypted"),
        "{}",
        exited.stderr
    );
    let exited = Server::run_to_exit(
        data.path(),
        Options::default()
            .arg("--backup-dir")
            .arg(path(&data.path().join("backups")))
            .arg("--backup-recipient")
            .arg("age1notakey"),
    );
    assert_eq!(exited.status.code(), Some(2), "{}", exited.stderr);
    assert!(
        exited.stderr.contains("not an age recipient"),
        "{}",
        exited.stderr
    );
}
