//! Bitswap 1.2.0 (specs.ipfs.tech/bitswap-protocol) as a libp2p `NetworkBehaviour`, shaped
//! like beetswap: `handler` (one per connection: streams and framing), `server` (answers
//! from the blockstore), `client` (wants, retries, verification), `outbox` (batching).
//!
//! The behaviour never blocks: store lookups are futures it polls, bounded per peer.
//! Fetched blocks are verified against the CID asked for before they are reported; a peer
//! that sends bytes nobody asked for is reported as [`Event::PeerMisbehaved`] (the swarm
//! disconnects it) and never asked again.

mod client;
mod framing;
mod handler;
mod outbox;
mod server;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use cid::Cid;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use ipfm_protocol::bitswap::{Message, MAX_MESSAGE_SIZE};
use libp2p::core::transport::PortUse;
use libp2p::core::Endpoint;
use libp2p::swarm::behaviour::ConnectionEstablished;
use libp2p::swarm::{
    ConnectionClosed, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, NotifyHandler,
    THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId};

use crate::net::blocks::BlockAccess;
use client::ClientState;
pub use framing::InboundError;
use handler::{Handler, HandlerEvent, OutboundFrame};
use outbox::Outbox;
use server::{Lookup, ServerState};

/// Limits and timeouts.
#[derive(Debug, Clone)]
pub struct Config {
    /// Largest message read or written (boxo: 4 MiB).
    pub max_message_size: usize,
    /// Entries kept per peer wantlist; more are ignored (boxo: 1024).
    pub max_wantlist_entries: usize,
    /// Store lookups running at once for one peer.
    pub max_lookups_per_peer: usize,
    /// Answer bytes queued towards one peer before its lookups pause.
    pub max_queued_bytes_per_peer: usize,
    /// How long a peer asked for a block may take before the next candidate is asked.
    pub block_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_message_size: MAX_MESSAGE_SIZE,
            max_wantlist_entries: 1024,
            max_lookups_per_peer: 32,
            max_queued_bytes_per_peer: 16 * 1024 * 1024,
            block_timeout: Duration::from_secs(10),
        }
    }
}

/// Identifies one [`Behaviour::get`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QueryId(u64);

/// Why a get failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GetError {
    #[error("every peer asked said it does not have the block")]
    NotFound,
    #[error("timed out waiting for the block")]
    Timeout,
}

/// What a peer did wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Misbehaviour {
    /// The block's CID is computed from its bytes when the message is decoded, so a forged
    /// or corrupted answer shows up as a block nobody wants.
    #[error("sent a block nobody asked for ({0}): forged or corrupted")]
    UnwantedBlock(Cid),
}

/// Why a connection to a peer was refused: it sent forged blocks.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("peer is banned: it sent blocks that do not match their CIDs")]
pub struct PeerBanned;

/// Events for the swarm owner.
#[derive(Debug)]
pub enum Event {
    /// A get finished: the block (verified against the CID asked for) or why not.
    GetDone {
        query: QueryId,
        result: Result<(Cid, Vec<u8>), GetError>,
    },
    /// The peer broke the protocol; it will not be asked again and should be disconnected.
    PeerMisbehaved { peer: PeerId, reason: Misbehaviour },
    /// A peer sent something unreadable on a stream; that stream was closed.
    StreamClosed { peer: PeerId, error: String },
}

/// How often deadlines and slow peers are checked while something is wanted.
const TICK: Duration = Duration::from_millis(200);

#[derive(Default)]
struct PeerInfo {
    connections: Vec<ConnectionId>,
    /// The peer refused every bitswap version we send.
    unsupported: bool,
}

pub struct Behaviour {
    config: Config,
    blocks: Arc<dyn BlockAccess>,
    peers: HashMap<PeerId, PeerInfo>,
    client: ClientState,
    server: ServerState,
    lookups: FuturesUnordered<BoxFuture<'static, Lookup>>,
    outbox: Outbox,
    events: VecDeque<Event>,
    to_swarm: VecDeque<ToSwarm<Event, OutboundFrame>>,
    tick: Option<tokio::time::Interval>,
    waker: Option<Waker>,
}

impl Behaviour {
    pub fn new(config: Config, blocks: Arc<dyn BlockAccess>) -> Self {
        Behaviour {
            client: ClientState::new(config.block_timeout),
            server: ServerState::new(config.clone()),
            config,
            blocks,
            peers: HashMap::new(),
            lookups: FuturesUnordered::new(),
            outbox: Outbox::default(),
            events: VecDeque::new(),
            to_swarm: VecDeque::new(),
            tick: None,
            waker: None,
        }
    }

    /// Fetch one block from connected peers (see the `client` module for the strategy).
    pub fn get(&mut self, cid: Cid, timeout: Duration) -> QueryId {
        let peers = self.bitswap_peers();
        let query = self.client.get(cid, timeout, &peers, &mut self.outbox);
        self.wake();
        query
    }

    /// Give up a get (cancels go out if nobody else wants the block).
    pub fn cancel(&mut self, query: QueryId) {
        self.client.cancel(query, &mut self.outbox);
        self.wake();
    }

    /// Peers with an open connection that may speak bitswap.
    pub fn bitswap_peers(&self) -> Vec<PeerId> {
        self.peers
            .iter()
            .filter(|(peer, info)| !info.unsupported && !self.client.is_banned(peer))
            .map(|(peer, _)| *peer)
            .collect()
    }

