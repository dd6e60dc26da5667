//! The task that owns the swarm: commands in, swarm events out to whoever waits for them.

mod dht;
mod gossip;
mod ipns;

use std::collections::HashMap;
use std::sync::Arc;

use libp2p::core::transport::ListenerId;
use libp2p::futures::StreamExt;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{gossipsub, identify, kad, Multiaddr, PeerId, Swarm};
use tokio::sync::{mpsc, oneshot};

use super::client::{Command, GossipMessage, Reply, ValidatedMessage};
use super::{
    is_private_addr, Client, NetError, NodeBehaviour, NodeBehaviourEvent, LAN_KAD_PROTOCOL,
    WAN_KAD_PROTOCOL,
};
use crate::net::bitswap::{self, GetError, QueryId};
use crate::net::blocks::BlockAccess;
use crate::net::ipns::NameCache;
use dht::{ProviderSearch, Providing};

/// Commands waiting in the channel before senders wait.
const COMMAND_QUEUE: usize = 256;
/// Undelivered gossip messages kept per subscription.
const GOSSIP_QUEUE: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Dht {
    Lan,
    Wan,
}

pub struct EventLoop {
    swarm: Swarm<NodeBehaviour>,
    commands: mpsc::Receiver<Command>,
    listening: HashMap<ListenerId, Reply<Multiaddr>>,
    dialing: HashMap<ConnectionId, Reply<PeerId>>,
    gets: HashMap<QueryId, oneshot::Sender<Result<Vec<u8>, GetError>>>,
    provider_searches: HashMap<u64, ProviderSearch>,
    providing: HashMap<u64, Providing>,
    kad_queries: HashMap<(Dht, kad::QueryId), u64>,
    /// Provider dials and the search that made them.
    dial_owner: HashMap<ConnectionId, u64>,
    next_request: u64,
    subscriptions: HashMap<gossipsub::TopicHash, Vec<mpsc::Sender<GossipMessage>>>,
    /// IPNS puts and lookups in flight, and the DHT record filter's counters.
    ipns: ipns::IpnsState,
    /// Validated remote IPNS records, shared with the clients.
    names: Arc<NameCache>,
    /// Topics whose messages wait for their subscriber's verdict before being forwarded.
    validators: HashMap<gossipsub::TopicHash, mpsc::Sender<ValidatedMessage>>,
}

impl EventLoop {
    pub(super) fn new(swarm: Swarm<NodeBehaviour>, blocks: Arc<dyn BlockAccess>) -> (Self, Client) {
        let (sender, commands) = mpsc::channel(COMMAND_QUEUE);
        let names = Arc::new(NameCache::new());
        let client = Client::new(*swarm.local_peer_id(), sender, blocks, names.clone());
        let event_loop = EventLoop {
            swarm,
            commands,
            listening: HashMap::new(),
            dialing: HashMap::new(),
            gets: HashMap::new(),
            provider_searches: HashMap::new(),
            providing: HashMap::new(),
            kad_queries: HashMap::new(),
            dial_owner: HashMap::new(),
            next_request: 0,
            subscriptions: HashMap::new(),
            ipns: ipns::IpnsState::default(),
            names,
            validators: HashMap::new(),
        };
        (event_loop, client)
    }

