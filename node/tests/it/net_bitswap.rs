//! ipfm ↔ ipfm over loopback: bitswap fetches (TCP and QUIC), DontHave, forged blocks, and
//! hostile streams. Every wait has a timeout; only 127.0.0.1 with kernel-chosen ports.

use crate::common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use cid::Cid;
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use ipfm_node::net::bitswap::GetError;
use ipfm_node::net::swarm::{spawn, Client, NetError, NetworkConfig};
use ipfm_node::net::{BlockAccess, BlockAccessError, StoreBlocks};
use ipfm_protocol::bitswap::{
    decode_frame, encode_framed, Message, PresenceType, WantType, Wantlist, WantlistEntry,
    MAX_MESSAGE_SIZE,
};
use ipfm_protocol::builder::{build_file, read_file, CidMode};
use ipfm_protocol::cid::raw_cid;
use ipfm_store::{Blockstore, MemoryBlockstore};
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, StreamProtocol};
use rand::RngCore;

const WAIT: Duration = Duration::from_secs(30);

fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0; len];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes
}

struct Node {
    client: Client,
    store: MemoryBlockstore,
}

impl Node {
    async fn start() -> Node {
        let store = MemoryBlockstore::new();
        let client = start_with(StoreBlocks::shared(store.clone())).await;
        Node { client, store }
    }

    /// Our listen address of the given transport ("tcp" or "quic-v1"), with `/p2p/<id>`.
    async fn addr(&self, transport: &str) -> Multiaddr {
        listen_addr(&self.client, transport).await
    }
}

async fn start_with(blocks: Arc<dyn BlockAccess>) -> Client {
    let config = NetworkConfig::loopback(Keypair::generate_ed25519());
    let (client, _task) = tokio::time::timeout(WAIT, spawn(config, blocks))
        .await
        .expect("swarm starts in time")
        .expect("swarm starts");
    client
}

async fn listen_addr(client: &Client, transport: &str) -> Multiaddr {
    let addrs = client.listen_addrs().await.expect("listen addrs");
    let addr = addrs
        .into_iter()
        .find(|a| {
            a.iter().any(|p| {
                matches!(
                    (&p, transport),
                    (Protocol::Tcp(_), "tcp") | (Protocol::QuicV1, "quic-v1")
                )
            })
        })
        .unwrap_or_else(|| panic!("no {transport} listen address"));
    addr.with(Protocol::P2p(client.peer_id()))
}

async fn put_all(store: &MemoryBlockstore, blocks: &[(Cid, Vec<u8>)]) {
    for (cid, data) in blocks {
        store.put(cid, data.clone()).await.expect("put block");
    }
}

async fn dial(from: &Client, to: Multiaddr) {
    tokio::time::timeout(WAIT, from.dial(to))
        .await
        .expect("dial in time")
        .expect("dial");
}

