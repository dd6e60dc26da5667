//! The provider lifecycle on the LAN DHT, with a short record TTL: the station provides its
//! pinned set at start and re-provides it before the records expire, so another node still
//! finds it as a provider after the TTL; once GC removes a block, the station stops
//! providing it and, after the TTL, nobody is told it has it.
//!
//! The station is a DHT client, so lookups cannot ask it directly: only the provider
//! records the DHT server (`middle`) keeps can name it.

use crate::common;
use common::tcp_addr;
use std::collections::HashSet;
use std::time::{Duration, Instant};

use ipfm_node::net::swarm::{spawn, Client, NetworkConfig};
use ipfm_node::net::StoreBlocks;
use ipfm_node::station::provide::keep_provider_set;
use ipfm_protocol::builder::{CidMode, DirectoryBuilder};
use ipfm_protocol::cid::raw_cid;
use ipfm_protocol::Cid;
use ipfm_store::{Blockstore, Store};
use libp2p::identity::Keypair;
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(30);
const REPUBLISH: Duration = Duration::from_secs(1);
const TTL: Duration = Duration::from_secs(4);

async fn node(store: Store, dht_server: bool) -> Client {
    let mut config = NetworkConfig::loopback(Keypair::generate_ed25519());
    config.wan_dht = false;
    config.lan_dht_server = dht_server;
    config.provider_publication_interval = REPUBLISH;
    config.provider_record_ttl = TTL;
    let (client, _task) = tokio::time::timeout(WAIT, spawn(config, StoreBlocks::shared(store)))
        .await
        .expect("swarm starts in time")
        .expect("swarm starts");
    client
}

/// Stores the segments and a directory of them pinned as `pin`; returns (root, segments).
async fn pin_segments(store: &Store, pin: &str, names: &[&str]) -> (Cid, Vec<Cid>) {
    let mut dir = DirectoryBuilder::new(CidMode::V1RawLeaves);
    let mut segments = Vec::new();
    for name in names {
        let data = format!("segment {name}").repeat(100).into_bytes();
        let cid = raw_cid(&data);
        dir.add(&format!("{name}.ts"), cid, data.len() as u64)
            .unwrap();
        store.put(&cid, data).await.unwrap();
        segments.push(cid);
    }
    let (root, block) = dir.finish();
    store.put(&block.cid, block.data).await.unwrap();
    store.pin(pin, root.cid).await.unwrap();
    (root.cid, segments)
}

/// Polls `check` every 200 ms until it holds; panics with `what` after [`WAIT`].
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + WAIT;
    while !check().await {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn finds(seeker: &Client, cid: Cid, provider: libp2p::PeerId) -> bool {
    let found: HashSet<_> = seeker.find_providers(cid).await.expect("provider search");
    found.contains(&provider)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_blocks_stay_provided_past_the_ttl_and_gc_removed_ones_do_not() {
    let store = Store::open_in_memory();
    let (_, kept) = pin_segments(&store, "station-root", &["a", "b"]).await;
    let (_, removed) = pin_segments(&store, "station-retained", &["old"]).await;
    let removed = removed[0];

    let station = node(store.clone(), false).await;
    let middle = node(Store::open_in_memory(), true).await;
    let seeker = node(Store::open_in_memory(), false).await;
    let middle_addr = tcp_addr(&middle).await;
    station
        .dial(middle_addr.clone())
        .await
        .expect("station dials middle");
    seeker.dial(middle_addr).await.expect("seeker dials middle");

    // The station's provide queue, drained the way the station network drains it.
    let (queue, mut batches) = mpsc::channel::<Vec<Cid>>(16);
    let lifecycle = tokio::spawn(keep_provider_set(station.clone(), store.clone(), queue));
    let first_batch = tokio::time::timeout(WAIT, batches.recv())
        .await
        .expect("the pinned set is queued at start")
        .expect("queue open");
    let queued: HashSet<Cid> = first_batch.into_iter().collect();
    for cid in kept.iter().chain([&removed]) {
        assert!(
            queued.contains(cid),
            "pinned block {cid} not provided at start"
        );
    }
    // Announce once the station's routing table has the middle peer (through identify).
    eventually("the pinned set reaches the DHT", || {
        let (station, middle, queued) = (station.clone(), middle.clone(), queued.clone());
        async move {
            for cid in &queued {
                let _ = station.start_providing(*cid).await;
            }
            let mut all = true;
            for cid in &queued {
                all &= finds(&middle, *cid, station.peer_id()).await;
            }
            all
        }
    })
    .await;
    assert!(station.is_providing(removed).await.unwrap());

    // GC removes the unpinned segment: the station stops providing it.
    store.unpin("station-retained").await.unwrap();
    let report = store.gc(Duration::ZERO).await.unwrap();
    assert!(report.removed_cids.contains(&removed));
    eventually("the removed block leaves the provided set", || {
        let station = station.clone();
        async move { !station.is_providing(removed).await.unwrap() }
    })
    .await;
    for cid in &kept {
        assert!(station.is_providing(*cid).await.unwrap());
    }

    // Well past the TTL of every record the middle peer got before the GC: only the
    // re-provided ones are still there.
    tokio::time::sleep(TTL * 2).await;
    for cid in &kept {
        assert!(
            finds(&seeker, *cid, station.peer_id()).await,
            "{cid} not re-provided before its record expired"
        );
    }
    eventually("the removed block's record expires", || {
        let (seeker, station) = (seeker.clone(), station.clone());
        async move { !finds(&seeker, removed, station.peer_id()).await }
    })
    .await;
    lifecycle.abort();
}

#[tokio::test]
async fn a_publication_interval_not_shorter_than_the_ttl_is_refused() {
    let mut config = NetworkConfig::loopback(Keypair::generate_ed25519());
    config.provider_publication_interval = Duration::from_secs(10);
    config.provider_record_ttl = Duration::from_secs(10);
    let started = spawn(config, StoreBlocks::shared(Store::open_in_memory())).await;
    assert!(started.is_err());
}
