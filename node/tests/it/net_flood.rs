//! Hostile peers flood an ipfm node for a bounded time: max-size wantlists of random
//! want-blocks (answers never read), max-size and oversized frames, garbage on bitswap
//! streams, hundreds of half-sent streams, garbage TCP connections. Afterwards the node must
//! still serve a normal client, and its peak resident memory must have grown by less than a
//! bound derived from its configured caps while the flood sent many times that bound.
//!
//! The node runs in a child process (this test binary re-run with `--exact` on
//! [`flood_target_node_process`]) so that `/proc/<pid>/status` measures it alone, not the
//! flooders. Loopback only, kernel-chosen ports, every wait bounded; nothing asserts a
//! duration.

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use cid::multihash::Multihash;
use cid::Cid;
use common::tcp_addr;
use futures::{AsyncWriteExt, StreamExt};
use ipfm_node::net::bitswap;
use ipfm_node::net::swarm::{spawn, NetworkConfig};
use ipfm_node::net::StoreBlocks;
use ipfm_protocol::bitswap::{encode_framed, Message, WantType, Wantlist, WantlistEntry};
use ipfm_protocol::cid::raw_cid;
use ipfm_store::{Blockstore, MemoryBlockstore};
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId, StreamProtocol};
use rand::RngCore;
use tokio::time::Instant;

const WAIT: Duration = Duration::from_secs(30);
/// How long the flood lasts. Bounds the test, not an assertion.
const FLOOD: Duration = Duration::from_secs(8);
/// Set in the child's environment: run the node instead of returning at once.
const CHILD_ENV: &str = "IPFM_FLOOD_TARGET_NODE";
/// The child test's full name in this binary (libtest names tests by their module path,
/// without the crate). Checked by `the_child_test_name_is_this_modules`.
const CHILD_TEST: &str = "net_flood::flood_target_node_process";
/// The child's one line of protocol on stdout: `<prefix> <multiaddr> <sentinel cid>`.
const READY_PREFIX: &str = "IPFM_FLOOD_TARGET_READY";
const SENTINEL_SEED: u64 = 0xF100D;
const SENTINEL_LEN: usize = 100 * 1024;
const BITSWAP: StreamProtocol = StreamProtocol::new("/ipfs/bitswap/1.2.0");
const MIB: u64 = 1024 * 1024;
/// Bytes handed to a stream per write, so a write cut short still counts what went out.
const WRITE_CHUNK: usize = 64 * 1024;

/// Concurrent streams writing complete max-size wantlists (hostile peer A).
const WANTLIST_STREAMS: usize = 2;
/// Concurrent streams writing max-size garbage, oversized prefixes and garbage (peer B).
const FRAME_STREAMS: usize = 2;
/// Streams peer C opens and leaves half-sent; the handler reads at most 32 per connection.
const HALF_SENT_STREAMS: usize = 300;
/// `handler::MAX_INBOUND_STREAMS` and `framing::READ_CHUNK` of the bitswap handler.
const HANDLER_INBOUND_STREAMS: u64 = 32;
const HANDLER_READ_CHUNK: u64 = 64 * 1024;
/// Raw TCP connections that send garbage instead of a multistream-select handshake.
const MAX_GARBAGE_CONNECTIONS: usize = 2000;

/// The block every run serves, so the parent knows its bytes without asking.
fn sentinel_bytes() -> Vec<u8> {
    common::pseudo_random_bytes(SENTINEL_LEN, SENTINEL_SEED)
}

/// Not a test on its own: the node process that
/// `a_flood_leaves_the_node_serving_with_bounded_memory` starts and measures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the node process of the flood test, started by it"]
async fn flood_target_node_process() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let store = MemoryBlockstore::new();
    let data = sentinel_bytes();
    let cid = raw_cid(&data);
    store.put(&cid, data).await.expect("store the sentinel");
    // Default caps (the station's), loopback listeners only.
    let config = NetworkConfig::loopback(Keypair::generate_ed25519());
    let (client, _task) = tokio::time::timeout(WAIT, spawn(config, StoreBlocks::shared(store)))
        .await
        .expect("swarm starts in time")
        .expect("swarm starts");
    println!("{READY_PREFIX} {} {cid}", tcp_addr(&client).await);
    // Serve until the parent closes our stdin (or goes away).
    tokio::task::spawn_blocking(|| {
        let mut rest = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut rest);
    })
    .await
    .expect("stdin reader");
}

