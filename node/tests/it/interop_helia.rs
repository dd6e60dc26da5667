//! A running `ipfm station` against Helia 7 (npm `helia`, `@helia/ipns`, `@helia/unixfs`,
//! `@helia/verified-fetch`, `@libp2p/kad-dht`, `@libp2p/gossipsub`) over loopback: the way a
//! JavaScript IPFS node, or a gateway built on verified-fetch, reaches a station.
//!
//! Each test starts a station in-process and runs `tests/interop/helia/station_client.mjs`
//! (a Helia node whose only peer is the station's loopback multiaddr) as a child process
//! with a deadline, then checks what Helia got against the station's own store and gateway.
//! Needs the npm harness from `make deps`.

use crate::common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{http_get, node_command, run, sha256_hex, HttpResponse, InProcessStation};
use ipfm_encoder::EncoderConfig;
use ipfm_node::repo::Repo;
use ipfm_node::station::network::P2pConfig;
use ipfm_node::station::{StationConfig, StationInfo};
use ipfm_protocol::cid::raw_cid;
use ipfm_protocol::Cid;
use ipfm_store::{Blockstore, Store};
use libp2p::multiaddr::Protocol;
use libp2p::Multiaddr;
use serde_json::Value;

/// Bound on station start-up and HTTP waits (segments every 2 s; loaded 2-core machine).
const WAIT: Duration = Duration::from_secs(90);
/// What the Helia script allows itself (it prints a JSON error and exits when it runs out).
const HELIA_DEADLINE: Duration = Duration::from_secs(60);
/// When the Rust side kills the script: its own deadline, plus Node start-up and shutdown.
const HELIA_KILL: Duration = Duration::from_secs(90);

/// A station running in this process, with the loopback libp2p address Helia dials.
struct RunningStation {
    info: StationInfo,
    p2p_addr: Multiaddr,
    store: Store,
    repo: Repo,
    station: InProcessStation,
    _dir: tempfile::TempDir,
}

impl RunningStation {
    /// Starts the built-in demo program with 2 s segments and waits for the first root.
    async fn start() -> RunningStation {
        let dir = tempfile::tempdir().expect("temp dir");
        let repo = Repo::init(&dir.path().join("repo"))
            .await
            .expect("repo init")
            .repo;
        let store = repo.store().clone();
        let key = store.load_or_create_key().await.expect("station key");
        let config = StationConfig {
            encoder: EncoderConfig {
                segment_target: Duration::from_secs(2),
                ..EncoderConfig::default()
            },
            window: 3,
            retention: Duration::from_secs(60),
            p2p: Some(P2pConfig::loopback()),
            ..StationConfig::default()
        };
        let station = InProcessStation::start(store.clone(), key, config, WAIT).await;
        let info = station.info.clone();
        let p2p_addr = info
            .p2p_addrs
            .iter()
            .find(|a| matches!(a.iter().nth(1), Some(Protocol::Tcp(port)) if port != 0))
            .expect("a bound loopback TCP address")
            .clone();
        let station = RunningStation {
            info,
            p2p_addr,
            store,
            repo,
            station,
            _dir: dir,
        };
        tokio::time::timeout(WAIT, async {
            while get(station.info.listen, "/healthz").await.status != 200 {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
        .await
        .expect("first root published in time");
        station
    }

    async fn get(&self, path: &str) -> HttpResponse {
        get(self.info.listen, path).await
    }

    /// The station's current `master.m3u8` and the root it came from.
    async fn master(&self) -> (String, String) {
        let master = self
            .get(&format!("/ipns/{}/master.m3u8", self.info.ipns_name))
            .await;
        assert_eq!(master.status, 200, "GET master.m3u8 from the station");
        let root = master.roots.first().expect("X-Ipfs-Roots").clone();
        (
            root,
            String::from_utf8(master.body).expect("UTF-8 playlist"),
        )
    }

    /// Bytes of `cid` in the station's own store (not fetched from anyone).
    async fn stored(&self, cid: &str) -> Vec<u8> {
        let parsed =
            Cid::try_from(cid).unwrap_or_else(|e| panic!("Helia printed a bad CID {cid}: {e}"));
        self.store
            .get(&parsed)
            .await
            .expect("reading the store")
            .unwrap_or_else(|| panic!("{cid} is not in the station's store: not a station block"))
    }

    /// Checks a root Helia resolved: a station root (in its store) whose `master.m3u8`
    /// is the one Helia read.
    async fn check_resolved_root(&self, value: &str, helia_master: &str) {
        let root = value
            .strip_prefix("/ipfs/")
            .unwrap_or_else(|| panic!("IPNS value {value} is not an /ipfs/ path"));
        self.stored(root).await;
        let served = self.get(&format!("/ipfs/{root}/master.m3u8")).await;
        assert_eq!(served.status, 200, "GET /ipfs/{root}/master.m3u8");
        assert_eq!(
            helia_master.as_bytes(),
            served.body,
            "master.m3u8 as Helia read it vs the station's gateway"
        );
    }

    async fn shutdown(self) {
        self.station.stop().await;
        self.repo.close().await.expect("repo closes");
    }
}

async fn get(addr: SocketAddr, path: &str) -> HttpResponse {
    http_get(addr, path, WAIT).await
}

/// Runs the Helia client in `mode` against the station; returns its JSON once it reports
/// success, or fails the test with everything it said.
async fn helia(station: &RunningStation, mode: &str, target: &str) -> Value {
    let mut cmd = node_command("helia/station_client.mjs");
    cmd.arg(mode)
        .arg(station.p2p_addr.to_string())
        .arg(target)
        .arg(HELIA_DEADLINE.as_millis().to_string());
    let finished = tokio::task::spawn_blocking(move || run(cmd, HELIA_KILL))
        .await
        .expect("the Helia runner thread");
    let json = finished.json();
    assert!(
        finished.status.success() && json["ok"] == true,
        "Helia {mode} failed ({}): {json}\nstderr:\n{}",
        finished.status,
        finished.stderr
    );
    json
}

fn text<'a>(json: &'a Value, key: &str) -> &'a str {
    json[key]
        .as_str()
        .unwrap_or_else(|| panic!("Helia printed no {key:?}: {json}"))
}

/// The newest segment of the first variant of `root`: its CID, from the gateway.
async fn newest_segment(station: &RunningStation, root: &str, master: &str) -> String {
    let variant = master
        .lines()
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .expect("a variant in master.m3u8");
    let playlist = station.get(&format!("/ipfs/{root}/{variant}")).await;
    assert_eq!(playlist.status, 200, "GET {variant}");
    let text = String::from_utf8(playlist.body).expect("UTF-8 playlist");
    let uri = text
        .lines()
        .rfind(|l| !l.is_empty() && !l.starts_with('#'))
        .expect("a segment in the live playlist");
    let dir = variant
        .rsplit_once('/')
        .map_or(String::new(), |(d, _)| format!("{d}/"));
    let segment = station
        .get(&format!("/ipfs/{root}/{dir}{uri}?format=raw"))
        .await;
    assert_eq!(segment.status, 200, "GET {dir}{uri}");
    let cid = segment.roots.last().expect("X-Ipfs-Roots").clone();
    assert_eq!(
        raw_cid(&segment.body).to_string(),
        cid,
        "segments are raw blocks"
    );
    cid
}

/// (e1) Helia, with the station as its only peer, fetches a live segment over bitswap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helia_fetches_a_station_segment_over_bitswap() {
    let station = RunningStation::start().await;
    let (root, master) = station.master().await;
    let cid = newest_segment(&station, &root, &master).await;

