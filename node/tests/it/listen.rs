//! `ipfm listen`: the segment feed over a real station's roots (every segment once, in
//! order, across a station restart; gaps and resets reported), the EPIPE ending, the CLI's
//! errors, and a station followed end to end over libp2p on loopback by the binary.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use ipfm_encoder::EncoderConfig;
use ipfm_node::follow::FollowedRoot;
use ipfm_node::gateway::{self, LocalNames};
use ipfm_node::listen::{play, Discontinuity, FeedEvent, PlayEnd, PlayStats, SegmentFeed, StartAt};
use ipfm_node::station::{self, Published, RootUpdate, StationConfig};
use ipfm_protocol::cid::RAW;
use ipfm_protocol::dagpb::PbNode;
use ipfm_protocol::Cid;
use ipfm_store::{Blockstore, Store};
use m3u8_rs::Playlist;
use tokio::sync::watch;

/// Bound on every wait (realtime: one segment every 2 s; a loaded machine may lag).
const WAIT: Duration = Duration::from_secs(120);
const TITLE: &str = "Listen Test Tone";
const RENDITION: &str = "midfi";

fn config(music: &Path, window: usize) -> StationConfig {
    StationConfig {
        music: Some(music.to_path_buf()),
        encoder: EncoderConfig {
            segment_target: Duration::from_secs(2),
            shuffle_seed: Some(3),
            ..EncoderConfig::default()
        },
        window,
        retention: Duration::from_secs(3600),
        gc_interval: Duration::from_secs(3600),
        ..StationConfig::default()
    }
}

/// Hands every root a station publishes on, as the follower would (the record, root and
/// station are the station's own), and remembers them in order.
struct Forwarder {
    sender: Mutex<Option<watch::Sender<Option<FollowedRoot>>>>,
    roots: Mutex<Vec<Cid>>,
}

impl Forwarder {
    fn new() -> (Arc<Forwarder>, watch::Receiver<Option<FollowedRoot>>) {
        let (sender, receiver) = watch::channel(None);
        let forwarder = Arc::new(Forwarder {
            sender: Mutex::new(Some(sender)),
            roots: Mutex::new(Vec::new()),
        });
        (forwarder, receiver)
    }

    /// No more roots: the feed's loop ends once it has played the last one.
    fn close(&self) {
        self.sender.lock().unwrap().take();
    }

    fn roots(&self) -> Vec<Cid> {
        self.roots.lock().unwrap().clone()
    }
}

impl station::Publisher for Forwarder {
    fn publish<'a>(&'a self, update: &'a RootUpdate) -> gateway::BoxFuture<'a, Result<(), String>> {
        let now = SystemTime::now();
        let followed = FollowedRoot {
            station: update.name,
            sequence: update.record.sequence(),
            root: update.root,
            record: update.record.clone(),
            now_playing: None,
            published_at: now,
            received_at: now,
            new_segments: update.new_segments.clone(),
        };
        self.roots.lock().unwrap().push(update.root);
        if let Some(sender) = self.sender.lock().unwrap().as_ref() {
            sender.send_replace(Some(followed));
        }
        Box::pin(async { Ok(()) })
    }
}

/// Waits until the station published a root whose newest segment is at least `sequence`.
async fn wait_for_sequence(published: &mut watch::Receiver<Option<Published>>, sequence: u64) {
    tokio::time::timeout(WAIT, async {
        loop {
            if published
                .borrow_and_update()
                .as_ref()
                .is_some_and(|p| p.newest_sequence >= sequence)
            {
                return;
            }
            published.changed().await.expect("station still running");
        }
    })
    .await
    .unwrap_or_else(|_| panic!("segment {sequence} published in time"));
}

/// A segment as the station's own root lists it, read without the listener's code: the
/// playlist through m3u8-rs, the directories through dag-pb, the segment as a raw block.
#[derive(Debug, Clone, PartialEq)]
struct StationSegment {
    discontinuity: bool,
    bytes: Vec<u8>,
}

