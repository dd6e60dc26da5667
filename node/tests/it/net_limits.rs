//! Connection limits: per peer and in total, enforced by the swarm.

use crate::common;
use common::tcp_addr;
use std::time::Duration;

use ipfm_node::net::swarm::{spawn, Client, NetError, NetworkConfig};
use ipfm_node::net::StoreBlocks;
use ipfm_store::MemoryBlockstore;
use libp2p::identity::Keypair;
use libp2p::Multiaddr;

const WAIT: Duration = Duration::from_secs(30);

async fn node(configure: impl FnOnce(&mut NetworkConfig)) -> Client {
    let mut config = NetworkConfig::loopback(Keypair::generate_ed25519());
    configure(&mut config);
    let blocks = StoreBlocks::shared(MemoryBlockstore::new());
    let (client, _task) = tokio::time::timeout(WAIT, spawn(config, blocks))
        .await
        .expect("swarm starts in time")
        .expect("swarm starts");
    client
}

async fn dial(from: &Client, to: Multiaddr) -> Result<libp2p::PeerId, NetError> {
    tokio::time::timeout(WAIT, from.dial(to))
        .await
        .expect("dial settles in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_connection_to_one_peer_is_refused() {
    let server = node(|_| {}).await;
    let client = node(|c| c.max_connections_per_peer = 1).await;
    let addr = tcp_addr(&server).await;
    dial(&client, addr.clone()).await.expect("first connection");
    let second = dial(&client, addr).await;
    assert!(matches!(second, Err(NetError::Dial { .. })), "{second:?}");
    assert_eq!(
        client.connected_peers().await.unwrap(),
        vec![server.peer_id()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_total_are_refused() {
    let servers = [node(|_| {}).await, node(|_| {}).await, node(|_| {}).await];
    let client = node(|c| c.max_connections = 2).await;
    dial(&client, tcp_addr(&servers[0]).await)
        .await
        .expect("first");
    dial(&client, tcp_addr(&servers[1]).await)
        .await
        .expect("second");
    let third = dial(&client, tcp_addr(&servers[2]).await).await;
    assert!(matches!(third, Err(NetError::Dial { .. })), "{third:?}");
    assert_eq!(client.connected_peers().await.unwrap().len(), 2);
}
