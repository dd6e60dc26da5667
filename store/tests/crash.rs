//! Crash test: a child process writes blocks and advances sequences in a loop; the parent
//! kills it with SIGKILL at random moments, reopens the database and checks that it opens,
//! that every block it reports stored is readable in full and hashes to its CID, that no
//! temporary or orphaned block file survived the reopen, and that no sequence went backwards.
//!
//! The child is this very test binary, re-run with `--ignored --exact child_writer` and
//! an environment variable naming the database. That works the same under `cargo test`
//! and `cargo nextest` (both run libtest binaries that accept those arguments).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ipfm_protocol::cid::{cid_v1, raw_cid, DAG_PB};
use ipfm_protocol::dagpb::{PbLink, PbNode};
use ipfm_store::{Blockstore, Store};
use rand::{Rng, SeedableRng};

/// Set in the child's environment to the database path.
const CHILD_DB_ENV: &str = "IPFM_STORE_CRASH_CHILD_DB";
const CHILD_TEST: &str = "child_writer";
/// Prefix of the child's report lines on stdout (libtest prints its own lines there too).
const REPORT: &str = "crash-report";
const KILLS: usize = 24;
/// Hang guards, far above what a round needs (well under a second), so a wedged database
/// fails the test clearly instead of stalling CI.
const TIME_BUDGET: Duration = Duration::from_secs(180);
const CHECK_TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequences_never_go_backwards_and_blocks_stay_valid_across_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let seed: u64 = rand::random();
    println!("crash test seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let started = Instant::now();

    let mut reported = Reported::default();
    for round in 0..KILLS {
        assert!(
            started.elapsed() < TIME_BUDGET,
            "only {round} of {KILLS} crash rounds fit in {TIME_BUDGET:?}"
        );
        let mut child = spawn_child(&db);
        let reader = read_reports(child.stdout.take().unwrap());
        let errors = read_all(child.stderr.take().unwrap());
        // The child opens the database and starts writing within a few ms; killing at
        // anything from "during open" to "deep in the write loop" is the point.
        let delay = Duration::from_millis(rng.gen_range(5..=200));
        tokio::time::sleep(delay).await;
        child.kill().expect("SIGKILL the child");
        let status = child.wait().unwrap();
        assert!(!status.success(), "the child was killed, not finished");
        let round_reports = reader.join().expect("report reader");
        reported.merge(&round_reports);
        // A killed process prints nothing; a panic means the child itself hit an error
        // (for instance, it could not open the database the previous crash left behind).
        let errors = errors.join().expect("stderr reader");
        assert!(
            !errors.contains("panicked"),
            "round {round}: the writer failed on its own:\n{errors}"
        );

        tokio::time::timeout(CHECK_TIMEOUT, check_after_crash(&db, &reported, round))
            .await
            .unwrap_or_else(|_| {
                panic!("round {round}: reopening and checking took over {CHECK_TIMEOUT:?}")
            });
    }
    assert!(
        reported.ipns > KILLS as u64,
        "the child handed out only {} IPNS sequences over {KILLS} runs; the crashes hit nothing",
        reported.ipns
    );
    println!(
        "{KILLS} crashes in {:?}; last IPNS sequence {}, media sequence {}",
        started.elapsed(),
        reported.ipns,
        reported.media
    );
}

/// What the children said they had durably done (maxima over all runs so far).
#[derive(Default, Debug, Clone, Copy)]
struct Reported {
    ipns: u64,
    media: u64,
}

impl Reported {
    fn merge(&mut self, other: &Reported) {
        self.ipns = self.ipns.max(other.ipns);
        self.media = self.media.max(other.media);
    }
}

fn spawn_child(db: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            CHILD_TEST,
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DB_ENV, db)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the writer child")
}

/// Collect the child's reports until its stdout closes (it has been killed by then; what
/// it wrote before dying is still in the pipe).
fn read_reports(stdout: std::process::ChildStdout) -> JoinHandle<Reported> {
    std::thread::spawn(move || {
        let mut reported = Reported::default();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let mut words = line.split_whitespace();
            if words.next() != Some(REPORT) {
                continue;
            }
            let (Some(kind), Some(value)) = (words.next(), words.next()) else {
                continue;
            };
            let value: u64 = value.parse().expect("child reports numbers");
            match kind {
                "ipns" => reported.ipns = reported.ipns.max(value),
                "media" => reported.media = reported.media.max(value),
                other => panic!("unknown report {other}"),
            }
        }
        reported
    })
}

fn read_all(mut stream: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stream.read_to_string(&mut text);
        text
    })
}

