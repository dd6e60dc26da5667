//! The swarm task's side of IPNS: our record in the DHT stores, DHT puts and lookups of
//! `/ipns/` keys, and the filter every record other peers put to us goes through
//! (`StoreInserts::FilterBoth`: nothing reaches the store unchecked).

use std::collections::HashMap;
use std::time::{Instant, SystemTime};

use ipfm_protocol::fetch::FetchResponse;
use ipfm_protocol::ipns::{compare, routing_key, IpnsRecord};
use ipfm_protocol::peer::PeerId;
use libp2p::kad::{self, store::RecordStore};
use libp2p::request_response;
use tokio::sync::mpsc;

use super::{Dht, EventLoop};
use crate::net::ipns::fetch;
use crate::net::ipns::records::{accept_put, name_of_routing_key, validate_ipns, ValidRecord};
use crate::net::swarm::client::ipns::{IpnsCommand, IpnsStats};
use crate::net::swarm::client::Reply;
use crate::net::swarm::NetError;

/// IPNS requests in flight in the swarm task.
#[derive(Default)]
pub(super) struct IpnsState {
    resolves: HashMap<u64, Resolution>,
    puts: HashMap<u64, PendingPut>,
    stats: IpnsStats,
}

struct Resolution {
    name: PeerId,
    running: usize,
    found: mpsc::Sender<IpnsRecord>,
}

struct PendingPut {
    running: usize,
    stored: usize,
    last_error: Option<String>,
    reply: Reply<usize>,
}

impl EventLoop {
    pub(super) fn on_ipns_command(&mut self, command: IpnsCommand) {
        match command {
            IpnsCommand::Serve { record, reply } => {
                self.serve_record(&self.own_name(), &record);
                let _ = reply.send(Ok(()));
            }
            IpnsCommand::Put {
                name,
                record,
                reply,
            } => self.put_record(name, *record, reply),
            IpnsCommand::Resolve { name, found } => self.resolve_name(name, found),
            IpnsCommand::Stored { name, reply } => {
                let _ = reply.send(self.stored_record(&name));
            }
            IpnsCommand::Stats { reply } => {
                let _ = reply.send(self.ipns.stats);
            }
        }
    }

    fn own_name(&self) -> PeerId {
        PeerId::from_multihash_bytes(&self.swarm.local_peer_id().to_bytes())
            .expect("a libp2p peer id is a valid multihash")
    }

    /// The valid record a DHT store of ours holds for `name` (best of LAN and WAN).
    fn stored_record(&mut self, name: &PeerId) -> Option<IpnsRecord> {
        let key = kad::RecordKey::new(&routing_key(name));
        let now = SystemTime::now();
        let mut found: Option<IpnsRecord> = None;
        for dht in [Dht::Lan, Dht::Wan] {
            let Some(kad) = self.kad(dht) else { continue };
            let Some(stored) = kad.store_mut().get(&key) else {
                continue;
            };
            if let Ok(record) = validate_ipns(name, &stored.value, now) {
                found = crate::net::ipns::records::best(found, Some(record));
            }
        }
        found
    }