async fn link(store: &Store, dir: &Cid, name: &str) -> Cid {
    let bytes = store.get(dir).await.unwrap().expect("directory stored");
    PbNode::decode(&bytes)
        .unwrap()
        .links
        .into_iter()
        .find(|l| l.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("{dir} has no {name}"))
        .hash
}

/// Every segment of `RENDITION` that any of `roots` lists, by sequence.
async fn station_segments(store: &Store, roots: &[Cid]) -> BTreeMap<u64, StationSegment> {
    let mut segments = BTreeMap::new();
    for root in roots {
        let playlist_cid = link(store, root, &format!("{RENDITION}.m3u8")).await;
        let playlist_block = store.get(&playlist_cid).await.unwrap().unwrap();
        let text = ipfm_protocol::builder::read_file(&playlist_cid, |c| {
            (*c == playlist_cid).then(|| playlist_block.clone())
        })
        .expect("a playlist is one block");
        let Ok(Playlist::MediaPlaylist(playlist)) = m3u8_rs::parse_playlist_res(&text) else {
            panic!("{root}: not a media playlist");
        };
        let folder = link(store, root, RENDITION).await;
        for segment in &playlist.segments {
            let file = segment.uri.rsplit('/').next().unwrap();
            let sequence: u64 = file.strip_suffix(".ts").unwrap().parse().unwrap();
            let cid = link(store, &folder, file).await;
            assert_eq!(cid.codec(), RAW, "segments are raw blocks");
            let bytes = store.get(&cid).await.unwrap().expect("segment stored");
            let entry = StationSegment {
                discontinuity: segment.discontinuity,
                bytes,
            };
            // Once listed, a sequence never changes bytes (the station never reuses one).
            if let Some(seen) = segments.insert(sequence, entry.clone()) {
                assert_eq!(seen.bytes, entry.bytes, "sequence {sequence} changed bytes");
            }
        }
    }
    segments
}

fn assert_mpeg_ts(bytes: &[u8]) {
    assert!(!bytes.is_empty(), "no bytes");
    assert_eq!(bytes.len() % 188, 0, "not whole 188-byte TS packets");
    for (i, packet) in bytes.chunks(188).enumerate() {
        assert_eq!(packet[0], 0x47, "no sync byte at packet {i}");
    }
}

