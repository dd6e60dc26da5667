//! The live station end to end on one node: realtime encoding of a generated track,
//! roots published under the station's IPNS name and served by the gateway over HTTP on
//! loopback, retention GC, and a restart on the same repository.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ipfm_encoder::EncoderConfig;
use ipfm_node::gateway::{self, LocalNames};
use ipfm_node::repo::Repo;
use ipfm_node::station::{self, Published, StationConfig, StationHandle};
use ipfm_protocol::cid::raw_cid;
use ipfm_protocol::ipns::IpnsRecord;
use m3u8_rs::{MediaPlaylist, Playlist};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{oneshot, watch};

/// Bound on every wait (realtime: one segment every 2 s; a loaded machine may lag).
const WAIT: Duration = Duration::from_secs(90);
const TITLE: &str = "Station Test Tone";

fn config(music: &Path) -> StationConfig {
    StationConfig {
        music: Some(music.to_path_buf()),
        encoder: EncoderConfig {
            segment_target: Duration::from_secs(2),
            shuffle_seed: Some(7),
            ..EncoderConfig::default()
        },
        window: 3,
        retention: Duration::from_secs(10),
        gc_interval: Duration::from_millis(500),
        ..StationConfig::default()
    }
}

/// A [`station::Publisher`] that remembers what it was handed.
#[derive(Default)]
struct Recorder {
    updates: std::sync::Mutex<Vec<station::RootUpdate>>,
}

impl station::Publisher for Recorder {
    fn publish<'a>(
        &'a self,
        update: &'a station::RootUpdate,
    ) -> gateway::BoxFuture<'a, Result<(), String>> {
        self.updates.lock().unwrap().push(update.clone());
        Box::pin(async { Ok(()) })
    }
}