async fn check_after_crash(db: &Path, reported: &Reported, round: usize) {
    let store = Store::open(db)
        .await
        .unwrap_or_else(|e| panic!("round {round}: the store does not open after SIGKILL: {e}"));

    let blocks = store.blocks().await.unwrap();
    for info in &blocks {
        assert!(
            store.has(&info.cid).await.unwrap(),
            "round {round}: listed but not had"
        );
        let bytes = store
            .get(&info.cid)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("round {round}: listed block {} has no bytes", info.cid));
        assert_eq!(
            bytes.len() as u64,
            info.size,
            "round {round}: size of {}",
            info.cid
        );
        ipfm_protocol::cid::verify(&info.cid, &bytes)
            .unwrap_or_else(|e| panic!("round {round}: stored block is corrupt: {e}"));
    }

    check_block_files(db, &blocks, round);

    let ipns = store.ipns_sequence().await.unwrap();
    assert!(
        ipns >= reported.ipns,
        "round {round}: IPNS sequence went back from {} (handed out) to {ipns}",
        reported.ipns
    );
    let media = store.media_sequence().await.unwrap().unwrap_or(0);
    assert!(
        media >= reported.media,
        "round {round}: media sequence went back from {} to {media}",
        reported.media
    );
    let next = store.next_ipns_sequence().await.unwrap();
    assert!(
        next > ipns && next > reported.ipns,
        "round {round}: next sequence {next}"
    );

    // The pin the child keeps moving must still parse, and a GC must run on what the
    // crash left behind (it may find children the crash lost: that is reported, not fatal).
    if let Some(root) = store.pinned("live").await.unwrap() {
        assert_eq!(root.codec(), DAG_PB);
    }
    store.gc(Duration::from_secs(3600)).await.unwrap();
}

/// After the reopen, the block directory holds exactly one complete file per listed block:
/// the open removed what the crash left half-done (temporary files, files whose metadata
/// was never written).
fn check_block_files(db: &Path, blocks: &[ipfm_store::BlockInfo], round: usize) {
    let listed: std::collections::HashMap<String, u64> = blocks
        .iter()
        .map(|b| (format!("{}.data", b.cid), b.size))
        .collect();
    let mut files = 0;
    for shard in std::fs::read_dir(db.join(ipfm_store::BLOCKS_DIR)).unwrap() {
        for file in std::fs::read_dir(shard.unwrap().path()).unwrap() {
            let file = file.unwrap();
            let name = file.file_name().into_string().unwrap();
            let size = listed.get(&name).unwrap_or_else(|| {
                panic!("round {round}: {name} left in the block directory after reopening")
            });
            assert_eq!(
                file.metadata().unwrap().len(),
                *size,
                "round {round}: {name}"
            );
            files += 1;
        }
    }
    assert_eq!(
        files,
        blocks.len(),
        "round {round}: block files vs listed blocks"
    );
}

/// The child: write until killed. Not a test of its own: `#[ignore]` keeps it out of
/// normal runs, and without the parent's environment variable (e.g. under
/// `--include-ignored`) it does nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "helper process of the crash test; runs only when spawned by it"]
async fn child_writer() {
    let Some(db) = std::env::var_os(CHILD_DB_ENV) else {
        eprintln!("{CHILD_DB_ENV} not set: not spawned by the crash test, nothing to do");
        return;
    };
    let store = Store::open(&db).await.expect("child opens the store");
    let mut rng = rand::rngs::StdRng::from_entropy();
    let mut media = store.media_sequence().await.unwrap().unwrap_or(0);
    let mut segment_cids = Vec::new();
    loop {
        // A "segment": a couple of raw blocks of random size, up to a bitswap leaf's
        // 256 KiB so that kills land mid-write too.
        for _ in 0..2 {
            let mut bytes = vec![0u8; rng.gen_range(1..=256 * 1024)];
            rng.fill(&mut bytes[..]);
            let cid = raw_cid(&bytes);
            let size = bytes.len();
            store.put(&cid, bytes).await.unwrap();
            segment_cids.push((cid, size));
        }
        let ipns = store.next_ipns_sequence().await.unwrap();
        report("ipns", ipns);
        media += 1;
        store.set_media_sequence(media).await.unwrap();
        report("media", media);

        // Now and then publish a "window" directory and move the pin to it.
        if segment_cids.len() >= 8 {
            let links = segment_cids
                .drain(..)
                .enumerate()
                .map(|(i, (hash, size))| PbLink {
                    hash,
                    name: Some(format!("{i}.ts")),
                    tsize: Some(size as u64),
                })
                .collect();
            let bytes = PbNode {
                links,
                data: Some(vec![8, 1]),
            }
            .encode();
            let root = cid_v1(DAG_PB, &bytes);
            store.put(&root, bytes).await.unwrap();
            store.pin("live", root).await.unwrap();
        }
    }
}

fn report(kind: &str, value: u64) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{REPORT} {kind} {value}").unwrap();
    out.flush().unwrap();
}
