//! `ipfm station`: the live station on one node.
//!
//! ```text
//! encoder threads ─(crossbeam)─► bridge thread ─(tokio mpsc)─► station task:
//!   per segment: raw block into the store
//!   per sequence (all renditions in): live windows ─► root directory (player, playlists,
//!   nowplaying.json, segments) ─► pin ─► persist media sequence, playout position, windows
//!   (one atomic write) ─► IPNS record (sequence stored first) ─► LocalNames + Publishers
//!   every gc_interval: retention GC
//! ```
//!
//! Segments that slide out of a window stay pinned (under [`RETAINED_PIN`]) for the
//! retention period, then GC reclaims them. Windows, history and the playout position
//! are persisted before every publish, so a restart continues the playlists (with a
//! discontinuity), the media and discontinuity sequences never reset, and no published
//! sequence number is ever reused for other bytes.

pub mod activity;
pub mod announce;
pub(crate) mod http;
pub mod network;
pub mod provide;
pub mod publish;
mod root;
mod runner;
mod state;
mod tree;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ed25519_dalek::SigningKey;
use ipfm_encoder::{
    Encoder, EncoderConfig, EncoderControl, EncoderError, EncoderEvent, EncoderHandle, Library,
    Mode, PlayoutPosition, Segment,
};
use ipfm_protocol::builder::BuilderError;
use ipfm_protocol::cid::raw_cid;
use ipfm_protocol::ipns::{IpnsError, IpnsRecord};
use ipfm_protocol::peer::PeerId;
use ipfm_protocol::Cid;
use ipfm_store::{Blockstore, Store, StoreError};
use tokio::sync::{mpsc, oneshot, watch};

use crate::api::ApiToken;
use crate::gateway::LocalNames;
use crate::hls::{PlaylistSegment, DEFAULT_WINDOW};
use crate::metrics::StationMetrics;

pub use http::{player_path, router, router_with_fetcher};
pub use publish::{Publisher, RootUpdate};
pub use runner::collect_garbage;
use runner::Runner;
pub use state::TrackInfo;

use root::RootBuilder;
use state::{SegmentBlock, StationState, STATE_KEY};

/// Pin holding the current station root.
pub const ROOT_PIN: &str = "station-root";
/// Pin holding the segments that left the live window but are still retained.
pub const RETAINED_PIN: &str = "station-retained";
/// Tracks listed in `nowplaying.json`'s history.
pub const HISTORY_LEN: usize = 50;
/// The station's name unless configured (`station.name`).
pub const DEFAULT_STATION_NAME: &str = "ipfm station";
/// Longest accepted station name, in characters.
pub const MAX_STATION_NAME_CHARS: usize = 100;

/// How the station runs.
#[derive(Debug, Clone)]
pub struct StationConfig {
    /// Shown by the player and the dashboard (`nowplaying.json`, `/api/v1/status`).
    pub name: String,
    /// Music directory; `None` (or an empty one) plays the built-in demo program.
    pub music: Option<PathBuf>,
    pub jingles: Option<PathBuf>,
    pub encoder: EncoderConfig,
    /// [`Mode::Realtime`] for a station; [`Mode::AsFastAsPossible`] runs one pass.
    pub mode: Mode,
    /// Segments per live playlist.
    pub window: usize,
    /// IPNS record TTL (how long resolvers may cache it); `None`: one segment duration,
    /// so a cached name is at most one segment behind.
    pub ipns_ttl: Option<Duration>,
    /// IPNS record validity (EOL = publish time + this).
    pub ipns_validity: Duration,
    /// How long segments that left the window stay fetchable (and unreferenced blocks
    /// stay stored) before GC reclaims them.
    pub retention: Duration,
    /// How often retention GC runs.
    pub gc_interval: Duration,
    /// Join the IPFS network ([`run`] only); `None`: serve over HTTP only.
    pub p2p: Option<network::P2pConfig>,
    /// Serve the API, `/metrics` and `/healthz` on this address instead of the gateway's
    /// ([`run`] only).
    pub api_listen: Option<SocketAddr>,
    /// Bearer token of the API's mutating endpoints; `None` refuses them all.
    pub api_token: Option<ApiToken>,
}

