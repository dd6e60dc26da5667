//! The follower's loop: announcements in, whole roots out, liveness and reconnects.

use std::time::{Duration, Instant, SystemTime};

use ipfm_protocol::announce::NowPlaying;
use ipfm_protocol::ipns::IpnsRecord;
use ipfm_protocol::peer::PeerId;
use ipfm_protocol::Cid;
use ipfm_store::{Store, StoreError};
use libp2p::multiaddr::Protocol;
use libp2p::Multiaddr;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use super::backoff::Backoff;
use super::status::{FollowStatus, Heard, Liveness};
use super::{state_key, FollowConfig, FollowedRoot};
use crate::net::swarm::{Client, NetError};
use crate::station::announce::{AnnouncementReceiver, PendingAnnouncement};

/// How often liveness is re-evaluated.
const TICK: Duration = Duration::from_secs(1);
/// Bound on one dial or provider lookup of a reconnect round.
const RECONNECT_STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// The last followed record persisted for `station`, if it is still valid (an expired or
/// unreadable one is logged and forgotten: the DHT or the next announcement replaces it).
pub(super) async fn load_persisted(
    store: &Store,
    station: &PeerId,
) -> Result<Option<IpnsRecord>, StoreError> {
    let Some(bytes) = store.state_get(&state_key(station)).await? else {
        return Ok(None);
    };
    let record = IpnsRecord::from_bytes(&bytes)
        .and_then(|record| record.validate(station, SystemTime::now()).map(|()| record));
    match record {
        Ok(record) => Ok(Some(record)),
        Err(error) => {
            tracing::warn!(%station, %error, "persisted record of the followed station is unusable");
            Ok(None)
        }
    }
}

/// `/ipfs/<cid>` → cid.
fn root_of(record: &IpnsRecord) -> Option<Cid> {
    record
        .value_str()?
        .strip_prefix("/ipfs/")
        .and_then(|cid| Cid::try_from(cid).ok())
}

/// Where a root came from (for logs).
#[derive(Debug, Clone, Copy)]
enum Source {
    Store,
    Dht,
    Announcement,
}

pub(super) struct FollowTask {
    client: Client,
    store: Store,
    station: PeerId,
    receiver: AnnouncementReceiver,
    config: FollowConfig,
    roots: watch::Sender<Option<FollowedRoot>>,
    status: watch::Sender<FollowStatus>,
    liveness: Liveness,
    backoff: Backoff,
    next_reconnect: Option<Instant>,
    reconnecting: Option<JoinHandle<()>>,
    counters: FollowStatus,
}

impl FollowTask {
    pub(super) fn new(
        client: Client,
        store: Store,
        receiver: AnnouncementReceiver,
        config: FollowConfig,
        roots: watch::Sender<Option<FollowedRoot>>,
        status: watch::Sender<FollowStatus>,
    ) -> FollowTask {
        FollowTask {
            station: *receiver.station(),
            liveness: Liveness::new(config.min_offline_after),
            backoff: Backoff::new(config.reconnect_min, config.reconnect_max),
            client,
            store,
            receiver,
            config,
            roots,
            status,
            next_reconnect: None,
            reconnecting: None,
            counters: FollowStatus::default(),
        }
    }