/// The feed over a real station, through a restart on the same store: the bytes written
/// are exactly the station's segments of the rendition, in order, each once, and the
/// now-playing line comes from the root's nowplaying.json. Then the same roots, handed
/// over with holes and out of order, make the feed report the gap and the reset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_writes_every_segment_once_in_order_across_a_restart() {
    let work = tempfile::tempdir().unwrap();
    let music = work.path().join("music");
    std::fs::create_dir_all(&music).unwrap();
    common::ffmpeg_tone(&music.join("tone.flac"), 440, 300, TITLE);
    let store = Store::open(work.path().join("store")).await.unwrap();
    let key = store.load_or_create_key().await.unwrap();
    let (forwarder, mut roots) = Forwarder::new();

    let mut feed = SegmentFeed::new(store.clone(), RENDITION, StartAt::WindowStart);
    let player = tokio::spawn(async move {
        let mut out = Vec::new();
        let mut lines = Vec::new();
        let mut stats = PlayStats::default();
        let end = play(&mut feed, &mut roots, &mut out, &mut lines, &mut stats).await;
        (end, out, String::from_utf8(lines).unwrap(), stats)
    });

    let start = |store: Store| {
        let publishers: Vec<Arc<dyn station::Publisher>> = vec![forwarder.clone()];
        station::start(
            store,
            key.clone(),
            Arc::new(LocalNames::new()),
            publishers,
            config(&music, 3),
        )
    };
    let first = start(store.clone()).await.unwrap();
    wait_for_sequence(&mut first.published(), 7).await;
    first.stop().await.unwrap();
    let restarted_after = forwarder.roots().len();
    let second = start(store.clone()).await.unwrap();
    let resumed = second
        .published()
        .borrow()
        .as_ref()
        .map_or(0, |p| p.newest_sequence);
    wait_for_sequence(&mut second.published(), resumed + 3).await;
    second.stop().await.unwrap();
    forwarder.close();

    let (end, out, lines, stats) = tokio::time::timeout(WAIT, player)
        .await
        .expect("the feed ends once no more roots come")
        .unwrap();
    assert_eq!(end.unwrap(), PlayEnd::FollowerStopped);

    let roots = forwarder.roots();
    let segments = station_segments(&store, &roots).await;
    let first_sequence = *segments.keys().next().unwrap();
    let last_sequence = *segments.keys().last().unwrap();
    let sequences: Vec<u64> = segments.keys().copied().collect();
    assert_eq!(
        sequences,
        (first_sequence..=last_sequence).collect::<Vec<_>>(),
        "the station's numbering continues across its restart"
    );
    assert!(
        segments.values().skip(1).any(|s| s.discontinuity),
        "the restart is marked as a discontinuity in the station's playlist"
    );
    let expected: Vec<u8> = segments.values().flat_map(|s| s.bytes.clone()).collect();
    assert_eq!(
        stats.segments,
        segments.len() as u64,
        "segments written (station had {first_sequence}..={last_sequence}); lines:\n{lines}"
    );
    assert_eq!(stats.discontinuities, 0, "nothing was lost:\n{lines}");
    assert!(
        out == expected,
        "written bytes differ from the station's segments"
    );
    assert_mpeg_ts(&out);
    assert!(
        lines.contains(&format!("now playing: {TITLE} — Test Artist")),
        "no now-playing line:\n{lines}"
    );
    assert!(restarted_after >= 2 && roots.len() > restarted_after);

    // Skipping roots: the feed resumes in the later window and says how much it lost.
    let mut feed = SegmentFeed::new(store.clone(), RENDITION, StartAt::WindowStart);
    let early = feed.events(&roots[0]).await.unwrap();
    let early_last = match early.last() {
        Some(FeedEvent::Segment(s)) => s.sequence,
        other => panic!("the first root ends with a segment, not {other:?}"),
    };
    let late = *roots.last().unwrap();
    let late_events = feed.events(&late).await.unwrap();
    let late_first = match &late_events[1] {
        FeedEvent::Segment(s) => s.sequence,
        other => panic!("a segment follows the gap, not {other:?}"),
    };
    assert_eq!(
        late_events[0],
        FeedEvent::Discontinuity(Discontinuity::Missed {
            from: early_last + 1,
            count: late_first - early_last - 1,
        })
    );
    for (event, sequence) in late_events[1..].iter().zip(late_first..) {
        let FeedEvent::Segment(segment) = event else {
            panic!("only segments after the gap: {event:?}");
        };
        assert_eq!(segment.sequence, sequence);
        assert_eq!(segment.bytes, segments[&sequence].bytes);
    }
    // The same root again brings nothing new.
    assert!(feed.events(&late).await.unwrap().is_empty());
    // An older root after a newer one: the numbering went back, reported, then replayed.
    let back = feed.events(&roots[0]).await.unwrap();
    assert!(
        matches!(
            back[0],
            FeedEvent::Discontinuity(Discontinuity::Reset { .. })
        ),
        "{:?}",
        back[0]
    );

    // The player going away ends the loop cleanly (EPIPE), whatever is left to write.
    let (mut writer, reader) = tokio::io::duplex(1024);
    drop(reader);
    let (sender, mut receiver) = watch::channel(None);
    let now = SystemTime::now();
    let record_root = late;
    sender.send_replace(Some(FollowedRoot {
        station: ipfm_protocol::peer::PeerId::from_ed25519(&key.verifying_key()),
        sequence: 1,
        root: record_root,
        record: ipfm_protocol::ipns::IpnsRecord::create(
            &key,
            &format!("/ipfs/{record_root}"),
            1,
            now + Duration::from_secs(60),
            Duration::from_secs(1),
        ),
        now_playing: None,
        published_at: now,
        received_at: now,
        new_segments: Vec::new(),
    }));
    let mut feed = SegmentFeed::new(store.clone(), RENDITION, StartAt::LiveEdge(2));
    let end = tokio::time::timeout(
        WAIT,
        play(
            &mut feed,
            &mut receiver,
            &mut writer,
            &mut std::io::sink(),
            &mut PlayStats::default(),
        ),
    )
    .await
    .expect("a closed reader ends playing at once");
    assert_eq!(end.unwrap(), PlayEnd::ReaderClosed);
}