    /// Answer a libp2p fetch: the best valid record we hold for an `/ipns/` key (the DHT
    /// stores hold our own and those put to us; the name cache, followed names'). Nothing
    /// is looked up on the network: the asker is after what this peer has.
    pub(in crate::net::swarm) fn on_fetch_event(&mut self, event: fetch::Event) {
        match event {
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                let response = match name_of_routing_key(&request) {
                    Ok(name) => {
                        let held = crate::net::ipns::records::best(
                            self.stored_record(&name),
                            self.names.best(&name, SystemTime::now()),
                        );
                        tracing::debug!(%peer, %name, found = held.is_some(), "fetch for an IPNS record");
                        match held {
                            Some(record) => FetchResponse::Found(record.to_bytes()),
                            None => FetchResponse::NotFound,
                        }
                    }
                    Err(error) => {
                        tracing::debug!(%peer, %error, "fetch for a key we do not serve");
                        FetchResponse::Error(b"only /ipns/ keys are served".to_vec())
                    }
                };
                // The asker may be gone already; nothing to do about it then.
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .ipns_fetch
                    .send_response(channel, response);
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "fetch request failed");
            }
            _ => {}
        }
    }

    /// `name`'s record (ours, or a followed station's that a relay forwards) goes into both
    /// DHT stores (so `GET_VALUE` answers it) unless a better one is there already; kad's
    /// own republishing covers it too from then on.
    fn serve_record(&mut self, name: &PeerId, record: &IpnsRecord) -> IpnsRecord {
        let best = match self.stored_record(name) {
            Some(stored) if compare(&stored, record).is_gt() => stored,
            _ => record.clone(),
        };
        let local = *self.swarm.local_peer_id();
        let key = kad::RecordKey::new(&routing_key(name));
        for dht in [Dht::Lan, Dht::Wan] {
            let Some(kad) = self.kad(dht) else { continue };
            let entry = kad::Record {
                key: key.clone(),
                value: best.to_bytes(),
                publisher: Some(local),
                expires: None,
            };
            if let Err(error) = kad.store_mut().put(entry) {
                tracing::warn!(?dht, %error, "cannot store our IPNS record");
            }
        }
        best
    }

    fn put_record(&mut self, name: PeerId, record: IpnsRecord, reply: Reply<usize>) {
        // A put queued before a newer record was served must not send the older one out.
        let best = self.serve_record(&name, &record);
        let key = kad::RecordKey::new(&routing_key(&name));
        let request = self.next_request;
        self.next_request += 1;
        let mut pending = PendingPut {
            running: 0,
            stored: 0,
            last_error: None,
            reply,
        };
        for dht in [Dht::Lan, Dht::Wan] {
            let Some(kad) = self.kad(dht) else { continue };
            let entry = kad::Record::new(key.clone(), best.to_bytes());
            match kad.put_record(entry, kad::Quorum::One) {
                Ok(id) => {
                    pending.running += 1;
                    self.kad_queries.insert((dht, id), request);
                }
                Err(error) => pending.last_error = Some(error.to_string()),
            }
        }
        if pending.running == 0 {
            let error = pending.last_error.unwrap_or_else(|| "no DHT".into());
            let _ = pending.reply.send(Err(NetError::Dht(error)));
        } else {
            self.ipns.puts.insert(request, pending);
        }
    }

    pub(super) fn on_ipns_put_progress(
        &mut self,
        request: u64,
        result: Result<kad::PutRecordOk, kad::PutRecordError>,
    ) {
        let Some(pending) = self.ipns.puts.get_mut(&request) else {
            return;
        };
        pending.running -= 1;
        match result {
            Ok(_) => pending.stored += 1,
            Err(error) => pending.last_error = Some(error.to_string()),
        }
        if pending.running == 0 {
            if let Some(pending) = self.ipns.puts.remove(&request) {
                let result = if pending.stored > 0 {
                    Ok(pending.stored)
                } else {
                    Err(NetError::Dht(pending.last_error.unwrap_or_default()))
                };
                let _ = pending.reply.send(result);
            }
        }
    }

    fn resolve_name(&mut self, name: PeerId, found: mpsc::Sender<IpnsRecord>) {
        let key = kad::RecordKey::new(&routing_key(&name));
        let request = self.next_request;
        self.next_request += 1;
        let mut resolution = Resolution {
            name,
            running: 0,
            found,
        };
        for dht in [Dht::Lan, Dht::Wan] {
            let Some(kad) = self.kad(dht) else { continue };
            let id = kad.get_record(key.clone());
            resolution.running += 1;
            self.kad_queries.insert((dht, id), request);
        }
        if resolution.running > 0 {
            self.ipns.resolves.insert(request, resolution);
        }
        // Else dropping `found` tells the client at once that there is nothing to wait for.
    }

    /// A `GET_VALUE` answer (or the end of the lookup): valid records go to the cache and
    /// the waiting client; invalid ones are logged and dropped.
    pub(super) fn on_ipns_get_progress(
        &mut self,
        dht: Dht,
        id: kad::QueryId,
        request: u64,
        result: Result<kad::GetRecordOk, kad::GetRecordError>,
        last: bool,
    ) {
        if last {
            self.kad_queries.remove(&(dht, id));
        }
        let Some(resolution) = self.ipns.resolves.get_mut(&request) else {
            return;
        };
        let mut finish_query = false;
        if let Ok(kad::GetRecordOk::FoundRecord(found)) = result {
            let expected = routing_key(&resolution.name);
            let from = found
                .peer
                .map_or_else(|| "local store".to_string(), |p| p.to_string());
            if found.record.key.as_ref() != expected.as_slice() {
                tracing::info!(%from, "DHT answered a record under another key; ignored");
            } else {
                match validate_ipns(&resolution.name, &found.record.value, SystemTime::now()) {
                    Ok(record) => {
                        self.names
                            .offer(resolution.name, record.clone(), Instant::now());
                        // The client stopped listening (answered or timed out): stop asking.
                        finish_query = resolution.found.try_send(record).is_err()
                            && resolution.found.is_closed();
                    }
                    Err(error) => {
                        tracing::info!(%from, %error, name = %resolution.name, "invalid IPNS record from the DHT ignored");
                    }
                }
            }
        }
        if finish_query {
            if let Some(mut query) = self.kad(dht).and_then(|kad| kad.query_mut(&id)) {
                query.finish();
            }
        }
        if last {
            let done = self.ipns.resolves.get_mut(&request).is_some_and(|r| {
                r.running -= 1;
                r.running == 0
            });
            if done {
                self.ipns.resolves.remove(&request);
            }
        }
    }

    /// Records and provider records other peers send us (kad's `FilterBoth`): provider
    /// records are stored as kad would; value records only if they validate.
    pub(super) fn on_kad_inbound(&mut self, dht: Dht, request: kad::InboundRequest) {
        match request {
            kad::InboundRequest::AddProvider {
                record: Some(record),
            } => {
                let Some(kad) = self.kad(dht) else { return };
                if let Err(error) = kad.store_mut().add_provider(record) {
                    tracing::debug!(?dht, %error, "provider record not stored");
                }
            }
            kad::InboundRequest::PutRecord {
                source,
                record: Some(record),
                ..
            } => self.on_record_put_to_us(dht, source, record),
            _ => {}
        }
    }

    fn on_record_put_to_us(&mut self, dht: Dht, source: libp2p::PeerId, record: kad::Record) {
        let Some(kad) = self.kad(dht) else { return };
        let stored = kad.store_mut().get(&record.key).map(|r| r.value.clone());
        let verdict = accept_put(
            record.key.as_ref(),
            &record.value,
            stored.as_deref(),
            SystemTime::now(),
        );
        match verdict {
            Ok(valid) => match kad.store_mut().put(record) {
                Ok(()) => {
                    self.ipns.stats.records_accepted += 1;
                    match valid {
                        ValidRecord::Ipns { name, record } => {
                            tracing::debug!(%source, %name, sequence = record.sequence(), ?dht, "stored an IPNS record");
                        }
                        ValidRecord::PublicKey { peer } => {
                            tracing::debug!(%source, %peer, ?dht, "stored a public key");
                        }
                    }
                }
                Err(error) => {
                    self.ipns.stats.records_rejected += 1;
                    tracing::info!(%source, %error, ?dht, "DHT record store full; record dropped");
                }
            },
            Err(reason) => {
                self.ipns.stats.records_rejected += 1;
                tracing::info!(%source, %reason, ?dht, "rejected a DHT record put to us");
            }
        }
    }
}
