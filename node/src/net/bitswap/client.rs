//! The fetching side: wants, who was asked, who has what, timeouts and verification.
//!
//! A new want goes as want-block to one connected peer and want-have to the others (all
//! with send-dont-have), so a peer that has the block answers in one round trip and the
//! others tell us quickly whether they could. A Have makes its sender the next candidate;
//! a DontHave, a disconnect, a misbehaving or a slow block peer moves on to the next one.
//! When every peer we asked said no, the get fails at once (no waiting for the timeout);
//! with no peers at all it waits (one may connect) until its deadline.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use cid::Cid;
use ipfm_protocol::bitswap::{PresenceType, WantType, WantlistEntry};
use libp2p::PeerId;

use super::outbox::Outbox;
use super::{Event, GetError, Misbehaviour, QueryId};

/// Blocks remembered as just received, so a duplicate from a racing peer is not taken for
/// an unsolicited (or forged) block.
const RECENT_BLOCKS: usize = 1024;
/// Peers remembered as misbehaving (oldest forgotten first).
const BANNED_PEERS: usize = 4096;

/// Wants are keyed by multihash: a CIDv0 and a CIDv1 of the same bytes are one want, and a
/// peer may answer with either prefix.
type WantKey = Vec<u8>;

fn key_of(cid: &Cid) -> WantKey {
    cid.hash().to_bytes()
}

struct Want {
    cid: Cid,
    queries: Vec<QueryId>,
    deadline: Instant,
    /// Peers we sent a want to (and must send a cancel to when done).
    asked: HashSet<PeerId>,
    /// Peers that said Have, not tried yet, in order of answer.
    haves: VecDeque<PeerId>,
    /// Peers that said DontHave (or failed us) for this block.
    excluded: HashSet<PeerId>,
    /// The peer we asked for the block, and since when.
    block_from: Option<(PeerId, Instant)>,
}

pub struct ClientState {
    block_timeout: Duration,
    wants: HashMap<WantKey, Want>,
    queries: HashMap<QueryId, WantKey>,
    next_query: u64,
    recent: VecDeque<WantKey>,
    recent_set: HashSet<WantKey>,
    banned: VecDeque<PeerId>,
    banned_set: HashSet<PeerId>,
}

fn entry(cid: Cid, want_type: WantType, cancel: bool) -> WantlistEntry {
    WantlistEntry {
        cid,
        priority: 1,
        cancel,
        want_type,
        send_dont_have: !cancel,
    }
}

impl ClientState {
    pub fn new(block_timeout: Duration) -> Self {
        ClientState {
            block_timeout,
            wants: HashMap::new(),
            queries: HashMap::new(),
            next_query: 0,
            recent: VecDeque::new(),
            recent_set: HashSet::new(),
            banned: VecDeque::new(),
            banned_set: HashSet::new(),
        }
    }

    pub fn is_idle(&self) -> bool {
        self.wants.is_empty()
    }

    pub fn is_banned(&self, peer: &PeerId) -> bool {
        self.banned_set.contains(peer)
    }

    /// Start fetching `cid`; the answer comes as [`Event::GetDone`] with the returned id.
    pub fn get(
        &mut self,
        cid: Cid,
        timeout: Duration,
        peers: &[PeerId],
        outbox: &mut Outbox,
    ) -> QueryId {
        let query = QueryId(self.next_query);
        self.next_query += 1;
        let key = key_of(&cid);
        self.queries.insert(query, key.clone());
        let deadline = Instant::now() + timeout;
        if let Some(want) = self.wants.get_mut(&key) {
            want.queries.push(query);
            want.deadline = want.deadline.max(deadline);
            return query;
        }
        let mut want = Want {
            cid,
            queries: vec![query],
            deadline,
            asked: HashSet::new(),
            haves: VecDeque::new(),
            excluded: HashSet::new(),
            block_from: None,
        };
        for peer in peers {
            if !self.is_banned(peer) {
                ask(&mut want, *peer, outbox);
            }
        }
        self.wants.insert(key, want);
        query
    }

    /// Stop one query; the want goes (with cancels) when no query is left.
    pub fn cancel(&mut self, query: QueryId, outbox: &mut Outbox) {
        let Some(key) = self.queries.remove(&query) else {
            return;
        };
        let Some(want) = self.wants.get_mut(&key) else {
            return;
        };
        want.queries.retain(|q| *q != query);
        if want.queries.is_empty() {
            if let Some(want) = self.wants.remove(&key) {
                send_cancels(&want, None, outbox);
            }
        }
    }

