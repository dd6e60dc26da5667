//! Circuit relay v2: a node reserves a slot on a relay and is reachable through it; another
//! node dials the `/p2p-circuit` address and fetches a block over bitswap.

use std::time::Duration;

use futures::StreamExt;
use ipfm_node::net::swarm::{spawn, Client, NetworkConfig};
use ipfm_node::net::StoreBlocks;
use ipfm_protocol::cid::raw_cid;
use ipfm_store::{Blockstore, MemoryBlockstore};
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{identify, relay, Multiaddr};

const WAIT: Duration = Duration::from_secs(30);

#[derive(NetworkBehaviour)]
struct RelayServer {
    relay: relay::Behaviour,
    identify: identify::Behaviour,
}

/// A bare relay server (rust-libp2p's), listening on loopback; returns its address.
async fn relay_server() -> Multiaddr {
    let mut swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default(),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )
        .expect("tcp")
        .with_behaviour(|key| RelayServer {
            relay: relay::Behaviour::new(key.public().to_peer_id(), relay::Config::default()),
            identify: identify::Behaviour::new(identify::Config::new(
                "/ipfs/id/1.0.0".into(),
                key.public(),
            )),
        })
        .expect("behaviour")
        .build();
    swarm
        .listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .expect("listen");
    let addr = tokio::time::timeout(WAIT, async {
        loop {
            if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
                return address;
            }
        }
    })
    .await
    .expect("relay listens in time");
    // The relay hands its own addresses to clients in reservations.
    swarm.add_external_address(addr.clone());
    let addr = addr.with(Protocol::P2p(*swarm.local_peer_id()));
    tokio::spawn(async move {
        loop {
            swarm.select_next_some().await;
        }
    });
    addr
}

async fn node(configure: impl FnOnce(&mut NetworkConfig)) -> (Client, MemoryBlockstore) {
    let store = MemoryBlockstore::new();
    let mut config = NetworkConfig::loopback(Keypair::generate_ed25519());
    configure(&mut config);
    let (client, _task) =
        tokio::time::timeout(WAIT, spawn(config, StoreBlocks::shared(store.clone())))
            .await
            .expect("node starts in time")
            .expect("node starts");
    (client, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_behind_a_relay_is_reachable_and_serves_blocks() {
    let relay = relay_server().await;
    // The station listens only through the relay (no direct listen address at all).
    let relay_for_station = relay.clone();
    let (station, store) = node(move |c| {
        c.listen_addrs.clear();
        c.relays = vec![relay_for_station];
    })
    .await;
    let data = b"a segment behind NAT".repeat(2000);
    let cid = raw_cid(&data);
    store.put(&cid, data.clone()).await.unwrap();
    let circuit = station
        .listen_addrs()
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.iter().any(|p| p == Protocol::P2pCircuit))
        .expect("a relayed listen address");

    let (listener, _) = node(|_| {}).await;
    // The relayed address already names the station: /ip4/…/p2p/<relay>/p2p-circuit/p2p/<station>.
    assert_eq!(
        circuit.iter().last(),
        Some(Protocol::P2p(station.peer_id()))
    );
    let peer = tokio::time::timeout(WAIT, listener.dial(circuit))
        .await
        .expect("dial in time")
        .expect("dial through the relay");
    assert_eq!(peer, station.peer_id());
    let got = tokio::time::timeout(WAIT, listener.get_block(cid, Duration::from_secs(20)))
        .await
        .expect("fetched in time")
        .expect("fetched through the relay");
    assert_eq!(got, data);
}
