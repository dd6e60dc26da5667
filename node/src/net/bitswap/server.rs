//! The answering side: one ledger per peer holding what it wants, store lookups bounded per
//! peer, and a cap on the bytes queued towards it.
//!
//! Entries are answered once: a want-have with Have (or DontHave if asked for), a want-block
//! with the block (or DontHave). Then the entry is dropped; a peer that still wants the block
//! after a Have sends a want-block, which is a new entry. Entries beyond the wantlist cap are
//! ignored, as boxo does.

use std::collections::{HashMap, VecDeque};

use cid::Cid;
use futures::future::BoxFuture;
use futures::FutureExt;
use ipfm_protocol::bitswap::{BlockPresence, PresenceType, WantType, Wantlist, WantlistEntry};
use libp2p::PeerId;

use super::outbox::Outbox;
use super::Config;
use crate::net::blocks::{BlockAccess, BlockAccessError};

/// What a store lookup found.
pub enum Found {
    Has(bool),
    Block(Option<Vec<u8>>),
}

/// A finished lookup, tagged with the entry it answers.
pub struct Lookup {
    pub peer: PeerId,
    pub entry: WantlistEntry,
    pub generation: u64,
    pub found: Result<Found, BlockAccessError>,
}

#[derive(Default)]
struct Ledger {
    /// Current entries, each with the generation it was (re)written in.
    wants: HashMap<Cid, (WantlistEntry, u64)>,
    /// Entries waiting for a lookup slot.
    pending: VecDeque<(Cid, u64)>,
    in_flight: usize,
    /// Bytes handed to the connection and not yet written.
    queued_bytes: usize,
}

pub struct ServerState {
    config: Config,
    ledgers: HashMap<PeerId, Ledger>,
    generation: u64,
}

impl ServerState {
    pub fn new(config: Config) -> Self {
        ServerState {
            config,
            ledgers: HashMap::new(),
            generation: 0,
        }
    }

    pub fn peer_gone(&mut self, peer: &PeerId) {
        self.ledgers.remove(peer);
    }

    /// Apply a received wantlist (a full one replaces the ledger).
    pub fn on_wantlist(&mut self, peer: PeerId, wantlist: Wantlist) {
        let max_entries = self.config.max_wantlist_entries;
        let ledger = self.ledgers.entry(peer).or_default();
        if wantlist.full {
            ledger.wants.clear();
            ledger.pending.clear();
        }
        for entry in wantlist.entries {
            if entry.cancel {
                ledger.wants.remove(&entry.cid);
                continue;
            }
            if ledger.wants.len() >= max_entries && !ledger.wants.contains_key(&entry.cid) {
                tracing::debug!(%peer, "bitswap: wantlist full, entry ignored");
                continue;
            }
            self.generation += 1;
            ledger.pending.push_back((entry.cid, self.generation));
            ledger.wants.insert(entry.cid, (entry, self.generation));
        }
        // Rewritten entries leave stale queue items behind; keep the queue proportional to
        // the (capped) wantlist so repeating one entry cannot grow it.
        if ledger.pending.len() > 2 * max_entries {
            let wants = &ledger.wants;
            ledger.pending.retain(
                |(cid, generation)| matches!(wants.get(cid), Some((_, g)) if g == generation),
            );
        }
    }