/// The node under test, killed on drop.
struct NodeProcess {
    child: Child,
    addr: Multiaddr,
    sentinel: Cid,
}

impl NodeProcess {
    fn start() -> NodeProcess {
        let exe = std::env::current_exe().expect("path of this test binary");
        let mut child = Command::new(exe)
            .args(["--exact", CHILD_TEST, "--ignored", "--nocapture"])
            .args(["--test-threads", "1"])
            .env(CHILD_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the node process");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (lines, ready) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // libtest may print "test <name> ... " on the same line first.
                let Some(at) = line.find(READY_PREFIX) else {
                    continue;
                };
                if lines.send(line[at..].to_string()).is_err() {
                    break;
                }
            }
        });
        let line = match ready.recv_timeout(WAIT) {
            Ok(line) => line,
            Err(error) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the node process reported no address in time: {error}");
            }
        };
        let mut words = line.split_whitespace().skip(1);
        let addr = words.next().and_then(|a| a.parse().ok());
        let sentinel = words.next().and_then(|c| Cid::try_from(c).ok());
        let (Some(addr), Some(sentinel)) = (addr, sentinel) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("expected `{READY_PREFIX} <multiaddr> <cid>`, got {line:?}");
        };
        NodeProcess {
            child,
            addr,
            sentinel,
        }
    }

    fn peer_id(&self) -> PeerId {
        match self.addr.iter().last() {
            Some(Protocol::P2p(peer)) => peer,
            _ => panic!("{} has no /p2p/ part", self.addr),
        }
    }

    fn socket_addr(&self) -> SocketAddr {
        let mut ip = None;
        let mut port = None;
        for part in self.addr.iter() {
            match part {
                Protocol::Ip4(a) => ip = Some(std::net::IpAddr::V4(a)),
                Protocol::Tcp(p) => port = Some(p),
                _ => {}
            }
        }
        SocketAddr::new(ip.expect("an IPv4 address"), port.expect("a TCP port"))
    }

    /// (VmRSS, VmHWM) in bytes, from `/proc/<pid>/status`.
    fn memory(&self) -> (u64, u64) {
        let path = format!("/proc/{}/status", self.child.id());
        let status = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
                .map(|kib| kib * 1024)
                .unwrap_or_else(|| panic!("no {name} in {path}"))
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        // Closing stdin ends the node; kill it if it does not go in time.
        drop(self.child.stdin.take());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A bare libp2p peer (its own identity) connected to `server`; it opens bitswap streams
/// and writes whatever it likes. With `hold_answers`, streams the node opens towards it are
/// accepted and never read, so the node's answers pile up against its per-peer byte cap.
async fn hostile_peer(server: Multiaddr, hold_answers: bool) -> libp2p_stream::Control {
    let mut control = common::raw_stream_peer(server).await;
    if hold_answers {
        let mut incoming = control.accept(BITSWAP).expect("accept bitswap streams");
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Some((_, stream)) = incoming.next().await {
                held.push(stream);
            }
        });
    }
    control
}

/// What the flood managed to send: the test fails if it was too little to mean anything.
#[derive(Default)]
struct Sent {
    wantlist_bytes: AtomicU64,
    wantlist_frames: AtomicU64,
    max_size_garbage_frames: AtomicU64,
    oversized_frames: AtomicU64,
    garbage_streams: AtomicU64,
    frame_bytes: AtomicU64,
    half_sent_streams: AtomicU64,
    garbage_connections: AtomicU64,
    tcp_garbage_bytes: AtomicU64,
}