impl Default for StationConfig {
    fn default() -> Self {
        StationConfig {
            name: DEFAULT_STATION_NAME.to_owned(),
            music: None,
            jingles: None,
            encoder: EncoderConfig::default(),
            mode: Mode::Realtime,
            window: DEFAULT_WINDOW,
            ipns_ttl: None,
            ipns_validity: Duration::from_secs(24 * 3600),
            retention: Duration::from_secs(600),
            gc_interval: Duration::from_secs(60),
            p2p: None,
            api_listen: None,
            api_token: None,
        }
    }
}

impl StationConfig {
    /// The IPNS TTL in force.
    pub fn ttl(&self) -> Duration {
        self.ipns_ttl.unwrap_or(self.encoder.segment_target)
    }

    /// Checks every field; errors name the field and the allowed range.
    pub fn validate(&self) -> Result<(), StationError> {
        self.encoder.validate()?;
        let bad = |field: &str, range: &str| {
            Err(StationError::Config(format!(
                "{field} is outside the allowed range {range}"
            )))
        };
        if !(3..=1000).contains(&self.window) {
            return bad("window", "3–1000 segments");
        }
        if self.ipns_validity < Duration::from_secs(60) {
            return bad("ipns_validity", "≥ 60 s");
        }
        if self.ttl() > self.ipns_validity {
            return bad("ipns_ttl", "≤ ipns_validity");
        }
        if self.gc_interval.is_zero() {
            return bad("gc_interval", "> 0");
        }
        let chars = self.name.chars().count();
        if self.name.trim().is_empty()
            || chars > MAX_STATION_NAME_CHARS
            || self.name.chars().any(char::is_control)
        {
            return bad(
                "station.name",
                "1–100 characters, not all blank, no control characters",
            );
        }
        Ok(())
    }
}

/// Why the station failed.
#[derive(Debug, thiserror::Error)]
pub enum StationError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("encoder: {0}")]
    Encoder(#[from] EncoderError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("building the station root: {0}")]
    Builder(#[from] BuilderError),
    #[error("publishing the IPNS record: {0}")]
    Ipns(#[from] IpnsError),
    #[error("listening on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("station task: {0}")]
    Task(String),
    #[error("network: {0}")]
    Network(String),
}

/// The latest publication.
#[derive(Debug, Clone)]
pub struct Published {
    pub root: Cid,
    pub ipns_sequence: u64,
    /// `#EXT-X-MEDIA-SEQUENCE` of the live playlists.
    pub media_sequence: u64,
    /// Sequence of the newest segment.
    pub newest_sequence: u64,
    pub now_playing: Option<TrackInfo>,
    pub at: SystemTime,
}

/// A running station; dropping it stops the station (without waiting).
pub struct StationHandle {
    name: PeerId,
    published: watch::Receiver<Option<Published>>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), StationError>>,
    metrics: Arc<StationMetrics>,
    control: EncoderControl,
}

impl StationHandle {
    /// The station's peer id, whose IPNS name the station publishes under.
    pub fn name(&self) -> PeerId {
        self.name
    }

    /// `k51…`: the IPNS name.
    pub fn ipns_name(&self) -> String {
        self.name.to_ipns_name()
    }

    /// Follows the publications (`None` until the first one).
    pub fn published(&self) -> watch::Receiver<Option<Published>> {
        self.published.clone()
    }

    /// The station's metrics (what `/metrics` exports).
    pub fn metrics(&self) -> Arc<StationMetrics> {
        self.metrics.clone()
    }

    /// Skip, rescan and the playout snapshot (what plays, what is next, the library).
    /// Commands fail with [`EncoderError::Stopped`] once the station stopped.
    pub fn control(&self) -> EncoderControl {
        self.control.clone()
    }

    /// Stops the encoder, publishes a final root and flushes the store.
    pub async fn stop(mut self) -> Result<(), StationError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task)
            .await
            .map_err(|e| StationError::Task(e.to_string()))?
    }

    /// Waits for the station to end by itself ([`Mode::AsFastAsPossible`]: after its
    /// single pass), then returns like [`StationHandle::stop`].
    pub async fn join(mut self) -> Result<(), StationError> {
        (&mut self.task)
            .await
            .map_err(|e| StationError::Task(e.to_string()))?
    }
}