    /// Start as many lookups as the per-peer limits allow.
    pub fn start_lookups(&mut self, blocks: &dyn BlockAccess) -> Vec<BoxFuture<'static, Lookup>> {
        let mut started = Vec::new();
        for (peer, ledger) in &mut self.ledgers {
            while ledger.in_flight < self.config.max_lookups_per_peer
                && ledger.queued_bytes < self.config.max_queued_bytes_per_peer
            {
                let Some((cid, generation)) = ledger.pending.pop_front() else {
                    break;
                };
                let Some((entry, current)) = ledger.wants.get(&cid) else {
                    continue;
                };
                if *current != generation {
                    continue;
                }
                ledger.in_flight += 1;
                let (peer, entry) = (*peer, entry.clone());
                let future = match entry.want_type {
                    WantType::Have => blocks.has(cid).map(|r| r.map(Found::Has)).boxed(),
                    WantType::Block => blocks.get(cid).map(|r| r.map(Found::Block)).boxed(),
                };
                started.push(
                    future
                        .map(move |found| Lookup {
                            peer,
                            entry,
                            generation,
                            found,
                        })
                        .boxed(),
                );
            }
        }
        started
    }

    /// Turn a finished lookup into an answer, unless the entry was cancelled or rewritten.
    pub fn on_lookup(&mut self, lookup: Lookup, outbox: &mut Outbox) {
        let Some(ledger) = self.ledgers.get_mut(&lookup.peer) else {
            return;
        };
        ledger.in_flight = ledger.in_flight.saturating_sub(1);
        let cid = lookup.entry.cid;
        if !matches!(ledger.wants.get(&cid), Some((_, g)) if *g == lookup.generation) {
            return;
        }
        ledger.wants.remove(&cid);
        let found = lookup.found.unwrap_or_else(|error| {
            tracing::warn!(%error, %cid, "bitswap: store lookup failed, answering don't-have");
            Found::Block(None)
        });
        let presence = |presence| BlockPresence { cid, presence };
        match found {
            Found::Has(true) => outbox.presence(lookup.peer, presence(PresenceType::Have)),
            Found::Block(Some(data)) => match lookup.entry.want_type {
                WantType::Block => outbox.block(lookup.peer, cid, data),
                WantType::Have => outbox.presence(lookup.peer, presence(PresenceType::Have)),
            },
            Found::Has(false) | Found::Block(None) => {
                if lookup.entry.send_dont_have {
                    outbox.presence(lookup.peer, presence(PresenceType::DontHave));
                }
            }
        }
    }

    pub fn bytes_queued(&mut self, peer: PeerId, bytes: usize) {
        if let Some(ledger) = self.ledgers.get_mut(&peer) {
            ledger.queued_bytes += bytes;
        }
    }

    pub fn bytes_done(&mut self, peer: PeerId, bytes: usize) {
        if let Some(ledger) = self.ledgers.get_mut(&peer) {
            ledger.queued_bytes = ledger.queued_bytes.saturating_sub(bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipfm_protocol::cid::raw_cid;

    fn want(i: u32, cancel: bool) -> WantlistEntry {
        WantlistEntry {
            cid: raw_cid(&i.to_be_bytes()),
            priority: 1,
            cancel,
            want_type: WantType::Have,
            send_dont_have: true,
        }
    }

    fn wantlist(entries: Vec<WantlistEntry>, full: bool) -> Wantlist {
        Wantlist { entries, full }
    }

    #[test]
    fn wantlist_is_capped_and_cancels_and_full_lists_apply() {
        let config = Config {
            max_wantlist_entries: 10,
            ..Config::default()
        };
        let mut server = ServerState::new(config);
        let peer = PeerId::random();
        server.on_wantlist(
            peer,
            wantlist((0..25).map(|i| want(i, false)).collect(), false),
        );
        assert_eq!(server.ledgers[&peer].wants.len(), 10);
        server.on_wantlist(peer, wantlist(vec![want(3, true)], false));
        assert_eq!(server.ledgers[&peer].wants.len(), 9);
        server.on_wantlist(peer, wantlist(vec![want(100, false)], true));
        assert_eq!(server.ledgers[&peer].wants.len(), 1);
    }

    #[test]
    fn repeating_one_entry_does_not_grow_the_queue() {
        let config = Config {
            max_wantlist_entries: 10,
            ..Config::default()
        };
        let mut server = ServerState::new(config);
        let peer = PeerId::random();
        for _ in 0..1000 {
            server.on_wantlist(peer, wantlist(vec![want(1, false)], false));
        }
        assert!(server.ledgers[&peer].pending.len() <= 21);
    }

    struct Nothing;
    impl BlockAccess for Nothing {
        fn get(&self, _: Cid) -> crate::net::blocks::BlockFuture<Option<Vec<u8>>> {
            Box::pin(async { Ok(None) })
        }
        fn has(&self, _: Cid) -> crate::net::blocks::BlockFuture<bool> {
            Box::pin(async { Ok(false) })
        }
        fn put(&self, _: Cid, _: Vec<u8>) -> crate::net::blocks::BlockFuture<()> {
            Box::pin(async { Ok(()) })
        }
    }

    #[test]
    fn lookups_are_bounded_per_peer_and_pause_on_queued_bytes() {
        let config = Config {
            max_lookups_per_peer: 4,
            max_queued_bytes_per_peer: 1000,
            ..Config::default()
        };
        let mut server = ServerState::new(config);
        let peer = PeerId::random();
        server.on_wantlist(
            peer,
            wantlist((0..20).map(|i| want(i, false)).collect(), false),
        );
        let started = server.start_lookups(&Nothing);
        assert_eq!(started.len(), 4);
        assert!(server.start_lookups(&Nothing).is_empty(), "slots all taken");

        let mut outbox = Outbox::default();
        for lookup in started {
            server.on_lookup(futures::executor::block_on(lookup), &mut outbox);
        }
        assert_eq!(outbox.drain().len(), 1, "one message with the DontHaves");
        server.bytes_queued(peer, 1000);
        assert!(
            server.start_lookups(&Nothing).is_empty(),
            "paused: queue full"
        );
        server.bytes_done(peer, 1000);
        assert_eq!(server.start_lookups(&Nothing).len(), 4);
    }
}