    fn wake(&mut self) {
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    /// A handler for a new connection, unless the peer is banned (the whole connection is
    /// refused then, so it is not re-established by the DHT or anyone else).
    fn handler_for(&self, peer: PeerId) -> Result<Handler, ConnectionDenied> {
        if self.client.is_banned(&peer) {
            return Err(ConnectionDenied::new(PeerBanned));
        }
        Ok(Handler::new(self.config.max_message_size))
    }

    fn on_message(&mut self, peer: PeerId, message: Message) {
        if let Some(wantlist) = message.wantlist {
            self.server.on_wantlist(peer, wantlist);
        }
        let peers = self.bitswap_peers();
        for presence in message.presences {
            self.client.on_presence(
                peer,
                presence.cid,
                presence.presence,
                &peers,
                &mut self.outbox,
                &mut self.events,
            );
        }
        for (cid, data) in message.blocks {
            self.client
                .on_block(peer, cid, data, &peers, &mut self.outbox, &mut self.events);
        }
    }

    fn peer_gone(&mut self, peer: PeerId) {
        self.server.peer_gone(&peer);
        self.outbox.forget(&peer);
        let peers = self.bitswap_peers();
        self.client
            .peer_gone(peer, &peers, &mut self.outbox, &mut self.events);
    }

    /// Turn everything decided so far into frames for the connections.
    fn flush_outbox(&mut self) {
        for (peer, message) in self.outbox.drain() {
            let Some(connection) = self.peers.get(&peer).and_then(|p| p.connections.first()) else {
                continue;
            };
            let frame = message.into_framed();
            if frame.len() > self.config.max_message_size + 8 {
                tracing::warn!(%peer, len = frame.len(), "bitswap: message too large, dropped");
                continue;
            }
            self.server.bytes_queued(peer, frame.len());
            self.to_swarm.push_back(ToSwarm::NotifyHandler {
                peer_id: peer,
                handler: NotifyHandler::One(*connection),
                event: OutboundFrame(frame),
            });
        }
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = Handler;
    type ToSwarm = Event;

    fn handle_pending_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: Option<PeerId>,
        _: &[Multiaddr],
        _: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        match peer {
            Some(peer) if self.client.is_banned(&peer) => Err(ConnectionDenied::new(PeerBanned)),
            _ => Ok(Vec::new()),
        }
    }

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.handler_for(peer)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.handler_for(peer)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ConnectionEstablished(ConnectionEstablished {
                peer_id,
                connection_id,
                ..
            }) => {
                let info = self.peers.entry(peer_id).or_default();
                info.connections.push(connection_id);
                if info.connections.len() == 1 {
                    self.client.peer_connected(peer_id, &mut self.outbox);
                }
            }
            FromSwarm::ConnectionClosed(ConnectionClosed {
                peer_id,
                connection_id,
                ..
            }) => {
                let Some(info) = self.peers.get_mut(&peer_id) else {
                    return;
                };
                info.connections.retain(|c| *c != connection_id);
                if info.connections.is_empty() {
                    self.peers.remove(&peer_id);
                    self.peer_gone(peer_id);
                }
            }
            _ => {}
        }
        self.wake();
    }

    fn on_connection_handler_event(
        &mut self,
        peer: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {
            HandlerEvent::Received(message) => self.on_message(peer, message),
            HandlerEvent::InboundClosed(error) => {
                tracing::debug!(%peer, %error, "bitswap: closed an inbound stream");
                self.events.push_back(Event::StreamClosed {
                    peer,
                    error: error.to_string(),
                });
            }
            HandlerEvent::FrameDone { bytes, .. } => self.server.bytes_done(peer, bytes),
            HandlerEvent::Unsupported => {
                if let Some(info) = self.peers.get_mut(&peer) {
                    if !info.unsupported {
                        info.unsupported = true;
                        let peers = self.bitswap_peers();
                        self.client
                            .peer_gone(peer, &peers, &mut self.outbox, &mut self.events);
                    }
                }
            }
        }
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        // Deadlines, while anything is wanted.
        if self.client.is_idle() {
            self.tick = None;
        } else {
            let tick = self.tick.get_or_insert_with(|| {
                let mut interval = tokio::time::interval(TICK);
                interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                interval
            });
            if tick.poll_tick(cx).is_ready() {
                let peers = self.bitswap_peers();
                self.client
                    .on_tick(Instant::now(), &peers, &mut self.outbox, &mut self.events);
            }
        }
        // Start what the per-peer limits allow and collect finished lookups (which free
        // slots), until neither makes progress; polling also registers the wakers.
        loop {
            for lookup in self.server.start_lookups(self.blocks.as_ref()) {
                self.lookups.push(lookup);
            }
            let mut finished = false;
            while let Poll::Ready(Some(lookup)) = self.lookups.poll_next_unpin(cx) {
                self.server.on_lookup(lookup, &mut self.outbox);
                finished = true;
            }
            if !finished {
                break;
            }
        }
        if !self.outbox.is_empty() {
            self.flush_outbox();
        }
        if let Some(event) = self.events.pop_front() {
            return Poll::Ready(ToSwarm::GenerateEvent(event));
        }
        if let Some(action) = self.to_swarm.pop_front() {
            return Poll::Ready(action);
        }
        self.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}
