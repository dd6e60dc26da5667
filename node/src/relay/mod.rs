//! `ipfm relay STATION`: follow a station and re-serve it, so a popular station scales by
//! its listeners' nodes instead of its own uplink.
//!
//! ```text
//! Follower (verified announcements → whole roots, CID-checked) ─► FollowedRoot
//!   ─► pin current (+ superseded roots for the retention period), GC
//!   ─► LocalNames: the gateway serves /ipns/<station>/… from the local store
//!   ─► provide root + new segments on the DHT
//!   ─► put the station's record (unaltered) to the DHT: ≤ 1 per minute, and at once when
//!      the station goes offline, so the name stays resolvable while it is away
//! ```
//!
//! The relay runs under its own key (its repo's); it never signs anything for the station.

mod http;
mod keeper;
pub mod pins;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use ipfm_protocol::peer::PeerId;
use ipfm_store::{Store, StoreError};
use libp2p::Multiaddr;
use tokio::sync::{oneshot, watch};

use crate::follow::{FollowConfig, FollowError, FollowStatus, FollowedRoot, Follower};
use crate::gateway::LocalNames;
use crate::station::network::{P2pConfig, StationNetwork};
pub use http::{status_json, StatusSources};
pub use keeper::RelayState;

/// How a relay runs.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// The followed station.
    pub station: PeerId,
    /// How the relay joins the network (listen addresses, bootstrap peers, fetch timeout).
    pub p2p: P2pConfig,
    /// Fetch/offline/reconnect settings; its `start_addrs` are dialled first (e.g. the
    /// station's multiaddr).
    pub follow: FollowConfig,
    /// How long superseded roots stay pinned (and unpinned blocks stay stored).
    pub retention: Duration,
    pub gc_interval: Duration,
    /// At most one DHT put of the station's record per interval (plus one when the station
    /// goes offline).
    pub record_put_interval: Duration,
}

impl RelayConfig {
    /// Defaults: retention 600 s, GC every 60 s, a record put per 60 s at most.
    pub fn new(station: PeerId, p2p: P2pConfig) -> RelayConfig {
        let follow = FollowConfig {
            fetch_timeout: p2p.fetch_timeout,
            ..FollowConfig::default()
        };
        RelayConfig {
            station,
            p2p,
            follow,
            retention: Duration::from_secs(600),
            gc_interval: Duration::from_secs(60),
            record_put_interval: Duration::from_secs(60),
        }
    }
}