impl Sent {
    fn total_bytes(&self) -> u64 {
        self.wantlist_bytes.load(Ordering::Relaxed)
            + self.frame_bytes.load(Ordering::Relaxed)
            + self.tcp_garbage_bytes.load(Ordering::Relaxed)
    }

    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

impl std::fmt::Display for Sent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        write!(
            f,
            "{} MiB in total: {} max-size wantlists ({} MiB), {} max-size garbage frames, {} \
             oversized frames, {} garbage streams ({} MiB of frames and garbage), {} \
             half-sent streams opened, {} garbage TCP connections ({} MiB)",
            self.total_bytes() / MIB,
            get(&self.wantlist_frames),
            get(&self.wantlist_bytes) / MIB,
            get(&self.max_size_garbage_frames),
            get(&self.oversized_frames),
            get(&self.garbage_streams),
            get(&self.frame_bytes) / MIB,
            get(&self.half_sent_streams),
            get(&self.garbage_connections),
            get(&self.tcp_garbage_bytes) / MIB,
        )
    }
}

fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0; len];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes
}

/// A CIDv1 raw block id with a random sha2-256 digest: nobody has it.
fn random_cid() -> Cid {
    let digest = random_bytes(32);
    Cid::new_v1(
        0x55,
        Multihash::wrap(0x12, &digest).expect("32-byte digest"),
    )
}

/// A framed want-block wantlist (send DontHave) of random CIDs, as close to the message
/// limit as it gets.
fn max_size_wantlist_frame(max_message: usize) -> Vec<u8> {
    let frame = |count: usize| {
        encode_framed(&Message {
            wantlist: Some(Wantlist {
                entries: (0..count)
                    .map(|_| WantlistEntry {
                        cid: random_cid(),
                        priority: 1,
                        cancel: false,
                        want_type: WantType::Block,
                        send_dont_have: true,
                    })
                    .collect(),
                full: false,
            }),
            ..Message::default()
        })
    };
    // Measure one entry's size, then fill the message up to the limit.
    let per_entry = frame(1001).len() - frame(1).len();
    let count = max_message / (per_entry / 1000 + 1);
    let framed = frame(count);
    assert!(framed.len() <= max_message, "{} bytes", framed.len());
    assert!(
        framed.len() > max_message * 9 / 10,
        "{} bytes",
        framed.len()
    );
    framed
}

fn varint(mut value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
    out
}

async fn open(control: &libp2p_stream::Control, peer: PeerId) -> Option<libp2p::Stream> {
    let mut control = control.clone();
    match tokio::time::timeout(Duration::from_secs(5), control.open_stream(peer, BITSWAP)).await {
        Ok(Ok(stream)) => Some(stream),
        _ => None,
    }
}

/// Write `bytes` in chunks until done, the stream fails, or the flood is over; returns how
/// many bytes the stream accepted.
async fn write_until(stream: &mut libp2p::Stream, bytes: &[u8], end: Instant) -> u64 {
    let mut accepted = 0;
    for chunk in bytes.chunks(WRITE_CHUNK) {
        match tokio::time::timeout_at(end, stream.write_all(chunk)).await {
            Ok(Ok(())) => accepted += chunk.len() as u64,
            _ => break,
        }
    }
    accepted
}

/// Peer A: complete max-size wantlists, back to back, on one stream per task.
async fn flood_wantlists(
    control: libp2p_stream::Control,
    node: PeerId,
    frames: Arc<Vec<Vec<u8>>>,
    sent: Arc<Sent>,
    end: Instant,
) {
    let mut stream = None;
    let mut next = 0;
    while Instant::now() < end {
        if stream.is_none() {
            stream = open(&control, node).await;
        }
        let Some(s) = stream.as_mut() else {
            // The connection may be gone; don't spin on it.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let frame = &frames[next % frames.len()];
        next += 1;
        let accepted = write_until(s, frame, end).await;
        Sent::add(&sent.wantlist_bytes, accepted);
        if accepted == frame.len() as u64 {
            Sent::add(&sent.wantlist_frames, 1);
        } else {
            stream = None;
        }
    }
}

/// Peer B: a new stream per frame: max-size garbage bodies (buffered whole before they fail
/// to decode), length prefixes above the limit followed by garbage, and bare garbage.
async fn flood_frames(
    control: libp2p_stream::Control,
    node: PeerId,
    max_message: usize,
    sent: Arc<Sent>,
    end: Instant,
) {
    let garbage = random_bytes(max_message);
    let mut max_size = varint(max_message as u64);
    max_size.extend_from_slice(&garbage);
    let mut oversized = varint(max_message as u64 + 1);
    oversized.extend_from_slice(&garbage[..1024 * 1024]);
    let mut round = 0u64;
    while Instant::now() < end {
        let Some(mut stream) = open(&control, node).await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        round += 1;
        let (bytes, counter) = match round % 3 {
            0 => (&max_size[..], &sent.max_size_garbage_frames),
            1 => (&oversized[..], &sent.oversized_frames),
            _ => (&garbage[..64 * 1024], &sent.garbage_streams),
        };
        // The node closes the stream as soon as it sees a bad prefix or body, so a write may
        // fail part-way: a frame counts once its first chunk (length prefix included) went
        // out, and only the bytes the stream accepted count.
        let accepted = write_until(&mut stream, bytes, end).await;
        Sent::add(&sent.frame_bytes, accepted);
        if accepted > 0 {
            Sent::add(counter, 1);
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), stream.close()).await;
    }
}