/// Starts a station publishing under `key`'s name into `names` and `publishers`.
pub async fn start(
    store: Store,
    key: SigningKey,
    names: Arc<LocalNames>,
    publishers: Vec<Arc<dyn Publisher>>,
    config: StationConfig,
) -> Result<StationHandle, StationError> {
    config.validate()?;
    let name = PeerId::from_ed25519(&key.verifying_key());
    let now = SystemTime::now();
    let mut state = load_state(&store).await?;
    state.set_capacity(config.window, now);
    let configured: Vec<&str> = config
        .encoder
        .renditions
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    state.keep_renditions(&configured, now);
    let position = resume_position(&store, &state).await?;

    let (music, jingles) = (config.music.clone(), config.jingles.clone());
    let (encoder_config, mode) = (config.encoder.clone(), config.mode);
    let (encoder, events) = tokio::task::spawn_blocking(move || {
        let library = match music {
            Some(dir) => Library::scan(&dir)?,
            None => Library::empty(),
        };
        let jingles = match jingles {
            Some(dir) => Library::scan(&dir)?,
            None => Library::empty(),
        };
        Encoder::start(encoder_config, library, jingles, position, mode)
    })
    .await
    .map_err(|e| StationError::Task(e.to_string()))??;
    let control = encoder.control();

    let (tx, rx) = mpsc::channel(8);
    let bridge = std::thread::Builder::new()
        .name("ipfm-station-bridge".into())
        .spawn(move || {
            // Ends when the encoder closes its channel or the station stops listening.
            for event in events.iter() {
                if tx.blocking_send(event).is_err() {
                    break;
                }
            }
        })
        .map_err(|e| StationError::Task(format!("starting the event bridge: {e}")))?;

    let (published_tx, published) = watch::channel(None);
    let metrics = Arc::new(StationMetrics::new());
    let mut root = RootBuilder::new(store.clone(), name, config.name.clone());
    root.add_player_assets().await?;
    let mut runner = Runner {
        store,
        key,
        name,
        names,
        publishers,
        config,
        state,
        root,
        pending: BTreeMap::new(),
        position: None,
        new_segments: Vec::new(),
        published: published_tx,
        metrics: metrics.clone(),
    };
    if runner.has_segments() {
        // A restart: serve the previous window at once (new segments follow it with a
        // discontinuity), so the name resolves and /healthz is up before the encoder's
        // first segment.
        runner.publish().await?;
    }
    let (stop_tx, stop_rx) = oneshot::channel();
    let task = tokio::spawn(runner.run(rx, encoder, bridge, stop_rx));
    Ok(StationHandle {
        name,
        published,
        stop: Some(stop_tx),
        task,
        metrics,
        control,
    })
}

/// What `ipfm station` prints once it is up.
#[derive(Debug, Clone)]
pub struct StationInfo {
    pub peer_id: String,
    pub ipns_name: String,
    /// Where the gateway listens.
    pub listen: SocketAddr,
    /// `http://<listen>/ipns/<name>/`.
    pub player_url: String,
    /// Where peers reach the station (`…/p2p/<peer id>`); empty without [`StationConfig::p2p`].
    pub p2p_addrs: Vec<libp2p::Multiaddr>,
    /// Where the API, `/metrics` and `/healthz` listen (`listen` unless
    /// [`StationConfig::api_listen`] moved them).
    pub api: SocketAddr,
}

