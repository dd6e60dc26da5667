//! The libp2p swarm: transports, the composed behaviour and its configuration.
//!
//! One task ([`EventLoop`]) owns the `Swarm`; everything else talks to it through a
//! [`Client`] (commands over a channel, answers over oneshots), like rust-libp2p's
//! file-sharing example.

mod client;
mod event_loop;

use std::sync::Arc;
use std::time::Duration;

use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{
    allow_block_list, autonat, connection_limits, dcutr, gossipsub, identify, kad, noise, ping,
    relay, tcp, yamux, Multiaddr, StreamProtocol, Swarm, SwarmBuilder,
};

use crate::net::bitswap;
use crate::net::blocks::BlockAccess;
pub use client::ipns::IpnsStats;
pub use client::{Client, DagFetch, GossipMessage, ValidatedMessage};
pub use event_loop::EventLoop;
pub use libp2p::gossipsub::{MessageAcceptance, MessageId};

/// Kubo's LAN DHT (private and loopback peers).
pub const LAN_KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/ipfs/lan/kad/1.0.0");
/// The public (WAN) IPFS DHT.
pub const WAN_KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/ipfs/kad/1.0.0");
/// How often Kubo re-announces what it provides (boxo's `DefaultReproviderInterval`).
pub const DEFAULT_PROVIDER_PUBLICATION_INTERVAL: Duration = Duration::from_secs(22 * 3600);
/// How long DHT peers keep a provider record (go-libp2p-kad-dht's `ProvideValidity`).
pub const DEFAULT_PROVIDER_RECORD_TTL: Duration = Duration::from_secs(48 * 3600);

/// Value records (IPNS records, public keys) kept per DHT for other peers.
pub const MAX_DHT_RECORDS: usize = 1024;

/// The identify protocol version Kubo announces.
pub const IDENTIFY_PROTOCOL: &str = "/ipfs/id/1.0.0";

