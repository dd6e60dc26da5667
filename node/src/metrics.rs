//! The station's Prometheus metrics (`/metrics`, text exposition format).
//!
//! The station loop updates the encoding, publishing, storage and GC metrics; the HTTP
//! middleware [`track_requests`] counts gateway responses by status and remembers which
//! client addresses fetched segments, so "listeners" is the number of distinct addresses
//! seen in the last [`LISTENER_WINDOW`].

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// How far back a client address counts as a listener.
pub const LISTENER_WINDOW: Duration = Duration::from_secs(30);

/// Media type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RenditionLabels {
    rendition: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: u16,
}

/// Every metric the station exports.
pub struct StationMetrics {
    registry: Registry,
    segments_encoded: Family<RenditionLabels, Counter>,
    publish_latency: Histogram,
    ipns_sequence: Gauge,
    blocks_stored: Gauge,
    bytes_stored: Gauge,
    gc_runs: Counter,
    gc_removed_blocks: Counter,
    gc_removed_bytes: Counter,
    http_requests: Family<StatusLabels, Counter>,
    listeners_gauge: Gauge,
    peers_connected: Gauge,
    /// The sum of `segments_encoded` over renditions (the family cannot be iterated).
    segments_total: AtomicU64,
    /// Last segment fetch per client address.
    listeners: Mutex<HashMap<IpAddr, Instant>>,
}

impl std::fmt::Debug for StationMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StationMetrics").finish_non_exhaustive()
    }
}