    /// A bitswap peer connected: it hears every current want.
    pub fn peer_connected(&mut self, peer: PeerId, outbox: &mut Outbox) {
        if self.is_banned(&peer) {
            return;
        }
        for want in self.wants.values_mut() {
            if !want.asked.contains(&peer) && !want.excluded.contains(&peer) {
                ask(want, peer, outbox);
            }
        }
    }

    /// A peer is gone (disconnected or not speaking bitswap).
    pub fn peer_gone(
        &mut self,
        peer: PeerId,
        peers: &[PeerId],
        outbox: &mut Outbox,
        events: &mut VecDeque<Event>,
    ) {
        let keys: Vec<WantKey> = self.wants.keys().cloned().collect();
        for key in keys {
            if let Some(want) = self.wants.get_mut(&key) {
                want.asked.remove(&peer);
                want.excluded.insert(peer);
            }
            self.move_on(&key, peer, peers, outbox, events);
        }
    }

    pub fn on_presence(
        &mut self,
        peer: PeerId,
        cid: Cid,
        presence: PresenceType,
        peers: &[PeerId],
        outbox: &mut Outbox,
        events: &mut VecDeque<Event>,
    ) {
        let key = key_of(&cid);
        let Some(want) = self.wants.get_mut(&key) else {
            return;
        };
        match presence {
            PresenceType::Have => {
                if want.excluded.contains(&peer) || want.haves.contains(&peer) {
                    return;
                }
                match want.block_from {
                    Some((from, _)) if from != peer => want.haves.push_back(peer),
                    Some(_) => {}
                    None => request_block(want, peer, outbox),
                }
            }
            PresenceType::DontHave => {
                want.excluded.insert(peer);
                want.haves.retain(|p| *p != peer);
                self.move_on(&key, peer, peers, outbox, events);
            }
        }
    }

    /// A block arrived; `cid` must have been computed from `data` by the decoder
    /// (`ipfm_protocol::bitswap::Message::decode`), never taken from the sender.
    pub fn on_block(
        &mut self,
        peer: PeerId,
        cid: Cid,
        data: Vec<u8>,
        peers: &[PeerId],
        outbox: &mut Outbox,
        events: &mut VecDeque<Event>,
    ) {
        let key = key_of(&cid);
        let Some(want) = self.wants.remove(&key) else {
            if !self.recent_set.contains(&key) {
                // Nobody asked for these bytes: a forged or corrupted answer to a want
                // hashes to a CID we do not want.
                self.misbehaved(
                    peer,
                    Misbehaviour::UnwantedBlock(cid),
                    peers,
                    outbox,
                    events,
                );
            }
            return;
        };
        // Already verified: the decoder computed `cid` by hashing `data` (the sender's
        // prefix only picks the hash function, and only sha2-256 and identity are
        // accepted), and wants are keyed by that multihash, so finding the want means
        // the bytes hash to the CID we asked for. Hashing again here cost a second
        // SHA-256 pass over every fetched byte on the swarm task.
        send_cancels(&want, Some(peer), outbox);
        self.remember_recent(key);
        let Want { cid, queries, .. } = want;
        // Every query gets the bytes; only queries beyond the first cost a copy.
        if let Some((first, others)) = queries.split_first() {
            for query in others {
                self.queries.remove(query);
                events.push_back(Event::GetDone {
                    query: *query,
                    result: Ok((cid, data.clone())),
                });
            }
            self.queries.remove(first);
            events.push_back(Event::GetDone {
                query: *first,
                result: Ok((cid, data)),
            });
        }
    }

