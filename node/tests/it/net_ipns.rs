//! IPNS over the network between ipfm nodes on loopback: the station's record reaches the
//! DHT (rate-limited, newest wins) and is resolved by other nodes, newer records are
//! pushed over pubsub on Kubo's `/record/` topic, forged / expired / oversized / foreign
//! records put by a raw Kademlia peer are refused and never served, a gateway resolves a
//! remote station's name and fetches its content over bitswap, and every record is PUT to
//! a delegated routing endpoint (in-test HTTP and HTTPS servers).

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::http::{HeaderMap, Request, StatusCode};
use common::tcp_addr;
use ed25519_dalek::SigningKey;
use futures::StreamExt;
use ipfm_node::gateway::{Gateway, LocalNames};
use ipfm_node::net::ipns::{DelegatedEndpoint, DelegatedError, IpnsPublishConfig};
use ipfm_node::net::swarm::{spawn, Client, NetworkConfig, LAN_KAD_PROTOCOL};
use ipfm_node::net::StoreBlocks;
use ipfm_node::station::network::{P2pConfig, StationNetwork};
use ipfm_node::station::RootUpdate;
use ipfm_protocol::builder::{build_file, CidMode, DirectoryBuilder};
use ipfm_protocol::cid::raw_cid;
use ipfm_protocol::ipns::{routing_key, IpnsRecord, MAX_RECORD_SIZE};
use ipfm_protocol::peer::PeerId;
use ipfm_protocol::Cid;
use ipfm_store::{Blockstore, MemoryBlockstore, Store};
use libp2p::swarm::SwarmEvent;
use libp2p::{kad, noise, tcp, yamux, Swarm, SwarmBuilder};
use tokio::sync::mpsc;
use tower::ServiceExt;

/// Bound on every wait (loopback, but a loaded two-core CI machine).
const WAIT: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

fn station_key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn name_of(key: &SigningKey) -> PeerId {
    PeerId::from_ed25519(&key.verifying_key())
}

fn record(key: &SigningKey, value: &str, sequence: u64, ttl: Duration) -> IpnsRecord {
    IpnsRecord::create(key, value, sequence, SystemTime::now() + HOUR, ttl)
}

/// A station's network (loopback, LAN DHT only) with its store.
async fn station(key: &SigningKey, ipns: IpnsPublishConfig) -> (StationNetwork, Store) {
    let store = Store::open_in_memory();
    let mut config = P2pConfig::loopback();
    config.ipns = ipns;
    config.resolve_timeout = Duration::from_secs(20);
    config.fetch_timeout = Duration::from_secs(20);
    let network = tokio::time::timeout(WAIT, StationNetwork::start(store.clone(), key, &config))
        .await
        .expect("station network starts in time")
        .expect("station network starts");
    (network, store)
}

fn interval(secs: u64) -> IpnsPublishConfig {
    IpnsPublishConfig {
        dht_put_interval: Duration::from_secs(secs),
        ..IpnsPublishConfig::default()
    }
}

/// A plain ipfm node (LAN DHT server).
async fn peer() -> Client {
    peer_with_keypair(libp2p::identity::Keypair::generate_ed25519()).await
}

/// A plain ipfm node whose peer key is `key` (so it can serve records for `key`'s name).
async fn peer_with_key(key: &SigningKey) -> Client {
    peer_with_keypair(ipfm_node::net::swarm::keypair_from_ed25519(key)).await
}

async fn peer_with_keypair(keypair: libp2p::identity::Keypair) -> Client {
    let mut config = NetworkConfig::loopback(keypair);
    config.wan_dht = false;
    let (client, _task) = tokio::time::timeout(
        WAIT,
        spawn(config, StoreBlocks::shared(MemoryBlockstore::new())),
    )
    .await
    .expect("swarm starts in time")
    .expect("swarm starts");
    client
}

/// Publish `record` the way the station loop does: through the network publisher.
async fn publish(network: &StationNetwork, name: PeerId, record: IpnsRecord) {
    let update = RootUpdate {
        name,
        record,
        root: raw_cid(b"root"),
        new_segments: Vec::new(),
    };
    network
        .publisher()
        .publish(&update)
        .await
        .expect("record handed to the network");
}

