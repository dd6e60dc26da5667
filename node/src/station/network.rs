//! The station as an IPFS peer: the libp2p swarm ([`crate::net::swarm`]) running under the
//! station key, so the peer id is the one the IPNS name is derived from.
//!
//! - [`NetworkPublisher`] announces each new root and its new segments on the DHTs.
//!   Announcing is queued to a worker task (bounded), so a slow DHT never holds up the
//!   station loop, which must keep publishing in realtime. It also hands each new IPNS
//!   record to the [`IpnsPublisher`]: served to DHT lookups and gossiped on the name's
//!   pubsub topic at once, put to the DHT and delegated routers at most once per interval.
//! - [`NetworkNames`] resolves other stations' names for the gateway (DHT + pubsub).
//! - [`BitswapFetcher`] lets the gateway serve `/ipfs/<cid>` of content it does not store,
//!   fetched over bitswap from connected peers.

use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use futures::StreamExt;
use ipfm_protocol::Cid;
use ipfm_store::Store;
use libp2p::multiaddr::Protocol;
use libp2p::Multiaddr;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::publish::{Publisher, RootUpdate};
use crate::gateway::{BlockFetcher, BoxFuture, NameResolver};
use crate::net::ipns::{IpnsPublishConfig, IpnsPublisher};
use crate::net::swarm::{self, keypair_from_ed25519, Client, NetError, NetworkConfig};
use crate::net::StoreBlocks;

/// Where `ipfm station` listens for peers unless told otherwise (Kubo's ports).
pub const DEFAULT_P2P_LISTEN: [&str; 2] =
    ["/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"];

/// The public IPFS bootstrap peers (Kubo's default `Bootstrap` list).
pub const DEFAULT_BOOTSTRAP: [&str; 6] = [
    "/dnsaddr/bootstrap.libp2p.io/p2p/QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN",
    "/dnsaddr/bootstrap.libp2p.io/p2p/QmQCU2EcMqAqQPR2i9bChDtGNJchTbq5TbXJJ16u19uLTa",
    "/dnsaddr/bootstrap.libp2p.io/p2p/QmbLHAnMoJPWSCR5Zhtx6BHJX9KiKNN6tpvbUcqanj75Nb",
    "/dnsaddr/bootstrap.libp2p.io/p2p/QmcZf59bWwK5XFi76CZX8cbJ4BhTzzA3gU1ZjYZcYW3dwt",
    "/ip4/104.131.131.82/tcp/4001/p2p/QmaCpDMGvV2BGHeYERUEnRQAwe3N8SzbUtfsmvsqQLuvuJ",
    "/ip4/104.131.131.82/udp/4001/quic-v1/p2p/QmaCpDMGvV2BGHeYERUEnRQAwe3N8SzbUtfsmvsqQLuvuJ",
];

/// Publications waiting to be announced; when full, the newest is dropped (logged), since
/// the next root announces itself again anyway.
const PROVIDE_QUEUE: usize = 16;
/// DHT provide queries running at once.
const PROVIDE_CONCURRENCY: usize = 8;
/// Bound on one provide query (the DHT gives up on unreachable peers slowly).
const PROVIDE_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on handing a record to the swarm task (local store + gossip; normally instant).
const IPNS_SERVE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the gateway waits for a remote name to resolve.
pub const DEFAULT_RESOLVE_TIMEOUT: Duration = Duration::from_secs(30);

/// How the station joins the IPFS network.
#[derive(Debug, Clone)]
pub struct P2pConfig {
    /// TCP and/or QUIC multiaddrs to listen on.
    pub listen: Vec<Multiaddr>,
    /// Peers (with `/p2p/<id>`) dialled at start, in the background.
    pub bootstrap: Vec<Multiaddr>,
    /// How long the gateway waits for a block over bitswap.
    pub fetch_timeout: Duration,
    /// Also run the WAN DHT (off for loopback-only tests, where it would stay empty).
    pub wan_dht: bool,
    /// DHT put rate and delegated routing endpoints for the station's IPNS records.
    pub ipns: IpnsPublishConfig,
    /// How long the gateway waits for another station's name to resolve.
    pub resolve_timeout: Duration,
    /// How often everything provided is announced again on the DHTs, and how long the
    /// DHT keeps others' provider records (see [`NetworkConfig`]; tests shorten both).
    pub provider_publication_interval: Duration,
    pub provider_record_ttl: Duration,
}

