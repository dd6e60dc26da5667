//! The operator API and `/metrics` of a running station (built-in demo program or a
//! generated library, one rendition, 2 s segments), over real loopback HTTP.

use crate::common;
use common::InProcessStation;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use ipfm_encoder::{EncoderConfig, Mode, Rendition};
use ipfm_node::api::ApiToken;
use ipfm_node::station::StationConfig;
use ipfm_store::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKEN: &str = "test-token-0123456789";
/// Upper bound for anything the station should do within a few segments.
const PATIENCE: Duration = Duration::from_secs(90);

struct Response {
    status: u16,
    body: String,
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`, body read to EOF).
async fn request(addr: SocketAddr, method: &str, path: &str, headers: &[&str]) -> Response {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        for header in headers {
            head.push_str(header);
            head.push_str("\r\n");
        }
        head.push_str("Content-Length: 0\r\n\r\n");
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        let raw = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        Response {
            status,
            body: body.to_owned(),
        }
    };
    tokio::time::timeout(Duration::from_secs(20), exchange)
        .await
        .expect("HTTP exchange timed out")
}

/// One rendition, 2-s segments, a window of 3, the test token.
fn test_config() -> StationConfig {
    StationConfig {
        encoder: EncoderConfig {
            renditions: vec![Rendition::new("lofi", 64_000)],
            segment_target: Duration::from_secs(2),
            shuffle_seed: Some(3),
            ..EncoderConfig::default()
        },
        window: 3,
        api_token: Some(ApiToken::new(TOKEN)),
        ..StationConfig::default()
    }
}

async fn start_station(api_listen: Option<SocketAddr>) -> InProcessStation {
    start_with(StationConfig {
        api_listen,
        ..test_config()
    })
    .await
}

async fn start_with(config: StationConfig) -> InProcessStation {
    InProcessStation::start(
        Store::open_in_memory(),
        SigningKey::from_bytes(&[11; 32]),
        config,
        PATIENCE,
    )
    .await
}

/// Sum of every sample of `metric` (all label sets) in a text exposition.
fn metric_sum(text: &str, metric: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.strip_prefix(metric)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .map(|line| line.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

/// Every sample line is `name[{labels}] value` with a numeric value; ends with `# EOF`.
fn assert_well_formed(text: &str) {
    assert_eq!(text.lines().last(), Some("# EOF"), "{text}");
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (name, value) = line.rsplit_once(' ').expect(line);
        assert!(value.parse::<f64>().is_ok(), "bad value in {line:?}");
        assert!(name.starts_with("ipfm_"), "unprefixed metric {line:?}");
    }
}

async fn metrics(addr: SocketAddr) -> String {
    let response = request(addr, "GET", "/metrics", &[]).await;
    assert_eq!(response.status, 200);
    response.body
}