/// A station without the asked-for rendition: a clear error naming what it has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_rendition_names_the_available_ones() {
    let work = tempfile::tempdir().unwrap();
    let music = work.path().join("music");
    std::fs::create_dir_all(&music).unwrap();
    common::ffmpeg_tone(&music.join("tone.flac"), 330, 60, TITLE);
    let store = Store::open_in_memory();
    let key = store.load_or_create_key().await.unwrap();
    let (forwarder, _roots) = Forwarder::new();
    let publishers: Vec<Arc<dyn station::Publisher>> = vec![forwarder.clone()];
    let handle = station::start(
        store.clone(),
        key,
        Arc::new(LocalNames::new()),
        publishers,
        config(&music, 3),
    )
    .await
    .unwrap();
    wait_for_sequence(&mut handle.published(), 0).await;
    handle.stop().await.unwrap();
    let root = *forwarder.roots().last().unwrap();
    let mut feed = SegmentFeed::new(store, "ultrafi", StartAt::WindowStart);
    let error = feed.events(&root).await.unwrap_err().to_string();
    assert!(
        error.contains("no rendition \"ultrafi\"") && error.contains("midfi"),
        "{error}"
    );
}

fn ipfm_listen(args: &[&str]) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_ipfm"));
    command.arg("listen").args(args);
    command
}

/// Loopback only, nobody else: what the network-starting CLI tests pass.
const LOOPBACK_ONLY: [&str; 3] = [
    "--no-default-bootstrap",
    "--p2p-listen",
    "/ip4/127.0.0.1/tcp/0",
];

#[test]
fn garbage_names_are_refused_before_any_network() {
    for name in [
        "garbage",
        "k51notaname",
        "/ip4/127.0.0.1/tcp/4001",
        "bafkqaaa",
    ] {
        let finished = common::run(ipfm_listen(&[name]), Duration::from_secs(60));
        assert!(!finished.status.success(), "{name}: {}", finished.stderr);
        assert!(
            finished
                .stderr
                .contains(&format!("Error: not an IPNS name: {name}")),
            "{name}: {}",
            finished.stderr
        );
    }
}

/// A well-formed name that nobody announces or resolves: a clear error once `--timeout`
/// has passed, not a hang. Run in the loopback namespace (the listener starts a peer).
#[test]
fn a_name_nobody_serves_is_unreachable_after_the_timeout() {
    let key = ed25519_dalek::SigningKey::from_bytes(&[42; 32]);
    let name = ipfm_protocol::peer::PeerId::from_ed25519(&key.verifying_key()).to_ipns_name();
    let mut args = vec![name.as_str(), "--timeout", "2"];
    args.extend(LOOPBACK_ONLY);
    let finished = common::run(ipfm_listen(&args), Duration::from_secs(60));
    assert!(!finished.status.success(), "{}", finished.stderr);
    assert!(
        finished.stderr.contains(&format!(
            "Error: station {name} not reachable: no record within 2 s"
        )),
        "{}",
        finished.stderr
    );
}