impl P2pConfig {
    /// Default ports and the public bootstrap peers.
    pub fn public() -> Self {
        P2pConfig {
            listen: parse_all(&DEFAULT_P2P_LISTEN),
            bootstrap: parse_all(&DEFAULT_BOOTSTRAP),
            fetch_timeout: Duration::from_secs(30),
            wan_dht: true,
            ipns: IpnsPublishConfig::default(),
            resolve_timeout: DEFAULT_RESOLVE_TIMEOUT,
            provider_publication_interval: swarm::DEFAULT_PROVIDER_PUBLICATION_INTERVAL,
            provider_record_ttl: swarm::DEFAULT_PROVIDER_RECORD_TTL,
        }
    }

    /// Loopback only, kernel-chosen TCP port, no bootstrap: for tests.
    pub fn loopback() -> Self {
        P2pConfig {
            listen: parse_all(&["/ip4/127.0.0.1/tcp/0"]),
            bootstrap: Vec::new(),
            fetch_timeout: Duration::from_secs(30),
            wan_dht: false,
            ipns: IpnsPublishConfig::default(),
            resolve_timeout: DEFAULT_RESOLVE_TIMEOUT,
            provider_publication_interval: swarm::DEFAULT_PROVIDER_PUBLICATION_INTERVAL,
            provider_record_ttl: swarm::DEFAULT_PROVIDER_RECORD_TTL,
        }
    }
}

fn parse_all(addrs: &[&str]) -> Vec<Multiaddr> {
    addrs
        .iter()
        .map(|a| a.parse().expect("built-in multiaddrs are valid"))
        .collect()
}

/// The running swarm of a station.
pub struct StationNetwork {
    client: Client,
    task: JoinHandle<()>,
    provide_queue: mpsc::Sender<Vec<Cid>>,
    provider: JoinHandle<()>,
    /// Provides the pinned set at start, then stops providing what GC removes.
    provider_set: JoinHandle<()>,
    fetch_timeout: Duration,
    ipns: Arc<IpnsPublisher>,
    resolve_timeout: Duration,
}

