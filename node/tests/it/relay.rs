//! Relays on loopback (run in the loopback namespace: `scripts/in-loopback-netns.sh`).
//!
//! - a live station and a relay: the relay holds every announced root, its gateway serves
//!   `/ipns/<station>/` byte-equal to the station; the station stops: the relay keeps
//!   serving, says offline, and a node that never met the station resolves the name from
//!   it; the station restarts on the same repo: the relay follows the higher sequence;
//! - forged, corrupted and mismatching announcements are rejected, a replayed older one is
//!   ignored, an unfetchable root is not forwarded, and the relay keeps following;
//! - a peer answering every want with wrong-hash blocks is dropped, and the relay still
//!   fetches, verifies and serves every root from the station;
//! - a relay connected only to another relay gets every root (store-and-forward), also when
//!   it could reach the station but blocks it (`FollowConfig::blocked_peers`).

use crate::common;
use common::{http_get, tcp_addr, HttpResponse, InProcessRelay, InProcessStation};

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use ed25519_dalek::SigningKey;
use ipfm_encoder::EncoderConfig;
use ipfm_node::follow::FollowedRoot;
use ipfm_node::net::swarm::{keypair_from_ed25519, spawn, Client, NetworkConfig};
use ipfm_node::net::StoreBlocks;
use ipfm_node::relay::{Relay, RelayConfig};
use ipfm_node::repo::Repo;
use ipfm_node::station::announce::AnnouncePublisher;
use ipfm_node::station::network::P2pConfig;
use ipfm_node::station::{Publisher, RootUpdate, StationConfig};
use ipfm_protocol::announce::{self, Announcement};
use ipfm_protocol::builder::{build_file, CidMode, DirectoryBuilder};
use ipfm_protocol::cid::raw_cid;
use ipfm_protocol::ipns::IpnsRecord;
use ipfm_protocol::peer::PeerId;
use ipfm_protocol::Cid;
use ipfm_store::{Blockstore, Store};
use libp2p::identity::Keypair;
use libp2p::Multiaddr;
use tokio::sync::watch;

const WAIT: Duration = Duration::from_secs(60);

fn random_key() -> SigningKey {
    SigningKey::from_bytes(&rand::random())
}

/// Relay settings for tests: loopback, dial `start`, offline after 4 s of silence.
fn relay_config(station: PeerId, start: Vec<Multiaddr>) -> RelayConfig {
    let mut config = RelayConfig::new(station, P2pConfig::loopback());
    config.follow.start_addrs = start;
    config.follow.fetch_timeout = Duration::from_secs(15);
    config.follow.resolve_timeout = Duration::from_secs(3);
    config.follow.min_offline_after = Duration::from_secs(4);
    config.retention = Duration::from_secs(60);
    config
}

async fn get(addr: SocketAddr, path: &str) -> HttpResponse {
    http_get(addr, path, WAIT).await
}

