#![allow(deprecated)] // X25519 keys, as Debian's age makes them.

use std::str::FromStr;

use age::secrecy::ExposeSecret;

use super::*;

fn key() -> (Encryption, Identities) {
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), identity.to_string().expose_secret()).unwrap();
    (
        Encryption::to_recipients(&[recipient]).unwrap(),
        Identities::key_file(file.path()).unwrap(),
    )
}

fn archive(encryption: &Encryption) -> Vec<u8> {
    let mut w = ArchiveWriter::new(encryption, Vec::new(), 1_800_000_000).unwrap();
    w.add_bytes("perch/store.records", b"records").unwrap();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    w.add_bytes("victoriametrics/data/small/part/values.bin", &big)
        .unwrap();
    let (manifest, bytes) = w
        .finish(1_800_000_000, serde_json::json!({"users": 2}))
        .unwrap();
    assert_eq!(manifest.files.len(), 2);
    bytes
}

fn write(bytes: &[u8]) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), bytes).unwrap();
    f
}

#[test]
fn round_trip_to_a_recipient() {
    let (enc, ids) = key();
    let bytes = archive(&enc);
    assert!(
        !bytes.windows(7).any(|w| w == b"records"),
        "nothing in the clear"
    );
    let file = write(&bytes);
    let dir = tempfile::tempdir().unwrap();
    let manifest = extract(file.path(), &ids, dir.path()).unwrap();
    assert_eq!(manifest.about["users"], 2);
    assert_eq!(
        std::fs::read(dir.path().join("perch/store.records")).unwrap(),
        b"records"
    );
    assert_eq!(
        std::fs::metadata(
            dir.path()
                .join("victoriametrics/data/small/part/values.bin")
        )
        .unwrap()
        .len(),
        300_000
    );
}

#[test]
fn a_passphrase_opens_what_it_closed() {
    let pass = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(pass.path(), "correct horse battery staple\n").unwrap();
    let bytes = archive(&Encryption::passphrase_in(pass.path()).unwrap());
    let file = write(&bytes);
    verify(
        file.path(),
        &Identities::passphrase_file(pass.path()).unwrap(),
    )
    .unwrap();
    std::fs::write(pass.path(), "wrong horse\n").unwrap();
    let e = verify(
        file.path(),
        &Identities::passphrase_file(pass.path()).unwrap(),
    )
    .unwrap_err();
    assert!(matches!(e, ArchiveError::WrongPassphrase), "{e}");
}

#[test]
fn damage_truncation_and_the_wrong_key_are_refused() {
    let (enc, ids) = key();
    let bytes = archive(&enc);
    let (_, other) = key();
    let e = verify(write(&bytes).path(), &other).unwrap_err();
    assert!(matches!(e, ArchiveError::WrongKey), "{e}");
    for at in [bytes.len() / 2, bytes.len() - 20, 300] {
        let mut flipped = bytes.clone();
        flipped[at] ^= 0x01;
        let e = verify(write(&flipped).path(), &ids).unwrap_err();
        assert!(
            matches!(e, ArchiveError::Damaged(_) | ArchiveError::NotAge(_)),
            "flip at {at}: {e}"
        );
    }
    for len in [bytes.len() - 1, bytes.len() - 65_536 - 17, 100, 10] {
        let e = verify(write(&bytes[..len]).path(), &ids).unwrap_err();
        assert!(
            matches!(
                e,
                ArchiveError::Truncated(_) | ArchiveError::Damaged(_) | ArchiveError::NotAge(_)
            ),
            "cut at {len}: {e}"
        );
    }
    // Nothing is written when the first pass fails.
    let dir = tempfile::tempdir().unwrap();
    let mut flipped = bytes.clone();
    flipped[bytes.len() - 20] ^= 0x01;
    assert!(extract(write(&flipped).path(), &ids, dir.path()).is_err());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn recipients_are_checked_when_given() {
    let ssh = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB+VHtZ6isGN alice@example";
    Encryption::to_recipients(&[ssh.to_owned()]).unwrap();
    let x = age::x25519::Identity::generate().to_public().to_string();
    assert!(age::x25519::Recipient::from_str(&x).is_ok());
    for bad in ["age1nope", "ssh-ed25519 AAAA", "hello"] {
        let e = Encryption::to_recipients(&[bad.to_owned()]).unwrap_err();
        assert!(e.to_string().contains("not an age recipient"), "{e}");
    }
    assert!(Encryption::to_recipients(&[]).is_err());
}
