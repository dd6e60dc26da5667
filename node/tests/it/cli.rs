//! End-to-end tests of the `ipfm` binary: init, add, key.

use std::path::Path;
use std::process::Output;

use ipfm_protocol::builder::{build_file, CidMode};

use crate::common::{self, pseudo_random_bytes};

/// `ipfm --repo REPO ARGS…`, with no `IPFM_*` variable of the caller leaking in.
fn ipfm(repo: &Path, args: &[&str]) -> Output {
    common::ipfm_command("warn")
        .arg("--repo")
        .arg(repo)
        .args(args)
        .output()
        .expect("run ipfm")
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "ipfm failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn init_is_idempotent_and_keeps_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let first = stdout(&ipfm(&repo, &["init"]));
    assert!(first.contains("initialised"), "{first}");
    let second = stdout(&ipfm(&repo, &["init"]));
    assert!(second.contains("already exists"), "{second}");
    let id_line = |s: &str| {
        s.lines()
            .find(|l| l.starts_with("peer id:"))
            .unwrap()
            .to_owned()
    };
    assert_eq!(id_line(&first), id_line(&second));
    let show = stdout(&ipfm(&repo, &["key", "show"]));
    assert_eq!(id_line(&show), id_line(&first));
    let name = show.lines().find(|l| l.starts_with("IPNS name:")).unwrap();
    assert!(name.contains(" k51"), "{name}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(repo.join("api-token"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn key_export_writes_a_private_file_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    stdout(&ipfm(&repo, &["init"]));
    let key = dir.path().join("station.key");
    stdout(&ipfm(
        &repo,
        &["key", "export", "-o", key.to_str().unwrap()],
    ));
    let bytes = std::fs::read(&key).unwrap();
    // libp2p protobuf PrivateKey { Type: Ed25519 (1), Data: 64 bytes }.
    assert_eq!(&bytes[..4], &[0x08, 0x01, 0x12, 0x40]);
    assert_eq!(bytes.len(), 68);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let again = ipfm(&repo, &["key", "export", "-o", key.to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
}

#[test]
fn add_prints_the_builder_cids_for_files_and_directories() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    stdout(&ipfm(&repo, &["init"]));
    let music = dir.path().join("my music");
    std::fs::create_dir_all(music.join("sub dir")).unwrap();
    let big = pseudo_random_bytes(600 * 1024, 1);
    std::fs::write(music.join("big.bin"), &big).unwrap();
    std::fs::write(music.join("sub dir").join("ünï côdé.txt"), b"hello").unwrap();
    std::fs::write(music.join(".hidden"), b"skipped like Kubo").unwrap();

    let out = stdout(&ipfm(&repo, &["add", music.to_str().unwrap()]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    let (big_root, _) = build_file(&big, CidMode::V1RawLeaves);
    assert_eq!(lines[0], format!("added {} my music/big.bin", big_root.cid));
    let (small_root, _) = build_file(b"hello", CidMode::V1RawLeaves);
    assert_eq!(
        lines[1],
        format!("added {} my music/sub dir/ünï côdé.txt", small_root.cid)
    );
    assert!(
        lines[2].ends_with(" my music/sub dir") && lines[2].contains(" bafybei"),
        "{out}"
    );
    assert!(lines[3].ends_with(" my music"), "{out}");

    // --only-hash gives the same root without a repository; -Q prints only it.
    let root = lines[3].split(' ').nth(1).unwrap();
    let only = common::ipfm_command("warn")
        .args(["add", "-n", "-Q", music.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(stdout(&only).trim(), root);

    // CIDv0 mode.
    let v0 = stdout(&ipfm(
        &repo,
        &[
            "add",
            "-Q",
            "--cid-version",
            "0",
            music.join("big.bin").to_str().unwrap(),
        ],
    ));
    let (v0_root, _) = build_file(&big, CidMode::V0DagPbLeaves);
    assert_eq!(v0.trim(), v0_root.cid.to_string());
    assert!(v0.starts_with("Qm"));
}

#[test]
fn errors_name_the_file_and_exit_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let missing_repo = ipfm(&repo, &["key", "show"]);
    assert!(!missing_repo.status.success());
    assert!(String::from_utf8_lossy(&missing_repo.stderr).contains("ipfm init"));

    stdout(&ipfm(&repo, &["init"]));
    let missing = dir.path().join("no-such-file.mp3");
    let out = ipfm(&repo, &["add", missing.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no-such-file.mp3"), "{err}");
}

#[tokio::test]
async fn add_stores_and_pins_the_whole_dag() {
    use ipfm_store::Blockstore;
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    stdout(&ipfm(&repo, &["init"]));
    let data = pseudo_random_bytes(3 * 262_144 + 17, 7);
    let file = dir.path().join("-leading dash.bin");
    std::fs::write(&file, &data).unwrap();
    let out = stdout(&ipfm(&repo, &["add", "-Q", "--", file.to_str().unwrap()]));
    let root: ipfm_protocol::Cid = out.trim().parse().unwrap();

    let store = ipfm_store::Store::open(repo.join("db")).await.unwrap();
    assert_eq!(
        store.pinned(&format!("add/{root}")).await.unwrap(),
        Some(root)
    );
    let mut blocks = std::collections::HashMap::new();
    for cid in store.cids().await.unwrap() {
        blocks.insert(cid, store.get(&cid).await.unwrap().unwrap());
    }
    let read = ipfm_protocol::builder::read_file(&root, |cid| blocks.get(cid).cloned()).unwrap();
    assert_eq!(read, data);
    // Everything added is pinned, so GC keeps it all.
    let report = store.gc(std::time::Duration::ZERO).await.unwrap();
    assert_eq!(report.removed_blocks, 0);
}
