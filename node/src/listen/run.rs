//! The listener node: an ephemeral in-memory peer that follows one station and plays it
//! (stdout) or re-serves it (`--serve`).

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use ipfm_store::Store;
use tokio::io::AsyncWrite;
use tokio::sync::watch;

use super::feed::{SegmentFeed, StartAt};
use super::now_playing::NowPlayingLog;
use super::play::{play, PlayEnd, PlayStats};
use super::retention::{keep_window, DEFAULT_GC_INTERVAL, DEFAULT_GC_MIN_AGE};
use super::serve::LocalHls;
use super::target::StationTarget;
use super::ListenError;
use crate::follow::{FollowConfig, FollowedRoot, Follower};
use crate::station::network::{P2pConfig, StationNetwork};

/// How long `ipfm listen` waits for the station's first root unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the stream goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenOutput {
    /// MPEG-TS bytes of the rendition to the writer given to [`run`].
    Stream,
    /// A local HLS gateway on this address.
    Serve(SocketAddr),
}

/// What `ipfm listen` was asked to do.
#[derive(Debug, Clone)]
pub struct ListenConfig {
    pub target: StationTarget,
    pub rendition: String,
    /// Bound on getting the station's first root.
    pub timeout: Duration,
    pub p2p: P2pConfig,
    pub output: ListenOutput,
    /// Where a stream output starts in the first window.
    pub start: StartAt,
    /// Peers never connected to (`--block-peer`; see [`FollowConfig::blocked_peers`]).
    pub blocked_peers: Vec<libp2p::PeerId>,
}

/// How listening ended (errors aside).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenEnd {
    /// The player closed the pipe.
    ReaderClosed,
    /// Asked to stop (Ctrl-C).
    Shutdown,
    /// The follower stopped on its own.
    FollowerStopped,
}

/// Follows `config.target` and plays it into `out` (or serves it) until `shutdown`
/// completes or the reader goes away. Progress lines (following, URL, now playing,
/// discontinuities) go to `lines`.
pub async fn run<W>(
    config: ListenConfig,
    out: &mut W,
    lines: &mut (dyn Write + Send),
    shutdown: impl Future<Output = ()> + Send,
) -> Result<ListenEnd, ListenError>
where
    W: AsyncWrite + Unpin + Send,
{
    let store = Store::open_in_memory();
    // In memory: a fresh identity every run, gone when the listener exits.
    let key = store
        .load_or_create_key()
        .await
        .map_err(|e| ListenError::Network(format!("creating the listener's key: {e}")))?;
    let network = StationNetwork::start(store.clone(), &key, &config.p2p)
        .await
        .map_err(|e| ListenError::Network(e.to_string()))?;
    let result = follow_and_output(&config, store, &network, out, lines, shutdown).await;
    network.shutdown().await;
    result
}

async fn follow_and_output<W>(
    config: &ListenConfig,
    store: Store,
    network: &StationNetwork,
    out: &mut W,
    lines: &mut (dyn Write + Send),
    shutdown: impl Future<Output = ()> + Send,
) -> Result<ListenEnd, ListenError>
where
    W: AsyncWrite + Unpin + Send,
{
    let station = config.target.station;
    let follow = FollowConfig {
        start_addrs: config.target.dial.iter().cloned().collect(),
        resolve_timeout: config.timeout,
        blocked_peers: config.blocked_peers.clone(),
        ..FollowConfig::default()
    };
    let follower = Follower::start(network.client().clone(), store.clone(), station, follow)
        .await
        .map_err(|e| ListenError::Network(e.to_string()))?;
    let _ = writeln!(lines, "following {} …", station.to_ipns_name());
    let outcome = async {
        let mut roots = follower.roots();
        first_root(&follower, &mut roots, config.timeout).await?;
        let retention = tokio::spawn(keep_window(
            store.clone(),
            follower.roots(),
            DEFAULT_GC_INTERVAL,
            DEFAULT_GC_MIN_AGE,
        ));
        let outcome = tokio::select! {
            outcome = output(config, store, &mut roots, out, lines) => outcome,
            () = shutdown => Ok(ListenEnd::Shutdown),
        };
        retention.abort();
        outcome
    }
    .await;
    follower.stop().await;
    outcome
}

/// Waits for the station's first root; says why none came.
async fn first_root(
    follower: &Follower,
    roots: &mut watch::Receiver<Option<FollowedRoot>>,
    timeout: Duration,
) -> Result<(), ListenError> {
    let name = follower.station().to_ipns_name();
    match tokio::time::timeout(timeout, roots.wait_for(Option::is_some)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(_)) => Err(ListenError::Network("the follower stopped".into())),
        Err(_) => {
            let status = follower.status().borrow().clone();
            if status.rejected > 0 {
                Err(ListenError::BadRecord {
                    name,
                    detail: format!(
                        "{} announcement(s) rejected (forged, malformed, or a record that \
                         does not verify); run with RUST_LOG=ipfm_node=debug for details",
                        status.rejected
                    ),
                })
            } else if status.fetch_failures > 0 {
                Err(ListenError::Network(format!(
                    "station {name} announced {} root(s) but none could be fetched whole \
                     within {} s",
                    status.fetch_failures,
                    timeout.as_secs()
                )))
            } else {
                Err(ListenError::Unreachable {
                    name,
                    waited: timeout,
                })
            }
        }
    }
}

async fn output<W>(
    config: &ListenConfig,
    store: Store,
    roots: &mut watch::Receiver<Option<FollowedRoot>>,
    out: &mut W,
    lines: &mut (dyn Write + Send),
) -> Result<ListenEnd, ListenError>
where
    W: AsyncWrite + Unpin + Send,
{
    match config.output {
        ListenOutput::Stream => {
            let mut feed = SegmentFeed::new(store, config.rendition.clone(), config.start);
            let mut stats = PlayStats::default();
            let end = play(&mut feed, roots, out, lines, &mut stats).await?;
            tracing::info!(
                segments = stats.segments,
                bytes = stats.bytes,
                discontinuities = stats.discontinuities,
                "stream ended"
            );
            Ok(match end {
                PlayEnd::ReaderClosed => ListenEnd::ReaderClosed,
                PlayEnd::FollowerStopped => ListenEnd::FollowerStopped,
            })
        }
        ListenOutput::Serve(addr) => {
            let server = LocalHls::start(store.clone(), config.target.station, addr).await?;
            let end = serve_roots(&server, &store, roots, lines).await;
            server.stop().await;
            end
        }
    }
}

/// Publishes each new root on the local gateway (printing its URL once the first is up).
async fn serve_roots(
    server: &LocalHls,
    store: &Store,
    roots: &mut watch::Receiver<Option<FollowedRoot>>,
    lines: &mut (dyn Write + Send),
) -> Result<ListenEnd, ListenError> {
    let mut now_playing = NowPlayingLog::new();
    let mut announced = false;
    loop {
        let followed = roots.borrow_and_update().clone();
        if let Some(followed) = followed {
            match server.publish(&followed) {
                Ok(()) if !announced => {
                    announced = true;
                    let _ = writeln!(lines, "serving HLS at {}", server.playlist_url());
                }
                Ok(()) => {}
                // The follower validated it; only the clock moving past its EOL gets here.
                Err(error) => tracing::warn!(%error, root = %followed.root, "root not served"),
            }
            if let Some(line) = now_playing.update(store, &followed).await {
                let _ = writeln!(lines, "{line}");
            }
        }
        if roots.changed().await.is_err() {
            return Ok(ListenEnd::FollowerStopped);
        }
    }
}