    pub(super) async fn run(
        mut self,
        persisted: Option<IpnsRecord>,
        mut stopped: oneshot::Receiver<()>,
    ) {
        self.start_reconnect();
        if let Some(record) = persisted {
            if let Err(reason) = self.adopt_record(record, Source::Store).await {
                tracing::warn!(station = %self.station, %reason, "persisted root not served");
            }
        }
        let (client, station, timeout) = (
            self.client.clone(),
            self.station,
            self.config.resolve_timeout,
        );
        let mut resolve = tokio::spawn(async move { client.resolve_ipns(&station, timeout).await });
        let mut resolved = false;
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = &mut stopped => break,
                pending = self.receiver.next_pending() => match pending {
                    Some(pending) => self.on_announcement(pending).await,
                    None => {
                        tracing::debug!(station = %self.station, "network stopped; follower ends");
                        break;
                    }
                },
                found = &mut resolve, if !resolved => {
                    resolved = true;
                    self.on_resolved(found).await;
                }
                _ = tick.tick() => self.on_tick(),
            }
        }
        resolve.abort();
        if let Some(reconnecting) = self.reconnecting.take() {
            reconnecting.abort();
        }
    }

    async fn on_announcement(&mut self, pending: PendingAnnouncement) {
        let announcement = pending.announcement().clone();
        let (now, wall) = (Instant::now(), SystemTime::now());
        match self.liveness.heard(now, wall) {
            Heard::BackOnline => tracing::info!(
                station = %self.station,
                sequence = announcement.sequence,
                "station back online (sequence {})",
                announcement.sequence
            ),
            Heard::First => {
                tracing::info!(station = %self.station, sequence = announcement.sequence, "station heard")
            }
            Heard::StillOnline => {}
        }
        self.backoff.reset();
        self.next_reconnect = None;
        let adopted = self
            .adopt(
                pending.record.clone(),
                announcement.root,
                announcement.now_playing.clone(),
                announcement.published_at(),
                announcement.new_segments.clone(),
                Source::Announcement,
            )
            .await;
        let reported = match adopted {
            Ok(()) => pending.accept().await.map(drop),
            Err(reason) => {
                self.counters.fetch_failures += 1;
                pending.ignore(&reason).await
            }
        };
        if let Err(error) = reported {
            tracing::debug!(%error, "network stopped while reporting a verdict");
        }
        self.publish_status();
    }

    async fn on_resolved(
        &mut self,
        found: Result<Result<IpnsRecord, NetError>, tokio::task::JoinError>,
    ) {
        match found {
            Ok(Ok(record)) => {
                if let Err(reason) = self.adopt_record(record, Source::Dht).await {
                    tracing::info!(station = %self.station, %reason, "DHT record's root not fetched");
                }
            }
            Ok(Err(error)) => {
                tracing::info!(station = %self.station, %error, "station record not found on the DHT (yet)")
            }
            Err(error) => tracing::warn!(%error, "DHT lookup task failed"),
        }
    }

    fn on_tick(&mut self) {
        let now = Instant::now();
        if let Some(since) = self.liveness.check(now) {
            tracing::warn!(
                station = %self.station,
                "station offline since {}",
                ipfm_protocol::ipns::format_rfc3339(since)
            );
            self.backoff.reset();
            self.next_reconnect = Some(now);
            self.publish_status();
        }
        if self.liveness.online() {
            return;
        }
        let due = self.next_reconnect.is_none_or(|at| now >= at);
        let idle = self
            .reconnecting
            .as_ref()
            .is_none_or(JoinHandle::is_finished);
        if due && idle {
            self.start_reconnect();
        }
    }

    /// One reconnect round in the background: the start addresses not connected already,
    /// then the providers of the newest root (the station at a new address, other relays).
    fn start_reconnect(&mut self) {
        self.next_reconnect = Some(Instant::now() + self.backoff.next_delay());
        self.counters.reconnect_attempts += 1;
        let client = self.client.clone();
        let addrs = self.config.start_addrs.clone();
        let root = self.counters.last_root;
        self.reconnecting = Some(tokio::spawn(reconnect(client, addrs, root)));
        self.publish_status();
    }

    /// A record from the store or the DHT: its root, fetched whole, if it is newer.
    async fn adopt_record(&mut self, record: IpnsRecord, source: Source) -> Result<(), String> {
        record
            .validate(&self.station, SystemTime::now())
            .map_err(|e| format!("invalid record: {e}"))?;
        let root = root_of(&record).ok_or("the record does not point at /ipfs/<cid>")?;
        let now = SystemTime::now();
        self.adopt(record, root, None, now, Vec::new(), source)
            .await?;
        self.publish_status();
        Ok(())
    }

    /// Fetch `root` whole, persist `record`, hand the root out. Older or equal sequences
    /// than the current root are skipped (Ok).
    async fn adopt(
        &mut self,
        record: IpnsRecord,
        root: Cid,
        now_playing: Option<NowPlaying>,
        published_at: SystemTime,
        new_segments: Vec<Cid>,
        source: Source,
    ) -> Result<(), String> {
        let sequence = record.sequence();
        if self
            .counters
            .last_sequence
            .is_some_and(|current| sequence <= current)
        {
            return Ok(());
        }
        let started = Instant::now();
        let fetch =
            self.client
                .fetch_dag(root, self.config.fetch_timeout, self.config.max_root_blocks);
        let fetched = match tokio::time::timeout(self.config.fetch_timeout, fetch).await {
            Ok(Ok(fetched)) => fetched,
            Ok(Err(error)) => {
                let reason = format!("fetching the root: {error}");
                tracing::warn!(station = %self.station, %root, sequence, ?source, %reason, "root not followed");
                return Err(reason);
            }
            Err(_) => {
                let reason = format!(
                    "fetching the root took over {:?}",
                    self.config.fetch_timeout
                );
                tracing::warn!(station = %self.station, %root, sequence, ?source, %reason, "root not followed");
                return Err(reason);
            }
        };
        // Persisted before it is handed out: a restart serves at least this root at once.
        // One key, one write: atomic.
        if let Err(error) = self
            .store
            .state_set(&state_key(&self.station), record.to_bytes())
            .await
        {
            tracing::warn!(station = %self.station, %error, "persisting the followed record failed");
        }
        let now_playing = match now_playing {
            Some(playing) => Some(playing),
            None => crate::station::announce::now_playing_of(&self.store, &root).await,
        };
        tracing::debug!(
            station = %self.station, %root, sequence, ?source,
            blocks = fetched.blocks, fetched = fetched.fetched, bytes = fetched.bytes,
            ms = started.elapsed().as_millis() as u64,
            "root held whole"
        );
        self.receiver.raise_highest_sequence(sequence);
        self.counters.last_sequence = Some(sequence);
        self.counters.last_root = Some(root);
        self.counters.last_published_at = Some(published_at);
        if matches!(source, Source::Announcement) {
            self.counters.accepted += 1;
        }
        // The status first: whoever sees the new root also sees it counted.
        self.publish_status();
        self.roots.send_replace(Some(FollowedRoot {
            station: self.station,
            sequence,
            root,
            record,
            now_playing,
            published_at,
            received_at: SystemTime::now(),
            new_segments,
        }));
        Ok(())
    }

    fn publish_status(&self) {
        let stats = self.receiver.stats();
        let status = FollowStatus {
            online: self.liveness.online(),
            offline_since: self.liveness.offline_since(),
            last_announcement: self.liveness.last_heard(),
            ignored: stats.ignored,
            rejected: stats.rejected,
            ..self.counters.clone()
        };
        self.status.send_replace(status);
    }
}