/// A peer announcing the station's roots with a record that is not the station's: the
/// follower rejects every one, and the listener says the station sent a bad record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_record_is_named_as_such() {
    use ipfm_node::station::network::{P2pConfig, StationNetwork};
    use ipfm_protocol::announce::{self, Announcement};

    let station_key = ed25519_dalek::SigningKey::from_bytes(&[21; 32]);
    let other_key = ed25519_dalek::SigningKey::from_bytes(&[22; 32]);
    let station = ipfm_protocol::peer::PeerId::from_ed25519(&station_key.verifying_key());
    let store = Store::open_in_memory();
    // The forger runs as the station's own peer id, so the listener dials it as the station.
    let forger = StationNetwork::start(store, &station_key, &P2pConfig::loopback())
        .await
        .unwrap();
    let topic = announce::topic(&station);
    let _subscription = forger.client().subscribe(&topic).await.unwrap();
    let addr = common::tcp_addr(forger.client()).await.to_string();
    let client = forger.client().clone();
    let forging = tokio::spawn(async move {
        let root = ipfm_protocol::cid::raw_cid(b"forged root");
        for sequence in 1..=600u64 {
            let eol = SystemTime::now() + Duration::from_secs(3600);
            let foreign = ipfm_protocol::ipns::IpnsRecord::create(
                &other_key,
                &format!("/ipfs/{root}"),
                sequence,
                eol,
                Duration::from_secs(1),
            );
            let announcement = Announcement::new(
                station,
                sequence,
                root,
                Vec::new(),
                None,
                SystemTime::now(),
                foreign.as_bytes().to_vec(),
            );
            let bytes = announcement.sign(&station_key).unwrap();
            // Fails with "insufficient peers" until the listener has joined: keep going.
            let _ = client.publish(&topic, bytes).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let mut args = vec![addr.as_str(), "--timeout", "10"];
    args.extend(LOOPBACK_ONLY);
    let command = ipfm_listen(&args);
    let finished = tokio::task::spawn_blocking(move || common::run(command, WAIT))
        .await
        .unwrap();
    forging.abort();
    forger.shutdown().await;
    assert!(!finished.status.success(), "{}", finished.stderr);
    assert!(
        finished.stderr.contains(&format!(
            "Error: station {} sent a bad record",
            station.to_ipns_name()
        )),
        "{}",
        finished.stderr
    );
}

/// A station on loopback libp2p playing a 300 s tone of `frequency` Hz from `dir`/music,
/// and the first p2p address it listens on (with `/p2p/<id>`), for `ipfm listen` to dial.
async fn p2p_station(dir: &Path, frequency: u32) -> (common::InProcessStation, String) {
    let music = dir.join("music");
    std::fs::create_dir_all(&music).unwrap();
    common::ffmpeg_tone(&music.join("tone.flac"), frequency, 300, TITLE);
    let store = Store::open_in_memory();
    let key = store.load_or_create_key().await.unwrap();
    let mut station_config = config(&music, 50);
    station_config.p2p = Some(ipfm_node::station::network::P2pConfig::loopback());
    let station = common::InProcessStation::start(store, key, station_config, WAIT).await;
    let addr = station.info.p2p_addrs[0].to_string();
    (station, addr)
}

/// A real station on loopback followed by the `ipfm listen` binary through a pipe: the
/// bytes are MPEG-TS, equal to the station's own segments from where the listener joined,
/// the now-playing line is printed, and closing the pipe ends the listener with exit 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_plays_a_station_over_libp2p_into_a_pipe() {
    use std::io::Read;
    use std::process::Stdio;

    /// Bytes read before the pipe is closed: several midfi segments (~35 KB each).
    const ENOUGH: usize = 150_000;

    let work = tempfile::tempdir().unwrap();
    let (station, addr) = p2p_station(work.path(), 660).await;

    let mut args = vec![addr.as_str(), "--timeout", "60"];
    args.extend(LOOPBACK_ONLY);
    let mut child = ipfm_listen(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ipfm listen");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    // Read until enough has come (bounded), then close the pipe like a player quitting.
    let received = tokio::task::spawn_blocking(move || {
        let mut received = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        while received.len() < ENOUGH {
            match stdout.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&chunk[..n]),
            }
        }
        received
    });
    let received = tokio::time::timeout(WAIT, received)
        .await
        .expect("the listener streams in time")
        .unwrap();
    let status = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return Some(status);
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .unwrap();
    let stderr = stderr_reader.join().unwrap();
    let status = status.unwrap_or_else(|| panic!("listener ignored the closed pipe:\n{stderr}"));

    let name = &station.info.ipns_name;
    let playlist = common::http_get(
        station.info.listen,
        &format!("/ipns/{name}/{RENDITION}.m3u8"),
        WAIT,
    )
    .await;
    assert_eq!(playlist.status, 200);
    let Ok(Playlist::MediaPlaylist(playlist)) = m3u8_rs::parse_playlist_res(&playlist.body) else {
        panic!("not a media playlist");
    };
    let mut segments = Vec::new();
    for segment in &playlist.segments {
        let response = common::http_get(
            station.info.listen,
            &format!("/ipns/{name}/{}", segment.uri),
            WAIT,
        )
        .await;
        assert_eq!(response.status, 200, "{}", segment.uri);
        segments.push(response.body);
    }
    station.stop().await;

    assert!(status.success(), "exit {status}:\n{stderr}");
    assert!(
        stderr.contains("the player closed the stream"),
        "no closing message:\n{stderr}"
    );
    assert!(
        stderr.contains(&format!("now playing: {TITLE} — Test Artist")),
        "no now-playing line:\n{stderr}"
    );
    assert!(
        received.len() >= ENOUGH,
        "only {} bytes:\n{stderr}",
        received.len()
    );
    assert_mpeg_ts(&received[..received.len() / 188 * 188]);
    // The listener joined somewhere in the window; from there on, its bytes are the
    // station's segments back to back, with nothing left out or repeated.
    let start = (0..segments.len())
        .find(|&i| received.starts_with(&segments[i]))
        .unwrap_or_else(|| panic!("the stream does not start at a segment:\n{stderr}"));
    let expected: Vec<u8> = segments[start..].concat();
    assert!(
        expected.len() >= received.len(),
        "received more than the station published"
    );
    assert!(
        expected[..received.len()] == received[..],
        "the stream differs from the station's segments {start}…"
    );
}