    /// Run until shut down or every client is dropped.
    pub async fn run(mut self) {
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                command = self.commands.recv() => match command {
                    Some(Command::Shutdown) | None => break,
                    Some(command) => self.on_command(command),
                },
            }
        }
    }

    fn kad(&mut self, dht: Dht) -> Option<&mut kad::Behaviour<kad::store::MemoryStore>> {
        let behaviour = self.swarm.behaviour_mut();
        match dht {
            Dht::Lan => Some(&mut behaviour.kad_lan),
            Dht::Wan => behaviour.kad_wan.as_mut(),
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::ListenOn { addr, reply } => match self.swarm.listen_on(addr.clone()) {
                Ok(id) => {
                    self.listening.insert(id, reply);
                }
                Err(e) => {
                    let _ = reply.send(Err(NetError::Listen {
                        addr,
                        reason: e.to_string(),
                    }));
                }
            },
            Command::Dial { addr, reply } => {
                let opts = DialOpts::unknown_peer_id().address(addr.clone()).build();
                let id = opts.connection_id();
                match self.swarm.dial(opts) {
                    Ok(()) => {
                        self.dialing.insert(id, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(NetError::Dial {
                            addr,
                            reason: e.to_string(),
                        }));
                    }
                }
            }
            Command::ListenAddrs { reply } => {
                let _ = reply.send(self.swarm.listeners().cloned().collect());
            }
            Command::ConnectedPeers { reply } => {
                let _ = reply.send(self.swarm.connected_peers().copied().collect());
            }
            Command::BlockPeer { peer, reply } => {
                let newly = self.swarm.behaviour_mut().blocked.block_peer(peer);
                tracing::info!(%peer, "peer blocked");
                let _ = reply.send(newly);
            }
            Command::GetBlock {
                cid,
                timeout,
                reply,
            } => {
                let query = self.swarm.behaviour_mut().bitswap.get(cid, timeout);
                self.gets.insert(query, reply);
            }
            Command::StartProviding { cid, reply } => self.start_providing(cid, reply),
            Command::FindProviders {
                cid,
                connect,
                reply,
            } => self.find_providers(cid, connect, reply),
            Command::Subscribe { topic, reply } => {
                let topic = gossipsub::IdentTopic::new(topic);
                let result = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .subscribe(&topic)
                    .map(|_| {
                        let (sender, receiver) = mpsc::channel(GOSSIP_QUEUE);
                        self.subscriptions
                            .entry(topic.hash())
                            .or_default()
                            .push(sender);
                        receiver
                    })
                    .map_err(|e| NetError::Gossip(e.to_string()));
                let _ = reply.send(result);
            }
            Command::SubscribeValidated { topic, reply } => {
                let _ = reply.send(self.subscribe_validated(topic));
            }
            Command::ReportValidation {
                id,
                propagation_source,
                acceptance,
            } => {
                // False when the message already left the cache: nothing left to decide.
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&id, &propagation_source, acceptance);
            }
            Command::PeerScore { peer, reply } => {
                let _ = reply.send(self.swarm.behaviour().gossipsub.peer_score(&peer));
            }
            Command::StopProviding { cid, reply } => {
                let key = kad::RecordKey::new(&cid.hash().to_bytes());
                for dht in [Dht::Lan, Dht::Wan] {
                    if let Some(kad) = self.kad(dht) {
                        kad.stop_providing(&key);
                    }
                }
                let _ = reply.send(());
            }
            Command::IsProviding { cid, reply } => {
                use kad::store::RecordStore;
                let key = kad::RecordKey::new(&cid.hash().to_bytes());
                let local = *self.swarm.local_peer_id();
                let providing = self
                    .swarm
                    .behaviour_mut()
                    .kad_lan
                    .store_mut()
                    .providers(&key)
                    .iter()
                    .any(|record| record.provider == local);
                let _ = reply.send(providing);
            }
            Command::Publish { topic, data, reply } => {
                let result = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .publish(gossipsub::IdentTopic::new(topic), data)
                    .map(|_| ())
                    .map_err(|e| NetError::Gossip(e.to_string()));
                let _ = reply.send(result);
            }
            Command::TopicPeers { topic, reply } => {
                let hash = gossipsub::IdentTopic::new(topic).hash();
                let peers = self
                    .swarm
                    .behaviour()
                    .gossipsub
                    .all_peers()
                    .filter(|(_, topics)| topics.contains(&&hash))
                    .map(|(peer, _)| *peer)
                    .collect();
                let _ = reply.send(peers);
            }
            Command::Ipns(command) => self.on_ipns_command(command),
            Command::Shutdown => {}
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<NodeBehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr {
                listener_id,
                address,
            } => {
                tracing::info!(%address, "listening");
                // Like Kubo, announce every listen address (provider records carry the
                // external addresses): on a LAN or loopback that is how peers reach us.
                self.swarm.add_external_address(address.clone());
                if let Some(reply) = self.listening.remove(&listener_id) {
                    let _ = reply.send(Ok(address));
                }
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                addresses,
                reason,
            } => {
                if let Some(reply) = self.listening.remove(&listener_id) {
                    let _ = reply.send(Err(NetError::Listen {
                        addr: addresses.first().cloned().unwrap_or_else(Multiaddr::empty),
                        reason: format!("{reason:?}"),
                    }));
                }
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                ..
            } => {
                if let Some(reply) = self.dialing.remove(&connection_id) {
                    let _ = reply.send(Ok(peer_id));
                }
                self.provider_dial_settled(connection_id);
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                error,
                ..
            } => {
                if let Some(reply) = self.dialing.remove(&connection_id) {
                    let _ = reply.send(Err(NetError::Dial {
                        addr: Multiaddr::empty(),
                        reason: error.to_string(),
                    }));
                }
                self.provider_dial_settled(connection_id);
            }
            SwarmEvent::ExternalAddrConfirmed { address } if !is_private_addr(&address) => {
                if let Some(kad) = self.kad(Dht::Wan) {
                    kad.set_mode(Some(kad::Mode::Server));
                }
            }
            SwarmEvent::Behaviour(event) => self.on_behaviour_event(event),
            _ => {}
        }
    }

    fn on_behaviour_event(&mut self, event: NodeBehaviourEvent) {
        match event {
            NodeBehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                self.on_identified(peer_id, info)
            }
            NodeBehaviourEvent::KadLan(event) => self.on_kad_event(Dht::Lan, event),
            NodeBehaviourEvent::KadWan(event) => self.on_kad_event(Dht::Wan, event),
            NodeBehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            }) => self.on_gossip(propagation_source, message_id, message),
            NodeBehaviourEvent::Bitswap(event) => self.on_bitswap_event(event),
            NodeBehaviourEvent::IpnsFetch(event) => self.on_fetch_event(event),
            _ => {}
        }
    }

    /// Like Kubo's dual DHT: the LAN table takes peers' private and loopback addresses,
    /// the WAN table only public ones.
    fn on_identified(&mut self, peer: PeerId, info: identify::Info) {
        for (dht, protocol) in [(Dht::Lan, LAN_KAD_PROTOCOL), (Dht::Wan, WAN_KAD_PROTOCOL)] {
            if !info.protocols.contains(&protocol) {
                continue;
            }
            let Some(kad) = self.kad(dht) else { continue };
            for addr in &info.listen_addrs {
                if is_private_addr(addr) == (dht == Dht::Lan) {
                    let addr = addr
                        .clone()
                        .into_iter()
                        .filter(|p| !matches!(p, Protocol::P2p(_)))
                        .collect();
                    kad.add_address(&peer, addr);
                }
            }
        }
    }

    fn on_bitswap_event(&mut self, event: bitswap::Event) {
        match event {
            bitswap::Event::GetDone { query, result } => {
                if let Some(reply) = self.gets.remove(&query) {
                    let _ = reply.send(result.map(|(_, bytes)| bytes));
                }
            }
            bitswap::Event::PeerMisbehaved { peer, reason } => {
                tracing::warn!(%peer, %reason, "disconnecting misbehaving peer");
                let _ = self.swarm.disconnect_peer_id(peer);
            }
            bitswap::Event::StreamClosed { peer, error } => {
                tracing::debug!(%peer, %error, "bitswap stream closed");
            }
        }
    }
}