/// Dials `addrs` whose peer is not connected, then the providers of `root`.
async fn reconnect(client: Client, addrs: Vec<Multiaddr>, root: Option<Cid>) {
    let connected = client.connected_peers().await.unwrap_or_default();
    for addr in addrs {
        let peer = addr.iter().find_map(|p| match p {
            Protocol::P2p(peer) => Some(peer),
            _ => None,
        });
        if peer.is_some_and(|peer| connected.contains(&peer)) {
            continue;
        }
        match tokio::time::timeout(RECONNECT_STEP_TIMEOUT, client.dial(addr.clone())).await {
            Ok(Ok(peer)) => tracing::info!(%addr, %peer, "reconnected"),
            Ok(Err(error)) => tracing::debug!(%addr, %error, "reconnect dial failed"),
            Err(_) => tracing::debug!(%addr, "reconnect dial timed out"),
        }
    }
    if let Some(root) = root {
        match tokio::time::timeout(RECONNECT_STEP_TIMEOUT, client.connect_providers(root)).await {
            Ok(Ok(providers)) => {
                tracing::debug!(%root, providers = providers.len(), "dialled the root's providers")
            }
            Ok(Err(error)) => tracing::debug!(%root, %error, "provider lookup failed"),
            Err(_) => tracing::debug!(%root, "provider lookup timed out"),
        }
    }
}