/// A running station with its gateway on a loopback port.
struct Running {
    station: StationHandle,
    recorder: Arc<Recorder>,
    addr: SocketAddr,
    stop_http: oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start(repo: &Repo, music: &Path) -> Running {
    let store = repo.store().clone();
    let key = store.load_or_create_key().await.unwrap();
    let names = Arc::new(LocalNames::new());
    let recorder = Arc::new(Recorder::default());
    let publishers: Vec<Arc<dyn station::Publisher>> = vec![recorder.clone()];
    let handle = station::start(store.clone(), key, names.clone(), publishers, config(music))
        .await
        .unwrap();
    let app = station::router(store, names, &handle.name(), handle.published());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_http, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(gateway::serve(listener, app, async move {
        let _ = stopped.await;
    }));
    Running {
        station: handle,
        recorder,
        addr,
        stop_http,
        server,
    }
}

impl Running {
    async fn stop(self) {
        tokio::time::timeout(Duration::from_secs(15), self.station.stop())
            .await
            .expect("the station stops within 15 s")
            .unwrap();
        let _ = self.stop_http.send(());
        let _ = tokio::time::timeout(Duration::from_secs(5), self.server).await;
    }
}

/// Waits until a publication satisfies `done`; returns it.
async fn wait_for(
    published: &mut watch::Receiver<Option<Published>>,
    done: impl Fn(&Published) -> bool,
) -> Published {
    tokio::time::timeout(WAIT, async {
        loop {
            if let Some(p) = published.borrow_and_update().as_ref() {
                if done(p) {
                    return p.clone();
                }
            }
            published.changed().await.expect("station still running");
        }
    })
    .await
    .expect("publication within the timeout")
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A minimal HTTP/1.1 GET over loopback (Connection: close; chunked bodies decoded).
async fn get(addr: SocketAddr, path: &str) -> Response {
    tokio::time::timeout(Duration::from_secs(20), async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        parse_response(&raw)
    })
    .await
    .expect("HTTP response within 20 s")
}

fn parse_response(raw: &[u8]) -> Response {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = std::str::from_utf8(&raw[..split]).unwrap();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size_text = std::str::from_utf8(&data[..line_end]).unwrap();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

async fn media_playlist(addr: SocketAddr, name: &str, rendition: &str) -> MediaPlaylist {
    let response = get(addr, &format!("/ipns/{name}/{rendition}.m3u8")).await;
    assert_eq!(response.status, 200);
    match m3u8_rs::parse_playlist_res(&response.body) {
        Ok(Playlist::MediaPlaylist(p)) => p,
        other => panic!("not a media playlist: {other:?}"),
    }
}

/// Fetches a segment by its path under the current root; checks that its bytes hash to
/// the CID the gateway names for that path (the ETag); returns that CID as text.
async fn fetch_segment(addr: SocketAddr, root: &str, uri: &str) -> String {
    let response = get(addr, &format!("/ipfs/{root}/{uri}")).await;
    assert_eq!(response.status, 200, "GET {uri}");
    assert_eq!(response.header("content-type"), Some("video/mp2t"));
    let cid = raw_cid(&response.body).to_string();
    let etag = response.header("etag").expect("an ETag");
    assert_eq!(
        etag.trim_matches('"'),
        cid,
        "segment bytes hash to the linked CID"
    );
    // 0x47: MPEG-TS sync byte at every 188-byte packet.
    assert!(response.body.len() % 188 == 0 && response.body[0] == 0x47);
    cid
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn station_publishes_serves_retains_collects_and_resumes() {
    let work = tempfile::tempdir().unwrap();
    let music = work.path().join("music");
    std::fs::create_dir(&music).unwrap();
    common::ffmpeg_tone(&music.join("tone.flac"), 523, 120, TITLE);
    let repo_dir = work.path().join("repo");
    let repo = Repo::init(&repo_dir).await.unwrap().repo;

    let running = start(&repo, &music).await;
    let name = running.station.ipns_name();
    let addr = running.addr;
    let mut published = running.station.published();

    let first = wait_for(&mut published, |p| p.newest_sequence >= 2).await;
    assert_eq!(get(addr, "/healthz").await.status, 200);
    let redirect = get(addr, "/").await;
    assert!((300..400).contains(&redirect.status));
    assert_eq!(
        redirect.header("location"),
        Some(format!("/ipns/{name}/").as_str())
    );

    // Master and media playlists through the IPNS name.
    let master = get(addr, &format!("/ipns/{name}/master.m3u8")).await;
    assert_eq!(master.status, 200);
    assert!(matches!(
        m3u8_rs::parse_playlist_res(&master.body),
        Ok(Playlist::MasterPlaylist(m)) if m.variants.len() == 3
    ));
    let before = media_playlist(addr, &name, "lofi").await;
    assert!(!before.segments.is_empty() && before.segments.len() <= 3);
    let oldest_uri = before.segments[0].uri.clone();
    let oldest_sequence = before.media_sequence;
    let root = first.root.to_string();
    let oldest_cid = fetch_segment(addr, &root, &oldest_uri).await;

    // nowplaying.json names the track being encoded and the station.
    let now = get(addr, &format!("/ipns/{name}/nowplaying.json")).await;
    assert_eq!(now.status, 200);
    let now: serde_json::Value = serde_json::from_slice(&now.body).unwrap();
    assert_eq!(now["now"]["title"], TITLE);
    assert_eq!(now["station"]["ipns"], name.as_str());
    assert_eq!(now["history"][0]["title"], TITLE);

    // The IPNS record validates and points at the published root.
    let record = get(addr, &format!("/ipns/{name}?format=ipns-record")).await;
    assert_eq!(record.status, 200);
    let record = IpnsRecord::from_bytes(&record.body).unwrap();
    let peer = running.station.name();
    record.validate(&peer, SystemTime::now()).unwrap();
    assert!(record.value_str().unwrap().starts_with("/ipfs/bafy"));

    // Publishers get every record with its root and the new segment blocks.
    {
        let updates = running.recorder.updates.lock().unwrap();
        let update = updates
            .iter()
            .find(|u| u.root == first.root)
            .expect("the publisher saw the root");
        assert_eq!(update.record.sequence(), first.ipns_sequence);
        assert_eq!(
            update.record.value_str(),
            Some(format!("/ipfs/{root}").as_str())
        );
        // One new segment per rendition.
        assert_eq!(update.new_segments.len(), 3);
    }

    // The window slides: the media sequence grows; the oldest segment leaves the window
    // but stays fetchable (retention), then GC reclaims it.
    let later = wait_for(&mut published, |p| p.media_sequence > oldest_sequence).await;
    assert!(later.ipns_sequence > first.ipns_sequence);
    let after = media_playlist(addr, &name, "lofi").await;
    assert!(after.media_sequence > oldest_sequence);
    assert!(after.segments.iter().all(|s| s.uri != oldest_uri));
    let retained = get(addr, &format!("/ipfs/{oldest_cid}")).await;
    assert_eq!(
        retained.status, 200,
        "a segment that left the window is retained"
    );
    let newest_uri = after.segments.last().unwrap().uri.clone();
    fetch_segment(addr, &later.root.to_string(), &newest_uri).await;
    let collected = tokio::time::timeout(WAIT, async {
        loop {
            if get(addr, &format!("/ipfs/{oldest_cid}")).await.status != 200 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
    .await;
    assert!(collected.is_ok(), "GC reclaims the segment after retention");

    let last = published.borrow().clone().unwrap();
    running.stop().await;
    repo.close().await.unwrap();

    // Restart on the same repository: sequences continue, the playlist carries on with a
    // discontinuity.
    let repo = Repo::open(&repo_dir).await.unwrap();
    let running = start(&repo, &music).await;
    let mut published = running.station.published();
    let resumed = wait_for(&mut published, |_| true).await;
    assert!(resumed.ipns_sequence > last.ipns_sequence);
    assert!(resumed.media_sequence >= last.media_sequence);
    let fresh = wait_for(&mut published, |p| p.newest_sequence > last.newest_sequence).await;
    assert!(fresh.newest_sequence > last.newest_sequence);
    let playlist = media_playlist(running.addr, &name, "lofi").await;
    assert!(playlist.media_sequence >= last.media_sequence);
    let after_restart = format!("lofi/{}.ts", last.newest_sequence + 1);
    if let Some(first_new) = playlist.segments.iter().find(|s| s.uri == after_restart) {
        assert!(
            first_new.discontinuity,
            "first segment after a restart is a discontinuity"
        );
    } else {
        // Already slid out of the 3-segment window: it was counted in the sequence.
        assert!(playlist.discontinuity_sequence >= 1);
    }
    let record = get(running.addr, &format!("/ipns/{name}?format=ipns-record")).await;
    let record = IpnsRecord::from_bytes(&record.body).unwrap();
    assert!(record.sequence() > last.ipns_sequence);
    running.stop().await;
    repo.close().await.unwrap();
}
