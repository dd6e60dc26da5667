//! The handle the rest of the node uses to talk to the swarm task.

pub(super) mod ipns;

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use cid::Cid;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use ipfm_protocol::cid::{DAG_PB, IDENTITY};
use libp2p::gossipsub::{MessageAcceptance, MessageId};
use libp2p::{Multiaddr, PeerId};
use tokio::sync::{mpsc, oneshot};

use super::NetError;
use crate::net::bitswap::GetError;
use crate::net::blocks::BlockAccess;
use crate::net::ipns::NameCache;

/// A gossipsub message delivered to a subscription.
#[derive(Debug, Clone)]
pub struct GossipMessage {
    pub topic: String,
    /// The signed author (StrictSign: always present and verified).
    pub source: Option<PeerId>,
    pub data: Vec<u8>,
}

/// A gossipsub message on a validated topic ([`Client::subscribe_validated`]), held back
/// from forwarding until [`Client::report_validation`] gives its verdict.
#[derive(Debug, Clone)]
pub struct ValidatedMessage {
    pub message: GossipMessage,
    /// Gossipsub's id of the message (what the verdict refers to).
    pub id: MessageId,
    /// The peer that sent it to us (penalised on a reject), not necessarily its author.
    pub propagation_source: PeerId,
}

/// What [`Client::fetch_dag`] brought in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DagFetch {
    /// Blocks in the DAG (each counted once).
    pub blocks: usize,
    /// Of those, how many came over the network (the rest were already stored).
    pub fetched: usize,
    /// Bytes of all the DAG's blocks.
    pub bytes: u64,
}

/// Where [`Client::find_block`] found a block.
enum Found {
    Stored(Vec<u8>),
    /// Over bitswap, verified against the CID asked for; not stored yet.
    Fetched(Vec<u8>),
}

/// What one block of a DAG fetch contributes.
struct DagNode {
    links: Vec<Cid>,
    size: usize,
    fetched: bool,
}

/// Blocks of one DAG fetched at once.
const DAG_PARALLELISM: usize = 32;

pub(super) type Reply<T> = oneshot::Sender<Result<T, NetError>>;

pub(super) enum Command {
    ListenOn {
        addr: Multiaddr,
        reply: Reply<Multiaddr>,
    },
    Dial {
        addr: Multiaddr,
        reply: Reply<PeerId>,
    },
    ListenAddrs {
        reply: oneshot::Sender<Vec<Multiaddr>>,
    },
    ConnectedPeers {
        reply: oneshot::Sender<Vec<PeerId>>,
    },
    BlockPeer {
        peer: PeerId,
        reply: oneshot::Sender<bool>,
    },
    GetBlock {
        cid: Cid,
        timeout: Duration,
        reply: oneshot::Sender<Result<Vec<u8>, GetError>>,
    },
    StartProviding {
        cid: Cid,
        reply: Reply<()>,
    },
    FindProviders {
        cid: Cid,
        /// Also dial every provider found (reply once those dials have settled).
        connect: bool,
        reply: Reply<HashSet<PeerId>>,
    },
    Subscribe {
        topic: String,
        reply: Reply<mpsc::Receiver<GossipMessage>>,
    },
    SubscribeValidated {
        topic: String,
        reply: Reply<mpsc::Receiver<ValidatedMessage>>,
    },
    ReportValidation {
        id: MessageId,
        propagation_source: PeerId,
        acceptance: MessageAcceptance,
    },
    PeerScore {
        peer: PeerId,
        reply: oneshot::Sender<Option<f64>>,
    },
    StopProviding {
        cid: Cid,
        reply: oneshot::Sender<()>,
    },
    IsProviding {
        cid: Cid,
        reply: oneshot::Sender<bool>,
    },
    Publish {
        topic: String,
        data: Vec<u8>,
        reply: Reply<()>,
    },
    TopicPeers {
        topic: String,
        reply: oneshot::Sender<Vec<PeerId>>,
    },
    Ipns(ipns::IpnsCommand),
    Shutdown,
}

/// Cheap to clone; every method is a request to the swarm task.
#[derive(Clone)]
pub struct Client {
    peer_id: PeerId,
    commands: mpsc::Sender<Command>,
    blocks: Arc<dyn BlockAccess>,
    /// Remote IPNS records resolved or received over pubsub (shared with the swarm task).
    names: Arc<NameCache>,
}

