//! The client side of IPNS on the network: serving and putting our own record, resolving
//! other names over the DHTs (every answer validated, the best one wins, cached for its
//! TTL) and following their pubsub topics for newer records.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ipfm_protocol::ipns::{pubsub_topic, IpnsRecord};
use ipfm_protocol::peer::PeerId;
use libp2p::gossipsub::MessageAcceptance;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use super::{Client, Command, Reply};
use crate::net::ipns::cache::RESOLVE_GRACE;
use crate::net::ipns::records::{best, validate_ipns};
use crate::net::ipns::NameCache;
use crate::net::swarm::NetError;

/// Valid records a resolve takes at most before answering (Kubo asks for 16).
const RESOLVE_RECORDS: usize = 16;

/// Requests to the swarm task about IPNS records.
pub(in crate::net::swarm) enum IpnsCommand {
    /// Answer DHT `GET_VALUE`s for our name with `record` (if it beats the stored one).
    Serve {
        record: IpnsRecord,
        reply: Reply<()>,
    },
    /// Put `name`'s `record` (or a better one already served) to the DHTs.
    Put {
        name: PeerId,
        // Boxed: with the name beside it, an inline record would make every swarm
        // command as large as this one.
        record: Box<IpnsRecord>,
        reply: Reply<usize>,
    },
    /// Look `name` up on the DHTs; each valid record found goes to `found`, which is
    /// dropped when every query has ended.
    Resolve {
        name: PeerId,
        found: mpsc::Sender<IpnsRecord>,
    },
    /// The valid record the local DHT store holds for `name`.
    Stored {
        name: PeerId,
        reply: oneshot::Sender<Option<IpnsRecord>>,
    },
    Stats {
        reply: oneshot::Sender<IpnsStats>,
    },
}

/// What the DHT record filter has done (records other peers put to us).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IpnsStats {
    /// `/ipns/` and `/pk/` records that validated and were stored.
    pub records_accepted: u64,
    /// Records refused: other namespaces, invalid, expired, oversized or not newer.
    pub records_rejected: u64,
}

impl Client {
    /// Our IPNS name: the peer id, in the protocol crate's type.
    pub fn ipns_name(&self) -> PeerId {
        PeerId::from_multihash_bytes(&self.peer_id.to_bytes())
            .expect("a libp2p peer id is a valid multihash")
    }

    async fn ipns(&self, command: IpnsCommand) -> Result<(), NetError> {
        self.commands
            .send(Command::Ipns(command))
            .await
            .map_err(|_| NetError::Stopped)
    }

    /// Make `record` (for our own name) the one we serve: DHT `GET_VALUE`s for our name
    /// answer it from now on, and it is published on the name's pubsub topic (Kubo's
    /// `/record/…`). Local and immediate; see [`Client::put_ipns_record`] for the DHT put.
    pub async fn serve_ipns_record(&self, record: IpnsRecord) -> Result<(), NetError> {
        let name = self.ipns_name();
        record.validate(&name, SystemTime::now())?;
        let (reply, answer) = oneshot::channel();
        self.ipns(IpnsCommand::Serve {
            record: record.clone(),
            reply,
        })
        .await?;
        answer.await.map_err(|_| NetError::Stopped)??;
        self.follow_name(name).await;
        // Nobody subscribed yet is normal (a new station, a quiet network): not an error.
        if let Err(error) = self.publish(&pubsub_topic(&name), record.to_bytes()).await {
            tracing::debug!(%error, sequence = record.sequence(), "IPNS record not gossiped");
        }
        Ok(())
    }

    /// Put `record` (for our own name) to the LAN and WAN DHTs, at the peers closest to
    /// its routing key; if a better record is already served, that one goes out instead.
    /// Returns on how many DHTs at least one peer stored it (an error if none did).
    pub async fn put_ipns_record(&self, record: IpnsRecord) -> Result<usize, NetError> {
        self.put_ipns_record_of(self.ipns_name(), record).await
    }

    /// Like [`Client::put_ipns_record`] for another node's `name`: a relay forwarding the
    /// followed station's record unaltered, so the name stays resolvable while the station
    /// is away. The record must validate for `name`; this node's DHT store answers
    /// `GET_VALUE`s with it from then on, too.
    pub async fn put_ipns_record_of(
        &self,
        name: PeerId,
        record: IpnsRecord,
    ) -> Result<usize, NetError> {
        record.validate(&name, SystemTime::now())?;
        let (reply, answer) = oneshot::channel();
        self.ipns(IpnsCommand::Put {
            name,
            record: Box::new(record),
            reply,
        })
        .await?;
        answer.await.map_err(|_| NetError::Stopped)?
    }

