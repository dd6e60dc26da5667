//! What the relay does with each followed root: pin it (and retain the previous ones),
//! serve its record locally, provide it, forward the record to the DHT (rate limited, and
//! at once when the station goes offline), and collect garbage.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ipfm_protocol::ipns::IpnsRecord;
use ipfm_protocol::peer::PeerId;
use ipfm_store::Store;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use super::pins::RelayPins;
use crate::follow::{FollowStatus, FollowedRoot};
use crate::gateway::LocalNames;
use crate::net::swarm::Client;
use crate::station::{Publisher, RootUpdate};

/// How often a record that was held back by the put rate limit is reconsidered.
const HOUSEKEEPING: Duration = Duration::from_secs(5);
/// Bound on one DHT put of the station's record.
const PUT_TIMEOUT: Duration = Duration::from_secs(60);

/// Relay-side state beside the follower's status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelayState {
    /// Superseded roots still pinned for the retention period.
    pub retained_roots: usize,
    /// The newest record put to the DHT, and when the put succeeded.
    pub forwarded_sequence: Option<u64>,
    pub forwarded_at: Option<SystemTime>,
    /// Blocks removed by the relay's GC so far.
    pub gc_removed_blocks: u64,
}

pub(super) struct Keeper {
    pub client: Client,
    pub store: Store,
    pub station: PeerId,
    pub names: Arc<LocalNames>,
    pub provider: Arc<dyn Publisher>,
    pub pins: RelayPins,
    pub retention: Duration,
    pub gc_interval: Duration,
    pub put_interval: Duration,
    pub state: watch::Sender<RelayState>,
}

/// The DHT put of the record: at most one running, at most one per interval unless forced.
#[derive(Default)]
struct Forwarder {
    last_started: Option<Instant>,
    started_sequence: Option<u64>,
    running: Option<JoinHandle<()>>,
}

impl Keeper {
    pub(super) async fn run(
        mut self,
        mut roots: watch::Receiver<Option<FollowedRoot>>,
        mut status: watch::Receiver<FollowStatus>,
        mut stop: oneshot::Receiver<()>,
    ) {
        let mut forwarder = Forwarder::default();
        let mut current: Option<IpnsRecord> = None;
        let mut was_online = false;
        let mut housekeeping = tokio::time::interval(HOUSEKEEPING);
        let mut gc = tokio::time::interval_at(
            tokio::time::Instant::now() + self.gc_interval,
            self.gc_interval,
        );
        gc.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // A root already handed out before this loop subscribed counts as a change.
        roots.mark_changed();
        loop {
            tokio::select! {
                biased;
                _ = &mut stop => break,
                changed = roots.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let followed = roots.borrow_and_update().clone();
                    if let Some(followed) = followed {
                        self.on_root(&followed).await;
                        current = Some(followed.record.clone());
                        self.forward(&mut forwarder, &followed.record, false);
                    }
                }
                changed = status.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let online = status.borrow_and_update().online;
                    if was_online && !online {
                        // The station's own record puts stop now: keep the name resolvable.
                        if let Some(record) = &current {
                            self.forward(&mut forwarder, record, true);
                        }
                    }
                    was_online = online;
                }
                _ = housekeeping.tick() => {
                    if let Some(record) = &current {
                        self.forward(&mut forwarder, record, false);
                    }
                }
                _ = gc.tick() => self.collect_garbage().await,
            }
        }
        if let Some(running) = forwarder.running.take() {
            running.abort();
        }
    }

    async fn on_root(&mut self, followed: &FollowedRoot) {
        let (root, sequence) = (followed.root, followed.sequence);
        if let Err(error) = self.pins.advance(sequence, root).await {
            tracing::error!(%root, sequence, %error, "pinning the followed root failed");
        }
        self.state
            .send_modify(|state| state.retained_roots = self.pins.retained());
        match self.names.publish(self.station, followed.record.clone()) {
            Ok(_) => {}
            Err(error) => tracing::warn!(%root, sequence, %error, "record not served locally"),
        }
        let update = RootUpdate {
            name: self.station,
            record: followed.record.clone(),
            root,
            new_segments: followed.new_segments.clone(),
        };
        if let Err(error) = self.provider.publish(&update).await {
            tracing::debug!(%root, %error, "root not queued for providing");
        }
        tracing::info!(station = %self.station, %root, sequence, "relaying root");
    }

    /// Puts `record` to the DHT if it is newer than the last one put and the interval has
    /// passed (or `force`: the station just went offline), and no put is running.
    fn forward(&self, forwarder: &mut Forwarder, record: &IpnsRecord, force: bool) {
        if forwarder.running.as_ref().is_some_and(|r| !r.is_finished()) {
            return;
        }
        let newer = forwarder
            .started_sequence
            .is_none_or(|put| record.sequence() > put);
        let due = forwarder
            .last_started
            .is_none_or(|at| at.elapsed() >= self.put_interval);
        if !(force || (newer && due)) {
            return;
        }
        forwarder.last_started = Some(Instant::now());
        forwarder.started_sequence = Some(record.sequence());
        let (client, station, record) = (self.client.clone(), self.station, record.clone());
        let state = self.state.clone();
        forwarder.running = Some(tokio::spawn(async move {
            let sequence = record.sequence();
            let put = client.put_ipns_record_of(station, record);
            match tokio::time::timeout(PUT_TIMEOUT, put).await {
                Ok(Ok(dhts)) => {
                    tracing::info!(%station, sequence, dhts, "station record forwarded to the DHT");
                    state.send_modify(|state| {
                        state.forwarded_sequence = Some(sequence);
                        state.forwarded_at = Some(SystemTime::now());
                    });
                }
                Ok(Err(error)) => {
                    tracing::warn!(%station, sequence, %error, "forwarding the record failed")
                }
                Err(_) => tracing::warn!(%station, sequence, "forwarding the record timed out"),
            }
        }));
    }

    async fn collect_garbage(&mut self) {
        match self.pins.expire(self.retention).await {
            Ok(0) => {}
            Ok(expired) => tracing::debug!(expired, "retained roots unpinned"),
            Err(error) => tracing::warn!(%error, "unpinning retained roots failed"),
        }
        // Blocks younger than the retention period survive even unpinned: one fetched for
        // a root that is not pinned yet is never swept from under it.
        match self.store.gc(self.retention).await {
            Ok(report) => {
                tracing::debug!(
                    removed = report.removed_blocks,
                    bytes = report.removed_bytes,
                    "relay GC"
                );
                self.state.send_modify(|state| {
                    state.retained_roots = self.pins.retained();
                    state.gc_removed_blocks += report.removed_blocks;
                });
            }
            Err(error) => tracing::warn!(%error, "relay GC failed"),
        }
    }
}
