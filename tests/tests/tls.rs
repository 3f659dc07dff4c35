//! TLS termination against the real binary: protocols, suites, key exchange, names, reload.

use std::time::{Duration, Instant};

use perch_certs::LeafInfo;
use perch_e2e::{
    Options, Server, TestPki, client_config, connect, get, get_h2, openssl_handshake, peer_leaf,
    send_h1,
};

#[tokio::test]
async fn tls13_and_h2_negotiated_with_the_generated_ca() {
    let server = Server::start(Options::default());
    let config = client_config(&server.ca_file(), &[b"h2", b"http/1.1"]);
    let tls = connect(server.https, "localhost", config)
        .await
        .expect("verified TLS");
    let (_, conn) = tls.get_ref();
    assert_eq!(
        conn.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    assert_eq!(conn.alpn_protocol(), Some(&b"h2"[..]));
    let reply = get_h2(tls, "/v1/readyz").await;
    assert_eq!(reply.status, 200);
    let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(body["status"], "ready");
}

#[tokio::test]
async fn post_quantum_hybrid_key_exchange_is_offered() {
    let server = Server::start(Options::default());
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider
        .kx_groups
        .retain(|g| g.name() == rustls::NamedGroup::X25519MLKEM768);
    assert_eq!(provider.kx_groups.len(), 1);
    let roots = {
        let mut roots = rustls::RootCertStore::empty();
        let pem = std::fs::read(server.ca_file()).unwrap();
        for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(&pem) {
            roots.add(cert.unwrap()).unwrap();
        }
        roots
    };
    let config = rustls::ClientConfig::builder_with_provider(provider.into())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tls = connect(server.https, "localhost", config)
        .await
        .expect("hybrid handshake");
    let group = tls
        .get_ref()
        .1
        .negotiated_key_exchange_group()
        .map(|g| g.name());
    assert_eq!(group, Some(rustls::NamedGroup::X25519MLKEM768));
}

#[tokio::test(flavor = "multi_thread")]
async fn old_protocols_and_non_aead_suites_are_refused() {
    let server = Server::start(Options::default());
    let addr = server.https;
    let ca = server.ca_file();
    let ca = ca.to_str().unwrap();
    let cases: &[(&[&str], bool)] = &[
        // A sanity check that the probe can succeed at all.
        (
            &[
                "-tls1_2",
                "-cipher",
                "ECDHE-ECDSA-AES128-GCM-SHA256",
                "-CAfile",
                ca,
            ],
            true,
        ),
        (&["-tls1_3", "-CAfile", ca], true),
        (&["-tls1_1", "-cipher", "ALL:@SECLEVEL=0"], false),
        (&["-tls1", "-cipher", "ALL:@SECLEVEL=0"], false),
        (&["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA"], false),
        (&["-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-SHA384"], false),
        (&["-tls1_2", "-cipher", "AES128-GCM-SHA256"], false),
    ];
    for (args, want) in cases {
        let (ok, text) = tokio::task::block_in_place(|| openssl_handshake(addr, args));
        assert_eq!(ok, *want, "openssl s_client {args:?}:\n{text}");
    }
}

/// The server's own order decides (Mozilla's intermediate order), whatever the client
/// prefers: scanners rate "no server cipher order" a finding.
#[tokio::test(flavor = "multi_thread")]
async fn the_servers_cipher_order_wins_over_the_clients() {
    let server = Server::start(Options::default());
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "-tls1_2",
                "-cipher",
                "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256",
            ],
            "ECDHE-ECDSA-AES128-GCM-SHA256",
        ),
        (
            &[
                "-tls1_3",
                "-ciphersuites",
                "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256",
            ],
            "TLS_AES_128_GCM_SHA256",
        ),
    ];
    for (args, chosen) in cases {
        let (ok, text) = tokio::task::block_in_place(|| openssl_handshake(server.https, args));
        assert!(
            ok && text.contains(&format!("Cipher is {chosen}")),
            "openssl s_client {args:?} should get {chosen}:\n{text}"
        );
    }
}