/// Why the relay failed.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("network: {0}")]
    Network(String),
    #[error(transparent)]
    Follow(#[from] FollowError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("listening on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A running relay (network, follower, pins); [`run`] adds the HTTP side.
pub struct Relay {
    station: PeerId,
    network: StationNetwork,
    follower: Follower,
    names: Arc<LocalNames>,
    store: Store,
    state: watch::Receiver<RelayState>,
    keeper_stop: oneshot::Sender<()>,
    keeper: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Starts the swarm as `key`'s peer over `store`, then follows `config.station`.
    pub async fn start(
        store: Store,
        key: &SigningKey,
        config: RelayConfig,
    ) -> Result<Relay, RelayError> {
        if config.gc_interval.is_zero() {
            return Err(RelayError::Config("gc_interval must be > 0".into()));
        }
        let own = PeerId::from_ed25519(&key.verifying_key());
        if own == config.station {
            return Err(RelayError::Config(
                "this repo's key is the station's own key: relay from another repo".into(),
            ));
        }
        let network = StationNetwork::start(store.clone(), key, &config.p2p)
            .await
            .map_err(|e| RelayError::Network(e.to_string()))?;
        let pins = match pins::RelayPins::load(store.clone(), &config.station).await {
            Ok(pins) => pins,
            Err(error) => {
                network.shutdown().await;
                return Err(error.into());
            }
        };
        let follower = match Follower::start(
            network.client().clone(),
            store.clone(),
            config.station,
            config.follow.clone(),
        )
        .await
        {
            Ok(follower) => follower,
            Err(error) => {
                network.shutdown().await;
                return Err(error.into());
            }
        };
        let names = Arc::new(LocalNames::new());
        // Other names (not the followed station) resolve over the network, as on a station.
        names.set_remote(network.name_resolver());
        let (state_tx, state) = watch::channel(RelayState::default());
        let (keeper_stop, stopped) = oneshot::channel();
        let keeper = keeper::Keeper {
            client: network.client().clone(),
            store: store.clone(),
            station: config.station,
            names: names.clone(),
            provider: network.provider(),
            pins,
            retention: config.retention,
            gc_interval: config.gc_interval,
            put_interval: config.record_put_interval,
            state: state_tx,
        };
        let keeper = tokio::spawn(keeper.run(follower.roots(), follower.status(), stopped));
        Ok(Relay {
            station: config.station,
            network,
            follower,
            names,
            store,
            state,
            keeper_stop,
            keeper,
        })
    }

    pub fn station(&self) -> PeerId {
        self.station
    }

    pub fn client(&self) -> &crate::net::swarm::Client {
        self.network.client()
    }

    /// The relay's listen addresses, each ending in `/p2p/<relay peer id>`.
    pub async fn p2p_addrs(&self) -> Result<Vec<Multiaddr>, RelayError> {
        self.network
            .p2p_addrs()
            .await
            .map_err(|e| RelayError::Network(e.to_string()))
    }

    /// The newest root held whole.
    pub fn roots(&self) -> watch::Receiver<Option<FollowedRoot>> {
        self.follower.roots()
    }

    pub fn follow_status(&self) -> watch::Receiver<FollowStatus> {
        self.follower.status()
    }

    pub fn state(&self) -> watch::Receiver<RelayState> {
        self.state.clone()
    }

    /// What `GET /api/v1/relay` reads.
    pub fn status_sources(&self) -> StatusSources {
        StatusSources {
            station: self.station,
            relay_peer: self.network.client().peer_id().to_string(),
            follow: self.follower.status(),
            roots: self.follower.roots(),
            state: self.state.clone(),
            client: self.network.client().clone(),
        }
    }

    /// The gateway serving the station from the local store, `/healthz`, `/api/v1/relay`.
    pub fn router(&self) -> axum::Router {
        http::router(
            self.store.clone(),
            self.names.clone(),
            self.network.block_fetcher(),
            self.status_sources(),
        )
    }

    /// Stops following, the network, and flushes the store.
    pub async fn stop(self) -> Result<(), RelayError> {
        let _ = self.keeper_stop.send(());
        if let Err(error) = self.keeper.await {
            tracing::warn!(%error, "relay task failed");
        }
        self.follower.stop().await;
        self.network.shutdown().await;
        self.store.flush().await?;
        Ok(())
    }
}

/// What `ipfm relay` prints once it is up.
#[derive(Debug, Clone)]
pub struct RelayInfo {
    /// The relay's own peer id.
    pub peer_id: String,
    /// The followed station's `k51…` name.
    pub station: String,
    pub listen: SocketAddr,
    /// `http://<listen>/ipns/<station>/`.
    pub gateway_url: String,
    /// Where peers reach the relay (`…/p2p/<relay peer id>`).
    pub p2p_addrs: Vec<Multiaddr>,
}

/// Runs a relay with its gateway on `listen` until `shutdown` completes, then stops it
/// (network down, store flushed). `on_ready` is called once everything listens.
pub async fn run(
    store: Store,
    key: SigningKey,
    config: RelayConfig,
    listen: SocketAddr,
    shutdown: impl Future<Output = ()>,
    on_ready: impl FnOnce(&RelayInfo),
) -> Result<(), RelayError> {
    /// Time allowed for open gateway responses to finish at shutdown.
    const HTTP_GRACE: Duration = Duration::from_secs(2);
    let listen_error = |source| RelayError::Listen {
        addr: listen,
        source,
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(listen_error)?;
    let addr = listener.local_addr().map_err(listen_error)?;
    let relay = Relay::start(store, &key, config).await?;
    let p2p_addrs = match relay.p2p_addrs().await {
        Ok(addrs) => addrs,
        Err(error) => {
            relay.stop().await?;
            return Err(error);
        }
    };
    let (http_stop, http_stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(crate::gateway::serve(
        listener,
        relay.router(),
        async move {
            let _ = http_stopped.await;
        },
    ));
    let station = relay.station();
    on_ready(&RelayInfo {
        peer_id: relay.client().peer_id().to_string(),
        station: station.to_ipns_name(),
        listen: addr,
        gateway_url: format!("http://{addr}{}", crate::station::player_path(&station)),
        p2p_addrs,
    });
    shutdown.await;
    tracing::info!("relay stopping");
    let _ = http_stop.send(());
    if tokio::time::timeout(HTTP_GRACE, server).await.is_err() {
        tracing::warn!("gateway connections still open at shutdown; closing them");
    }
    relay.stop().await
}