impl StationNetwork {
    /// Starts the swarm as `key`'s peer, serving blocks from `store`; returns once every
    /// listener is bound. Bootstrap peers are dialled in the background.
    pub async fn start(
        store: Store,
        key: &SigningKey,
        config: &P2pConfig,
    ) -> Result<StationNetwork, NetError> {
        let mut net = NetworkConfig::new(keypair_from_ed25519(key));
        net.listen_addrs = config.listen.clone();
        net.wan_dht = config.wan_dht;
        net.provider_publication_interval = config.provider_publication_interval;
        net.provider_record_ttl = config.provider_record_ttl;
        let (client, task) = swarm::spawn(net, StoreBlocks::shared(store.clone())).await?;
        let bootstrap = config.bootstrap.clone();
        let dialer = client.clone();
        tokio::spawn(async move {
            for addr in bootstrap {
                if let Err(error) = dialer.dial(addr.clone()).await {
                    tracing::warn!(%error, %addr, "bootstrap peer unreachable");
                }
            }
        });
        let (provide_queue, batches) = mpsc::channel(PROVIDE_QUEUE);
        let provider = tokio::spawn(provide_batches(client.clone(), batches));
        let provider_set = tokio::spawn(super::provide::keep_provider_set(
            client.clone(),
            store.clone(),
            provide_queue.clone(),
        ));
        let ipns = Arc::new(IpnsPublisher::spawn(client.clone(), config.ipns.clone()));
        Ok(StationNetwork {
            client,
            task,
            provide_queue,
            provider,
            provider_set,
            fetch_timeout: config.fetch_timeout,
            ipns,
            resolve_timeout: config.resolve_timeout,
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The listen addresses, each ending in `/p2p/<peer id>` (ready for `ipfs swarm connect`).
    pub async fn p2p_addrs(&self) -> Result<Vec<Multiaddr>, NetError> {
        let peer = self.client.peer_id();
        Ok(self
            .client
            .listen_addrs()
            .await?
            .into_iter()
            .map(|addr| addr.with(Protocol::P2p(peer)))
            .collect())
    }

    /// Announces new roots and segments on the DHTs.
    pub fn publisher(&self) -> Arc<dyn Publisher> {
        Arc::new(NetworkPublisher {
            queue: self.provide_queue.clone(),
            ipns: Some(self.ipns.clone()),
        })
    }

    /// Announces new roots and segments on the DHTs without touching IPNS: for a relay,
    /// whose records are the followed station's, not its own.
    pub fn provider(&self) -> Arc<dyn Publisher> {
        Arc::new(NetworkPublisher {
            queue: self.provide_queue.clone(),
            ipns: None,
        })
    }

    /// The station's IPNS publisher (its reports say what the DHT put slots did).
    pub fn ipns_publisher(&self) -> &IpnsPublisher {
        &self.ipns
    }

    /// Resolves names over the network (DHT, then pubsub updates), for the gateway.
    pub fn name_resolver(&self) -> Arc<dyn NameResolver> {
        Arc::new(NetworkNames::new(self.client.clone(), self.resolve_timeout))
    }

    /// Announces each new root on the station topic (signed with `key`, the station key).
    pub fn announcer(&self, key: SigningKey, store: Store) -> Arc<dyn Publisher> {
        Arc::new(super::announce::AnnouncePublisher::new(
            self.client.clone(),
            key,
            store,
        ))
    }

    /// Fetches blocks the store lacks over bitswap (and stores them).
    pub fn block_fetcher(&self) -> Arc<dyn BlockFetcher> {
        Arc::new(BitswapFetcher {
            client: self.client.clone(),
            timeout: self.fetch_timeout,
        })
    }

    /// Stops announcing and the swarm (connections close).
    pub async fn shutdown(self) {
        self.provider.abort();
        self.provider_set.abort();
        drop(self.ipns);
        if let Err(error) = self.client.shutdown().await {
            tracing::debug!(%error, "network already stopped");
        }
        if let Err(error) = self.task.await {
            tracing::warn!(%error, "network task failed");
        }
    }
}

/// Announces every CID of each batch, a few queries at a time; failures are logged (a
/// missing provider record only costs discoverability until the next root).
async fn provide_batches(client: Client, mut batches: mpsc::Receiver<Vec<Cid>>) {
    while let Some(batch) = batches.recv().await {
        futures::stream::iter(batch)
            .for_each_concurrent(PROVIDE_CONCURRENCY, |cid| {
                let client = client.clone();
                async move {
                    match tokio::time::timeout(PROVIDE_TIMEOUT, client.start_providing(cid)).await {
                        Ok(Ok(())) => tracing::debug!(%cid, "provided"),
                        Ok(Err(error)) => tracing::debug!(%cid, %error, "provide failed"),
                        Err(_) => tracing::debug!(%cid, "provide timed out"),
                    }
                }
            })
            .await;
    }
}

/// A [`Publisher`] that queues the root and its new segments for DHT announcement and
/// hands the record to the IPNS publisher.
pub struct NetworkPublisher {
    queue: mpsc::Sender<Vec<Cid>>,
    ipns: Option<Arc<IpnsPublisher>>,
}

impl Publisher for NetworkPublisher {
    fn publish<'a>(&'a self, update: &'a RootUpdate) -> BoxFuture<'a, Result<(), String>> {
        let mut batch = Vec::with_capacity(update.new_segments.len() + 1);
        batch.push(update.root);
        batch.extend_from_slice(&update.new_segments);
        let queued = self.queue.try_send(batch).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                "DHT announcements are behind; this root is not announced".to_string()
            }
            mpsc::error::TrySendError::Closed(_) => "the network has stopped".to_string(),
        });
        Box::pin(async move {
            if let Some(ipns) = &self.ipns {
                let served =
                    tokio::time::timeout(IPNS_SERVE_TIMEOUT, ipns.publish(update.record.clone()))
                        .await;
                match served {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => return Err(format!("IPNS record not served: {error}")),
                    Err(_) => return Err("IPNS record not served: swarm busy".to_string()),
                }
            }
            queued
        })
    }
}