/// Polls `/metrics` until `metric` exceeds `above`; returns the exposition.
async fn wait_for(addr: SocketAddr, metric: &str, above: f64) -> String {
    let poll = async {
        loop {
            let text = metrics(addr).await;
            if metric_sum(&text, metric) > above {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    tokio::time::timeout(PATIENCE, poll)
        .await
        .unwrap_or_else(|_| panic!("{metric} never exceeded {above}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_status_history_and_token_on_the_gateway_listener() {
    let station = start_station(None).await;
    let addr = station.info.listen;
    assert_eq!(station.info.api, addr);

    // Counters grow as the station runs.
    let text = wait_for(addr, "ipfm_segments_encoded_total", 0.0).await;
    assert_well_formed(&text);
    let encoded = metric_sum(&text, "ipfm_segments_encoded_total");
    let text = wait_for(addr, "ipfm_segments_encoded_total", encoded).await;
    assert!(metric_sum(&text, "ipfm_publish_latency_seconds_count") >= 1.0);
    assert!(metric_sum(&text, "ipfm_ipns_sequence") >= 1.0);
    // The earlier scrapes were counted by status.
    assert!(text.contains("ipfm_http_requests_total{status=\"200\"}"));
    let requests = metric_sum(&text, "ipfm_http_requests_total");
    let again = metrics(addr).await;
    assert!(metric_sum(&again, "ipfm_http_requests_total") > requests);

    // Fetching a segment makes this client a listener.
    let name = &station.info.ipns_name;
    let playlist = request(addr, "GET", &format!("/ipns/{name}/lofi.m3u8"), &[]).await;
    assert_eq!(playlist.status, 200);
    let segment = playlist
        .body
        .lines()
        .rfind(|line| line.ends_with(".ts"))
        .expect("the playlist lists segments")
        .to_owned();
    let fetched = request(addr, "GET", &format!("/ipns/{name}/{segment}"), &[]).await;
    assert_eq!(fetched.status, 200);
    assert_eq!(metric_sum(&metrics(addr).await, "ipfm_listeners"), 1.0);

    // Status.
    let response = request(addr, "GET", "/api/v1/status", &[]).await;
    assert_eq!(response.status, 200);
    let status: serde_json::Value = serde_json::from_str(&response.body).unwrap();
    assert_eq!(status["peer_id"], station.info.peer_id.as_str());
    assert_eq!(status["ipns_name"], station.info.ipns_name.as_str());
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(status["listen"][0], addr.to_string());
    assert!(status["root"]
        .as_str()
        .is_some_and(|r| r.starts_with("baf")));
    assert!(status["ipns_sequence"].as_u64().unwrap() >= 1);
    assert!(status["media_sequence"].is_u64());
    assert!(status["segments_encoded"].as_u64().unwrap() >= 2);
    assert!(status["now_playing"]["title"].is_string(), "{status}");
    assert_eq!(status["listeners"], 1);
    assert_eq!(status["peers_connected"], 0, "no networking configured");
    assert!(status["uptime_secs"].is_u64());

    // History: the tracks played, newest first; the head is what plays now.
    let response = request(addr, "GET", "/api/v1/history", &[]).await;
    assert_eq!(response.status, 200);
    let history: serde_json::Value = serde_json::from_str(&response.body).unwrap();
    let tracks = history.as_array().expect("history is an array");
    assert!(!tracks.is_empty());
    assert!(tracks[0]["title"].is_string());

    // The mutating endpoint needs the bearer token.
    let refused = request(addr, "POST", "/api/v1/gc", &[]).await;
    assert_eq!(refused.status, 401);
    let wrong = request(addr, "POST", "/api/v1/gc", &["Authorization: Bearer nope"]).await;
    assert_eq!(wrong.status, 401);
    let bearer = format!("Authorization: Bearer {TOKEN}");
    let accepted = request(addr, "POST", "/api/v1/gc", &[&bearer]).await;
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    let report: serde_json::Value = serde_json::from_str(&accepted.body).unwrap();
    assert!(report["kept_blocks"].as_u64().unwrap() > 0);
    let text = metrics(addr).await;
    assert!(metric_sum(&text, "ipfm_gc_runs_total") >= 1.0);
    assert!(text.contains("ipfm_http_requests_total{status=\"401\"} 2"));

    station.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_listen_moves_the_api_off_the_gateway_listener() {
    let station = start_station(Some("127.0.0.1:0".parse().unwrap())).await;
    let (gateway, api) = (station.info.listen, station.info.api);
    assert_ne!(gateway, api);

    let response = request(api, "GET", "/api/v1/status", &[]).await;
    assert_eq!(response.status, 200);
    let status: serde_json::Value = serde_json::from_str(&response.body).unwrap();
    assert_eq!(status["listen"][1], api.to_string());
    assert_eq!(request(api, "GET", "/metrics", &[]).await.status, 200);
    let health = request(api, "GET", "/healthz", &[]).await.status;
    assert!(health == 200 || health == 503, "{health}");
    // The gateway listener no longer answers API routes.
    assert_eq!(
        request(gateway, "GET", "/api/v1/status", &[]).await.status,
        404
    );
    assert_eq!(request(gateway, "GET", "/metrics", &[]).await.status, 404);

    station.stop().await;
}

const STATION_NAME: &str = "Radio Loopback";
const TRACKS: [&str; 3] = ["Alpha Song", "Bravo Song", "Charlie Song"];

/// Long enough that no track ends by itself during a test: only a skip changes what plays.
const TRACK_SECS: u32 = 150;

/// A music directory: three tagged tones and one file that is not audio.
fn write_library(dir: &Path) {
    for (i, title) in TRACKS.iter().enumerate() {
        let path = dir.join(format!("{i:02}-track.flac"));
        common::ffmpeg_tone(&path, 330 + 110 * i as u32, TRACK_SECS, title);
    }
    std::fs::write(
        dir.join("broken.mp3"),
        b"this is not an mp3 file at all\n".repeat(64),
    )
    .expect("writing the broken file");
}

fn json_body(response: &Response) -> serde_json::Value {
    serde_json::from_str(&response.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", response.body))
}

/// GET `path` with the token; asserts 200 and returns the JSON.
async fn get_json(addr: SocketAddr, path: &str) -> serde_json::Value {
    let bearer = format!("Authorization: Bearer {TOKEN}");
    let response = request(addr, "GET", path, &[&bearer]).await;
    assert_eq!(response.status, 200, "{path}: {}", response.body);
    json_body(&response)
}

/// Polls `path` (with the token) until `done` holds; returns the JSON that satisfied it.
async fn poll_json(
    addr: SocketAddr,
    path: &str,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let poll = async {
        loop {
            let value = get_json(addr, path).await;
            if done(&value) {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    tokio::time::timeout(PATIENCE, poll)
        .await
        .unwrap_or_else(|_| panic!("{path}: {what} never happened"))
}

/// (title, start on the stream timeline) of what the encoder renders now.
fn now_playing(queue: &serde_json::Value) -> Option<(String, f64)> {
    let now = &queue["now_playing"];
    Some((
        now["title"].as_str()?.to_owned(),
        now["track_start_secs"].as_f64()?,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_endpoints_need_the_token_and_drive_the_encoder() {
    let music = tempfile::tempdir().expect("temp dir");
    let dir = music.path().to_path_buf();
    tokio::task::spawn_blocking(move || write_library(&dir))
        .await
        .expect("writing the library");
    let station = start_with(StationConfig {
        name: STATION_NAME.into(),
        music: Some(music.path().to_path_buf()),
        ..test_config()
    })
    .await;
    let addr = station.info.listen;

    // Without or with a wrong token: 401 with a JSON error and the Bearer challenge.
    let protected = [
        ("GET", "/api/v1/queue"),
        ("GET", "/api/v1/library"),
        ("GET", "/api/v1/storage"),
        ("GET", "/api/v1/activity"),
        ("POST", "/api/v1/skip"),
        ("POST", "/api/v1/rescan"),
    ];
    for (method, path) in protected {
        for headers in [&[][..], &["Authorization: Bearer wrong-token"][..]] {
            let refused = request(addr, method, path, headers).await;
            assert_eq!(refused.status, 401, "{method} {path} {headers:?}");
            let body = json_body(&refused);
            assert!(
                body["error"].as_str().is_some_and(|e| e.contains("token")),
                "{method} {path}: {body}"
            );
        }
    }
    let wrong_method = request(addr, "GET", "/api/v1/skip", &[]).await;
    assert_eq!(wrong_method.status, 405, "skip is a POST");

    // The station's name, in the status and in the root's nowplaying.json.
    let status = json_body(&request(addr, "GET", "/api/v1/status", &[]).await);
    assert_eq!(status["station_name"], STATION_NAME);
    let published = async {
        while request(addr, "GET", "/healthz", &[]).await.status != 200 {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    tokio::time::timeout(PATIENCE, published)
        .await
        .expect("the first root is published");
    let name = &station.info.ipns_name;
    let nowplaying = request(addr, "GET", &format!("/ipns/{name}/nowplaying.json"), &[]).await;
    assert_eq!(nowplaying.status, 200, "{}", nowplaying.body);
    assert_eq!(json_body(&nowplaying)["station"]["name"], STATION_NAME);

    // The library: the three tracks by title, the broken file with its reason.
    let library = get_json(addr, "/api/v1/library").await;
    let mut titles: Vec<&str> = library["tracks"]
        .as_array()
        .expect("tracks")
        .iter()
        .map(|t| t["title"].as_str().expect("title"))
        .collect();
    titles.sort_unstable();
    assert_eq!(titles, TRACKS, "{library}");
    let skipped = library["skipped"].as_array().expect("skipped");
    assert_eq!(skipped.len(), 1, "{library}");
    assert!(skipped[0]["path"].as_str().unwrap().ends_with("broken.mp3"));
    assert!(
        skipped[0]["reason"].as_str().is_some_and(|r| r.len() > 5),
        "{library}"
    );

    // The queue, then a skip: what plays changes (a new start on the timeline).
    let queue = poll_json(addr, "/api/v1/queue", "a track playing", |q| {
        now_playing(q).is_some() && q["up_next"]["title"].is_string()
    })
    .await;
    let before = now_playing(&queue).unwrap();
    assert!(TRACKS.contains(&before.0.as_str()), "{queue}");
    assert_eq!(queue["now_playing"]["kind"], "track");
    let bearer = format!("Authorization: Bearer {TOKEN}");
    let skipped = request(addr, "POST", "/api/v1/skip", &[&bearer]).await;
    assert_eq!(skipped.status, 202, "{}", skipped.body);
    assert_eq!(json_body(&skipped)["accepted"], "skip");
    let after = poll_json(addr, "/api/v1/queue", "the skip", |q| {
        now_playing(q).is_some_and(|now| now != before)
    })
    .await;
    assert_eq!(
        after["now_playing"]["title"], queue["up_next"]["title"],
        "the track announced as next is on: {queue} → {after}"
    );

    // Rescan: a file added since start shows up.
    let dir = music.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        common::ffmpeg_tone(&dir.join("03-new.flac"), 880, 5, "Delta Song")
    })
    .await
    .expect("writing a new track");
    let asked_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let rescanned = request(addr, "POST", "/api/v1/rescan", &[&bearer]).await;
    assert_eq!(rescanned.status, 202, "{}", rescanned.body);
    assert_eq!(json_body(&rescanned)["accepted"], "rescan");
    poll_json(addr, "/api/v1/library", "the rescan", |l| {
        l["last_rescan"]["at_unix_ms"]
            .as_u64()
            .is_some_and(|at| at >= asked_at)
            && l["tracks"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t["title"] == "Delta Song"))
    })
    .await;

    // Activity: the sampler recorded at start; an hour of 10-s points at most.
    let activity = get_json(addr, "/api/v1/activity").await;
    assert_eq!(activity["interval_secs"], 10);
    assert_eq!(activity["capacity"], 360);
    let samples = activity["samples"].as_array().expect("samples");
    assert!(!samples.is_empty(), "{activity}");
    assert!(samples[0]["at_ms"].as_u64().unwrap() > 0);
    assert!(samples[0]["listeners"].is_u64() && samples[0]["peers"].is_u64());

    // Storage, and the last GC once one ran.
    let storage = get_json(addr, "/api/v1/storage").await;
    assert!(storage["blocks"].as_u64().unwrap() > 0, "{storage}");
    assert!(storage["bytes"].as_u64().unwrap() > 0, "{storage}");
    assert_eq!(storage["retention_secs"], 600);
    let gc = request(addr, "POST", "/api/v1/gc", &[&bearer]).await;
    assert_eq!(gc.status, 200, "{}", gc.body);
    let storage = get_json(addr, "/api/v1/storage").await;
    assert_eq!(
        storage["last_gc"]["kept_blocks"],
        json_body(&gc)["kept_blocks"],
        "{storage}"
    );
    assert!(storage["last_gc"]["at_ms"].as_u64().unwrap() > 0);

    station.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_and_rescan_are_503_once_the_encoder_has_stopped() {
    // One pass over the demo program, as fast as possible: the encoder ends by itself
    // while the HTTP listener stays up until the station is stopped.
    let station = start_with(StationConfig {
        mode: Mode::AsFastAsPossible,
        ..test_config()
    })
    .await;
    let addr = station.info.listen;
    let bearer = format!("Authorization: Bearer {TOKEN}");
    let stopped = async {
        loop {
            let response = request(addr, "POST", "/api/v1/skip", &[&bearer]).await;
            match response.status {
                202 => tokio::time::sleep(Duration::from_millis(200)).await,
                503 => return response,
                other => panic!("skip answered {other}: {}", response.body),
            }
        }
    };
    let response = tokio::time::timeout(PATIENCE, stopped)
        .await
        .expect("the single pass ends");
    assert!(
        json_body(&response)["error"]
            .as_str()
            .is_some_and(|e| e.contains("stopped")),
        "{}",
        response.body
    );
    let rescan = request(addr, "POST", "/api/v1/rescan", &[&bearer]).await;
    assert_eq!(rescan.status, 503, "{}", rescan.body);
    // Reads keep working: the last snapshot.
    assert_eq!(
        request(addr, "GET", "/api/v1/queue", &[&bearer])
            .await
            .status,
        200
    );
    station.stop().await;
}
