//! The LAN DHT between ipfm nodes on loopback: a node that only knows a middle peer finds
//! the provider of a block through that peer's DHT, dials it and fetches the block.

use crate::common;
use common::tcp_addr;
use std::time::Duration;

use ipfm_node::net::swarm::{spawn, Client, NetworkConfig};
use ipfm_node::net::StoreBlocks;
use ipfm_protocol::cid::raw_cid;
use ipfm_store::{Blockstore, MemoryBlockstore};
use libp2p::identity::Keypair;

const WAIT: Duration = Duration::from_secs(30);

async fn node(dht_server: bool) -> (Client, MemoryBlockstore) {
    let store = MemoryBlockstore::new();
    let mut config = NetworkConfig::loopback(Keypair::generate_ed25519());
    config.wan_dht = false;
    config.lan_dht_server = dht_server;
    let (client, _task) =
        tokio::time::timeout(WAIT, spawn(config, StoreBlocks::shared(store.clone())))
            .await
            .expect("swarm starts in time")
            .expect("swarm starts");
    (client, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_is_found_through_another_peer_and_fetched_from() {
    // Holder and seeker are DHT clients: neither is in anybody's routing table, so they
    // never meet through routine DHT traffic; the seeker can reach the holder only through
    // the provider record the middle peer keeps (which carries the holder's addresses).
    let (holder, holder_store) = node(false).await;
    let (middle, _) = node(true).await;
    let (seeker, seeker_store) = node(false).await;
    let data = b"a segment only the holder has".repeat(1000);
    let cid = raw_cid(&data);
    holder_store.put(&cid, data.clone()).await.unwrap();

    holder
        .dial(tcp_addr(&middle).await)
        .await
        .expect("holder dials middle");
    seeker
        .dial(tcp_addr(&middle).await)
        .await
        .expect("seeker dials middle");

    common::provide_until_found(&holder, &middle, cid, WAIT).await;
    assert!(!seeker
        .connected_peers()
        .await
        .unwrap()
        .contains(&holder.peer_id()));

    // The middle peer says DontHave; the seeker then connects to the provider and fetches.
    let got = tokio::time::timeout(WAIT, seeker.get_block(cid, Duration::from_secs(20)))
        .await
        .expect("fetched in time")
        .expect("fetched through the provider record");
    assert_eq!(got, data);
    assert_eq!(seeker_store.get(&cid).await.unwrap(), Some(data));
    assert!(seeker
        .connected_peers()
        .await
        .unwrap()
        .contains(&holder.peer_id()));
}