/// Runs a station with its gateway on `listen` until `shutdown` completes, then stops it
/// (final root published, store flushed). `on_ready` is called once everything listens.
pub async fn run(
    store: Store,
    key: SigningKey,
    config: StationConfig,
    listen: SocketAddr,
    shutdown: impl Future<Output = ()>,
    on_ready: impl FnOnce(&StationInfo),
) -> Result<(), StationError> {
    /// Time allowed for open gateway responses to finish after the station stopped.
    const HTTP_GRACE: Duration = Duration::from_secs(2);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| StationError::Listen {
            addr: listen,
            source,
        })?;
    let addr = listener
        .local_addr()
        .map_err(|source| StationError::Listen {
            addr: listen,
            source,
        })?;
    let api_listener = match config.api_listen {
        Some(api_listen) => {
            Some(
                crate::api::bind(api_listen)
                    .await
                    .map_err(|source| StationError::Listen {
                        addr: api_listen,
                        source,
                    })?,
            )
        }
        None => None,
    };
    let api_addr = api_listener.as_ref().map_or(addr, |(_, a)| *a);
    let (api_token, retention) = (config.api_token.clone(), config.retention);
    let station_name = config.name.clone();
    let names = Arc::new(LocalNames::new());
    let mut publishers: Vec<Arc<dyn Publisher>> = Vec::new();
    let mut fetcher: Arc<dyn crate::gateway::BlockFetcher> = Arc::new(crate::gateway::NoFetcher);
    let (network, p2p_addrs) = match &config.p2p {
        Some(p2p) => {
            let network = network::StationNetwork::start(store.clone(), &key, p2p)
                .await
                .map_err(|e| StationError::Network(e.to_string()))?;
            let addrs = network
                .p2p_addrs()
                .await
                .map_err(|e| StationError::Network(e.to_string()))?;
            publishers.push(network.publisher());
            publishers.push(network.announcer(key.clone(), store.clone()));
            fetcher = network.block_fetcher();
            // Other stations' names resolve over the network (DHT + pubsub).
            names.set_remote(network.name_resolver());
            (Some(network), addrs)
        }
        None => (None, Vec::new()),
    };
    let station = match start(store.clone(), key, names.clone(), publishers, config).await {
        Ok(station) => station,
        Err(e) => {
            if let Some(network) = network {
                network.shutdown().await;
            }
            return Err(e);
        }
    };
    let name = station.name();
    let peer_sampler = network.as_ref().map(|network| {
        tokio::spawn(crate::metrics::sample_peers(
            network.client().clone(),
            station.metrics(),
        ))
    });
    let activity = Arc::new(activity::Activity::default());
    let activity_sampler = tokio::spawn(activity::sample_activity(
        station.metrics(),
        activity.clone(),
        activity::SAMPLE_INTERVAL,
    ));
    let gateway = router_with_fetcher(store.clone(), names, &name, station.published(), fetcher);
    let api = crate::api::ApiContext {
        peer: name,
        listen: std::iter::once(addr)
            .chain(api_listener.as_ref().map(|(_, a)| *a))
            .collect(),
        published: station.published(),
        metrics: station.metrics(),
        store,
        retention,
        started: Instant::now(),
        token: api_token,
        station_name,
        control: station.control(),
        activity,
    };
    let (http_stop_tx, http_stop_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(crate::api::serve(
        listener,
        api_listener.map(|(l, _)| l),
        gateway,
        api,
        async move {
            let _ = http_stop_rx.await;
        },
    ));
    on_ready(&StationInfo {
        peer_id: name.to_string(),
        ipns_name: name.to_ipns_name(),
        listen: addr,
        player_url: format!("http://{addr}{}", player_path(&name)),
        p2p_addrs,
        api: api_addr,
    });
    shutdown.await;
    let stopped = station.stop().await;
    activity_sampler.abort();
    if let Some(sampler) = peer_sampler {
        sampler.abort();
    }
    let _ = http_stop_tx.send(());
    if tokio::time::timeout(HTTP_GRACE, server).await.is_err() {
        tracing::warn!("gateway connections still open at shutdown; closing them");
    }
    if let Some(network) = network {
        network.shutdown().await;
    }
    stopped
}

/// The recent tracks (newest first) as last persisted by the station.
pub async fn history(store: &Store) -> Result<Vec<TrackInfo>, StationError> {
    Ok(load_state(store).await?.history)
}

async fn load_state(store: &Store) -> Result<StationState, StationError> {
    Ok(match store.state_get(STATE_KEY).await? {
        Some(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "stored station state unreadable; starting fresh windows");
            StationState::default()
        }),
        None => StationState::default(),
    })
}

/// The stored playout position, with a media sequence past every segment already
/// published (so sequences never go backwards, even if the position was lost).
async fn resume_position(
    store: &Store,
    state: &StationState,
) -> Result<Option<PlayoutPosition>, StationError> {
    let stored = store.playout_position().await?.and_then(|bytes| {
        serde_json::from_slice::<PlayoutPosition>(&bytes)
            .map_err(|e| tracing::warn!(error = %e, "stored playout position unreadable"))
            .ok()
    });
    let floor = state
        .newest_sequence()
        .map(|s| s + 1)
        .into_iter()
        .chain(store.media_sequence().await?)
        .max();
    Ok(match (stored, floor) {
        (Some(mut position), Some(floor)) => {
            position.media_sequence = position.media_sequence.max(floor);
            Some(position)
        }
        (Some(position), None) => Some(position),
        (None, Some(floor)) => Some(PlayoutPosition {
            media_sequence: floor,
            ..PlayoutPosition::default()
        }),
        (None, None) => None,
    })
}