/// `--serve`: the followed station on a local gateway, for any HLS player: the printed
/// playlist URL works, and its rendition playlist and segments are the station's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_mode_re_serves_the_station_over_local_hls() {
    use std::io::BufRead;
    use std::process::Stdio;

    let work = tempfile::tempdir().unwrap();
    let (station, addr) = p2p_station(work.path(), 550).await;

    let mut args = vec![addr.as_str(), "--timeout", "60", "--serve", "127.0.0.1:0"];
    args.extend(LOOPBACK_ONLY);
    let mut child = ipfm_listen(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ipfm listen --serve");
    let stderr = child.stderr.take().unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let url = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + WAIT;
        let mut seen = Vec::new();
        while std::time::Instant::now() < deadline {
            match lines.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => match line.strip_prefix("serving HLS at ") {
                    Some(url) => return Ok(url.to_owned()),
                    None => seen.push(line),
                },
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        Err(seen.join("\n"))
    })
    .await
    .unwrap();
    let url = match url {
        Ok(url) => url,
        Err(stderr) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no URL printed:\n{stderr}");
        }
    };
    let name = &station.info.ipns_name;
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (host, path) = rest.split_at(rest.find('/').expect("a path"));
    let local: std::net::SocketAddr = host.parse().expect("host:port");
    assert_eq!(path, format!("/ipns/{name}/master.m3u8"));

    let master = common::http_get(local, path, WAIT).await;
    assert_eq!(master.status, 200);
    assert!(
        String::from_utf8_lossy(&master.body).contains(&format!("{RENDITION}.m3u8")),
        "master playlist without {RENDITION}"
    );
    let media = common::http_get(local, &format!("/ipns/{name}/{RENDITION}.m3u8"), WAIT).await;
    assert_eq!(media.status, 200);
    let Ok(Playlist::MediaPlaylist(playlist)) = m3u8_rs::parse_playlist_res(&media.body) else {
        panic!("not a media playlist");
    };
    let segment = playlist.segments.last().expect("a segment");
    let ours = common::http_get(local, &format!("/ipns/{name}/{}", segment.uri), WAIT).await;
    let theirs = common::http_get(
        station.info.listen,
        &format!("/ipns/{name}/{}", segment.uri),
        WAIT,
    )
    .await;
    let _ = child.kill();
    let _ = child.wait();
    station.stop().await;
    assert_eq!(ours.status, 200);
    assert_eq!(theirs.status, 200);
    assert!(ours.body == theirs.body, "{} differs", segment.uri);
    assert_mpeg_ts(&ours.body);
}