/// The gateway's [`NameResolver`] over the network: DHT lookups (validated, best wins,
/// cached for the record's TTL) kept current by the name's pubsub topic.
pub struct NetworkNames {
    client: Client,
    timeout: Duration,
}

impl NetworkNames {
    /// Resolve through `client`, waiting at most `timeout` per lookup.
    pub fn new(client: Client, timeout: Duration) -> Self {
        NetworkNames { client, timeout }
    }
}

impl NameResolver for NetworkNames {
    fn resolve<'a>(
        &'a self,
        name: &'a ipfm_protocol::peer::PeerId,
    ) -> BoxFuture<'a, Option<ipfm_protocol::ipns::IpnsRecord>> {
        Box::pin(async move {
            match self.client.resolve_ipns(name, self.timeout).await {
                Ok(record) => Some(record),
                Err(error) => {
                    tracing::debug!(%name, %error, "name not resolved over the network");
                    None
                }
            }
        })
    }
}

/// The gateway's [`BlockFetcher`] over bitswap.
pub struct BitswapFetcher {
    client: Client,
    timeout: Duration,
}

impl BitswapFetcher {
    /// Fetch through `client`, waiting at most `timeout` per block.
    pub fn new(client: Client, timeout: Duration) -> Self {
        BitswapFetcher { client, timeout }
    }
}

impl BlockFetcher for BitswapFetcher {
    fn fetch<'a>(&'a self, cid: &'a Cid) -> BoxFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            match self.client.get_block(*cid, self.timeout).await {
                Ok(bytes) => Some(bytes),
                Err(error) => {
                    tracing::debug!(%cid, %error, "block not found over bitswap");
                    None
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_addresses_parse() {
        let public = P2pConfig::public();
        assert_eq!(public.listen.len(), DEFAULT_P2P_LISTEN.len());
        assert_eq!(public.bootstrap.len(), DEFAULT_BOOTSTRAP.len());
        assert!(public
            .bootstrap
            .iter()
            .all(|a| matches!(a.iter().last(), Some(Protocol::P2p(_)))));
        assert!(P2pConfig::loopback().bootstrap.is_empty());
    }

    #[tokio::test]
    async fn publisher_queues_the_root_then_the_new_segments() {
        let (queue, mut batches) = mpsc::channel(1);
        let publisher = NetworkPublisher { queue, ipns: None };
        let key = SigningKey::from_bytes(&[3; 32]);
        let name = ipfm_protocol::peer::PeerId::from_ed25519(&key.verifying_key());
        let root = ipfm_protocol::cid::raw_cid(b"root");
        let segment = ipfm_protocol::cid::raw_cid(b"segment");
        let update = RootUpdate {
            name,
            record: ipfm_protocol::ipns::IpnsRecord::create(
                &key,
                &format!("/ipfs/{root}"),
                1,
                std::time::SystemTime::now() + Duration::from_secs(60),
                Duration::from_secs(1),
            ),
            root,
            new_segments: vec![segment],
        };
        publisher.publish(&update).await.unwrap();
        // The queue is full now: the next root is refused at once rather than waiting.
        assert!(publisher.publish(&update).await.is_err());
        assert_eq!(batches.recv().await.unwrap(), vec![root, segment]);
    }
}
