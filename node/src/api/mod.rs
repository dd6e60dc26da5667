//! The operator API and dashboard.
//!
//! Open, for monitoring: `GET /api/v1/status`, `GET /api/v1/history`, `GET /metrics`
//! (and `/healthz`, mounted by the station). Behind `Authorization: Bearer <token>` (the
//! token `ipfm init` writes to the repository's `api-token`, mode 0600): the mutations
//! `POST /api/v1/gc`, `/skip`, `/rescan`, and the dashboard's reads `GET /api/v1/queue`,
//! `/library`, `/storage`, `/activity`, which show the server's file paths and the
//! schedule. `GET /admin` is the dashboard page itself (public, holds no data).
//!
//! Every error is JSON: `{"error": "<what went wrong>"}`.

mod admin;
mod auth;
mod operator;
mod serve;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use ipfm_protocol::peer::PeerId;
use ipfm_store::Store;
use serde::Serialize;
use tokio::sync::watch;

use crate::metrics::StationMetrics;
use crate::station::activity::Activity;
use crate::station::{Published, TrackInfo};
use ipfm_encoder::EncoderControl;

pub use auth::{token_matches, ApiToken};
pub use serve::{bind, serve};

/// What the API reads.
#[derive(Clone)]
pub struct ApiContext {
    pub peer: PeerId,
    /// Addresses the station's HTTP listeners are bound to.
    pub listen: Vec<SocketAddr>,
    pub published: watch::Receiver<Option<Published>>,
    pub metrics: Arc<StationMetrics>,
    pub store: Store,
    /// Retention period GC keeps unreferenced blocks for.
    pub retention: Duration,
    pub started: Instant,
    /// Bearer token of the protected endpoints; `None` refuses them all.
    pub token: Option<ApiToken>,
    /// `station.name`.
    pub station_name: String,
    /// The encoder's skip, rescan and playout snapshot.
    pub control: EncoderControl,
    /// Listeners and peers over the last hour.
    pub activity: Arc<Activity>,
}

/// `/api/v1/status`.
#[derive(Debug, Serialize)]
pub struct Status {
    pub version: &'static str,
    /// `station.name`.
    pub station_name: String,
    pub peer_id: String,
    pub ipns_name: String,
    pub listen: Vec<String>,
    /// Current station root, once one is published.
    pub root: Option<String>,
    pub ipns_sequence: Option<u64>,
    pub media_sequence: Option<u64>,
    pub newest_sequence: Option<u64>,
    pub now_playing: Option<TrackInfo>,
    /// Unix time of the last publication, in milliseconds.
    pub last_publish_ms: Option<u64>,
    /// Segments stored since start, all renditions.
    pub segments_encoded: u64,
    /// Distinct clients that fetched a segment in the last 30 s.
    pub listeners: usize,
    /// libp2p peers connected (0 without networking).
    pub peers_connected: u64,
    pub uptime_secs: u64,
}

/// The API routes (merge them with the gateway's or serve them alone).
pub fn router(context: ApiContext) -> Router {
    Router::new()
        .route("/api/v1/status", get(status))
        .route("/api/v1/history", get(history))
        .route("/api/v1/gc", post(gc))
        .route("/api/v1/skip", post(operator::skip))
        .route("/api/v1/rescan", post(operator::rescan))
        .route("/api/v1/queue", get(operator::queue))
        .route("/api/v1/library", get(operator::library))
        .route("/api/v1/storage", get(operator::storage))
        .route("/api/v1/activity", get(operator::activity))
        .route("/metrics", get(metrics))
        .merge(admin::router())
        .with_state(Arc::new(context))
}

async fn status(State(context): State<Arc<ApiContext>>) -> Response {
    let published = context.published.borrow().clone();
    let published = published.as_ref();
    json(&Status {
        version: env!("CARGO_PKG_VERSION"),
        station_name: context.station_name.clone(),
        peer_id: context.peer.to_string(),
        ipns_name: context.peer.to_ipns_name(),
        listen: context.listen.iter().map(ToString::to_string).collect(),
        root: published.map(|p| p.root.to_string()),
        ipns_sequence: published.map(|p| p.ipns_sequence),
        media_sequence: published.map(|p| p.media_sequence),
        newest_sequence: published.map(|p| p.newest_sequence),
        now_playing: published.and_then(|p| p.now_playing.clone()),
        last_publish_ms: published.map(|p| unix_millis(p.at)),
        segments_encoded: context.metrics.segments_encoded_total(),
        listeners: context.metrics.listeners(Instant::now()),
        peers_connected: context.metrics.peers_connected(),
        uptime_secs: context.started.elapsed().as_secs(),
    })
}

async fn history(State(context): State<Arc<ApiContext>>) -> Response {
    match crate::station::history(&context.store).await {
        Ok(tracks) => json(&tracks),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("reading the history: {e}"),
        ),
    }
}

async fn metrics(State(context): State<Arc<ApiContext>>) -> Response {
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        context.metrics.encode(),
    )
        .into_response()
}

/// What `POST /api/v1/gc` did.
#[derive(Debug, Serialize)]
pub struct GcResult {
    pub removed_blocks: u64,
    pub removed_bytes: u64,
    pub kept_blocks: u64,
}

async fn gc(State(context): State<Arc<ApiContext>>, headers: HeaderMap) -> Response {
    if let Some(refused) = auth::refusal(&headers, &context) {
        return refused;
    }
    // Same minimum age as the station's own GC: retained segments stay fetchable.
    match crate::station::collect_garbage(&context.store, context.retention, &context.metrics).await
    {
        Ok(report) => json(&GcResult {
            removed_blocks: report.removed_blocks,
            removed_bytes: report.removed_bytes,
            kept_blocks: report.kept_blocks,
        }),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("GC failed: {e}"),
        ),
    }
}

/// A JSON response (the workspace's axum is built without its `json` feature).
fn json<T: Serialize>(value: &T) -> Response {
    json_with_status(StatusCode::OK, value)
}

fn json_with_status<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => (
            status,
            [
                (header::CONTENT_TYPE, "application/json"),
                // Live data: a cached answer is a wrong answer.
                (header::CACHE_CONTROL, "no-store"),
            ],
            body,
        )
            .into_response(),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("encoding the response: {e}"),
        ),
    }
}

/// The body of every API error.
#[derive(Debug, Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
}

/// `{"error": message}` with `status`.
fn error(status: StatusCode, message: &str) -> Response {
    let body = serde_json::to_vec(&ErrorBody { error: message })
        .unwrap_or_else(|_| br#"{"error":"unprintable error"}"#.to_vec());
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

fn unix_millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