#[tokio::test]
async fn generated_leaf_carries_the_wanted_names_and_the_ca_key_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let server = Server::start(
        Options::default()
            .arg("--tls-san")
            .arg("perch.example.test")
            .arg("--tls-san")
            .arg("10.9.8.7"),
    );
    let config = client_config(&server.ca_file(), &[b"http/1.1"]);
    let tls = connect(server.https, "perch.example.test", config)
        .await
        .expect("verified for the extra name");
    let leaf = LeafInfo::parse(&peer_leaf(&tls)).unwrap();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_ascii_lowercase();
    for name in [
        "localhost",
        "127.0.0.1",
        "::1",
        host.as_str(),
        "perch.example.test",
        "10.9.8.7",
    ] {
        assert!(
            leaf.subject_alt_names.iter().any(|n| n == name),
            "{name} missing from {:?}",
            leaf.subject_alt_names
        );
    }
    let ca_key = server.data.path().join("perch/ca/ca.key");
    assert_eq!(
        std::fs::metadata(&ca_key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        !server.cert_dir.join("ca.key").exists(),
        "the CA key must not sit in the cert dir"
    );
    // ca-certs.pem holds the CA and no key.
    let ca_pem = std::fs::read_to_string(server.ca_file()).unwrap();
    assert!(ca_pem.contains("BEGIN CERTIFICATE") && !ca_pem.contains("PRIVATE KEY"));
}

/// Opens new connections until one is served `want`, for at most `within`.
async fn wait_for_leaf(
    server: &Server,
    ca: &std::path::Path,
    want: &[u8; 32],
    within: Duration,
) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < within {
        if let Ok(tls) = connect(server.https, "localhost", client_config(ca, &[b"http/1.1"])).await
            && &LeafInfo::parse(&peer_leaf(&tls)).unwrap().spki_sha256 == want
        {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

#[tokio::test]
async fn replaced_certificate_is_served_within_5s_and_open_connections_survive() {
    let server = Server::start(Options::default());
    let old_ca = server.data.path().join("old-ca.pem");
    std::fs::copy(server.ca_file(), &old_ca).unwrap();
    let tls = connect(
        server.https,
        "localhost",
        client_config(&old_ca, &[b"http/1.1"]),
    )
    .await
    .unwrap();
    let (first, mut old_conn) = get(tls, "/v1/readyz").await;
    assert_eq!(first.status, 200);

    // The operator copies in their own certificate, as `docker cp` would.
    let pki = TestPki::current(&["localhost"]);
    pki.install(&server.cert_dir);
    let new_ca = server.data.path().join("new-ca.pem");
    std::fs::write(&new_ca, &pki.ca_pem).unwrap();
    let want = perch_certs::spki_sha256(
        &rustls::pki_types::pem::PemObject::from_pem_slice(pki.leaf_pem.as_bytes()).unwrap(),
    )
    .unwrap();
    let took = wait_for_leaf(&server, &new_ca, &want, Duration::from_secs(5)).await;
    assert!(took.is_some(), "new certificate not served within 5 s");
    assert!(
        server
            .wait_for_log("certificate reloaded", Duration::from_secs(1))
            .is_some()
    );

    // The connection opened before the change still works.
    let again = send_h1(&mut old_conn, "/v1/readyz")
        .await
        .expect("old connection still open");
    assert_eq!(again.status, 200);

    // Garbage, then a key that does not match: the good certificate keeps being served.
    std::fs::write(
        server.cert_dir.join("certificate.crt"),
        "not a certificate\n",
    )
    .unwrap();
    assert!(
        server
            .wait_for_log("do not validate", Duration::from_secs(5))
            .is_some(),
        "{:?}",
        server.log()
    );
    let other = TestPki::current(&["localhost"]);
    std::fs::write(server.cert_dir.join("certificate.crt"), &pki.leaf_pem).unwrap();
    std::fs::write(server.cert_dir.join("certificate.key"), &other.leaf_key_pem).unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mismatch_logged = server.log().iter().any(|l| l.contains("does not match"));
    assert!(mismatch_logged, "{:?}", server.log());
    assert!(
        wait_for_leaf(&server, &new_ca, &want, Duration::from_secs(1))
            .await
            .is_some()
    );
}