    /// Deadlines and slow block peers.
    pub fn on_tick(
        &mut self,
        now: Instant,
        peers: &[PeerId],
        outbox: &mut Outbox,
        events: &mut VecDeque<Event>,
    ) {
        let keys: Vec<WantKey> = self.wants.keys().cloned().collect();
        for key in keys {
            let Some(want) = self.wants.get_mut(&key) else {
                continue;
            };
            if now >= want.deadline {
                if let Some(want) = self.wants.remove(&key) {
                    self.finish_failed(want, GetError::Timeout, outbox, events);
                }
                continue;
            }
            if let Some((slow, since)) = want.block_from {
                if now.duration_since(since) >= self.block_timeout {
                    tracing::debug!(peer = %slow, cid = %want.cid, "bitswap: block peer too slow");
                    outbox.want(slow, entry(want.cid, WantType::Block, true));
                    want.asked.remove(&slow);
                    want.excluded.insert(slow);
                    self.move_on(&key, slow, peers, outbox, events);
                }
            }
        }
    }

    /// `peer` can no longer give us this block: try the next candidate, ask peers not asked
    /// yet, or fail when everybody said no.
    fn move_on(
        &mut self,
        key: &WantKey,
        peer: PeerId,
        peers: &[PeerId],
        outbox: &mut Outbox,
        events: &mut VecDeque<Event>,
    ) {
        let banned = &self.banned_set;
        let Some(want) = self.wants.get_mut(key) else {
            return;
        };
        want.haves.retain(|p| *p != peer);
        if matches!(want.block_from, Some((from, _)) if from == peer) {
            want.block_from = None;
        }
        if want.block_from.is_some() {
            return;
        }
        while let Some(next) = want.haves.pop_front() {
            if peers.contains(&next) && !banned.contains(&next) {
                request_block(want, next, outbox);
                return;
            }
        }
        let fresh: Vec<PeerId> = peers
            .iter()
            .filter(|p| {
                !want.asked.contains(p) && !want.excluded.contains(p) && !banned.contains(p)
            })
            .copied()
            .collect();
        for p in fresh {
            ask(want, p, outbox);
        }
        let waiting_on_someone = want.asked.iter().any(|p| !want.excluded.contains(p));
        if !waiting_on_someone && !want.excluded.is_empty() {
            if let Some(want) = self.wants.remove(key) {
                self.finish_failed(want, GetError::NotFound, outbox, events);
            }
        }
    }

    fn finish_failed(
        &mut self,
        want: Want,
        error: GetError,
        outbox: &mut Outbox,
        events: &mut VecDeque<Event>,
    ) {
        send_cancels(&want, None, outbox);
        for query in want.queries {
            self.queries.remove(&query);
            events.push_back(Event::GetDone {
                query,
                result: Err(error.clone()),
            });
        }
    }

    fn misbehaved(
        &mut self,
        peer: PeerId,
        reason: Misbehaviour,
        peers: &[PeerId],
        outbox: &mut Outbox,
        events: &mut VecDeque<Event>,
    ) {
        tracing::debug!(%peer, %reason, "bitswap: peer misbehaved");
        events.push_back(Event::PeerMisbehaved { peer, reason });
        if self.banned_set.insert(peer) {
            self.banned.push_back(peer);
            if self.banned.len() > BANNED_PEERS {
                if let Some(old) = self.banned.pop_front() {
                    self.banned_set.remove(&old);
                }
            }
        }
        self.peer_gone(peer, peers, outbox, events);
    }

    fn remember_recent(&mut self, key: WantKey) {
        if self.recent_set.insert(key.clone()) {
            self.recent.push_back(key);
            if self.recent.len() > RECENT_BLOCKS {
                if let Some(old) = self.recent.pop_front() {
                    self.recent_set.remove(&old);
                }
            }
        }
    }
}

/// First contact with `peer` for this want: the block itself if nobody is asked for it yet,
/// otherwise whether it has it.
fn ask(want: &mut Want, peer: PeerId, outbox: &mut Outbox) {
    if want.block_from.is_none() {
        request_block(want, peer, outbox);
    } else {
        want.asked.insert(peer);
        outbox.want(peer, entry(want.cid, WantType::Have, false));
    }
}

fn request_block(want: &mut Want, peer: PeerId, outbox: &mut Outbox) {
    want.asked.insert(peer);
    want.block_from = Some((peer, Instant::now()));
    outbox.want(peer, entry(want.cid, WantType::Block, false));
}

fn send_cancels(want: &Want, except: Option<PeerId>, outbox: &mut Outbox) {
    for peer in &want.asked {
        if Some(*peer) != except {
            outbox.want(*peer, entry(want.cid, WantType::Block, true));
        }
    }
}

#[cfg(test)]
mod tests;