impl Default for StationMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl StationMetrics {
    /// All metrics at zero, registered under the `ipfm_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("ipfm");
        let segments_encoded = Family::<RenditionLabels, Counter>::default();
        // 1 ms … ~16 s: a publish normally takes milliseconds; seconds mean trouble.
        let publish_latency = Histogram::new(exponential_buckets(0.001, 2.0, 15));
        let ipns_sequence = Gauge::default();
        let blocks_stored = Gauge::default();
        let bytes_stored = Gauge::default();
        let gc_runs = Counter::default();
        let gc_removed_blocks = Counter::default();
        let gc_removed_bytes = Counter::default();
        let http_requests = Family::<StatusLabels, Counter>::default();
        let listeners_gauge = Gauge::default();
        let peers_connected = Gauge::default();
        registry.register(
            "segments_encoded",
            "Segments received from the encoder and stored, by rendition",
            segments_encoded.clone(),
        );
        registry.register(
            "publish_latency_seconds",
            "Time from a segment set's first segment arriving to its root being published",
            publish_latency.clone(),
        );
        registry.register(
            "ipns_sequence",
            "Sequence number of the latest published IPNS record",
            ipns_sequence.clone(),
        );
        registry.register(
            "blocks_stored",
            "Blocks in the store after the latest GC run",
            blocks_stored.clone(),
        );
        registry.register(
            "bytes_stored",
            "Bytes of block data in the store after the latest GC run",
            bytes_stored.clone(),
        );
        registry.register("gc_runs", "Retention GC runs", gc_runs.clone());
        registry.register(
            "gc_removed_blocks",
            "Blocks removed by retention GC",
            gc_removed_blocks.clone(),
        );
        registry.register(
            "gc_removed_bytes",
            "Bytes removed by retention GC",
            gc_removed_bytes.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP responses served, by status code",
            http_requests.clone(),
        );
        registry.register(
            "listeners",
            "Distinct client addresses that fetched a segment in the last 30 s",
            listeners_gauge.clone(),
        );
        registry.register(
            "peers_connected",
            "libp2p peers connected (sampled every 5 s)",
            peers_connected.clone(),
        );
        StationMetrics {
            registry,
            segments_encoded,
            publish_latency,
            ipns_sequence,
            blocks_stored,
            bytes_stored,
            gc_runs,
            gc_removed_blocks,
            gc_removed_bytes,
            http_requests,
            listeners_gauge,
            peers_connected,
            segments_total: AtomicU64::new(0),
            listeners: Mutex::new(HashMap::new()),
        }
    }

    /// One segment of `rendition` came out of the encoder.
    pub fn segment_encoded(&self, rendition: &str) {
        self.segments_encoded
            .get_or_create(&RenditionLabels {
                rendition: rendition.to_owned(),
            })
            .inc();
        self.segments_total.fetch_add(1, Ordering::Relaxed);
    }

    /// Segments encoded so far, all renditions together.
    pub fn segments_encoded_total(&self) -> u64 {
        self.segments_total.load(Ordering::Relaxed)
    }

    /// A root was published `latency` after its first segment arrived.
    pub fn published(&self, latency: Duration, ipns_sequence: u64) {
        self.publish_latency.observe(latency.as_secs_f64());
        self.ipns_sequence
            .set(i64::try_from(ipns_sequence).unwrap_or(i64::MAX));
    }

    /// The latest IPNS sequence (also for publishes that had no new segment).
    pub fn set_ipns_sequence(&self, ipns_sequence: u64) {
        self.ipns_sequence
            .set(i64::try_from(ipns_sequence).unwrap_or(i64::MAX));
    }

    /// A GC run finished.
    pub fn gc_ran(&self, removed_blocks: u64, removed_bytes: u64) {
        self.gc_runs.inc();
        self.gc_removed_blocks.inc_by(removed_blocks);
        self.gc_removed_bytes.inc_by(removed_bytes);
    }

    /// What the store holds now.
    pub fn set_stored(&self, blocks: u64, bytes: u64) {
        self.blocks_stored
            .set(i64::try_from(blocks).unwrap_or(i64::MAX));
        self.bytes_stored
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// An HTTP response with `status` went out.
    pub fn http_response(&self, status: u16) {
        self.http_requests
            .get_or_create(&StatusLabels { status })
            .inc();
    }

    /// `client` fetched a segment at `now`.
    pub fn note_listener(&self, client: IpAddr, now: Instant) {
        if let Ok(mut seen) = self.listeners.lock() {
            seen.insert(client, now);
        }
    }

    /// Distinct clients that fetched a segment in the [`LISTENER_WINDOW`] before `now`;
    /// older entries are forgotten.
    pub fn listeners(&self, now: Instant) -> usize {
        let Ok(mut seen) = self.listeners.lock() else {
            return 0;
        };
        seen.retain(|_, at| now.saturating_duration_since(*at) < LISTENER_WINDOW);
        seen.len()
    }

    /// The number of libp2p peers connected now.
    pub fn set_peers_connected(&self, peers: usize) {
        self.peers_connected
            .set(i64::try_from(peers).unwrap_or(i64::MAX));
    }

    /// The latest sample of the connected peers.
    pub fn peers_connected(&self) -> u64 {
        u64::try_from(self.peers_connected.get()).unwrap_or(0)
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> String {
        let listeners = self.listeners(Instant::now());
        self.listeners_gauge
            .set(i64::try_from(listeners).unwrap_or(i64::MAX));
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// Samples the swarm's connected peers into `metrics` every 5 s, until aborted.
pub async fn sample_peers(client: crate::net::swarm::Client, metrics: Arc<StationMetrics>) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match client.connected_peers().await {
            Ok(peers) => metrics.set_peers_connected(peers.len()),
            // The swarm is gone (shutting down): nothing more to sample.
            Err(_) => return,
        }
    }
}

/// Axum middleware: counts responses by status and notes segment fetchers as listeners.
///
/// A "segment fetch" is a successful GET whose path ends in `.ts` (the renditions'
/// MPEG-TS segments); the client address comes from [`ConnectInfo`] when the server
/// provides it.
pub async fn track_requests(
    State(metrics): State<Arc<StationMetrics>>,
    request: Request,
    next: Next,
) -> Response {
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    let is_segment =
        request.method() == axum::http::Method::GET && request.uri().path().ends_with(".ts");
    let response = next.run(request).await;
    let status = response.status();
    metrics.http_response(status.as_u16());
    if let (true, true, Some(client)) = (is_segment, status.is_success(), client) {
        metrics.note_listener(client, Instant::now());
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listeners_are_distinct_addresses_within_the_window() {
        let metrics = StationMetrics::new();
        let t0 = Instant::now();
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        metrics.note_listener(a, t0);
        metrics.note_listener(a, t0);
        metrics.note_listener(b, t0 + Duration::from_secs(20));
        assert_eq!(metrics.listeners(t0 + Duration::from_secs(25)), 2);
        assert_eq!(metrics.listeners(t0 + Duration::from_secs(35)), 1);
    }

    #[test]
    fn counters_show_up_in_the_exposition() {
        let metrics = StationMetrics::new();
        metrics.segment_encoded("lofi");
        metrics.segment_encoded("lofi");
        metrics.segment_encoded("hifi");
        metrics.http_response(404);
        metrics.gc_ran(3, 300);
        metrics.set_stored(10, 4096);
        let text = metrics.encode();
        assert!(text.contains("ipfm_segments_encoded_total{rendition=\"lofi\"} 2"));
        assert!(text.contains("ipfm_http_requests_total{status=\"404\"} 1"));
        assert!(text.contains("ipfm_gc_removed_blocks_total 3"));
        assert!(text.contains("ipfm_blocks_stored 10"));
        assert!(text.contains("ipfm_bytes_stored 4096"));
        assert_eq!(metrics.segments_encoded_total(), 3);
    }
}