    /// The current record of `name`: from the cache while fresh (its TTL), else from the
    /// DHTs (every answer validated, the best in boxo's order wins; waits at most
    /// `timeout`, and a short grace once a valid record is in). From then on the name's
    /// pubsub topic is followed, so newer records pushed there replace the cached one.
    pub async fn resolve_ipns(
        &self,
        name: &PeerId,
        timeout: Duration,
    ) -> Result<IpnsRecord, NetError> {
        let span = tracing::debug_span!("resolve_ipns", %name);
        async {
            if let Some(record) = self.names.fresh(name, Instant::now(), SystemTime::now()) {
                return Ok(record);
            }
            self.follow_name(*name).await;
            let deadline = tokio::time::Instant::now() + timeout;
            let (found_tx, mut found) = mpsc::channel(RESOLVE_RECORDS);
            self.ipns(IpnsCommand::Resolve {
                name: *name,
                found: found_tx,
            })
            .await?;
            let (mut winner, mut answers, mut grace_end) = (None, 0, None);
            while answers < RESOLVE_RECORDS {
                let until = grace_end.map_or(deadline, |grace: tokio::time::Instant| {
                    grace.min(deadline)
                });
                match tokio::time::timeout_at(until, found.recv()).await {
                    Ok(Some(record)) => {
                        answers += 1;
                        winner = best(winner, Some(record));
                        grace_end.get_or_insert_with(|| tokio::time::Instant::now() + RESOLVE_GRACE);
                    }
                    Ok(None) | Err(_) => break,
                }
            }
            // Pubsub may have brought a newer record meanwhile; an older stale one still
            // beats nothing while it is valid.
            let winner = best(winner, self.names.best(name, SystemTime::now()));
            tracing::debug!(answers, sequence = ?winner.as_ref().map(IpnsRecord::sequence), "resolved");
            winner.ok_or_else(|| NetError::NameNotFound(name.to_ipns_name()))
        }
        .instrument(span)
        .await
    }

    /// The best record heard for `name` (resolved or pushed over pubsub), without asking
    /// the network; `None` if nothing valid is known.
    pub fn cached_ipns(&self, name: &PeerId) -> Option<IpnsRecord> {
        self.names.best(name, SystemTime::now())
    }

    /// The valid record this node's DHT store holds for `name` (what it answers to
    /// `GET_VALUE`): our own, or one another peer put to us.
    pub async fn dht_ipns_record(&self, name: &PeerId) -> Result<Option<IpnsRecord>, NetError> {
        let name = *name;
        self.request(|reply| Command::Ipns(IpnsCommand::Stored { name, reply }))
            .await
    }

    /// Counters of the DHT record filter.
    pub async fn ipns_stats(&self) -> Result<IpnsStats, NetError> {
        self.request(|reply| Command::Ipns(IpnsCommand::Stats { reply }))
            .await
    }

    /// Subscribe to `name`'s pubsub topic (once; a bounded number of names) and validate
    /// what arrives there: valid records go to the cache and are forwarded, anything else
    /// is rejected (which lowers the sender's score).
    async fn follow_name(&self, name: PeerId) {
        if !self.names.start_following(name) {
            return;
        }
        let topic = pubsub_topic(&name);
        let messages = match self.subscribe_validated(&topic).await {
            Ok(messages) => messages,
            Err(error) => {
                tracing::info!(%error, %name, "cannot follow the name over pubsub");
                self.names.stop_following(&name);
                return;
            }
        };
        let span = tracing::debug_span!("ipns_pubsub", %name);
        tokio::spawn(follow(self.clone(), self.names.clone(), name, messages).instrument(span));
    }
}

/// Validate every record arriving on a followed name's topic; ends with the swarm.
async fn follow(
    client: Client,
    names: Arc<NameCache>,
    name: PeerId,
    mut messages: mpsc::Receiver<super::ValidatedMessage>,
) {
    while let Some(message) = messages.recv().await {
        let acceptance = match validate_ipns(&name, &message.message.data, SystemTime::now()) {
            // Like go-libp2p-pubsub-router: only records newer than the known one travel
            // on; a valid but older (or the same) record is dropped without penalty.
            Ok(record) => {
                let sequence = record.sequence();
                if names.offer(name, record, Instant::now()) {
                    tracing::debug!(sequence, "newer record over pubsub");
                    MessageAcceptance::Accept
                } else {
                    MessageAcceptance::Ignore
                }
            }
            Err(error) => {
                tracing::info!(%error, from = %message.propagation_source, "invalid IPNS record over pubsub rejected");
                MessageAcceptance::Reject
            }
        };
        if client
            .report_validation(message.id, message.propagation_source, acceptance)
            .await
            .is_err()
        {
            break;
        }
    }
    names.stop_following(&name);
}
