//! `ipfm station` as an IPFS peer, against a real Kubo 0.22 over loopback: Kubo connects to
//! the multiaddr the station prints and fetches a live segment over bitswap (same bytes as
//! the gateway serves), and the station's gateway serves content only Kubo has, fetched over
//! bitswap. Needs the venv from `make deps`; plays the built-in demo program.

use crate::common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{http_get, sha256_hex, HttpResponse, InProcessStation, KuboPeer};
use ipfm_encoder::EncoderConfig;
use ipfm_node::repo::Repo;
use ipfm_node::station::network::P2pConfig;
use ipfm_node::station::StationConfig;
use ipfm_protocol::cid::raw_cid;
use libp2p::multiaddr::Protocol;
use serde_json::json;

/// Bound on every wait (realtime segments every 2 s; Kubo starts in seconds; loaded CI).
const WAIT: Duration = Duration::from_secs(90);

async fn get(addr: SocketAddr, path: &str) -> HttpResponse {
    http_get(addr, path, WAIT).await
}

async fn wait_until_published(addr: SocketAddr) {
    tokio::time::timeout(WAIT, async {
        while get(addr, "/healthz").await.status != 200 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("first publication in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubo_and_the_station_exchange_blocks_over_bitswap() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::init(&dir.path().join("repo")).await.unwrap().repo;
    let store = repo.store().clone();
    let key = store.load_or_create_key().await.unwrap();
    let encoder = EncoderConfig {
        segment_target: Duration::from_secs(2),
        ..EncoderConfig::default()
    };
    let rendition = encoder.renditions[0].name.clone();
    let config = StationConfig {
        encoder,
        window: 3,
        retention: Duration::from_secs(60),
        p2p: Some(P2pConfig::loopback()),
        ..StationConfig::default()
    };
    let station = InProcessStation::start(store, key, config, WAIT).await;
    let info = station.info.clone();

    // The printed addresses are dialable as-is: loopback TCP, ending in our peer id.
    let addr = info
        .p2p_addrs
        .iter()
        .find(|a| matches!(a.iter().nth(1), Some(Protocol::Tcp(port)) if port != 0))
        .expect("a bound TCP address")
        .clone();
    assert!(
        matches!(addr.iter().last(), Some(Protocol::P2p(peer)) if peer.to_base58() == info.peer_id),
        "{addr} ends in /p2p/{}",
        info.peer_id
    );

    wait_until_published(info.listen).await;
    let playlist = get(
        info.listen,
        &format!("/ipns/{}/{rendition}.m3u8", info.ipns_name),
    )
    .await;
    assert_eq!(playlist.status, 200);
    let root = playlist.roots.first().expect("X-Ipfs-Roots").clone();
    let text = String::from_utf8(playlist.body).unwrap();
    let uri = text
        .lines()
        .rfind(|l| !l.is_empty() && !l.starts_with('#'))
        .expect("a segment in the live playlist");
    let segment = get(info.listen, &format!("/ipfs/{root}/{uri}?format=raw")).await;
    assert_eq!(segment.status, 200, "GET {uri}");
    let cid = segment.roots.last().expect("X-Ipfs-Roots").clone();
    assert_eq!(raw_cid(&segment.body).to_string(), cid);

    // Kubo fetches that segment over bitswap from the station only (no DHT, no other peer).
    let content = common::pseudo_random_bytes(100_000, 11);
    let file = dir.path().join("kubo-only.bin");
    std::fs::write(&file, &content).unwrap();
    let (kubo, added) = tokio::task::spawn_blocking(move || {
        let mut kubo = KuboPeer::start();
        let connected = kubo.call_ok(json!({"cmd": "connect", "addr": addr.to_string()}), WAIT);
        assert_eq!(connected["connected"], true, "{connected}");
        let read = kubo.call_ok(json!({"cmd": "read", "cid": cid, "timeout": 45}), WAIT);
        assert_eq!(read["len"].as_u64(), Some(segment.body.len() as u64));
        assert_eq!(
            read["sha256"].as_str(),
            Some(sha256_hex(&segment.body).as_str())
        );
        let added = kubo.call_ok(json!({"cmd": "add", "path": file}), WAIT);
        (kubo, added["cid"].as_str().expect("cid").to_string())
    })
    .await
    .unwrap();

    // The station's gateway serves what only Kubo has, over bitswap.
    let remote = get(info.listen, &format!("/ipfs/{added}")).await;
    assert_eq!(remote.status, 200, "GET /ipfs/{added}");
    assert_eq!(sha256_hex(&remote.body), sha256_hex(&content));

    drop(kubo);
    station.stop().await;
    repo.close().await.unwrap();
}
