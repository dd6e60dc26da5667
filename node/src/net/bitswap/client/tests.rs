use super::*;
use ipfm_protocol::cid::raw_cid;

const BLOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// (peer, want type, cancel) of every wantlist entry queued, sorted for comparison.
fn sent(outbox: &mut Outbox) -> Vec<(PeerId, WantType, bool)> {
    let mut out: Vec<_> = outbox
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

fn setup() -> (ClientState, Outbox, VecDeque<Event>, Vec<PeerId>) {
    let peers = vec![PeerId::random(), PeerId::random()];
    (
        ClientState::new(BLOCK_TIMEOUT),
        Outbox::default(),
        VecDeque::new(),
        peers,
    )
}

fn block_peer(outbox: &mut Outbox) -> PeerId {
    let sent = sent(outbox);
    let blocks: Vec<_> = sent
        .iter()
        .filter(|(_, t, c)| *t == WantType::Block && !c)
        .collect();
    assert_eq!(blocks.len(), 1, "{sent:?}");
    blocks[0].0
}

#[test]
fn first_peer_gets_want_block_the_others_want_have() {
    let (mut client, mut outbox, _, peers) = setup();
    client.get(raw_cid(b"x"), Duration::from_secs(60), &peers, &mut outbox);
    let sent = sent(&mut outbox);
    assert_eq!(sent.len(), 2);
    assert_eq!(
        sent.iter()
            .filter(|(_, t, _)| *t == WantType::Block)
            .count(),
        1
    );
    assert_eq!(
        sent.iter().filter(|(_, t, _)| *t == WantType::Have).count(),
        1
    );
}

#[test]
fn dont_have_from_the_block_peer_moves_to_a_peer_that_has_it() {
    let (mut client, mut outbox, mut events, peers) = setup();
    let cid = raw_cid(b"x");
    client.get(cid, Duration::from_secs(60), &peers, &mut outbox);
    let first = block_peer(&mut outbox);
    let other = *peers.iter().find(|p| **p != first).unwrap();
    client.on_presence(
        other,
        cid,
        PresenceType::Have,
        &peers,
        &mut outbox,
        &mut events,
    );
    assert!(
        sent(&mut outbox).is_empty(),
        "still waiting on the first peer"
    );
    client.on_presence(
        first,
        cid,
        PresenceType::DontHave,
        &peers,
        &mut outbox,
        &mut events,
    );
    assert_eq!(block_peer(&mut outbox), other);
    assert!(events.is_empty());

    client.on_block(other, cid, b"x".to_vec(), &peers, &mut outbox, &mut events);
    assert!(matches!(
        events.pop_front(),
        Some(Event::GetDone { result: Ok((c, data)), .. }) if c == cid && data == b"x"
    ));
    // The peer that said DontHave gets a cancel; the sender does not need one.
    assert_eq!(sent(&mut outbox), vec![(first, WantType::Block, true)]);
}

#[test]
fn all_dont_have_fails_with_not_found() {
    let (mut client, mut outbox, mut events, peers) = setup();
    let cid = raw_cid(b"x");
    client.get(cid, Duration::from_secs(60), &peers, &mut outbox);
    for peer in &peers {
        client.on_presence(
            *peer,
            cid,
            PresenceType::DontHave,
            &peers,
            &mut outbox,
            &mut events,
        );
    }
    assert!(matches!(
        events.pop_front(),
        Some(Event::GetDone {
            result: Err(GetError::NotFound),
            ..
        })
    ));
    assert!(client.is_idle());
}

#[test]
fn a_slow_block_peer_is_replaced_and_the_deadline_fails_the_get() {
    let (mut client, mut outbox, mut events, peers) = setup();
    let cid = raw_cid(b"x");
    let start = Instant::now();
    client.get(cid, Duration::from_secs(60), &peers, &mut outbox);
    let first = block_peer(&mut outbox);
    let other = *peers.iter().find(|p| **p != first).unwrap();
    client.on_presence(
        other,
        cid,
        PresenceType::Have,
        &peers,
        &mut outbox,
        &mut events,
    );
    client.on_tick(start + BLOCK_TIMEOUT / 2, &peers, &mut outbox, &mut events);
    assert!(sent(&mut outbox).is_empty());
    client.on_tick(start + BLOCK_TIMEOUT * 2, &peers, &mut outbox, &mut events);
    let sent_now = sent(&mut outbox);
    assert!(
        sent_now.contains(&(first, WantType::Block, true)),
        "{sent_now:?}"
    );
    assert!(
        sent_now.contains(&(other, WantType::Block, false)),
        "{sent_now:?}"
    );

    client.on_tick(
        start + Duration::from_secs(61),
        &peers,
        &mut outbox,
        &mut events,
    );
    assert!(matches!(
        events.pop_front(),
        Some(Event::GetDone {
            result: Err(GetError::Timeout),
            ..
        })
    ));
}

#[test]
fn an_unwanted_block_bans_its_sender() {
    let (mut client, mut outbox, mut events, peers) = setup();
    let cid = raw_cid(b"wanted");
    client.get(cid, Duration::from_secs(60), &peers, &mut outbox);
    let liar = block_peer(&mut outbox);
    let forged = b"forged".to_vec();
    client.on_block(
        liar,
        raw_cid(&forged),
        forged,
        &peers,
        &mut outbox,
        &mut events,
    );
    assert!(matches!(
        events.pop_front(),
        Some(Event::PeerMisbehaved { peer, reason: Misbehaviour::UnwantedBlock(_) }) if peer == liar
    ));
    assert!(client.is_banned(&liar));
    // The want goes on with the other peer once it says Have; the liar is never asked
    // again, even after a Have.
    let other = *peers.iter().find(|p| **p != liar).unwrap();
    assert!(sent(&mut outbox).is_empty());
    client.on_presence(
        liar,
        cid,
        PresenceType::Have,
        &peers,
        &mut outbox,
        &mut events,
    );
    assert!(sent(&mut outbox).is_empty());
    client.on_presence(
        other,
        cid,
        PresenceType::Have,
        &peers,
        &mut outbox,
        &mut events,
    );
    assert_eq!(block_peer(&mut outbox), other);
}
