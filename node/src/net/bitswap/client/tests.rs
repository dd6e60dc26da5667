use super::*;
use ipfm_protocol::cid::raw_cid;

const BLOCK_TIMEOUT: Duration = Duration::from_secs(5);
const WANT_DEADLINE: Duration = Duration::from_secs(60);

/// A client state machine with two connected peers, and what it queued and reported.
struct Harness {
    client: ClientState,
    outbox: Outbox,
    events: VecDeque<Event>,
    peers: Vec<PeerId>,
}

impl Harness {
    fn new() -> Self {
        Harness {
            client: ClientState::new(BLOCK_TIMEOUT),
            outbox: Outbox::default(),
            events: VecDeque::new(),
            peers: vec![PeerId::random(), PeerId::random()],
        }
    }

    fn get(&mut self, cid: Cid) {
        self.client
            .get(cid, WANT_DEADLINE, &self.peers, &mut self.outbox);
    }

    fn presence(&mut self, peer: PeerId, cid: Cid, presence: PresenceType) {
        self.client.on_presence(
            peer,
            cid,
            presence,
            &self.peers,
            &mut self.outbox,
            &mut self.events,
        );
    }

    fn block(&mut self, peer: PeerId, cid: Cid, data: &[u8]) {
        self.client.on_block(
            peer,
            cid,
            data.to_vec(),
            &self.peers,
            &mut self.outbox,
            &mut self.events,
        );
    }

    fn tick(&mut self, now: Instant) {
        self.client
            .on_tick(now, &self.peers, &mut self.outbox, &mut self.events);
    }

    fn other_than(&self, peer: PeerId) -> PeerId {
        *self.peers.iter().find(|p| **p != peer).unwrap()
    }

    /// (peer, want type, cancel) of every wantlist entry queued, sorted for comparison.
    fn sent(&mut self) -> Vec<(PeerId, WantType, bool)> {
        let mut out: Vec<_> = self
            .outbox
            .drain()
            .into_iter()
            .flat_map(|(peer, message)| {
                message
                    .wantlist
                    .map(|w| w.entries)
                    .unwrap_or_default()
                    .into_iter()
                    .map(move |e| (peer, e.want_type, e.cancel))
            })
            .collect();
        out.sort_by_key(|(peer, t, c)| (peer.to_bytes(), *t == WantType::Have, *c));
        out
    }

    /// The one peer just sent a want-block.
    fn block_peer(&mut self) -> PeerId {
        let sent = self.sent();
        let blocks: Vec<_> = sent
            .iter()
            .filter(|(_, t, c)| *t == WantType::Block && !c)
            .collect();
        assert_eq!(blocks.len(), 1, "{sent:?}");
        blocks[0].0
    }
}

#[test]
fn first_peer_gets_want_block_the_others_want_have() {
    let mut h = Harness::new();
    h.get(raw_cid(b"x"));
    let sent = h.sent();
    assert_eq!(sent.len(), 2);
    let count = |want| sent.iter().filter(|(_, t, _)| *t == want).count();
    assert_eq!(count(WantType::Block), 1);
    assert_eq!(count(WantType::Have), 1);
}

#[test]
fn dont_have_from_the_block_peer_moves_to_a_peer_that_has_it() {
    let mut h = Harness::new();
    let cid = raw_cid(b"x");
    h.get(cid);
    let first = h.block_peer();
    let other = h.other_than(first);
    h.presence(other, cid, PresenceType::Have);
    assert!(h.sent().is_empty(), "still waiting on the first peer");
    h.presence(first, cid, PresenceType::DontHave);
    assert_eq!(h.block_peer(), other);
    assert!(h.events.is_empty());

    h.block(other, cid, b"x");
    assert!(matches!(
        h.events.pop_front(),
        Some(Event::GetDone { result: Ok((c, data)), .. }) if c == cid && data == b"x"
    ));
    // The peer that said DontHave gets a cancel; the sender does not need one.
    assert_eq!(h.sent(), vec![(first, WantType::Block, true)]);
}

#[test]
fn all_dont_have_fails_with_not_found() {
    let mut h = Harness::new();
    let cid = raw_cid(b"x");
    h.get(cid);
    for peer in h.peers.clone() {
        h.presence(peer, cid, PresenceType::DontHave);
    }
    assert!(matches!(
        h.events.pop_front(),
        Some(Event::GetDone {
            result: Err(GetError::NotFound),
            ..
        })
    ));
    assert!(h.client.is_idle());
}

#[test]
fn a_slow_block_peer_is_replaced_and_the_deadline_fails_the_get() {
    let mut h = Harness::new();
    let cid = raw_cid(b"x");
    let start = Instant::now();
    h.get(cid);
    let first = h.block_peer();
    let other = h.other_than(first);
    h.presence(other, cid, PresenceType::Have);
    h.tick(start + BLOCK_TIMEOUT / 2);
    assert!(h.sent().is_empty());
    h.tick(start + BLOCK_TIMEOUT * 2);
    let sent_now = h.sent();
    assert!(
        sent_now.contains(&(first, WantType::Block, true)),
        "{sent_now:?}"
    );
    assert!(
        sent_now.contains(&(other, WantType::Block, false)),
        "{sent_now:?}"
    );

    h.tick(start + WANT_DEADLINE + Duration::from_secs(1));
    assert!(matches!(
        h.events.pop_front(),
        Some(Event::GetDone {
            result: Err(GetError::Timeout),
            ..
        })
    ));
}

#[test]
fn an_unwanted_block_bans_its_sender() {
    let mut h = Harness::new();
    let cid = raw_cid(b"wanted");
    h.get(cid);
    let liar = h.block_peer();
    let forged = b"forged";
    h.block(liar, raw_cid(forged), forged);
    assert!(matches!(
        h.events.pop_front(),
        Some(Event::PeerMisbehaved { peer, reason: Misbehaviour::UnwantedBlock(_) }) if peer == liar
    ));
    assert!(h.client.is_banned(&liar));
    // The want goes on with the other peer once it says Have; the liar is never asked
    // again, even after a Have.
    let other = h.other_than(liar);
    assert!(h.sent().is_empty());
    h.presence(liar, cid, PresenceType::Have);
    assert!(h.sent().is_empty());
    h.presence(other, cid, PresenceType::Have);
    assert_eq!(h.block_peer(), other);
}

#[test]
fn every_get_of_one_block_gets_its_bytes_and_the_others_are_cancelled() {
    let mut h = Harness::new();
    let data = b"shared block";
    let cid = raw_cid(data);
    let first = h.client.get(cid, WANT_DEADLINE, &h.peers, &mut h.outbox);
    let second = h.client.get(cid, WANT_DEADLINE, &h.peers, &mut h.outbox);
    assert_ne!(first, second);
    let from = h.block_peer();
    h.block(from, cid, data);
    let mut done: Vec<QueryId> = Vec::new();
    while let Some(event) = h.events.pop_front() {
        match event {
            Event::GetDone {
                query,
                result: Ok((got, bytes)),
            } => {
                assert_eq!(got, cid);
                assert_eq!(bytes, data);
                done.push(query);
            }
            other => panic!("unexpected event {other:?}"),
        }
    }
    done.sort_by_key(|q| q.0);
    assert_eq!(done, vec![first, second]);
    // The other peer was asked want-have, so it gets a cancel; the sender gets none.
    let other = h.other_than(from);
    assert_eq!(h.sent(), vec![(other, WantType::Block, true)]);
    assert!(h.client.is_idle());
}
