//! Publishing our own IPNS record: served from the local DHT store and gossiped on the
//! name's pubsub topic at once (every record), put to the DHT and to delegated routers at
//! most once per interval (the DHT must not be flooded with a record per segment).
//!
//! Records published within one interval coalesce: the next slot puts the newest one.

use std::time::Duration;

use ipfm_protocol::ipns::IpnsRecord;
use ipfm_protocol::peer::PeerId;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::delegated::DelegatedEndpoint;
use crate::net::swarm::{Client, NetError};

/// Default spacing of DHT puts.
pub const DEFAULT_DHT_PUT_INTERVAL: Duration = Duration::from_secs(60);
/// Bound on one DHT put (the WAN DHT gives up on unreachable peers slowly).
const DHT_PUT_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on one delegated routing PUT.
const DELEGATED_TIMEOUT: Duration = Duration::from_secs(15);

/// How records leave the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpnsPublishConfig {
    /// At most one DHT put (and delegated PUT) per this interval.
    pub dht_put_interval: Duration,
    /// Delegated routing endpoints to `PUT /routing/v1/ipns/{name}` to.
    pub delegated_routing: Vec<DelegatedEndpoint>,
}

impl Default for IpnsPublishConfig {
    fn default() -> Self {
        IpnsPublishConfig {
            dht_put_interval: DEFAULT_DHT_PUT_INTERVAL,
            delegated_routing: Vec::new(),
        }
    }
}

/// What the rate-limited slot has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SlotReport {
    /// DHT puts started.
    pub dht_puts: u64,
    /// Sequence of the record of the latest DHT put.
    pub last_sequence: Option<u64>,
    /// Whether the latest DHT put was stored by at least one peer.
    pub last_stored: bool,
}

/// Publishes records under this node's name (the station key is the peer key).
pub struct IpnsPublisher {
    client: Client,
    name: PeerId,
    newest: watch::Sender<Option<IpnsRecord>>,
    report: watch::Receiver<SlotReport>,
    task: JoinHandle<()>,
}

impl IpnsPublisher {
    /// Start the rate-limited put task on the current runtime.
    pub fn spawn(client: Client, config: IpnsPublishConfig) -> IpnsPublisher {
        let name = client.ipns_name();
        let (newest, queued) = watch::channel(None);
        let (report_tx, report) = watch::channel(SlotReport::default());
        let span = tracing::info_span!("ipns_publisher", %name);
        let task = tokio::spawn(
            put_slots(client.clone(), name, config, queued, report_tx).instrument(span),
        );
        IpnsPublisher {
            client,
            name,
            newest,
            report,
            task,
        }
    }

    /// The name records are published under.
    pub fn name(&self) -> PeerId {
        self.name
    }

    /// Serve `record` to DHT queries and gossip it now; put it to the DHT and delegated
    /// routers at the next slot (unless a newer record replaces it first).
    pub async fn publish(&self, record: IpnsRecord) -> Result<(), NetError> {
        let served = self.client.serve_ipns_record(record.clone()).await;
        self.newest.send_replace(Some(record));
        served
    }

    /// Follows what the put slots did.
    pub fn reports(&self) -> watch::Receiver<SlotReport> {
        self.report.clone()
    }
}

impl Drop for IpnsPublisher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One slot per interval: wait for a record newer than the last put, put it, rest.
async fn put_slots(
    client: Client,
    name: PeerId,
    config: IpnsPublishConfig,
    mut queued: watch::Receiver<Option<IpnsRecord>>,
    report: watch::Sender<SlotReport>,
) {
    while queued.changed().await.is_ok() {
        let Some(record) = queued.borrow_and_update().clone() else {
            continue;
        };
        let next_slot = tokio::time::Instant::now() + config.dht_put_interval;
        let sequence = record.sequence();
        report.send_modify(|r| {
            r.dht_puts += 1;
            r.last_sequence = Some(sequence);
        });
        let dht = async {
            match tokio::time::timeout(DHT_PUT_TIMEOUT, client.put_ipns_record(record.clone()))
                .await
            {
                Ok(Ok(peers)) => {
                    tracing::debug!(sequence, peers, "IPNS record put to the DHT");
                    true
                }
                Ok(Err(error)) => {
                    tracing::info!(sequence, %error, "IPNS DHT put failed");
                    false
                }
                Err(_) => {
                    tracing::info!(sequence, "IPNS DHT put timed out");
                    false
                }
            }
        };
        let delegated =
            futures::future::join_all(config.delegated_routing.iter().map(|endpoint| {
                let record = &record;
                async move {
                    match endpoint.put_ipns(&name, record, DELEGATED_TIMEOUT).await {
                        Ok(()) => tracing::debug!(%endpoint, sequence, "IPNS record delegated"),
                        Err(error) => tracing::warn!(%error, sequence, "delegated IPNS PUT failed"),
                    }
                }
            }));
        let (stored, _) = tokio::join!(dht, delegated);
        report.send_modify(|r| r.last_stored = stored);
        tokio::time::sleep_until(next_slot).await;
    }
}
