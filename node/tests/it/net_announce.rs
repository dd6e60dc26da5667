//! The station topic on loopback: a station announces each new root, a follower receives
//! them verified, and a third peer on the same topic cannot get forged, tampered, replayed
//! or oversized messages past the follower (nor forwarded through it to an observer).
//!
//! ```text
//! station ──┐
//! attacker ─┼── follower ── observer   (every peer dials the follower only)
//! ```

use crate::common;
use common::tcp_addr;
use std::time::{Duration, SystemTime};

use ed25519_dalek::SigningKey;
use ipfm_node::net::swarm::{keypair_from_ed25519, spawn, Client, GossipMessage, NetworkConfig};
use ipfm_node::net::StoreBlocks;
use ipfm_node::station::announce::{
    AnnouncePublisher, AnnouncementReceiver, Judged, Rejection, Verdict,
};
use ipfm_node::station::Publisher;
use ipfm_node::station::RootUpdate;
use ipfm_protocol::announce::{self, AnnounceError, Announcement, MAX_ANNOUNCEMENT_SIZE};
use ipfm_protocol::builder::{build_file, CidMode, DirectoryBuilder};
use ipfm_protocol::cid::raw_cid;
use ipfm_protocol::ipns::IpnsRecord;
use ipfm_protocol::peer::PeerId;
use ipfm_protocol::Cid;
use ipfm_store::{Blockstore, Store};
use libp2p::identity::Keypair;
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(30);
/// How long a message that must not arrive is given to arrive anyway.
const QUIET: Duration = Duration::from_secs(3);

async fn node(keypair: Keypair, store: Store) -> Client {
    let mut config = NetworkConfig::loopback(keypair);
    config.wan_dht = false;
    let (client, _task) = tokio::time::timeout(WAIT, spawn(config, StoreBlocks::shared(store)))
        .await
        .expect("swarm starts in time")
        .expect("swarm starts");
    client
}