/// Poll `probe` until it yields something, at most `WAIT`.
async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn stored_sequence(node: &Client, name: &PeerId) -> Option<u64> {
    node.dht_ipns_record(name)
        .await
        .unwrap()
        .map(|r| r.sequence())
}

/// Wait until the station and `other` route to each other on the LAN DHT: `other` finds
/// the station's provider record, and a probe record of a throwaway name that the station
/// puts is stored at `other`. The first alone proves only that `other` knows the station
/// (which answers for its own provider records); the second that the station's routing
/// table holds `other`, so that from then on its DHT puts reach it.
async fn wait_for_routing(network: &StationNetwork, other: &Client) {
    let cid = raw_cid(format!("routing probe {}", other.peer_id()).as_bytes());
    let station = network.client().peer_id();
    eventually("the station's DHT to know the peer", || async {
        let provided = network.client().start_providing(cid).await;
        let found = other.find_providers(cid).await.ok()?;
        (provided.is_ok() && found.contains(&station)).then_some(())
    })
    .await;
    let probe_key = SigningKey::from_bytes(&rand::random());
    let probe_name = name_of(&probe_key);
    let probe = record(&probe_key, "/ipfs/bafkqaaa", 1, HOUR);
    eventually("the station's DHT puts to reach the peer", || async {
        let _ = network
            .client()
            .put_ipns_record_of(probe_name, probe.clone())
            .await;
        stored_sequence(other, &probe_name).await.map(|_| ())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_name_resolves_over_the_dht_and_a_newer_publish_wins() {
    let key = station_key(21);
    let name = name_of(&key);
    let (network, _) = station(&key, interval(1)).await;
    let middle = peer().await;
    let seeker = peer().await;
    network
        .client()
        .dial(tcp_addr(&middle).await)
        .await
        .expect("station dials the middle peer");
    seeker
        .dial(tcp_addr(&middle).await)
        .await
        .expect("seeker dials the middle peer");
    wait_for_routing(&network, &middle).await;

    // TTL zero: the seeker never answers from its cache, every resolve asks the DHT.
    let mut sequence = 0;
    for round in 0..2 {
        sequence += 1;
        publish(
            &network,
            name,
            record(&key, "/ipfs/bafkqaaa", sequence, Duration::ZERO),
        )
        .await;
        eventually("the put to reach the middle peer", || async {
            (stored_sequence(&middle, &name).await == Some(sequence)).then_some(())
        })
        .await;
        let resolved =
            tokio::time::timeout(WAIT, seeker.resolve_ipns(&name, Duration::from_secs(20)))
                .await
                .expect("resolved in time")
                .expect("the seeker resolves the station's name");
        assert_eq!(resolved.sequence(), sequence, "round {round}");
        resolved
            .validate(&name, SystemTime::now())
            .expect("a valid record for the name");
        assert!(!seeker.connected_peers().await.unwrap().is_empty());
    }

    // A name nobody published is not found (and does not hang).
    let stranger = name_of(&station_key(22));
    let missing = tokio::time::timeout(
        WAIT,
        seeker.resolve_ipns(&stranger, Duration::from_secs(10)),
    )
    .await
    .expect("gives up in time");
    assert!(missing.is_err(), "{missing:?}");
    network.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newer_records_are_pushed_to_a_resolver_over_pubsub() {
    let key = station_key(23);
    let name = name_of(&key);
    // One DHT put per hour: after the first, only pubsub can bring newer records.
    let (network, _) = station(&key, interval(3600)).await;
    let listener = peer().await;
    listener
        .dial(tcp_addr(network.client()).await)
        .await
        .expect("listener dials the station");
    wait_for_routing(&network, &listener).await;
    publish(&network, name, record(&key, "/ipfs/bafkqaaa", 1, HOUR)).await;
    eventually("the first put", || async {
        (stored_sequence(&listener, &name).await == Some(1)).then_some(())
    })
    .await;
    let first = listener
        .resolve_ipns(&name, Duration::from_secs(20))
        .await
        .expect("resolved over the DHT");
    assert_eq!(first.sequence(), 1);

    // The listener now follows the name's topic; newer records arrive there by themselves
    // (a fresh subscription takes a heartbeat or two to join the mesh: keep publishing).
    let mut sequence = 1;
    let pushed = eventually("a newer record over pubsub", || {
        sequence += 1;
        let record = record(&key, "/ipfs/bafkqaaa", sequence, HOUR);
        let (network, listener) = (&network, &listener);
        async move {
            publish(network, name, record).await;
            tokio::time::sleep(Duration::from_millis(500)).await;
            listener.cached_ipns(&name).filter(|r| r.sequence() > 1)
        }
    })
    .await;
    pushed.validate(&name, SystemTime::now()).unwrap();
    // Resolving answers the pushed record from the cache; the DHT still has the first.
    let resolved = listener
        .resolve_ipns(&name, Duration::from_secs(20))
        .await
        .unwrap();
    assert!(resolved.sequence() >= pushed.sequence());
    assert_eq!(stored_sequence(&listener, &name).await, Some(1));
    network.shutdown().await;
}

/// A raw Kademlia peer (rust-libp2p, not ipfm) that puts whatever it is told to.
fn raw_kad_peer() -> Swarm<kad::Behaviour<kad::store::MemoryStore>> {
    SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|key| {
            let peer = key.public().to_peer_id();
            let config = kad::Config::new(LAN_KAD_PROTOCOL);
            kad::Behaviour::with_config(peer, kad::store::MemoryStore::new(peer), config)
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}

async fn raw_put(
    swarm: &mut Swarm<kad::Behaviour<kad::store::MemoryStore>>,
    target: libp2p::PeerId,
    key: Vec<u8>,
    value: Vec<u8>,
) {
    let record = kad::Record::new(kad::RecordKey::new(&key), value);
    let query =
        swarm
            .behaviour_mut()
            .put_record_to(record, std::iter::once(target), kad::Quorum::One);
    tokio::time::timeout(WAIT, async {
        loop {
            if let SwarmEvent::Behaviour(kad::Event::OutboundQueryProgressed {
                id,
                result: kad::QueryResult::PutRecord(_),
                ..
            }) = swarm.select_next_some().await
            {
                if id == query {
                    return;
                }
            }
        }
    })
    .await
    .expect("the put is answered");
}

/// Whether `target` answers `GET_VALUE` for `key` with any record.
async fn raw_get_finds(
    swarm: &mut Swarm<kad::Behaviour<kad::store::MemoryStore>>,
    key: Vec<u8>,
) -> bool {
    let query = swarm.behaviour_mut().get_record(kad::RecordKey::new(&key));
    tokio::time::timeout(WAIT, async {
        loop {
            if let SwarmEvent::Behaviour(kad::Event::OutboundQueryProgressed {
                id,
                result: kad::QueryResult::GetRecord(result),
                step,
                ..
            }) = swarm.select_next_some().await
            {
                if id != query {
                    continue;
                }
                if let Ok(kad::GetRecordOk::FoundRecord(_)) = result {
                    return true;
                }
                if step.last {
                    return false;
                }
            }
        }
    })
    .await
    .expect("the lookup ends")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_expired_oversized_and_foreign_records_are_refused_and_never_served() {
    let target = peer().await;
    let target_addr = tcp_addr(&target).await;
    let mut attacker = raw_kad_peer();
    attacker
        .behaviour_mut()
        .add_address(&target.peer_id(), target_addr.clone());

    let victim = station_key(24);
    let name = name_of(&victim);
    let key = routing_key(&name);
    let impostor = station_key(25);
    let forged = record(&impostor, "/ipfs/bafkqaaa", 99, HOUR);
    let expired = IpnsRecord::create(
        &victim,
        "/ipfs/bafkqaaa",
        100,
        SystemTime::now() - Duration::from_secs(1),
        Duration::ZERO,
    );
    let oversized = vec![0x0a; MAX_RECORD_SIZE + 1];
    let attempts: Vec<(&str, Vec<u8>, Vec<u8>)> = vec![
        ("forged", key.clone(), forged.to_bytes()),
        ("expired", key.clone(), expired.to_bytes()),
        ("oversized", key.clone(), oversized),
        ("junk", key.clone(), b"not a record".to_vec()),
        (
            "foreign namespace",
            b"/v/anything".to_vec(),
            b"free storage".to_vec(),
        ),
    ];
    let mut rejected = target.ipns_stats().await.unwrap().records_rejected;
    for (label, key, value) in attempts {
        raw_put(&mut attacker, target.peer_id(), key.clone(), value).await;
        rejected += 1;
        eventually(label, || async {
            (target.ipns_stats().await.unwrap().records_rejected >= rejected).then_some(())
        })
        .await;
        assert!(
            !raw_get_finds(&mut attacker, key).await,
            "{label} is served"
        );
    }
    assert_eq!(target.dht_ipns_record(&name).await.unwrap(), None);
    assert_eq!(target.ipns_stats().await.unwrap().records_accepted, 0);

    // The filter is not simply closed: a genuine record is stored and served, and an
    // older one does not replace it.
    let genuine = record(&victim, "/ipfs/bafkqaaa", 5, HOUR);
    raw_put(
        &mut attacker,
        target.peer_id(),
        key.clone(),
        genuine.to_bytes(),
    )
    .await;
    eventually("the genuine record stored", || async {
        (stored_sequence(&target, &name).await == Some(5)).then_some(())
    })
    .await;
    assert!(raw_get_finds(&mut attacker, key.clone()).await);
    let older = record(&victim, "/ipfs/bafkqaaa", 4, HOUR);
    raw_put(&mut attacker, target.peer_id(), key, older.to_bytes()).await;
    rejected += 1;
    eventually("the older record refused", || async {
        (target.ipns_stats().await.unwrap().records_rejected >= rejected).then_some(())
    })
    .await;
    assert_eq!(stored_sequence(&target, &name).await, Some(5));
}

/// A UnixFS directory with `master.m3u8` and a segment, stored in `store`.
async fn station_root(store: &Store) -> (Cid, Vec<u8>, Vec<u8>) {
    let playlist = b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=96000\nmidfi.m3u8\n".to_vec();
    let segment = common::pseudo_random_bytes(600_000, 7);
    let mut dir = DirectoryBuilder::new(CidMode::V1RawLeaves);
    for (file_name, bytes) in [("master.m3u8", &playlist), ("segment.ts", &segment)] {
        let (root, blocks) = build_file(bytes, CidMode::V1RawLeaves);
        for block in blocks {
            store.put(&block.cid, block.data).await.unwrap();
        }
        dir.add(file_name, root.cid, root.tsize).unwrap();
    }
    let (root, block) = dir.finish();
    store.put(&block.cid, block.data).await.unwrap();
    (root.cid, playlist, segment)
}

async fn gateway_get(app: &axum::Router, path: &str) -> (StatusCode, Bytes) {
    let request = Request::get(path).body(Body::empty()).unwrap();
    let response = tokio::time::timeout(WAIT, app.clone().oneshot(request))
        .await
        .expect("gateway answers in time")
        .unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 24)
        .await
        .unwrap();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_serves_a_remote_station_through_its_name() {
    let key = station_key(26);
    let name = name_of(&key);
    let (network, store) = station(&key, interval(1)).await;
    let (root, playlist, segment) = station_root(&store).await;

    // Node B: its own station network and gateway, wired like `ipfm station` does.
    let (listener, listener_store) = station(&station_key(27), interval(1)).await;
    listener
        .client()
        .dial(tcp_addr(network.client()).await)
        .await
        .unwrap();
    wait_for_routing(&network, listener.client()).await;
    publish(
        &network,
        name,
        record(&key, &format!("/ipfs/{root}"), 1, HOUR),
    )
    .await;
    eventually("the put to reach node B", || async {
        (stored_sequence(listener.client(), &name).await == Some(1)).then_some(())
    })
    .await;

    let names = Arc::new(LocalNames::new());
    names.set_remote(listener.name_resolver());
    let app = Gateway::new(listener_store.clone())
        .with_name_resolver(names)
        .with_block_fetcher(listener.block_fetcher())
        .router();
    let ipns_name = name.to_ipns_name();
    let (status, body) = gateway_get(&app, &format!("/ipns/{ipns_name}/master.m3u8")).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(body.as_ref(), playlist.as_slice());
    let (status, body) = gateway_get(&app, &format!("/ipns/{ipns_name}/segment.ts")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.as_ref(), segment.as_slice());
    // The blocks came over bitswap into B's store.
    assert!(listener_store.get(&root).await.unwrap().is_some());
    listener.shutdown().await;
    network.shutdown().await;
}

/// What the in-test delegated router received.
struct Put {
    name: String,
    content_type: Option<String>,
    body: Vec<u8>,
}

/// An in-test delegated router: `PUT /routing/v1/ipns/{name}` answers 200 and reports
/// what it received.
fn delegated_router() -> (axum::Router, mpsc::Receiver<Put>) {
    let (puts_tx, puts) = mpsc::channel::<Put>(16);
    let router = axum::Router::new().route(
        "/routing/v1/ipns/{name}",
        axum::routing::put(
            move |Path(name): Path<String>, headers: HeaderMap, body: Bytes| {
                let puts_tx = puts_tx.clone();
                async move {
                    let content_type = headers
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    let _ = puts_tx
                        .send(Put {
                            name,
                            content_type,
                            body: body.to_vec(),
                        })
                        .await;
                    StatusCode::OK
                }
            },
        ),
    );
    (router, puts)
}

/// The PUT a router got for `name`: the record, with the routing API's media type.
async fn received_put(puts: &mut mpsc::Receiver<Put>, name: &PeerId) -> IpnsRecord {
    let put = tokio::time::timeout(WAIT, puts.recv())
        .await
        .expect("a PUT arrives in time")
        .unwrap();
    assert_eq!(PeerId::parse(&put.name).unwrap(), *name);
    assert!(put.name.starts_with("k51"), "{}", put.name);
    assert_eq!(
        put.content_type.as_deref(),
        Some("application/vnd.ipfs.ipns-record")
    );
    let received = IpnsRecord::from_bytes(&put.body).unwrap();
    received.validate(name, SystemTime::now()).unwrap();
    received
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_slot_puts_the_newest_record_to_delegated_routers() {
    let (router, mut puts) = delegated_router();
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint: DelegatedEndpoint = format!("http://{}", http.local_addr().unwrap())
        .parse()
        .unwrap();
    tokio::spawn(async move { axum::serve(http, router).await });

    let key = station_key(28);
    let name = name_of(&key);
    let (network, _) = station(
        &key,
        IpnsPublishConfig {
            dht_put_interval: Duration::from_secs(1),
            delegated_routing: vec![endpoint],
        },
    )
    .await;
    // No DHT peer at all: the delegated PUT does not depend on the DHT put succeeding.
    publish(&network, name, record(&key, "/ipfs/bafkqaaa", 1, HOUR)).await;
    let received = received_put(&mut puts, &name).await;
    assert_eq!(received.sequence(), 1);
    network.shutdown().await;
}

/// Serve `router` over TLS with a fresh self-signed certificate for `localhost`; the
/// certificate, to trust it.
async fn serve_tls(
    listener: tokio::net::TcpListener,
    router: axum::Router,
) -> rustls::pki_types::CertificateDer<'static> {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = certified.cert.der().clone();
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key.into())
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, router) = (acceptor.clone(), router.clone());
            tokio::spawn(async move {
                // A client that refuses the certificate ends the handshake: nothing to serve.
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |request: Request<_>| {
                    router.clone().oneshot(request.map(Body::new))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    cert
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_put_to_https_routers_whose_certificate_verifies() {
    let (router, mut puts) = delegated_router();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://localhost:{}",
        listener.local_addr().unwrap().port()
    );
    let cert = serve_tls(listener, router).await;
    let key = station_key(31);
    let name = name_of(&key);
    let record = record(&key, "/ipfs/bafkqaaa", 4, HOUR);

    // With the Mozilla roots (the default) the self-signed certificate is refused: the
    // client checks what it talks to.
    let default_roots: DelegatedEndpoint = url.parse().unwrap();
    let refused = default_roots.put_ipns(&name, &record, WAIT).await;
    match refused {
        Err(DelegatedError::Request { reason, .. }) => {
            assert!(reason.contains("TLS handshake"), "{reason}")
        }
        other => panic!("an untrusted certificate was not refused: {other:?}"),
    }
    assert!(puts.try_recv().is_err(), "nothing reached the router");

    // Trusting the router's certificate, the PUT goes through TLS.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let trusted = url.parse::<DelegatedEndpoint>().unwrap().trusting(roots);
    trusted.put_ipns(&name, &record, WAIT).await.unwrap();
    let received = received_put(&mut puts, &name).await;
    assert_eq!(received.to_bytes(), record.to_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_within_an_interval_make_one_dht_put_of_the_newest_record() {
    let key = station_key(29);
    let name = name_of(&key);
    let (network, _) = station(&key, interval(5)).await;
    let other = peer().await;
    other.dial(tcp_addr(network.client()).await).await.unwrap();
    wait_for_routing(&network, &other).await;
    let before = other.ipns_stats().await.unwrap().records_accepted;

    for sequence in 1..=5 {
        publish(
            &network,
            name,
            record(&key, "/ipfs/bafkqaaa", sequence, HOUR),
        )
        .await;
    }
    // Every record is served locally at once, whatever the DHT slots do.
    assert_eq!(stored_sequence(network.client(), &name).await, Some(5));
    let mut reports = network.ipns_publisher().reports();
    let report = tokio::time::timeout(
        WAIT,
        reports.wait_for(|r| r.last_sequence == Some(5) && r.last_stored),
    )
    .await
    .expect("the newest record is put in time")
    .unwrap()
    .to_owned();
    // The first slot took whichever record was newest when it woke; the next slot the
    // newest of all. Never one put per publish.
    assert!((1..=2).contains(&report.dht_puts), "{report:?}");
    eventually("the newest record at the other peer", || async {
        (stored_sequence(&other, &name).await == Some(5)).then_some(())
    })
    .await;
    let accepted = other.ipns_stats().await.unwrap().records_accepted - before;
    assert_eq!(accepted, report.dht_puts, "{report:?}");
    network.shutdown().await;
}

#[test]
fn the_ipns_settings_merge_and_validate() {
    use ipfm_node::config::StationSettings;
    let file = StationSettings::from_toml(
        "[ipns]\ndht_put_interval_secs = 30\ndelegated_routing = [\"http://127.0.0.1:8190\"]\n",
    )
    .unwrap();
    let env = StationSettings::from_env([(
        "IPFM_IPNS_DELEGATED_ROUTING".to_string(),
        "http://10.0.0.1:80, http://10.0.0.2/prefix".to_string(),
    )])
    .unwrap();
    let resolved = file.merged(env).resolve().unwrap();
    assert_eq!(resolved.ipns.dht_put_interval, Duration::from_secs(30));
    let endpoints: Vec<String> = resolved
        .ipns
        .delegated_routing
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        endpoints,
        ["http://10.0.0.1:80", "http://10.0.0.2:80/prefix"],
        "the environment replaces the file's list"
    );
    assert_eq!(
        StationSettings::default().resolve().unwrap().ipns,
        IpnsPublishConfig::default()
    );
    for bad in [
        "[ipns]\ndht_put_interval_secs = 0\n",
        "[ipns]\ndelegated_routing = [\"ftp://delegated-ipfs.dev\"]\n",
        "[ipns]\ndelegated_routing = [\"https://user@delegated-ipfs.dev\"]\n",
    ] {
        let message = StationSettings::from_toml(bad)
            .unwrap()
            .resolve()
            .unwrap_err()
            .to_string();
        assert!(message.contains("ipns."), "{bad}: {message}");
    }
    let https = StationSettings::from_toml(
        "[ipns]\ndelegated_routing = [\"https://delegated-ipfs.dev/\"]\n",
    )
    .unwrap()
    .resolve()
    .unwrap();
    assert_eq!(
        https.ipns.delegated_routing[0].to_string(),
        "https://delegated-ipfs.dev:443"
    );
    assert!(StationSettings::from_toml("[ipns]\ntypo = 1\n").is_err());
}

// ------------------------------------------------------------------------ libp2p fetch

/// One libp2p fetch exchange written by hand: the framed request `body`, then everything
/// the node answers until it closes the stream (`None` if it closed without answering).
async fn raw_fetch(
    control: &libp2p_stream::Control,
    node: libp2p::PeerId,
    body: &[u8],
) -> Option<Vec<u8>> {
    use futures::{AsyncReadExt, AsyncWriteExt};
    let protocol = libp2p::StreamProtocol::new(ipfm_protocol::fetch::PROTOCOL);
    let mut stream = tokio::time::timeout(WAIT, control.clone().open_stream(node, protocol))
        .await
        .expect("stream opened in time")
        .expect("the node speaks /libp2p/fetch/0.0.1");
    // Written as one frame; a write may fail once the node has refused the frame.
    let _ = stream.write_all(body).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(WAIT, stream.read_to_end(&mut answer))
        .await
        .expect("the node answers or closes in time");
    (read.is_ok() && !answer.is_empty()).then_some(answer)
}

/// Decode a framed fetch response.
fn fetch_response(framed: &[u8]) -> ipfm_protocol::fetch::FetchResponse {
    let (len, prefix) = ipfm_protocol::varint::read(framed).expect("a length prefix");
    assert_eq!(framed.len(), prefix + len as usize, "one whole frame");
    ipfm_protocol::fetch::decode_response(&framed[prefix..]).expect("a valid response")
}

/// libp2p fetch is how go-libp2p-pubsub-router (Kubo) and `@helia/ipns` get a name's
/// current record from a peer on its pubsub topic: a node answers the record it serves,
/// `NotFound` for a name it holds nothing for, an error for other namespaces, and closes a
/// stream whose request announces more than the limit, staying up for the next asker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libp2p_fetch_answers_held_ipns_records_and_refuses_the_rest() {
    use ipfm_protocol::fetch::{encode_request, FetchResponse, MAX_REQUEST_SIZE};
    use ipfm_protocol::varint::length_prefixed;
    let key = station_key(41);
    let node = peer_with_key(&key).await;
    let served = record(&key, "/ipfs/bafkqaaa", 3, Duration::from_secs(60));
    node.serve_ipns_record(served.clone()).await.unwrap();
    let control = common::raw_stream_peer(tcp_addr(&node).await).await;
    let ask = |identifier: Vec<u8>| length_prefixed(&encode_request(&identifier));

    let answer = raw_fetch(&control, node.peer_id(), &ask(routing_key(&name_of(&key)))).await;
    assert_eq!(
        fetch_response(&answer.expect("an answer")),
        FetchResponse::Found(served.to_bytes())
    );

    let stranger = name_of(&station_key(42));
    let answer = raw_fetch(&control, node.peer_id(), &ask(routing_key(&stranger))).await;
    assert_eq!(
        fetch_response(&answer.expect("an answer")),
        FetchResponse::NotFound
    );

    let answer = raw_fetch(&control, node.peer_id(), &ask(b"/pk/whatever".to_vec())).await;
    assert!(matches!(
        fetch_response(&answer.expect("an answer")),
        FetchResponse::Error(_)
    ));

    // A prefix announcing a request over the limit: closed without an answer.
    let mut huge = Vec::new();
    ipfm_protocol::varint::write(MAX_REQUEST_SIZE as u64 + 1, &mut huge);
    huge.extend(std::iter::repeat_n(0u8, 64));
    assert_eq!(raw_fetch(&control, node.peer_id(), &huge).await, None);

    // Still serving.
    let answer = raw_fetch(&control, node.peer_id(), &ask(routing_key(&name_of(&key)))).await;
    assert_eq!(
        fetch_response(&answer.expect("an answer")),
        FetchResponse::Found(served.to_bytes())
    );
}