/// Errors of the network layer.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("building the swarm: {0}")]
    Build(String),
    #[error("listening on {addr}: {reason}")]
    Listen { addr: Multiaddr, reason: String },
    #[error("dialing {addr}: {reason}")]
    Dial { addr: Multiaddr, reason: String },
    #[error("the network task has stopped")]
    Stopped,
    #[error("timed out")]
    Timeout,
    #[error("bitswap: {0}")]
    Bitswap(#[from] bitswap::GetError),
    #[error("blockstore: {0}")]
    Store(#[from] crate::net::blocks::BlockAccessError),
    #[error("block {cid} of the DAG is not valid dag-pb: {reason}")]
    BadDag { cid: cid::Cid, reason: String },
    #[error("DAG has more than {0} blocks")]
    DagTooLarge(usize),
    #[error("DHT: {0}")]
    Dht(String),
    #[error("gossipsub: {0}")]
    Gossip(String),
    #[error("IPNS record: {0}")]
    Ipns(#[from] ipfm_protocol::ipns::IpnsError),
    #[error("IPNS name {0} not found")]
    NameNotFound(String),
}

/// How the node joins the network.
#[derive(Clone)]
pub struct NetworkConfig {
    /// The peer identity (the station key; see [`keypair_from_ed25519`]).
    pub keypair: Keypair,
    /// Addresses to listen on (TCP and/or QUIC multiaddrs).
    pub listen_addrs: Vec<Multiaddr>,
    /// Peers to dial at start (with `/p2p/<id>`), added to the DHTs.
    pub bootstrap: Vec<Multiaddr>,
    /// Circuit relay v2 servers (with `/p2p/<id>`) to reserve a slot on and listen through,
    /// for a node that cannot be dialled directly.
    pub relays: Vec<Multiaddr>,
    pub bitswap: bitswap::Config,
    /// Established connections in total, and per peer.
    pub max_connections: u32,
    pub max_connections_per_peer: u32,
    /// Connections being set up at once, each direction.
    pub max_pending_connections: u32,
    /// Close connections that have had nothing to do for this long.
    pub idle_connection_timeout: Duration,
    /// Also run the WAN DHT (`/ipfs/kad/1.0.0`), which only keeps peers with public addresses.
    pub wan_dht: bool,
    /// Answer LAN DHT queries (Kubo does). In client mode the node still provides and looks
    /// up, but other peers do not route through it.
    pub lan_dht_server: bool,
    /// How often every provided CID is announced again, so the records other peers hold
    /// never reach `provider_record_ttl`. Must be shorter than it.
    pub provider_publication_interval: Duration,
    /// How long this node keeps provider records other peers announce to it.
    pub provider_record_ttl: Duration,
    /// Peers this node never connects to: dials to them fail and their inbound connections
    /// are closed (an operator's `--block-peer`; [`Client::block_peer`] adds more later).
    pub blocked_peers: Vec<libp2p::PeerId>,
}

impl NetworkConfig {
    /// Defaults with the given key and no listen address or bootstrap peer.
    pub fn new(keypair: Keypair) -> Self {
        NetworkConfig {
            keypair,
            listen_addrs: Vec::new(),
            bootstrap: Vec::new(),
            relays: Vec::new(),
            bitswap: bitswap::Config::default(),
            max_connections: 512,
            max_connections_per_peer: 4,
            max_pending_connections: 64,
            idle_connection_timeout: Duration::from_secs(120),
            wan_dht: true,
            lan_dht_server: true,
            provider_publication_interval: DEFAULT_PROVIDER_PUBLICATION_INTERVAL,
            provider_record_ttl: DEFAULT_PROVIDER_RECORD_TTL,
            blocked_peers: Vec::new(),
        }
    }

    /// Listen on loopback only, on kernel-chosen ports (TCP and QUIC): for tests and local use.
    pub fn loopback(keypair: Keypair) -> Self {
        let mut config = NetworkConfig::new(keypair);
        config.listen_addrs = vec![
            "/ip4/127.0.0.1/tcp/0".parse().expect("valid multiaddr"),
            "/ip4/127.0.0.1/udp/0/quic-v1"
                .parse()
                .expect("valid multiaddr"),
        ];
        config
    }
}

/// The libp2p identity for a station's Ed25519 signing key (same peer id as
/// `ipfm_protocol::peer::PeerId::from_ed25519`).
pub fn keypair_from_ed25519(key: &ed25519_dalek::SigningKey) -> Keypair {
    Keypair::ed25519_from_bytes(key.to_bytes()).expect("an Ed25519 secret key is 32 bytes")
}

/// Our peer id type as libp2p's (both are the multihash of the public key).
pub fn to_libp2p_peer_id(peer: &ipfm_protocol::peer::PeerId) -> libp2p::PeerId {
    libp2p::PeerId::from_bytes(&peer.to_bytes()).expect("a valid peer id multihash")
}

/// Whether an address can only be reached on this host or a private network.
pub fn is_private_addr(addr: &Multiaddr) -> bool {
    match addr.iter().next() {
        Some(Protocol::Ip4(ip)) => {
            ip.is_private() || ip.is_loopback() || ip.is_link_local() || ip.is_unspecified()
        }
        Some(Protocol::Ip6(ip)) => {
            let first = ip.segments()[0];
            ip.is_loopback()
                || ip.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
        _ => false,
    }
}

/// Everything the node speaks.
#[derive(NetworkBehaviour)]
pub struct NodeBehaviour {
    /// First, so a blocked peer's connection is refused before any other behaviour sees it.
    blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    limits: connection_limits::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    kad_lan: kad::Behaviour<kad::store::MemoryStore>,
    kad_wan: libp2p::swarm::behaviour::toggle::Toggle<kad::Behaviour<kad::store::MemoryStore>>,
    gossipsub: gossipsub::Behaviour,
    bitswap: bitswap::Behaviour,
    /// Learns whether our addresses are reachable from outside (Kubo speaks v1).
    autonat: autonat::Behaviour,
    /// Circuit relay v2 client: reachable through a relay when behind NAT.
    relay_client: relay::client::Behaviour,
    /// Upgrades relayed connections to direct ones by hole punching.
    dcutr: dcutr::Behaviour,
    /// Answers libp2p fetch requests for IPNS records (IPNS over pubsub's first record).
    ipns_fetch: crate::net::ipns::fetch::Behaviour,
}

fn kademlia(
    keypair: &Keypair,
    protocol: StreamProtocol,
    config: &NetworkConfig,
) -> kad::Behaviour<kad::store::MemoryStore> {
    let peer_id = keypair.public().to_peer_id();
    let (interval, ttl) = (
        config.provider_publication_interval,
        config.provider_record_ttl,
    );
    let mut config = kad::Config::new(protocol);
    // Kademlia's own job re-announces everything in the provided set (what the node
    // started providing and has not stopped) every `interval`; GC takes removed blocks
    // out of that set (`Client::stop_providing`).
    config.set_provider_publication_interval(Some(interval));
    config.set_provider_record_ttl(Some(ttl));
    // Addresses go in only through identify, filtered by the DHT's scope (see the event loop).
    config.set_kbucket_inserts(kad::BucketInserts::Manual);
    // Records and provider records others send us reach the store only through the event
    // loop, which stores provider records and only the value records that validate
    // (`/ipns/`, `/pk/`: crate::net::ipns::records).
    config.set_record_filtering(kad::StoreInserts::FilterBoth);
    let store_config = kad::store::MemoryStoreConfig {
        max_provided_keys: 100_000,
        max_providers_per_key: 64,
        max_records: MAX_DHT_RECORDS,
        max_value_bytes: ipfm_protocol::ipns::MAX_RECORD_SIZE,
    };
    let store = kad::store::MemoryStore::with_config(peer_id, store_config);
    kad::Behaviour::with_config(peer_id, store, config)
}

fn build_behaviour(
    keypair: &Keypair,
    relay_client: relay::client::Behaviour,
    config: &NetworkConfig,
    blocks: Arc<dyn BlockAccess>,
) -> Result<NodeBehaviour, NetError> {
    let peer_id = keypair.public().to_peer_id();
    let limits = connection_limits::ConnectionLimits::default()
        .with_max_established(Some(config.max_connections))
        .with_max_established_per_peer(Some(config.max_connections_per_peer))
        .with_max_pending_incoming(Some(config.max_pending_connections))
        .with_max_pending_outgoing(Some(config.max_pending_connections));
    let identify = identify::Behaviour::new(
        identify::Config::new(IDENTIFY_PROTOCOL.to_string(), keypair.public())
            .with_agent_version(format!("ipfm/{}", env!("CARGO_PKG_VERSION"))),
    );
    if config.provider_publication_interval >= config.provider_record_ttl {
        return Err(NetError::Build(format!(
            "the provider publication interval ({:?}) must be shorter than the provider record TTL ({:?}), or records expire before they are renewed",
            config.provider_publication_interval, config.provider_record_ttl
        )));
    }
    let gossip_config = gossipsub::ConfigBuilder::default()
        .validation_mode(gossipsub::ValidationMode::Strict)
        // Every message waits for a verdict before it is forwarded: validated topics get
        // theirs from their subscriber, every other topic is accepted on arrival (see the
        // event loop), which keeps plain topics (Kubo interop, IPNS) as they were.
        .validate_messages()
        .build()
        .map_err(|e| NetError::Build(e.to_string()))?;
    let mut gossipsub = gossipsub::Behaviour::new(
        gossipsub::MessageAuthenticity::Signed(keypair.clone()),
        gossip_config,
    )
    .map_err(|e| NetError::Build(e.to_string()))?;
    gossipsub
        .with_peer_score(
            gossip_score_params(),
            gossipsub::PeerScoreThresholds::default(),
        )
        .map_err(NetError::Build)?;
    let mut kad_lan = kademlia(keypair, LAN_KAD_PROTOCOL, config);
    // Kubo's LAN DHT serves everyone it can reach: so do we (unless configured otherwise).
    kad_lan.set_mode(Some(if config.lan_dht_server {
        kad::Mode::Server
    } else {
        kad::Mode::Client
    }));
    // The WAN DHT starts as a client; the event loop makes it a server once a public
    // address is confirmed (listen addresses are confirmed too, and may be private).
    let kad_wan = config
        .wan_dht
        .then(|| {
            let mut kad = kademlia(keypair, WAN_KAD_PROTOCOL, config);
            kad.set_mode(Some(kad::Mode::Client));
            kad
        })
        .into();
    let mut blocked = allow_block_list::Behaviour::default();
    for peer in &config.blocked_peers {
        blocked.block_peer(*peer);
    }
    Ok(NodeBehaviour {
        blocked,
        limits: connection_limits::Behaviour::new(limits),
        identify,
        ping: ping::Behaviour::new(ping::Config::new()),
        kad_lan,
        kad_wan,
        gossipsub,
        bitswap: bitswap::Behaviour::new(config.bitswap.clone(), blocks),
        autonat: autonat::Behaviour::new(peer_id, autonat::Config::default()),
        relay_client,
        dcutr: dcutr::Behaviour::new(peer_id),
        ipns_fetch: crate::net::ipns::fetch::behaviour(),
    })
}

/// Peer scoring: only what validated topics need. Many honest peers share an address on a
/// LAN, behind NAT or on loopback, so co-location is not held against them.
fn gossip_score_params() -> gossipsub::PeerScoreParams {
    gossipsub::PeerScoreParams {
        ip_colocation_factor_weight: 0.0,
        ..Default::default()
    }
}

/// Scoring on a validated topic: rejected messages cost the sender the square of their
/// count (one reject: -10, below the gossip threshold; three: -90, graylisted, so its
/// messages are no longer even looked at), forgiven slowly (half-life about 11 minutes).
/// Mesh delivery rates are not scored: a station publishes only every few seconds.
pub(crate) fn validated_topic_score_params() -> gossipsub::TopicScoreParams {
    gossipsub::TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.0,
        first_message_deliveries_weight: 1.0,
        first_message_deliveries_decay: 0.9,
        first_message_deliveries_cap: 10.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: -10.0,
        invalid_message_deliveries_decay: 0.999,
        ..Default::default()
    }
}

fn build_swarm(
    config: &NetworkConfig,
    blocks: Arc<dyn BlockAccess>,
) -> Result<Swarm<NodeBehaviour>, NetError> {
    let build = |e: &dyn std::fmt::Display| NetError::Build(e.to_string());
    let swarm = SwarmBuilder::with_existing_identity(config.keypair.clone())
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| build(&e))?
        .with_quic()
        .with_dns()
        .map_err(|e| build(&e))?
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(|e| build(&e))?
        .with_behaviour(|keypair, relay_client| {
            build_behaviour(keypair, relay_client, config, blocks)
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) })
        })
        .map_err(|e| build(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(config.idle_connection_timeout))
        .build();
    Ok(swarm)
}