/// Waits until `client` sees every peer in `peers` subscribed to `topic`.
async fn await_topic_peers(client: &Client, topic: &str, peers: &[libp2p::PeerId]) {
    tokio::time::timeout(WAIT, async {
        loop {
            let known = client.topic_peers(topic).await.unwrap();
            if peers.iter().all(|p| known.contains(p)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("topic subscriptions propagate");
}

/// A stored station root whose `nowplaying.json` names `title`, as the station builds it.
async fn station_root(store: &Store, title: &str) -> Cid {
    let mode = CidMode::V1RawLeaves;
    let json = serde_json::json!({"now": {"title": title, "artist": "The Testers"}});
    let (file, blocks) = build_file(json.to_string().as_bytes(), mode);
    for block in blocks {
        store.put(&block.cid, block.data).await.unwrap();
    }
    let mut dir = DirectoryBuilder::new(mode);
    dir.add("nowplaying.json", file.cid, file.tsize).unwrap();
    let (root, block) = dir.finish();
    store.put(&block.cid, block.data).await.unwrap();
    root.cid
}

async fn update(store: &Store, key: &SigningKey, sequence: u64) -> RootUpdate {
    let root = station_root(store, &format!("Track {sequence}")).await;
    RootUpdate {
        name: PeerId::from_ed25519(&key.verifying_key()),
        record: IpnsRecord::create(
            key,
            &format!("/ipfs/{root}"),
            sequence,
            SystemTime::now() + Duration::from_secs(3600),
            Duration::from_secs(1),
        ),
        root,
        new_segments: (0..3)
            .map(|r| raw_cid(format!("segment {sequence} rendition {r}").as_bytes()))
            .collect(),
    }
}

async fn next_judged(receiver: &mut AnnouncementReceiver) -> Judged {
    tokio::time::timeout(WAIT, receiver.next_judged())
        .await
        .expect("a message reaches the follower in time")
        .expect("the follower's network runs")
}

/// The station publishes `update`; the follower's next verdict must accept exactly it.
async fn expect_delivered(
    publisher: &AnnouncePublisher,
    receiver: &mut AnnouncementReceiver,
    update: &RootUpdate,
) {
    publisher.publish(update).await.expect("announced");
    let judged = next_judged(receiver).await;
    let Verdict::Accept(announcement) = judged.verdict else {
        panic!("expected the station's announcement, got {judged:?}");
    };
    assert_eq!(announcement.sequence, update.record.sequence());
    assert_eq!(announcement.root, update.root);
    assert_eq!(announcement.new_segments, update.new_segments);
    let playing = announcement.now_playing.expect("now playing announced");
    assert_eq!(playing.title, format!("Track {}", update.record.sequence()));
    assert_eq!(playing.artist, "The Testers");
}

fn drain(observed: &mut mpsc::Receiver<GossipMessage>) -> Vec<GossipMessage> {
    std::iter::from_fn(|| observed.try_recv().ok()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_get_verified_announcements_and_refuse_the_rest() {
    let station_key = SigningKey::from_bytes(&rand::random());
    let attacker_key = SigningKey::from_bytes(&rand::random());
    let station_id = PeerId::from_ed25519(&station_key.verifying_key());
    let topic = announce::topic(&station_id);
    let station_store = Store::open_in_memory();
    let station = node(keypair_from_ed25519(&station_key), station_store.clone()).await;
    let follower = node(Keypair::generate_ed25519(), Store::open_in_memory()).await;
    let attacker = node(keypair_from_ed25519(&attacker_key), Store::open_in_memory()).await;
    let observer = node(Keypair::generate_ed25519(), Store::open_in_memory()).await;
    let follower_addr = tcp_addr(&follower).await;
    for peer in [&station, &attacker, &observer] {
        peer.dial(follower_addr.clone())
            .await
            .expect("dials the follower");
    }

    let mut receiver = AnnouncementReceiver::subscribe(follower.clone(), station_id)
        .await
        .expect("follows the station");
    assert_eq!(receiver.topic(), topic);
    let _attacker_sub = attacker.subscribe(&topic).await.unwrap();
    let mut observed = observer.subscribe(&topic).await.unwrap();
    await_topic_peers(&station, &topic, &[follower.peer_id()]).await;
    await_topic_peers(&attacker, &topic, &[follower.peer_id()]).await;
    await_topic_peers(&follower, &topic, &[attacker.peer_id(), observer.peer_id()]).await;

    let publisher =
        AnnouncePublisher::new(station.clone(), station_key.clone(), station_store.clone());
    assert_eq!(publisher.topic(), topic);
    // Good announcements until the observer's mesh link to the follower carries them
    // (the mesh forms on gossipsub's heartbeat): accepted messages are forwarded.
    let mut sequence = 0;
    let mut forwarded = false;
    while !forwarded {
        sequence += 1;
        assert!(sequence <= 20, "accepted announcements never forwarded");
        let good = update(&station_store, &station_key, sequence).await;
        expect_delivered(&publisher, &mut receiver, &good).await;
        forwarded = tokio::time::timeout(QUIET, observed.recv()).await.is_ok();
    }
    let replayable = publisher
        .announcement(&update(&station_store, &station_key, sequence).await)
        .await
        .unwrap();

    // Each attack alone, then the station's next root: the verdict names the attacker.
    let future = update(&station_store, &station_key, sequence + 100).await;
    let future_bytes = publisher.announcement(&future).await.unwrap();
    let mut tampered = future_bytes.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0x01;
    let attacks: [(&str, Vec<u8>); 4] = [
        // Ignored, not penalised: replays are what honest relays re-publishing look like.
        ("replayed", replayable),
        (
            "forged with the wrong key",
            common::announcement_signed_by(&future_bytes, &attacker_key),
        ),
        ("tampered", tampered),
        ("oversized", vec![0xa2; MAX_ANNOUNCEMENT_SIZE + 1]),
    ];
    for (what, bytes) in attacks {
        attacker
            .publish(&topic, bytes)
            .await
            .expect("attacker publishes");
        let judged = next_judged(&mut receiver).await;
        assert_eq!(judged.propagation_source, attacker.peer_id(), "{what}");
        assert_eq!(judged.author, Some(attacker.peer_id()), "{what}");
        match (what, &judged.verdict) {
            ("replayed", Verdict::Ignore(_)) => {}
            (
                "oversized",
                Verdict::Reject(Rejection::Announcement(AnnounceError::TooLarge { .. })),
            ) => {}
            ("forged with the wrong key" | "tampered", Verdict::Reject(_)) => {}
            _ => panic!("{what}: unexpected verdict {:?}", judged.verdict),
        }
        sequence += 1;
        let good = update(&station_store, &station_key, sequence).await;
        expect_delivered(&publisher, &mut receiver, &good).await;
    }
    assert_eq!(receiver.highest_sequence(), Some(sequence));
    let stats = receiver.stats();
    assert_eq!((stats.ignored, stats.rejected), (1, 3));

    // Three rejects put the attacker below gossipsub's graylist threshold (-80): its
    // messages are no longer even handed to the validator.
    let score = follower
        .peer_score(attacker.peer_id())
        .await
        .unwrap()
        .expect("peer scoring is on");
    assert!(score < -80.0, "attacker's score {score}");
    // Authentic, but the attacker's own station's announcement on this station's topic.
    let authentic_other = Announcement::new(
        PeerId::from_ed25519(&attacker_key.verifying_key()),
        sequence + 1,
        future.root,
        Vec::new(),
        None,
        SystemTime::now(),
        future.record.to_bytes(),
    )
    .sign(&attacker_key)
    .unwrap();
    attacker
        .publish(&topic, authentic_other)
        .await
        .expect("attacker publishes");
    assert!(
        tokio::time::timeout(QUIET, receiver.next_judged())
            .await
            .is_err(),
        "a graylisted peer's message reached the validator"
    );
    sequence += 1;
    let good = update(&station_store, &station_key, sequence).await;
    expect_delivered(&publisher, &mut receiver, &good).await;

    // Nothing the attacker sent was forwarded to the observer; the station's were.
    tokio::time::sleep(QUIET).await;
    let seen = drain(&mut observed);
    assert!(
        seen.iter().all(|m| m.source == Some(station.peer_id())),
        "forwarded: {:?}",
        seen.iter().map(|m| m.source).collect::<Vec<_>>()
    );
    assert!(!seen.is_empty(), "accepted announcements are forwarded");
}
