//! Following a station from another node: its verified announcements in, its roots (whole
//! DAGs, fetched over bitswap and CID-verified) into the local store, out as a stream of
//! [`FollowedRoot`]s. The relay (`ipfm relay`) and the listener (`ipfm listen`) are both a
//! follower plus what they do with each root.
//!
//! ```text
//! station topic ─► AnnouncementReceiver (signature, record, sequence) ─► fetch whole root
//!   ─► persist record ─► FollowedRoot on the watch channel ─► gossipsub Accept (forward)
//! start: last persisted record, then the DHT's current record (bounded lookup)
//! every second: online/offline bookkeeping, reconnect with backoff while offline
//! ```
//!
//! Modules: [`status`] (online/offline and counters), [`backoff`] (reconnect pacing),
//! `task` (the loop).

pub mod backoff;
pub mod status;
mod task;

use std::time::{Duration, SystemTime};

use ipfm_protocol::announce::NowPlaying;
use ipfm_protocol::ipns::IpnsRecord;
use ipfm_protocol::peer::PeerId;
use ipfm_protocol::Cid;
use ipfm_store::Store;
use libp2p::Multiaddr;
use tokio::sync::{oneshot, watch};
use tracing::Instrument;

use crate::net::swarm::{Client, NetError};
pub use status::FollowStatus;

/// One station root this node has verified and holds whole.
///
/// Invariant: when a `FollowedRoot` is handed out, every block of `root`'s DAG is in the
/// follower's store, `record` validates for `station` and points at `/ipfs/<root>`, and
/// `sequence` is above every sequence handed out before.
#[derive(Debug, Clone)]
pub struct FollowedRoot {
    pub station: PeerId,
    /// The IPNS sequence of `record` (and of the announcement that brought it).
    pub sequence: u64,
    pub root: Cid,
    /// The station's own signed IPNS record for `root`, exactly as the station signed it.
    pub record: IpnsRecord,
    /// What the station said was playing when it published `root`.
    pub now_playing: Option<NowPlaying>,
    /// When the station published the root (its clock).
    pub published_at: SystemTime,
    /// When this node had the whole root (our clock).
    pub received_at: SystemTime,
    /// Segment blocks the announcement said are new in `root` (empty for a root learnt
    /// from the DHT or the store, where nobody said).
    pub new_segments: Vec<Cid>,
}

/// How a [`Follower`] follows.
#[derive(Debug, Clone)]
pub struct FollowConfig {
    /// Bound on fetching one whole root (every block of it) over bitswap.
    pub fetch_timeout: Duration,
    /// Peers dialled at start and on every reconnect attempt (e.g. the station's
    /// `…/p2p/<id>` address, or a relay's).
    pub start_addrs: Vec<Multiaddr>,
    /// Bound on the DHT lookup of the station's record at start.
    pub resolve_timeout: Duration,
    /// Most blocks one root may have (a station root is a few hundred).
    pub max_root_blocks: usize,
    /// The station counts as offline after no announcement for max(3 × the observed
    /// announcement interval, this).
    pub min_offline_after: Duration,
    /// Reconnect attempts while offline: delays double from `min` to `max` (jittered).
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    /// Peers never connected to (the operator's `--block-peer`), blocked before anything is
    /// dialled: e.g. the station itself, so this node follows it only through relays.
    pub blocked_peers: Vec<libp2p::PeerId>,
}

impl Default for FollowConfig {
    fn default() -> Self {
        FollowConfig {
            fetch_timeout: Duration::from_secs(30),
            start_addrs: Vec::new(),
            resolve_timeout: Duration::from_secs(10),
            max_root_blocks: 100_000,
            min_offline_after: Duration::from_secs(15),
            reconnect_min: Duration::from_secs(1),
            reconnect_max: Duration::from_secs(60),
            blocked_peers: Vec::new(),
        }
    }
}

/// Why following could not start.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error("subscribing to the station topic: {0}")]
    Subscribe(#[source] NetError),
    #[error("blocking peer {peer}: {source}")]
    Block {
        peer: libp2p::PeerId,
        #[source]
        source: NetError,
    },
    #[error("reading the followed state: {0}")]
    Store(#[from] ipfm_store::StoreError),
}

/// Follows one station: verified roots out on [`Follower::roots`], its health on
/// [`Follower::status`]. Dropping it stops following (without waiting).
pub struct Follower {
    station: PeerId,
    roots: watch::Receiver<Option<FollowedRoot>>,
    status: watch::Receiver<FollowStatus>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Follower {
    /// Blocks `config.blocked_peers`, subscribes to `station`'s topic through `client`
    /// (whose swarm serves blocks from `store`), dials `config.start_addrs`, and starts
    /// following: the last root persisted in `store` comes out first (if still valid and
    /// whole), then the DHT's current record, then every announced root.
    pub async fn start(
        client: Client,
        store: Store,
        station: PeerId,
        config: FollowConfig,
    ) -> Result<Follower, FollowError> {
        for peer in &config.blocked_peers {
            client
                .block_peer(*peer)
                .await
                .map_err(|source| FollowError::Block {
                    peer: *peer,
                    source,
                })?;
        }
        let receiver =
            crate::station::announce::AnnouncementReceiver::subscribe(client.clone(), station)
                .await
                .map_err(FollowError::Subscribe)?;
        let persisted = task::load_persisted(&store, &station).await?;
        let (roots_tx, roots) = watch::channel(None);
        let (status_tx, status) = watch::channel(FollowStatus::default());
        let (stop, stopped) = oneshot::channel();
        let span = tracing::info_span!("follow", %station);
        let task = tokio::spawn(
            task::FollowTask::new(client, store, receiver, config, roots_tx, status_tx)
                .run(persisted, stopped)
                .instrument(span),
        );
        Ok(Follower {
            station,
            roots,
            status,
            stop: Some(stop),
            task,
        })
    }

    pub fn station(&self) -> PeerId {
        self.station
    }

    /// The newest root held whole (`None` until the first).
    pub fn roots(&self) -> watch::Receiver<Option<FollowedRoot>> {
        self.roots.clone()
    }

    /// Online/offline, last announcement, counters.
    pub fn status(&self) -> watch::Receiver<FollowStatus> {
        self.status.clone()
    }

    /// Stops following and waits for the task to end.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Err(error) = (&mut self.task).await {
            tracing::warn!(%error, "follower task failed");
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        if self.stop.is_some() {
            self.task.abort();
        }
    }
}

/// The store state key holding the last followed record of `station`.
pub fn state_key(station: &PeerId) -> String {
    format!("follow:{}", station.to_ipns_name())
}
