//! The swarm task's side of Kademlia: provider announcements and provider searches (with
//! dials to what they find), and the routing of query progress to IPNS (`ipns.rs`).

use std::collections::HashSet;

use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::ConnectionId;
use libp2p::{kad, PeerId};

use super::{Dht, EventLoop};
use crate::net::swarm::client::Reply;
use crate::net::swarm::NetError;

/// A provider lookup across both DHTs.
pub(super) struct ProviderSearch {
    found: HashSet<PeerId>,
    running: usize,
    /// Dial providers as they are found (while the query still holds their addresses).
    connect: bool,
    dials: HashSet<ConnectionId>,
    reply: Reply<HashSet<PeerId>>,
}

/// Announcing a CID: done when every DHT answered; fine if at least one succeeded.
pub(super) struct Providing {
    running: usize,
    succeeded: bool,
    last_error: Option<String>,
    reply: Reply<()>,
}

impl EventLoop {
    pub(super) fn start_providing(&mut self, cid: cid::Cid, reply: Reply<()>) {
        let key = kad::RecordKey::new(&cid.hash().to_bytes());
        let request = self.next_request;
        self.next_request += 1;
        let mut state = Providing {
            running: 0,
            succeeded: false,
            last_error: None,
            reply,
        };
        for dht in [Dht::Lan, Dht::Wan] {
            let Some(kad) = self.kad(dht) else { continue };
            match kad.start_providing(key.clone()) {
                Ok(id) => {
                    state.running += 1;
                    self.kad_queries.insert((dht, id), request);
                }
                Err(e) => state.last_error = Some(e.to_string()),
            }
        }
        if state.running == 0 {
            let error = state.last_error.unwrap_or_else(|| "no DHT".into());
            let _ = state.reply.send(Err(NetError::Dht(error)));
        } else {
            self.providing.insert(request, state);
        }
    }

    pub(super) fn find_providers(
        &mut self,
        cid: cid::Cid,
        connect: bool,
        reply: Reply<HashSet<PeerId>>,
    ) {
        let key = kad::RecordKey::new(&cid.hash().to_bytes());
        let request = self.next_request;
        self.next_request += 1;
        let mut search = ProviderSearch {
            found: HashSet::new(),
            running: 0,
            connect,
            dials: HashSet::new(),
            reply,
        };
        for dht in [Dht::Lan, Dht::Wan] {
            let Some(kad) = self.kad(dht) else { continue };
            let id = kad.get_providers(key.clone());
            search.running += 1;
            self.kad_queries.insert((dht, id), request);
        }
        if search.running == 0 {
            let _ = search.reply.send(Ok(search.found));
        } else {
            self.provider_searches.insert(request, search);
        }
    }

    /// Dial a provider found by a search (kad supplies the addresses from the query).
    fn dial_provider(&mut self, request: u64, peer: PeerId) {
        if peer == *self.swarm.local_peer_id() || self.swarm.is_connected(&peer) {
            return;
        }
        let opts = DialOpts::peer_id(peer)
            .condition(PeerCondition::DisconnectedAndNotDialing)
            .build();
        let id = opts.connection_id();
        if self.swarm.dial(opts).is_ok() {
            if let Some(search) = self.provider_searches.get_mut(&request) {
                search.dials.insert(id);
                self.dial_owner.insert(id, request);
            }
        }
    }

    /// A dial made for a provider search settled: answer the search if it was the last.
    pub(super) fn provider_dial_settled(&mut self, connection: ConnectionId) {
        let Some(request) = self.dial_owner.remove(&connection) else {
            return;
        };
        if let Some(search) = self.provider_searches.get_mut(&request) {
            search.dials.remove(&connection);
        }
        self.maybe_finish_search(request);
    }

    fn maybe_finish_search(&mut self, request: u64) {
        let done = self
            .provider_searches
            .get(&request)
            .is_some_and(|s| s.running == 0 && s.dials.is_empty());
        if done {
            if let Some(search) = self.provider_searches.remove(&request) {
                let _ = search.reply.send(Ok(search.found));
            }
        }
    }

    pub(super) fn on_kad_event(&mut self, dht: Dht, event: kad::Event) {
        if let kad::Event::InboundRequest { request } = event {
            return self.on_kad_inbound(dht, request);
        }
        let kad::Event::OutboundQueryProgressed {
            id, result, step, ..
        } = event
        else {
            return;
        };
        let Some(&request) = self.kad_queries.get(&(dht, id)) else {
            return;
        };
        match result {
            kad::QueryResult::GetProviders(result) => {
                let Some(search) = self.provider_searches.get_mut(&request) else {
                    return;
                };
                let mut to_dial = Vec::new();
                if let Ok(kad::GetProvidersOk::FoundProviders { providers, .. }) = result {
                    for provider in providers {
                        if search.found.insert(provider) && search.connect {
                            to_dial.push(provider);
                        }
                    }
                }
                if step.last {
                    self.kad_queries.remove(&(dht, id));
                    search.running -= 1;
                }
                for provider in to_dial {
                    self.dial_provider(request, provider);
                }
                self.maybe_finish_search(request);
            }
            kad::QueryResult::GetRecord(result) => {
                self.on_ipns_get_progress(dht, id, request, result, step.last)
            }
            kad::QueryResult::PutRecord(result) => {
                self.kad_queries.remove(&(dht, id));
                self.on_ipns_put_progress(request, result)
            }
            kad::QueryResult::StartProviding(result) => {
                self.kad_queries.remove(&(dht, id));
                let Some(state) = self.providing.get_mut(&request) else {
                    return;
                };
                state.running -= 1;
                match result {
                    Ok(_) => state.succeeded = true,
                    Err(e) => state.last_error = Some(e.to_string()),
                }
                if state.running == 0 {
                    if let Some(state) = self.providing.remove(&request) {
                        let result = if state.succeeded {
                            Ok(())
                        } else {
                            Err(NetError::Dht(state.last_error.unwrap_or_default()))
                        };
                        let _ = state.reply.send(result);
                    }
                }
            }
            _ => {}
        }
    }
}