    let got = helia(&station, "bitswap", &cid).await;
    assert_eq!(got["verified"], true, "Helia: bytes hash to the CID: {got}");
    let ours = station.stored(&cid).await;
    assert_eq!(got["len"].as_u64(), Some(ours.len() as u64), "{got}");
    assert_eq!(text(&got, "sha256"), sha256_hex(&ours), "{got}");
    station.shutdown().await;
}

/// (e2) Helia resolves the station's name through the DHT (kad-dht GET_VALUE, on Kubo's
/// LAN protocol id, which ipfm accepts loopback peers on) and reads the root's
/// master.m3u8 with @helia/unixfs over bitswap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helia_resolves_the_station_name_through_the_dht() {
    let station = RunningStation::start().await;

    let got = helia(&station, "dht-ipns", &station.info.ipns_name).await;
    station
        .check_resolved_root(text(&got, "value"), text(&got, "master"))
        .await;
    station.shutdown().await;
}

/// (e3) Helia subscribes to the name's IPNS-over-pubsub topic (Kubo's `/record/…`): its
/// first get fetches the current record from the station over `/libp2p/fetch`, then the
/// station's next publication arrives, validates and resolves the name (no DHT involved).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helia_resolves_the_station_name_over_pubsub() {
    let station = RunningStation::start().await;

    let got = helia(&station, "pubsub-ipns", &station.info.ipns_name).await;
    assert_eq!(
        text(&got, "first_get"),
        "returned a record",
        "the station answers /libp2p/fetch for its name: {got}"
    );
    let fetched: u64 = text(&got, "fetched_sequence").parse().expect("a sequence");
    let pushed: u64 = text(&got, "pushed_sequence").parse().expect("a sequence");
    assert!(
        fetched <= pushed,
        "the fetched record is the one served before the next push: {got}"
    );
    assert!(text(&got, "fetched_value").starts_with("/ipfs/"), "{got}");
    assert_eq!(
        text(&got, "value"),
        text(&got, "pushed_value"),
        "the name resolves to what the station pushed: {got}"
    );
    station
        .check_resolved_root(text(&got, "value"), text(&got, "master"))
        .await;
    station.shutdown().await;
}

/// (f) `@helia/verified-fetch`, the library behind JavaScript gateways and service workers,
/// fetches `ipns://<station>/master.m3u8`, a variant playlist and its newest segment. It
/// needs the name on the DHT and the content provided (its block sessions look for
/// providers, not just connected peers).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verified_fetch_plays_the_station_by_its_ipns_url() {
    let station = RunningStation::start().await;

    let got = helia(&station, "verified-fetch", &station.info.ipns_name).await;
    // `value`: the root verified-fetch resolved the name to (its x-ipfs-roots).
    station
        .check_resolved_root(text(&got, "value"), text(&got, "master"))
        .await;
    let segment = station.stored(text(&got, "segment_cid")).await;
    assert_eq!(
        got["segment_len"].as_u64(),
        Some(segment.len() as u64),
        "{got}"
    );
    assert_eq!(text(&got, "segment_sha256"), sha256_hex(&segment), "{got}");
    station.shutdown().await;
}