/// GET `path` until it answers 200, within `WAIT`; the last answer. The follower counts a
/// root in its status as soon as it holds it whole; the relay's keeper then pins it and
/// hands its record to the gateway, so `/ipns/` serves it a moment later.
async fn get_once_served(addr: SocketAddr, path: &str) -> HttpResponse {
    let deadline = Instant::now() + WAIT;
    loop {
        let response = get(addr, path).await;
        if response.status == 200 || Instant::now() >= deadline {
            return response;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The last segment URI of an HLS playlist.
fn last_segment(playlist: &[u8]) -> String {
    String::from_utf8_lossy(playlist)
        .lines()
        .rfind(|l| !l.is_empty() && !l.starts_with('#'))
        .expect("a segment in the playlist")
        .to_string()
}

fn station_config(p2p: P2pConfig) -> StationConfig {
    StationConfig {
        encoder: EncoderConfig {
            segment_target: Duration::from_secs(2),
            ..EncoderConfig::default()
        },
        window: 3,
        retention: Duration::from_secs(60),
        p2p: Some(p2p),
        ..StationConfig::default()
    }
}

fn loopback_tcp(addrs: &[Multiaddr]) -> Multiaddr {
    use libp2p::multiaddr::Protocol;
    addrs
        .iter()
        .find(|a| {
            a.iter()
                .any(|p| matches!(p, Protocol::Tcp(port) if port != 0))
        })
        .expect("a bound TCP address")
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_serves_the_station_keeps_its_name_alive_and_resumes_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::init(&dir.path().join("station")).await.unwrap().repo;
    let station_store = repo.store().clone();
    let station_key = station_store.load_or_create_key().await.unwrap();
    let name = PeerId::from_ed25519(&station_key.verifying_key());
    let k51 = name.to_ipns_name();
    let station = InProcessStation::start(
        station_store.clone(),
        station_key.clone(),
        station_config(P2pConfig::loopback()),
        WAIT,
    )
    .await;
    let rendition = EncoderConfig::default().renditions[0].name.clone();
    let station_addr = loopback_tcp(&station.info.p2p_addrs);

    let relay_store = Store::open_in_memory();
    let relay = InProcessRelay::start(
        relay_store.clone(),
        random_key(),
        relay_config(name, vec![station_addr]),
        WAIT,
    )
    .await;
    assert_eq!(
        relay.info.gateway_url,
        format!("http://{}/ipns/{k51}/", relay.info.listen)
    );

    // Several announced roots in, each fetched whole (no fetch failure, nothing refused).
    let status = relay
        .await_status(WAIT, "the relay follows three roots", |s| {
            s["accepted"].as_u64() >= Some(3)
        })
        .await;
    assert_eq!(status["station"], k51);
    assert_eq!(status["online"], true);
    assert_eq!(status["fetch_failures"], 0, "{status}");
    assert_eq!(status["rejected"], 0, "{status}");
    assert_eq!(get(relay.info.listen, "/healthz").await.status, 200);

    // The relay's /ipns/ playlist and its newest segment are the station's bytes.
    let playlist = get(relay.info.listen, &format!("/ipns/{k51}/{rendition}.m3u8")).await;
    assert_eq!(playlist.status, 200);
    let root = playlist.roots.first().expect("X-Ipfs-Roots").clone();
    let at_station = get(
        station.info.listen,
        &format!("/ipfs/{root}/{rendition}.m3u8"),
    )
    .await;
    assert_eq!(at_station.status, 200);
    assert_eq!(playlist.body, at_station.body, "playlist of {root}");
    let uri = last_segment(&playlist.body);
    let segment = get(relay.info.listen, &format!("/ipns/{k51}/{uri}")).await;
    let station_segment = get(station.info.listen, &format!("/ipfs/{root}/{uri}")).await;
    assert_eq!((segment.status, station_segment.status), (200, 200));
    assert!(!segment.body.is_empty());
    assert_eq!(segment.body, station_segment.body, "segment {uri}");
    let player = get(relay.info.listen, &format!("/ipns/{k51}/")).await;
    assert_eq!(player.status, 200);

    // The station goes away.
    station.stop().await;
    let offline = relay
        .await_status(WAIT, "the relay notices the station is gone", |s| {
            s["online"] == false && s["offline_since"].is_string()
        })
        .await;
    let last_sequence = offline["last_sequence"].as_u64().expect("a sequence");
    let last_root = offline["last_root"].as_str().expect("a root").to_string();
    // The window is still served, from the relay's own store.
    let playlist = get(relay.info.listen, &format!("/ipns/{k51}/{rendition}.m3u8")).await;
    assert_eq!(playlist.status, 200);
    assert_eq!(playlist.roots.first(), Some(&last_root));
    for uri in String::from_utf8_lossy(&playlist.body)
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let segment = get(
            relay.info.listen,
            &format!("/ipfs/{last_root}/{uri}?format=raw"),
        )
        .await;
        assert_eq!(segment.status, 200, "{uri} after the station stopped");
        let cid = segment.roots.last().expect("X-Ipfs-Roots").clone();
        assert_eq!(raw_cid(&segment.body).to_string(), cid, "{uri} verifies");
    }

    // A node that never talked to the station resolves the name through the relay.
    let third = node(Keypair::generate_ed25519(), Store::open_in_memory()).await;
    third.dial(relay.tcp_addr()).await.expect("dials the relay");
    let record = resolve_until(&third, &name, last_sequence).await;
    assert_eq!(
        record.value_str(),
        Some(format!("/ipfs/{last_root}").as_str())
    );
    record.validate(&name, SystemTime::now()).unwrap();

    // The station restarts on its repo (new port; it dials the relay as its bootstrap).
    let mut p2p = P2pConfig::loopback();
    p2p.bootstrap = vec![relay.tcp_addr()];
    let station = InProcessStation::start(
        station_store.clone(),
        station_key.clone(),
        station_config(p2p),
        WAIT,
    )
    .await;
    let resumed = relay
        .await_status(WAIT, "the relay resumes with a higher sequence", |s| {
            s["online"] == true && s["last_sequence"].as_u64() > Some(last_sequence)
        })
        .await;
    assert!(resumed["offline_since"].is_null(), "{resumed}");
    assert_eq!(resumed["fetch_failures"], 0, "{resumed}");

    relay.stop().await;
    station.stop().await;
    repo.close().await.unwrap();
}

async fn node(keypair: Keypair, store: Store) -> Client {
    node_with(keypair, store, true).await
}

/// A loopback swarm; without `listening` it can only dial out, so no peer can reach it
/// except over a connection it opened.
async fn node_with(keypair: Keypair, store: Store, listening: bool) -> Client {
    let mut config = NetworkConfig::loopback(keypair);
    config.wan_dht = false;
    if !listening {
        config.listen_addrs.clear();
    }
    let (client, _task) = tokio::time::timeout(WAIT, spawn(config, StoreBlocks::shared(store)))
        .await
        .expect("swarm starts in time")
        .expect("swarm starts");
    client
}

/// Resolves `name` (retrying while the routing table fills) until a record with at least
/// `sequence` comes back.
async fn resolve_until(client: &Client, name: &PeerId, sequence: u64) -> IpnsRecord {
    tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(record) = client.resolve_ipns(name, Duration::from_secs(5)).await {
                if record.sequence() >= sequence {
                    return record;
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
    .await
    .expect("the name resolves through the relay")
}

/// A station without an encoder: real roots (a `nowplaying.json` and one segment-sized
/// file each) announced by the real [`AnnouncePublisher`] from its own swarm.
struct HandBuiltStation {
    key: SigningKey,
    name: PeerId,
    client: Client,
    store: Store,
    publisher: AnnouncePublisher,
    sequence: u64,
}

impl HandBuiltStation {
    async fn start(listening: bool) -> HandBuiltStation {
        let key = random_key();
        let store = Store::open_in_memory();
        let client = node_with(keypair_from_ed25519(&key), store.clone(), listening).await;
        let publisher = AnnouncePublisher::new(client.clone(), key.clone(), store.clone());
        HandBuiltStation {
            name: PeerId::from_ed25519(&key.verifying_key()),
            key,
            client,
            store,
            publisher,
            sequence: 0,
        }
    }

    /// A new root stored at the station (not announced), with its record.
    async fn next_root(&mut self) -> RootUpdate {
        self.sequence += 1;
        let sequence = self.sequence;
        let mode = CidMode::V1RawLeaves;
        let json =
            serde_json::json!({"now": {"title": format!("Track {sequence}"), "artist": "Relays"}});
        let (info, blocks) = build_file(json.to_string().as_bytes(), mode);
        let segment_bytes = common::pseudo_random_bytes(300_000, sequence);
        let (segment, segment_blocks) = build_file(&segment_bytes, mode);
        for block in blocks.into_iter().chain(segment_blocks) {
            self.store.put(&block.cid, block.data).await.unwrap();
        }
        let mut dir = DirectoryBuilder::new(mode);
        dir.add("nowplaying.json", info.cid, info.tsize).unwrap();
        dir.add(
            &format!("segment-{sequence}.ts"),
            segment.cid,
            segment.tsize,
        )
        .unwrap();
        let (root, block) = dir.finish();
        self.store.put(&block.cid, block.data).await.unwrap();
        RootUpdate {
            name: self.name,
            record: record_for(&self.key, &root.cid, sequence),
            root: root.cid,
            new_segments: vec![segment.cid],
        }
    }

    /// Stores and announces the next root.
    async fn announce(&mut self) -> RootUpdate {
        let update = self.next_root().await;
        self.publisher.publish(&update).await.expect("announced");
        update
    }
}

fn record_for(key: &SigningKey, root: &Cid, sequence: u64) -> IpnsRecord {
    IpnsRecord::create(
        key,
        &format!("/ipfs/{root}"),
        sequence,
        SystemTime::now() + Duration::from_secs(3600),
        Duration::from_secs(1),
    )
}

/// Waits until `client` sees `peer` subscribed to `topic`.
async fn await_topic_peer(client: &Client, topic: &str, peer: libp2p::PeerId) {
    tokio::time::timeout(WAIT, async {
        while !client.topic_peers(topic).await.unwrap().contains(&peer) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("topic subscription propagates");
}

/// Waits (bounded) until `roots` holds a root with at least `sequence`; returns it.
async fn await_root(
    roots: &mut watch::Receiver<Option<FollowedRoot>>,
    sequence: u64,
    within: Duration,
) -> Option<FollowedRoot> {
    tokio::time::timeout(within, async {
        loop {
            if let Some(root) = roots.borrow_and_update().clone() {
                if root.sequence >= sequence {
                    return root;
                }
            }
            roots.changed().await.expect("relay running");
        }
    })
    .await
    .ok()
}

/// The station announces until one root reaches `relay` (until gossipsub's mesh between
/// the relays has formed, on its heartbeat, the relay in between may have no one to forward
/// to), then each of the next `count` roots must arrive, with its record, whole in `store`.
async fn assert_roots_come_through_a_relay(
    station: &mut HandBuiltStation,
    relay: &Relay,
    store: &Store,
    count: usize,
) {
    let mut roots = relay.roots();
    let mut warmed_up = false;
    for _ in 0..20 {
        let update = station.announce().await;
        if await_root(&mut roots, update.record.sequence(), Duration::from_secs(3))
            .await
            .is_some()
        {
            warmed_up = true;
            break;
        }
    }
    assert!(warmed_up, "no root ever reached the relay behind the first");
    for _ in 0..count {
        let update = station.announce().await;
        let followed = await_root(&mut roots, update.record.sequence(), WAIT)
            .await
            .expect("the relay gets the root through the first");
        assert_eq!(followed.root, update.root);
        assert_eq!(followed.record.as_bytes(), update.record.as_bytes());
        assert!(held_whole(store, update.root).await);
    }
}

/// Every block of `root`'s DAG is in `store` and hashes to its CID (walked locally, no
/// network).
async fn held_whole(store: &Store, root: Cid) -> bool {
    let mut queue = vec![root];
    while let Some(cid) = queue.pop() {
        let Some(bytes) = store.get(&cid).await.unwrap() else {
            return false;
        };
        if raw_cid(&bytes).hash() != cid.hash() {
            return false;
        }
        if cid.codec() == ipfm_protocol::cid::DAG_PB {
            queue.extend(ipfm_protocol::dagpb::links(&bytes).unwrap());
        }
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_or_unfetchable_announcements_do_not_stop_the_relay() {
    let mut station = HandBuiltStation::start(true).await;
    let relay_store = Store::open_in_memory();
    let relay = Relay::start(
        relay_store.clone(),
        &random_key(),
        relay_config(station.name, Vec::new()),
    )
    .await
    .expect("relay starts");
    let relay_addr = tcp_addr(relay.client()).await;
    let topic = announce::topic(&station.name);
    let attacker_key = random_key();
    let attacker = node(keypair_from_ed25519(&attacker_key), Store::open_in_memory()).await;
    let _attacker_subscription = attacker.subscribe(&topic).await.unwrap();
    for peer in [&station.client, &attacker] {
        peer.dial(relay_addr.clone())
            .await
            .expect("dials the relay");
        await_topic_peer(peer, &topic, relay.client().peer_id()).await;
    }
    let mut roots = relay.roots();
    let first = station.announce().await;
    let followed = await_root(&mut roots, first.record.sequence(), WAIT)
        .await
        .expect("the relay follows the first root");
    assert_eq!(followed.root, first.root);
    assert_eq!(followed.record, first.record);
    assert_eq!(followed.new_segments, first.new_segments);
    assert_eq!(followed.now_playing.unwrap().title, "Track 1");
    assert!(held_whole(&relay_store, first.root).await);

    // Three forgeries of the next root, each followed by the station's real one.
    let attacks = ["forged signature", "corrupted", "record for another root"];
    for (rejected_before, attack) in attacks.into_iter().enumerate() {
        let update = station.next_root().await;
        let honest = station.publisher.announcement(&update).await.unwrap();
        let bytes = match attack {
            "forged signature" => common::announcement_signed_by(&honest, &attacker_key),
            "corrupted" => {
                let mut bytes = honest.clone();
                let middle = bytes.len() / 2;
                bytes[middle] ^= 0x40;
                bytes
            }
            _ => {
                // Signed by the station key, but the record names another root: what a
                // buggy or compromised publisher would send. The receiver must not serve it.
                let other = raw_cid(b"not the announced root");
                Announcement::new(
                    station.name,
                    update.record.sequence(),
                    update.root,
                    update.new_segments.clone(),
                    None,
                    SystemTime::now(),
                    record_for(&station.key, &other, update.record.sequence()).to_bytes(),
                )
                .sign(&station.key)
                .unwrap()
            }
        };
        attacker
            .publish(&topic, bytes)
            .await
            .expect("attacker publishes");
        let expected_rejects = rejected_before as u64 + 1;
        let status = relay.follow_status();
        tokio::time::timeout(WAIT, async {
            let mut status = status;
            while status.borrow_and_update().rejected < expected_rejects {
                status.changed().await.expect("relay running");
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{attack}: rejected in time"));
        station.publisher.publish(&update).await.expect("announced");
        let followed = await_root(&mut roots, update.record.sequence(), WAIT)
            .await
            .unwrap_or_else(|| panic!("{attack}: the relay follows the next real root"));
        assert_eq!(followed.root, update.root, "{attack}");
    }

    // A replay: the station's own signed announcement of an older sequence, sent again by
    // another peer (a fresh one: the attacker is graylisted by now). Authentic, so not
    // rejected, but ignored: the relay never goes back.
    let replayer = node(Keypair::generate_ed25519(), Store::open_in_memory()).await;
    let _replayer_subscription = replayer.subscribe(&topic).await.unwrap();
    replayer
        .dial(relay_addr.clone())
        .await
        .expect("dials the relay");
    await_topic_peer(&replayer, &topic, relay.client().peer_id()).await;
    let before = relay.follow_status().borrow().clone();
    let replayed = station.publisher.announcement(&first).await.unwrap();
    replayer
        .publish(&topic, replayed)
        .await
        .expect("replayer publishes");
    let mut status = relay.follow_status();
    tokio::time::timeout(WAIT, async {
        while status.borrow_and_update().ignored <= before.ignored {
            status.changed().await.expect("relay running");
        }
    })
    .await
    .expect("the replay is ignored in time");
    let after = relay.follow_status().borrow().clone();
    assert_eq!(after.last_sequence, before.last_sequence, "{after:?}");
    assert_eq!(after.last_root, before.last_root, "{after:?}");
    assert_eq!(after.rejected, before.rejected, "{after:?}");

    // An authentic announcement of a root nobody holds: not followed, not forwarded, and
    // the relay goes on with the next one.
    station.sequence += 1;
    let missing = raw_cid(b"a root that was never stored");
    let unfetchable = RootUpdate {
        name: station.name,
        record: record_for(&station.key, &missing, station.sequence),
        root: missing,
        new_segments: Vec::new(),
    };
    station
        .publisher
        .publish(&unfetchable)
        .await
        .expect("announced");
    let next = station.announce().await;
    let followed = await_root(&mut roots, next.record.sequence(), WAIT)
        .await
        .expect("the relay follows the root after the unfetchable one");
    assert_eq!(followed.root, next.root);
    let status = relay.follow_status().borrow().clone();
    assert_eq!(status.rejected, 3, "{status:?}");
    assert_eq!(status.fetch_failures, 1, "{status:?}");
    assert_eq!(status.last_sequence, Some(next.record.sequence()));
    // The relay pins the followed root (right after handing it out).
    let pin = format!("relay:{}:current", station.name.to_ipns_name());
    tokio::time::timeout(WAIT, async {
        while relay_store.pinned(&pin).await.unwrap() != Some(next.root) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the current root is pinned");
    relay.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_behind_a_relay_gets_every_root() {
    // Not listening: the second relay cannot reach the station even if the DHT tells it
    // about it; every block must come through the first relay.
    let mut station = HandBuiltStation::start(false).await;
    let topic = announce::topic(&station.name);
    let first_store = Store::open_in_memory();
    let first = Relay::start(
        first_store,
        &random_key(),
        relay_config(station.name, Vec::new()),
    )
    .await
    .expect("first relay starts");
    let first_addr = tcp_addr(first.client()).await;
    station
        .client
        .dial(first_addr.clone())
        .await
        .expect("station dials the first relay");
    // The second relay knows only the first one.
    let second_store = Store::open_in_memory();
    let second = Relay::start(
        second_store.clone(),
        &random_key(),
        relay_config(station.name, vec![first_addr]),
    )
    .await
    .expect("second relay starts");
    await_topic_peer(&station.client, &topic, first.client().peer_id()).await;
    await_topic_peer(first.client(), &topic, second.client().peer_id()).await;
    assert!(!second
        .client()
        .connected_peers()
        .await
        .unwrap()
        .contains(&station.client.peer_id()));

    assert_roots_come_through_a_relay(&mut station, &second, &second_store, 5).await;
    assert!(!second
        .client()
        .connected_peers()
        .await
        .unwrap()
        .contains(&station.client.peer_id()));
    let status = second.follow_status().borrow().clone();
    assert_eq!(
        (status.rejected, status.fetch_failures),
        (0, 0),
        "{status:?}"
    );
    second.stop().await.unwrap();
    first.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_serving_wrong_hash_blocks_is_dropped_and_the_relay_keeps_following() {
    let mut station = HandBuiltStation::start(true).await;
    let k51 = station.name.to_ipns_name();
    let topic = announce::topic(&station.name);
    let relay_store = Store::open_in_memory();
    let relay = InProcessRelay::start(
        relay_store.clone(),
        random_key(),
        relay_config(station.name, Vec::new()),
        WAIT,
    )
    .await;
    let relay_peer: libp2p::PeerId = relay.info.peer_id.parse().expect("a peer id");
    // The forger connects before the station, so it hears every want from the first root
    // on, and answers each of them (want-have and want-block) with forged bytes.
    let forger = common::ForgingBitswapPeer::connect(relay.tcp_addr()).await;
    station
        .client
        .dial(relay.tcp_addr())
        .await
        .expect("station dials the relay");
    await_topic_peer(&station.client, &topic, relay_peer).await;

    for round in 0..4 {
        let update = station.announce().await;
        let sequence = update.record.sequence();
        let status = relay
            .await_status(WAIT, &format!("round {round}: the relay follows"), |s| {
                s["last_sequence"].as_u64() >= Some(sequence)
            })
            .await;
        assert_eq!(status["last_root"], update.root.to_string(), "{status}");
        assert!(
            held_whole(&relay_store, update.root).await,
            "round {round}: every block of {} is stored and hashes to its CID",
            update.root
        );
        // The relay's gateway serves the station's bytes under its name.
        let path = format!("/ipns/{k51}/segment-{sequence}.ts");
        let segment = get_once_served(relay.info.listen, &path).await;
        assert_eq!(segment.status, 200, "{path}");
        assert_eq!(segment.roots.first(), Some(&update.root.to_string()));
        assert!(
            segment.body == common::pseudo_random_bytes(300_000, sequence),
            "{path}: not the station's bytes"
        );
        if round == 0 {
            // The forgeries were sent (this test cannot pass without them), and the relay
            // dropped their sender.
            assert!(
                forger.forged_blocks_sent() > 0,
                "the relay never asked the forger"
            );
            assert!(
                forger.await_disconnected(WAIT).await,
                "the relay keeps the forger connected"
            );
        }
    }
    let status = relay.status(WAIT).await;
    assert_eq!(status["fetch_failures"], 0, "{status}");
    assert_eq!(status["rejected"], 0, "{status}");
    assert_eq!(status["station_connected"], true, "{status}");
    assert_eq!(status["online"], true, "{status}");
    let peers = station.client.connected_peers().await.unwrap();
    assert!(peers.contains(&relay_peer), "the station stays connected");
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_blocking_the_station_follows_it_through_another_relay() {
    let mut station = HandBuiltStation::start(true).await;
    let station_peer = station.client.peer_id();
    let station_addr = tcp_addr(&station.client).await;
    let topic = announce::topic(&station.name);
    let first = Relay::start(
        Store::open_in_memory(),
        &random_key(),
        relay_config(station.name, vec![station_addr.clone()]),
    )
    .await
    .expect("first relay starts");
    let first_addr = tcp_addr(first.client()).await;
    // The second relay is even given the station's address, but blocks it.
    let second_store = Store::open_in_memory();
    let mut config = relay_config(station.name, vec![station_addr, first_addr]);
    config.follow.blocked_peers = vec![station_peer];
    let second = Relay::start(second_store.clone(), &random_key(), config)
        .await
        .expect("second relay starts");
    let second_addr = tcp_addr(second.client()).await;
    await_topic_peer(&station.client, &topic, first.client().peer_id()).await;
    await_topic_peer(first.client(), &topic, second.client().peer_id()).await;
    // Inbound is refused too: the station's connection to the second relay is closed (on
    // the station's side it may come up before the relay closes it).
    let _ = station.client.dial(second_addr).await;
    let second_peer = second.client().peer_id();
    tokio::time::timeout(WAIT, async {
        while station
            .client
            .connected_peers()
            .await
            .unwrap()
            .contains(&second_peer)
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the blocking relay closes the station's connection");

    assert_roots_come_through_a_relay(&mut station, &second, &second_store, 3).await;
    assert!(!second
        .client()
        .connected_peers()
        .await
        .unwrap()
        .contains(&station_peer));
    assert!(!station
        .client
        .connected_peers()
        .await
        .unwrap()
        .contains(&second.client().peer_id()));
    second.stop().await.unwrap();
    first.stop().await.unwrap();
}