/// Peer C: hundreds of streams, opened at once, each announcing a max-size frame and
/// sending 1 KiB of it, all kept open until the flood ends (nothing may be allocated by the
/// announced length).
async fn flood_half_sent_streams(
    control: libp2p_stream::Control,
    node: PeerId,
    max_message: usize,
    sent: Arc<Sent>,
    end: Instant,
) {
    let mut start = varint(max_message as u64);
    start.extend_from_slice(&random_bytes(1024));
    let start = &start;
    let opened: Vec<Option<libp2p::Stream>> =
        futures::future::join_all((0..HALF_SENT_STREAMS).map(|_| {
            let (control, sent) = (control.clone(), sent.clone());
            async move {
                let mut stream = open(&control, node).await?;
                Sent::add(&sent.half_sent_streams, 1);
                // Streams past the node's limits are reset, so this write may fail.
                let accepted = write_until(&mut stream, start, end).await;
                Sent::add(&sent.frame_bytes, accepted);
                Some(stream)
            }
        }))
        .await;
    tokio::time::sleep_until(end).await;
    drop(opened);
}

/// Raw TCP connections that write garbage where the multistream-select handshake belongs.
fn flood_tcp_garbage(addr: SocketAddr, sent: Arc<Sent>, end: std::time::Instant) {
    let garbage = random_bytes(64 * 1024);
    for _ in 0..MAX_GARBAGE_CONNECTIONS {
        if std::time::Instant::now() >= end {
            break;
        }
        let Ok(mut socket) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
            continue;
        };
        let _ = socket.set_write_timeout(Some(Duration::from_secs(2)));
        Sent::add(&sent.garbage_connections, 1);
        if socket.write_all(&garbage).is_ok() {
            Sent::add(&sent.tcp_garbage_bytes, garbage.len() as u64);
        }
    }
}