/// Read a UnixFS file back out of `store`, given every CID it should hold.
async fn read_back(store: &MemoryBlockstore, root: &Cid, cids: &[Cid]) -> Vec<u8> {
    let mut blocks = HashMap::new();
    for cid in cids {
        let data = store
            .get(cid)
            .await
            .expect("get")
            .expect("block was fetched");
        blocks.insert(*cid, data);
    }
    read_file(root, |cid| blocks.get(cid).cloned()).expect("file reads back")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetches_a_multi_block_file_over_tcp() {
    let server = Node::start().await;
    let client = Node::start().await;
    let bytes = random_bytes(3 * 1024 * 1024 + 7);
    let (root, blocks) = build_file(&bytes, CidMode::V1RawLeaves);
    let blocks: Vec<(Cid, Vec<u8>)> = blocks.into_iter().map(|b| (b.cid, b.data)).collect();
    assert!(blocks.len() > 10, "a multi-block DAG");
    put_all(&server.store, &blocks).await;

    dial(&client.client, server.addr("tcp").await).await;
    let fetched = tokio::time::timeout(
        WAIT,
        client
            .client
            .fetch_dag(root.cid, Duration::from_secs(20), 10_000),
    )
    .await
    .expect("fetch in time")
    .expect("fetch succeeds");

    assert_eq!(fetched.blocks, blocks.len());
    assert_eq!(fetched.fetched, blocks.len());
    let cids: Vec<Cid> = blocks.iter().map(|(cid, _)| *cid).collect();
    assert_eq!(read_back(&client.store, &root.cid, &cids).await, bytes);

    // A second fetch finds everything locally.
    let again = client
        .client
        .fetch_dag(root.cid, Duration::from_secs(20), 10_000)
        .await
        .expect("second fetch");
    assert_eq!(again.fetched, 0);
    assert_eq!(again.blocks, blocks.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetches_a_block_over_quic() {
    let server = Node::start().await;
    let client = Node::start().await;
    let data = random_bytes(200 * 1024);
    let cid = raw_cid(&data);
    put_all(&server.store, &[(cid, data.clone())]).await;

    dial(&client.client, server.addr("quic-v1").await).await;
    let got = client
        .client
        .get_block(cid, Duration::from_secs(20))
        .await
        .expect("block over QUIC");
    assert_eq!(got, data);
    assert_eq!(client.store.get(&cid).await.unwrap(), Some(data));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_peer_saying_dont_have_fails_the_get() {
    let server = Node::start().await;
    let client = Node::start().await;
    dial(&client.client, server.addr("tcp").await).await;

    let missing = raw_cid(b"nobody has this block");
    // NotFound comes from the peer's DontHave; without it the get could only time out
    // (after a minute, well past this test's own bound).
    let result = tokio::time::timeout(
        WAIT,
        client.client.get_block(missing, Duration::from_secs(60)),
    )
    .await
    .expect("answered before the test's bound");
    assert!(
        matches!(result, Err(NetError::Bitswap(GetError::NotFound))),
        "{result:?}"
    );
}

/// A peer whose store hands out wrong bytes for every block it claims to have.
struct LyingBlocks(HashMap<Cid, Vec<u8>>);

impl BlockAccess for LyingBlocks {
    fn get(&self, cid: Cid) -> ipfm_node::net::blocks::BlockFuture<Option<Vec<u8>>> {
        let forged = self.0.get(&cid).map(|data| {
            let mut forged = data.clone();
            forged[0] ^= 0xff;
            forged
        });
        Box::pin(async move { Ok(forged) })
    }

    fn has(&self, cid: Cid) -> ipfm_node::net::blocks::BlockFuture<bool> {
        let has = self.0.contains_key(&cid);
        Box::pin(async move { Ok(has) })
    }

    fn put(&self, _: Cid, _: Vec<u8>) -> ipfm_node::net::blocks::BlockFuture<()> {
        Box::pin(async { Err(BlockAccessError("read-only".into())) })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_block_is_rejected_and_its_sender_dropped() {
    let data = random_bytes(100 * 1024);
    let cid = raw_cid(&data);
    let liar = start_with(Arc::new(LyingBlocks(HashMap::from([(cid, data.clone())])))).await;
    let liar_addr = listen_addr(&liar, "tcp").await;

    // Only the liar: the forged block never reaches the store and the get fails.
    let client = Node::start().await;
    dial(&client.client, liar_addr.clone()).await;
    let result = tokio::time::timeout(WAIT, client.client.get_block(cid, Duration::from_secs(60)))
        .await
        .expect("answered in time");
    assert!(
        matches!(result, Err(NetError::Bitswap(GetError::NotFound))),
        "{result:?}"
    );
    assert_eq!(client.store.get(&cid).await.unwrap(), None);
    // ... and the liar is disconnected.
    tokio::time::timeout(WAIT, async {
        while client
            .client
            .connected_peers()
            .await
            .unwrap()
            .contains(&liar.peer_id())
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the liar is disconnected");

    // Liar and an honest peer: the client ends up with the right bytes whoever it asks first.
    let honest = Node::start().await;
    put_all(&honest.store, &[(cid, data.clone())]).await;
    let client = Node::start().await;
    dial(&client.client, liar_addr).await;
    dial(&client.client, honest.addr("tcp").await).await;
    let got = tokio::time::timeout(WAIT, client.client.get_block(cid, Duration::from_secs(20)))
        .await
        .expect("answered in time")
        .expect("the honest peer delivers");
    assert_eq!(got, data);
}

/// Whether the remote closed (or reset) the stream within the timeout.
async fn closed_by_remote(stream: &mut libp2p::Stream) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

async fn open_stream(
    control: &libp2p_stream::Control,
    peer: libp2p::PeerId,
    protocol: &StreamProtocol,
) -> libp2p::Stream {
    let mut control = control.clone();
    tokio::time::timeout(WAIT, control.open_stream(peer, protocol.clone()))
        .await
        .expect("stream opens in time")
        .expect("stream opens")
}

async fn write(stream: &mut libp2p::Stream, bytes: &[u8]) {
    stream.write_all(bytes).await.expect("write");
    stream.flush().await.expect("flush");
}

/// Read one bitswap message from a stream.
async fn read_message(stream: &mut libp2p::Stream) -> Message {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    tokio::time::timeout(WAIT, async {
        loop {
            if let Some((message, _)) = decode_frame(&buf, MAX_MESSAGE_SIZE).expect("valid frame") {
                return message;
            }
            let read = stream.read(&mut chunk).await.expect("read");
            assert!(read > 0, "stream ended before a message");
            buf.extend_from_slice(&chunk[..read]);
        }
    })
    .await
    .expect("a message in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_frames_close_only_that_stream() {
    let server = Node::start().await;
    let data = random_bytes(50 * 1024);
    let cid = raw_cid(&data);
    put_all(&server.store, &[(cid, data.clone())]).await;
    let server_id = server.client.peer_id();

    let mut control = common::raw_stream_peer(server.addr("tcp").await).await;
    let protocol = StreamProtocol::new("/ipfs/bitswap/1.2.0");
    let mut answers = control
        .accept(protocol.clone())
        .expect("accept bitswap streams");

    // A frame whose body is not a protobuf (a truncated varint tag).
    let mut stream = open_stream(&control, server_id, &protocol).await;
    write(&mut stream, &[0x03, 0xff, 0xff, 0xff]).await;
    assert!(
        closed_by_remote(&mut stream).await,
        "malformed frame closes the stream"
    );

    // A length prefix above the message limit: refused before any body arrives.
    let mut stream = open_stream(&control, server_id, &protocol).await;
    let mut prefix = Vec::new();
    let mut len = (MAX_MESSAGE_SIZE + 1) as u64;
    while len >= 0x80 {
        prefix.push((len as u8) | 0x80);
        len >>= 7;
    }
    prefix.push(len as u8);
    write(&mut stream, &prefix).await;
    assert!(
        closed_by_remote(&mut stream).await,
        "oversized frame closes the stream"
    );

    // The same connection is still served: a valid want-have on a new stream gets a Have,
    // which the server sends on a stream of its own.
    let want = Message {
        wantlist: Some(Wantlist {
            entries: vec![WantlistEntry {
                cid,
                priority: 1,
                cancel: false,
                want_type: WantType::Have,
                send_dont_have: true,
            }],
            full: false,
        }),
        ..Message::default()
    };
    let mut stream = open_stream(&control, server_id, &protocol).await;
    write(&mut stream, &encode_framed(&want)).await;
    let (from, mut answer) = tokio::time::timeout(WAIT, answers.next())
        .await
        .expect("the server answers in time")
        .expect("an answer stream");
    assert_eq!(from, server_id);
    let message = read_message(&mut answer).await;
    assert!(
        message
            .presences
            .iter()
            .any(|p| p.cid == cid && p.presence == PresenceType::Have),
        "{message:?}"
    );

    // And other peers are served as usual.
    let client = Node::start().await;
    dial(&client.client, server.addr("tcp").await).await;
    let got = client
        .client
        .get_block(cid, Duration::from_secs(20))
        .await
        .expect("served after the hostile streams");
    assert_eq!(got, data);
}

fn want_have_message(cids: &[Cid]) -> Message {
    Message {
        wantlist: Some(Wantlist {
            entries: cids
                .iter()
                .map(|cid| WantlistEntry {
                    cid: *cid,
                    priority: 1,
                    cancel: false,
                    want_type: WantType::Have,
                    send_dont_have: true,
                })
                .collect(),
            full: false,
        }),
        ..Message::default()
    }
}

/// Reads consecutive bitswap messages from one stream.
struct MessageReader {
    stream: libp2p::Stream,
    buf: Vec<u8>,
}

impl MessageReader {
    async fn next(&mut self) -> Message {
        let mut chunk = [0u8; 16 * 1024];
        tokio::time::timeout(WAIT, async {
            loop {
                if let Some((message, used)) =
                    decode_frame(&self.buf, MAX_MESSAGE_SIZE).expect("valid frame")
                {
                    self.buf.drain(..used);
                    return message;
                }
                let read = self.stream.read(&mut chunk).await.expect("read");
                assert!(read > 0, "stream ended before a message");
                self.buf.extend_from_slice(&chunk[..read]);
            }
        })
        .await
        .expect("a message in time")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wantlist_flood_is_capped_per_peer() {
    let server = Node::start().await;
    let sentinel_data = random_bytes(1000);
    let sentinel = raw_cid(&sentinel_data);
    put_all(&server.store, &[(sentinel, sentinel_data)]).await;
    let server_id = server.client.peer_id();
    let mut control = common::raw_stream_peer(server.addr("tcp").await).await;
    let protocol = StreamProtocol::new("/ipfs/bitswap/1.2.0");
    let mut answers = control.accept(protocol.clone()).expect("accept");

    // 1500 wants in one message: only the first 1024 (boxo's cap, our default) are kept.
    let flood: Vec<Cid> = (0..1500u32).map(|i| raw_cid(&i.to_be_bytes())).collect();
    let mut stream = open_stream(&control, server_id, &protocol).await;
    write(&mut stream, &encode_framed(&want_have_message(&flood))).await;

    let (_, answer) = tokio::time::timeout(WAIT, answers.next())
        .await
        .expect("answers in time")
        .expect("an answer stream");
    let mut reader = MessageReader {
        stream: answer,
        buf: Vec::new(),
    };
    let mut dont_haves = 0;
    while dont_haves < 1024 {
        let message = reader.next().await;
        dont_haves += message
            .presences
            .iter()
            .filter(|p| p.presence == PresenceType::DontHave && flood.contains(&p.cid))
            .count();
    }
    // Answers go out in the order entries were queued: had more than 1024 been kept, their
    // DontHaves would arrive before the Have for this later want.
    write(&mut stream, &encode_framed(&want_have_message(&[sentinel]))).await;
    loop {
        let message = reader.next().await;
        dont_haves += message
            .presences
            .iter()
            .filter(|p| p.presence == PresenceType::DontHave)
            .count();
        if message
            .presences
            .iter()
            .any(|p| p.cid == sentinel && p.presence == PresenceType::Have)
        {
            break;
        }
    }
    assert_eq!(dont_haves, 1024);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetches_a_whole_directory_dag() {
    use ipfm_protocol::builder::DirectoryBuilder;

    let server = Node::start().await;
    let client = Node::start().await;
    let mut dir = DirectoryBuilder::new(CidMode::V1RawLeaves);
    let mut all: Vec<(Cid, Vec<u8>)> = Vec::new();
    let mut files = Vec::new();
    for (name, len) in [("a.ts", 300 * 1024), ("b.ts", 100), ("master.m3u8", 2000)] {
        let bytes = random_bytes(len);
        let (root, blocks) = build_file(&bytes, CidMode::V1RawLeaves);
        dir.add(name, root.cid, root.tsize).expect("add entry");
        all.extend(blocks.into_iter().map(|b| (b.cid, b.data)));
        files.push((root.cid, bytes));
    }
    let (dir_root, dir_block) = dir.finish();
    all.push((dir_block.cid, dir_block.data));
    put_all(&server.store, &all).await;

    dial(&client.client, server.addr("tcp").await).await;
    let fetched = tokio::time::timeout(
        WAIT,
        client
            .client
            .fetch_dag(dir_root.cid, Duration::from_secs(20), 1000),
    )
    .await
    .expect("fetch in time")
    .expect("fetch succeeds");
    assert_eq!(fetched.blocks, all.len());
    let cids: Vec<Cid> = all.iter().map(|(cid, _)| *cid).collect();
    for (root, bytes) in files {
        assert_eq!(read_back(&client.store, &root, &cids).await, bytes);
    }
}