/// Build the swarm, start listening (waiting until every listener has an address), dial
/// the bootstrap peers, and run the event loop on the current tokio runtime.
pub async fn spawn(
    config: NetworkConfig,
    blocks: Arc<dyn BlockAccess>,
) -> Result<(Client, tokio::task::JoinHandle<()>), NetError> {
    let swarm = build_swarm(&config, blocks.clone())?;
    let (event_loop, client) = EventLoop::new(swarm, blocks);
    let handle = tokio::spawn(event_loop.run());
    for addr in &config.listen_addrs {
        client.listen_on(addr.clone()).await?;
    }
    for relay in &config.relays {
        client
            .listen_on(relay.clone().with(Protocol::P2pCircuit))
            .await?;
    }
    for addr in &config.bootstrap {
        if let Err(error) = client.dial(addr.clone()).await {
            tracing::warn!(%error, "bootstrap peer unreachable");
        }
    }
    Ok((client, handle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn station_key_gives_the_same_peer_id_in_both_types() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
        let ours = ipfm_protocol::peer::PeerId::from_ed25519(&key.verifying_key());
        let libp2p_id = keypair_from_ed25519(&key).public().to_peer_id();
        assert_eq!(libp2p_id.to_bytes(), ours.to_bytes());
        assert_eq!(to_libp2p_peer_id(&ours), libp2p_id);
        assert_eq!(libp2p_id.to_base58(), ours.to_base58());
    }

    #[test]
    fn private_addresses_are_told_apart_from_public_ones() {
        for private in [
            "/ip4/127.0.0.1/tcp/1",
            "/ip4/10.1.2.3/tcp/1",
            "/ip4/192.168.1.1/udp/1/quic-v1",
            "/ip6/::1/tcp/1",
            "/ip6/fd00::1/tcp/1",
            "/ip6/fe80::1/tcp/1",
        ] {
            assert!(is_private_addr(&private.parse().unwrap()), "{private}");
        }
        for public in [
            "/ip4/1.2.3.4/tcp/1",
            "/ip6/2001:db8::1/tcp/1",
            "/dns4/example.com/tcp/1",
        ] {
            assert!(!is_private_addr(&public.parse().unwrap()), "{public}");
        }
    }
}