/// How much the node may legitimately grow under this flood, from its configured caps:
/// every stream that carries complete frames holds one frame buffer, and a decoded
/// max-size wantlist takes a few times its wire size; answers queued towards peer A stop at
/// its byte cap; half-sent streams hold one read chunk each, for the streams the handler
/// reads; plus fixed slack for allocator arenas, noise/yamux buffers and the runtime.
fn memory_bound(config: &bitswap::Config) -> u64 {
    const DECODED_FACTOR: u64 = 4;
    const SLACK: u64 = 32 * MIB;
    let frame = config.max_message_size as u64 + HANDLER_READ_CHUNK;
    let frame_streams = (WANTLIST_STREAMS + FRAME_STREAMS) as u64;
    frame_streams * DECODED_FACTOR * frame
        + config.max_queued_bytes_per_peer as u64
        + HANDLER_INBOUND_STREAMS * HANDLER_READ_CHUNK
        + SLACK
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_leaves_the_node_serving_with_bounded_memory() {
    let mut node = NodeProcess::start();
    let node_id = node.peer_id();
    let config = bitswap::Config::default();
    let frames: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..3)
            .map(|_| max_size_wantlist_frame(config.max_message_size))
            .collect(),
    );
    let peer_a = hostile_peer(node.addr.clone(), true).await;
    let peer_b = hostile_peer(node.addr.clone(), false).await;
    let peer_c = hostile_peer(node.addr.clone(), false).await;
    // Let the connections settle (identify, the node's DHT queries) before the baseline.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (baseline_rss, _) = node.memory();

    let sent = Arc::new(Sent::default());
    let end = Instant::now() + FLOOD;
    let mut tasks = vec![tokio::spawn(flood_half_sent_streams(
        peer_c.clone(),
        node_id,
        config.max_message_size,
        sent.clone(),
        end,
    ))];
    for _ in 0..WANTLIST_STREAMS {
        let task = flood_wantlists(peer_a.clone(), node_id, frames.clone(), sent.clone(), end);
        tasks.push(tokio::spawn(task));
    }
    for _ in 0..FRAME_STREAMS {
        let max = config.max_message_size;
        let task = flood_frames(peer_b.clone(), node_id, max, sent.clone(), end);
        tasks.push(tokio::spawn(task));
    }
    let tcp = {
        let (addr, sent) = (node.socket_addr(), sent.clone());
        let end = end.into_std();
        tokio::task::spawn_blocking(move || flood_tcp_garbage(addr, sent, end))
    };
    for task in tasks {
        tokio::time::timeout(WAIT, task)
            .await
            .expect("a flood task ends after the flood")
            .expect("a flood task");
    }
    tokio::time::timeout(WAIT, tcp)
        .await
        .expect("the TCP flood ends after the flood")
        .expect("the TCP flood");

    assert!(node.is_running(), "the node process died during the flood");
    let (after_rss, peak) = node.memory();

    // A normal client, on a connection of its own, still gets a block.
    let store = MemoryBlockstore::new();
    let keypair = Keypair::generate_ed25519();
    let (client, _task) = tokio::time::timeout(
        WAIT,
        spawn(NetworkConfig::loopback(keypair), StoreBlocks::shared(store)),
    )
    .await
    .expect("client starts in time")
    .expect("client starts");
    tokio::time::timeout(WAIT, client.dial(node.addr.clone()))
        .await
        .expect("dial in time")
        .expect("the node accepts a normal client after the flood");
    let got = tokio::time::timeout(
        WAIT,
        client.get_block(node.sentinel, Duration::from_secs(20)),
    )
    .await
    .expect("answered in time")
    .expect("the node still serves blocks");
    assert_eq!(got, sentinel_bytes());

    let bound = memory_bound(&config);
    let growth = peak.saturating_sub(baseline_rss);
    eprintln!(
        "flood sent {sent}; node RSS {} MiB before, {} MiB after, peak {} MiB: growth {} MiB \
         (bound {} MiB)",
        baseline_rss / MIB,
        after_rss / MIB,
        peak / MIB,
        growth / MIB,
        bound / MIB
    );
    // The flood must have been real: every kind was sent, and many times the bound in bytes.
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    assert!(get(&sent.wantlist_frames) >= 10, "flood too small: {sent}");
    assert!(
        get(&sent.max_size_garbage_frames) >= 5,
        "flood too small: {sent}"
    );
    assert!(get(&sent.oversized_frames) >= 5, "flood too small: {sent}");
    assert!(get(&sent.garbage_streams) >= 5, "flood too small: {sent}");
    assert!(
        get(&sent.half_sent_streams) >= 100,
        "flood too small: {sent}"
    );
    assert!(
        get(&sent.garbage_connections) >= 10,
        "flood too small: {sent}"
    );
    assert!(
        sent.total_bytes() >= 3 * bound,
        "flood too small to say anything about a {} MiB bound: {sent}",
        bound / MIB
    );
    assert!(
        growth < bound,
        "node memory grew by {} MiB (RSS {} MiB before, peak {} MiB), more than the {} MiB its \
         caps allow; the flood: {sent}",
        growth / MIB,
        baseline_rss / MIB,
        peak / MIB,
        bound / MIB
    );
}

#[test]
fn the_child_test_name_is_this_modules() {
    // `module_path!()` is `it::net_flood` here; libtest drops the crate name.
    let module = module_path!().split_once("::").map_or("", |(_, rest)| rest);
    assert_eq!(CHILD_TEST, format!("{module}::flood_target_node_process"));
}