impl Client {
    pub(super) fn new(
        peer_id: PeerId,
        commands: mpsc::Sender<Command>,
        blocks: Arc<dyn BlockAccess>,
        names: Arc<NameCache>,
    ) -> Self {
        Client {
            peer_id,
            commands,
            blocks,
            names,
        }
    }

    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    async fn request<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NetError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(make(reply))
            .await
            .map_err(|_| NetError::Stopped)?;
        answer.await.map_err(|_| NetError::Stopped)
    }

    /// Start listening; returns the address actually bound (port 0 resolved).
    pub async fn listen_on(&self, addr: Multiaddr) -> Result<Multiaddr, NetError> {
        self.request(|reply| Command::ListenOn { addr, reply })
            .await?
    }

    /// Dial a multiaddr (with or without `/p2p/<id>`); returns the peer once connected.
    pub async fn dial(&self, addr: Multiaddr) -> Result<PeerId, NetError> {
        self.request(|reply| Command::Dial { addr, reply }).await?
    }

    /// The addresses we listen on.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, NetError> {
        self.request(|reply| Command::ListenAddrs { reply }).await
    }

    pub async fn connected_peers(&self) -> Result<Vec<PeerId>, NetError> {
        self.request(|reply| Command::ConnectedPeers { reply })
            .await
    }

    /// Never connect to `peer` again: its open connections close, dials to it fail and its
    /// inbound connections are refused. Returns whether it was not blocked already.
    pub async fn block_peer(&self, peer: PeerId) -> Result<bool, NetError> {
        self.request(|reply| Command::BlockPeer { peer, reply })
            .await
    }

    /// One block: from the store if there, else over bitswap from connected peers (verified
    /// against `cid`, then stored).
    pub async fn get_block(&self, cid: Cid, timeout: Duration) -> Result<Vec<u8>, NetError> {
        match self.find_block(cid, timeout).await? {
            Found::Stored(bytes) => Ok(bytes),
            Found::Fetched(bytes) => {
                self.blocks.put(cid, bytes.clone()).await?;
                Ok(bytes)
            }
        }
    }

    /// One block from the store, or else over bitswap (verified against `cid`, not stored
    /// yet: the caller stores it, and `fetch_dag` can then move the bytes into the store
    /// instead of copying them).
    async fn find_block(&self, cid: Cid, timeout: Duration) -> Result<Found, NetError> {
        if cid.hash().code() == IDENTITY {
            return Ok(Found::Stored(cid.hash().digest().to_vec()));
        }
        if let Some(bytes) = self.blocks.get(cid).await? {
            return Ok(Found::Stored(bytes));
        }
        // Connected peers first; if none has the block (or nobody is connected), look for
        // providers on the DHTs, connect to them, and ask again.
        if self.connected_peers().await?.is_empty() {
            self.connect_providers(cid).await?;
        }
        let bytes = match self.bitswap_get(cid, timeout).await {
            Err(NetError::Bitswap(GetError::NotFound)) => {
                let providers = self.connect_providers(cid).await?;
                if providers.is_empty() {
                    return Err(NetError::Bitswap(GetError::NotFound));
                }
                self.bitswap_get(cid, timeout).await?
            }
            other => other?,
        };
        Ok(Found::Fetched(bytes))
    }

    async fn bitswap_get(&self, cid: Cid, timeout: Duration) -> Result<Vec<u8>, NetError> {
        let request = self.request(|reply| Command::GetBlock {
            cid,
            timeout,
            reply,
        });
        // The bitswap deadline answers first; this outer bound only guards against a
        // stalled swarm task.
        Ok(
            tokio::time::timeout(timeout + Duration::from_secs(5), request)
                .await
                .map_err(|_| NetError::Timeout)???,
        )
    }

    /// Fetch a whole DAG into the store, following dag-pb links (UnixFS files and
    /// directories); other codecs are leaves. `timeout` applies to each block; at most
    /// `max_blocks` blocks are accepted.
    pub async fn fetch_dag(
        &self,
        root: Cid,
        timeout: Duration,
        max_blocks: usize,
    ) -> Result<DagFetch, NetError> {
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        let mut queue: VecDeque<Cid> = VecDeque::from([root]);
        seen.insert(root.hash().to_bytes());
        let mut running = FuturesUnordered::new();
        let mut summary = DagFetch::default();
        loop {
            while running.len() < DAG_PARALLELISM {
                let Some(cid) = queue.pop_front() else { break };
                running.push(self.fetch_dag_node(cid, timeout));
            }
            let Some(result) = running.next().await else {
                return Ok(summary);
            };
            let node = result?;
            summary.blocks += 1;
            summary.fetched += usize::from(node.fetched);
            summary.bytes += node.size as u64;
            for link in node.links {
                if seen.insert(link.hash().to_bytes()) {
                    if seen.len() > max_blocks {
                        return Err(NetError::DagTooLarge(max_blocks));
                    }
                    queue.push_back(link);
                }
            }
        }
    }

    /// One block of a DAG: found or fetched, its links read, then (if fetched) moved into
    /// the store.
    async fn fetch_dag_node(&self, cid: Cid, timeout: Duration) -> Result<DagNode, NetError> {
        let (bytes, fetched) = match self.find_block(cid, timeout).await? {
            Found::Stored(bytes) => (bytes, false),
            Found::Fetched(bytes) => (bytes, true),
        };
        let links = if cid.codec() == DAG_PB {
            ipfm_protocol::dagpb::links(&bytes).map_err(|e| NetError::BadDag {
                cid,
                reason: e.to_string(),
            })?
        } else {
            Vec::new()
        };
        let size = bytes.len();
        if fetched {
            self.blocks.put(cid, bytes).await?;
        }
        Ok(DagNode {
            links,
            size,
            fetched,
        })
    }

    /// Announce that we provide `cid` on the DHTs (LAN, and WAN when enabled).
    pub async fn start_providing(&self, cid: Cid) -> Result<(), NetError> {
        self.request(|reply| Command::StartProviding { cid, reply })
            .await?
    }

    /// Stop announcing `cid`: the DHTs' periodic re-provide no longer includes it, so the
    /// records other peers hold expire after the provider record TTL. Local only.
    pub async fn stop_providing(&self, cid: Cid) -> Result<(), NetError> {
        self.request(|reply| Command::StopProviding { cid, reply })
            .await
    }

    /// Whether this node currently provides `cid` (is in the set it re-provides).
    pub async fn is_providing(&self, cid: Cid) -> Result<bool, NetError> {
        self.request(|reply| Command::IsProviding { cid, reply })
            .await
    }

    /// Providers of `cid` found on the DHTs.
    pub async fn find_providers(&self, cid: Cid) -> Result<HashSet<PeerId>, NetError> {
        self.request(|reply| Command::FindProviders {
            cid,
            connect: false,
            reply,
        })
        .await?
    }

    /// Find providers of `cid` and connect to them (their addresses come with the DHT
    /// answer); returns once the search is over and every dial has succeeded or failed.
    pub async fn connect_providers(&self, cid: Cid) -> Result<HashSet<PeerId>, NetError> {
        self.request(|reply| Command::FindProviders {
            cid,
            connect: true,
            reply,
        })
        .await?
    }

    /// Join a gossipsub topic; messages arrive on the returned channel (a full channel drops
    /// new messages rather than stalling the swarm).
    pub async fn subscribe(&self, topic: &str) -> Result<mpsc::Receiver<GossipMessage>, NetError> {
        let topic = topic.to_string();
        self.request(|reply| Command::Subscribe { topic, reply })
            .await?
    }

    /// Join a gossipsub topic as its validator: every message arrives held back, and is
    /// forwarded to other peers only once [`Client::report_validation`] accepts it. A reject
    /// lowers the sending peer's score on this topic (enough rejects and its messages are
    /// ignored altogether); an ignore drops the message without penalty. A message that
    /// finds the channel full, or no validator any more, is ignored. One validator per
    /// topic: subscribing again replaces the previous one. Plain [`Client::subscribe`]rs of
    /// the same topic still see every message, unvalidated.
    pub async fn subscribe_validated(
        &self,
        topic: &str,
    ) -> Result<mpsc::Receiver<ValidatedMessage>, NetError> {
        let topic = topic.to_string();
        self.request(|reply| Command::SubscribeValidated { topic, reply })
            .await?
    }

    /// The verdict on a message from [`Client::subscribe_validated`].
    pub async fn report_validation(
        &self,
        id: MessageId,
        propagation_source: PeerId,
        acceptance: MessageAcceptance,
    ) -> Result<(), NetError> {
        self.commands
            .send(Command::ReportValidation {
                id,
                propagation_source,
                acceptance,
            })
            .await
            .map_err(|_| NetError::Stopped)
    }

    /// `peer`'s gossipsub score as this node sees it (negative after rejected messages).
    pub async fn peer_score(&self, peer: PeerId) -> Result<Option<f64>, NetError> {
        self.request(|reply| Command::PeerScore { peer, reply })
            .await
    }

    pub async fn publish(&self, topic: &str, data: Vec<u8>) -> Result<(), NetError> {
        let topic = topic.to_string();
        self.request(|reply| Command::Publish { topic, data, reply })
            .await?
    }

    /// Peers we know are subscribed to `topic`.
    pub async fn topic_peers(&self, topic: &str) -> Result<Vec<PeerId>, NetError> {
        let topic = topic.to_string();
        self.request(|reply| Command::TopicPeers { topic, reply })
            .await
    }

    /// Stop the swarm task (connections close).
    pub async fn shutdown(&self) -> Result<(), NetError> {
        self.commands
            .send(Command::Shutdown)
            .await
            .map_err(|_| NetError::Stopped)
    }
}
