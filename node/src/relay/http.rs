//! The relay's HTTP side: the gateway (the followed station at `/ipns/<k51…>/…`, served
//! from the local store), `GET /api/v1/relay` and `/healthz`.

use std::sync::Arc;
use std::time::SystemTime;

use axum::http::{header, StatusCode};
use axum::routing::get;
use axum::Router;
use ipfm_protocol::ipns::format_rfc3339;
use ipfm_protocol::peer::PeerId;
use ipfm_store::Store;
use tokio::sync::watch;

use super::keeper::RelayState;
use crate::follow::{FollowStatus, FollowedRoot};
use crate::gateway::{BlockFetcher, Gateway, GatewayConfig, LocalNames};
use crate::net::swarm::Client;

/// What the status endpoint reads.
#[derive(Clone)]
pub struct StatusSources {
    pub station: PeerId,
    pub relay_peer: String,
    pub follow: watch::Receiver<FollowStatus>,
    pub roots: watch::Receiver<Option<FollowedRoot>>,
    pub state: watch::Receiver<RelayState>,
    /// The relay's swarm: who it is connected to.
    pub client: Client,
}

/// The gateway plus `/healthz` (200 once a root is held whole) and `/api/v1/relay`.
pub fn router(
    store: Store,
    names: Arc<LocalNames>,
    fetcher: Arc<dyn BlockFetcher>,
    sources: StatusSources,
) -> Router {
    let gateway = Gateway::new(store)
        .with_name_resolver(names)
        .with_block_fetcher(fetcher)
        .with_config(GatewayConfig {
            root_redirect: Some(crate::station::player_path(&sources.station)),
            // As the station's gateway: blocks were verified when fetched.
            hash_on_read: false,
        });
    let health = sources.roots.clone();
    gateway
        .router()
        .route(
            "/healthz",
            get(move || {
                let ready = health.borrow().is_some();
                async move {
                    if ready {
                        (StatusCode::OK, "ok\n")
                    } else {
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            "no root of the station yet\n",
                        )
                    }
                }
            }),
        )
        .route(
            "/api/v1/relay",
            get(move || {
                let sources = sources.clone();
                async move {
                    (
                        [
                            (header::CONTENT_TYPE, "application/json"),
                            (header::CACHE_CONTROL, "no-store"),
                        ],
                        status_json(&sources).await.to_string(),
                    )
                }
            }),
        )
}

fn time(t: Option<SystemTime>) -> serde_json::Value {
    t.map_or(serde_json::Value::Null, |t| format_rfc3339(t).into())
}

/// The `GET /api/v1/relay` document.
pub async fn status_json(sources: &StatusSources) -> serde_json::Value {
    // Asked first: the watch borrows below must not be held across an await.
    let peers = match sources.client.connected_peers().await {
        Ok(peers) => peers,
        Err(error) => {
            tracing::debug!(%error, "connected peers unavailable for the status");
            Vec::new()
        }
    };
    let station_peer = crate::net::swarm::to_libp2p_peer_id(&sources.station);
    let follow = sources.follow.borrow().clone();
    let state = sources.state.borrow().clone();
    let now_playing = sources
        .roots
        .borrow()
        .as_ref()
        .and_then(|r| r.now_playing.clone());
    serde_json::json!({
        "station": sources.station.to_ipns_name(),
        "peer_id": sources.relay_peer,
        "online": follow.online,
        "offline_since": time(follow.offline_since),
        "last_announcement": time(follow.last_announcement),
        "last_sequence": follow.last_sequence,
        "last_root": follow.last_root.map(|c| c.to_string()),
        "last_published_at": time(follow.last_published_at),
        "now_playing": now_playing.map(|p| serde_json::json!({"title": p.title, "artist": p.artist})),
        "accepted": follow.accepted,
        "ignored": follow.ignored,
        "rejected": follow.rejected,
        "fetch_failures": follow.fetch_failures,
        "reconnect_attempts": follow.reconnect_attempts,
        "retained_roots": state.retained_roots,
        "forwarded_sequence": state.forwarded_sequence,
        "forwarded_at": time(state.forwarded_at),
        "gc_removed_blocks": state.gc_removed_blocks,
        // Whether the relay has a direct connection to the station (false for a relay that
        // blocks it and follows through other relays).
        "peers_connected": peers.len(),
        "station_connected": peers.contains(&station_peer),
    })
}
