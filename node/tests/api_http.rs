//! The operator API and `/metrics` of a running station (built-in demo program, one
//! rendition, 2 s segments), over real loopback HTTP.

use std::net::SocketAddr;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use ipfm_encoder::{EncoderConfig, Rendition};
use ipfm_node::api::ApiToken;
use ipfm_node::station::{self, StationConfig, StationInfo};
use ipfm_store::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

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

struct Running {
    info: StationInfo,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), station::StationError>>,
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("station stops")
            .unwrap()
            .unwrap();
    }
}

async fn start_station(api_listen: Option<SocketAddr>) -> Running {
    let config = StationConfig {
        encoder: EncoderConfig {
            renditions: vec![Rendition::new("lofi", 64_000)],
            segment_target: Duration::from_secs(2),
            shuffle_seed: Some(3),
            ..EncoderConfig::default()
        },
        window: 3,
        api_listen,
        api_token: Some(ApiToken::new(TOKEN)),
        ..StationConfig::default()
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let (ready_tx, ready) = oneshot::channel();
    let task = tokio::spawn(station::run(
        Store::open_in_memory(),
        SigningKey::from_bytes(&[11; 32]),
        config,
        "127.0.0.1:0".parse().unwrap(),
        async move {
            let _ = stopped.await;
        },
        move |info: &StationInfo| {
            let _ = ready_tx.send(info.clone());
        },
    ));
    let info = tokio::time::timeout(PATIENCE, ready)
        .await
        .expect("station listens")
        .expect("station started");
    Running { info, stop, task }
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
