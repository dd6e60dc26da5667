//! A dozen ipfm nodes on loopback form a LAN DHT through one bootstrap peer, find each
//! other's provider records, fetch blocks, deliver gossip, and keep working when a third of
//! them leave and come back (same identities, new ports).

use crate::common;
use common::tcp_addr;
use std::time::{Duration, Instant};

use cid::Cid;
use ipfm_node::net::swarm::{spawn, Client, NetworkConfig};
use ipfm_node::net::StoreBlocks;
use ipfm_protocol::cid::raw_cid;
use ipfm_store::{Blockstore, MemoryBlockstore};
use libp2p::identity::Keypair;
use libp2p::Multiaddr;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

const NODES: usize = 12;
const WAIT: Duration = Duration::from_secs(60);
const TOPIC: &str = "/ipfm/test/simulation";

struct SimNode {
    keypair: Keypair,
    store: MemoryBlockstore,
    cid: Cid,
    data: Vec<u8>,
    client: Option<Client>,
    task: Option<JoinHandle<()>>,
    inbox: Option<mpsc::Receiver<ipfm_node::net::swarm::GossipMessage>>,
}

impl SimNode {
    fn client(&self) -> &Client {
        self.client.as_ref().expect("node is running")
    }

    async fn start(&mut self, bootstrap: Vec<Multiaddr>) {
        let mut config = NetworkConfig::loopback(self.keypair.clone());
        config.listen_addrs.truncate(1); // TCP only: half the sockets for a dozen nodes
        config.wan_dht = false;
        config.bootstrap = bootstrap;
        let (client, task) =
            tokio::time::timeout(WAIT, spawn(config, StoreBlocks::shared(self.store.clone())))
                .await
                .expect("node starts in time")
                .expect("node starts");
        self.inbox = Some(client.subscribe(TOPIC).await.expect("subscribe"));
        self.client = Some(client);
        self.task = Some(task);
    }

    async fn stop(&mut self) {
        if let Some(client) = self.client.take() {
            client.shutdown().await.expect("shutdown");
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(WAIT, task)
                .await
                .expect("task ends in time")
                .expect("task ends cleanly");
        }
        self.inbox = None;
    }

    /// Provide our block until another node can see the record.
    async fn provide(&self, checker: &Client) {
        let deadline = Instant::now() + WAIT;
        loop {
            let provided = self.client().start_providing(self.cid).await;
            let found = checker.find_providers(self.cid).await.expect("search");
            if provided.is_ok() && found.contains(&self.client().peer_id()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "record never visible: {provided:?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// Every running node fetches the block of the next running node (found through the DHT
/// unless already connected to its holder) and checks the bytes.
async fn everyone_fetches_the_next_block(nodes: &[SimNode]) {
    let running: Vec<&SimNode> = nodes.iter().filter(|n| n.client.is_some()).collect();
    for (i, node) in running.iter().enumerate() {
        let target = running[(i + 1) % running.len()];
        let got = tokio::time::timeout(
            WAIT,
            node.client().get_block(target.cid, Duration::from_secs(20)),
        )
        .await
        .expect("fetched in time")
        .unwrap_or_else(|e| panic!("node {i} fetching {}: {e}", target.cid));
        assert_eq!(got, target.data);
    }
}

/// Drop the blocks nodes fetched from each other, so the next fetches use the network.
async fn forget_fetched_blocks(nodes: &[SimNode]) {
    for node in nodes {
        for other in nodes {
            if other.cid != node.cid {
                node.store.delete(&other.cid).await.unwrap();
            }
        }
    }
}

/// A message published by `publisher` reaches every other running node.
async fn gossip_reaches_everyone(nodes: &mut [SimNode], publisher: usize, text: &str) {
    let payload = text.as_bytes().to_vec();
    // Retry the publish until the publisher knows subscribers (right after joining it may not).
    let deadline = Instant::now() + WAIT;
    while let Err(error) = nodes[publisher]
        .client()
        .publish(TOPIC, payload.clone())
        .await
    {
        assert!(Instant::now() < deadline, "publish never accepted: {error}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for (i, node) in nodes.iter_mut().enumerate() {
        if i == publisher || node.client.is_none() {
            continue;
        }
        let inbox = node.inbox.as_mut().expect("subscribed");
        let received = tokio::time::timeout(WAIT, async {
            loop {
                let message = inbox.recv().await.expect("subscription open");
                if message.data == payload {
                    return message;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("node {i} never got {text:?}"));
        assert_eq!(received.topic, TOPIC);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dozen_nodes_survive_a_third_leaving_and_returning() {
    let mut nodes: Vec<SimNode> = (0..NODES)
        .map(|i| {
            let data = format!("block of node {i}").repeat(500).into_bytes();
            SimNode {
                keypair: Keypair::generate_ed25519(),
                store: MemoryBlockstore::new(),
                cid: raw_cid(&data),
                data,
                client: None,
                task: None,
                inbox: None,
            }
        })
        .collect();
    for node in &nodes {
        node.store.put(&node.cid, node.data.clone()).await.unwrap();
    }
    nodes[0].start(Vec::new()).await;
    let bootstrap = vec![tcp_addr(nodes[0].client()).await];
    for node in nodes.iter_mut().skip(1) {
        node.start(bootstrap.clone()).await;
    }
    for i in 0..NODES {
        let checker = nodes[(i + NODES / 2) % NODES].client().clone();
        nodes[i].provide(&checker).await;
    }
    everyone_fetches_the_next_block(&nodes).await;
    gossip_reaches_everyone(&mut nodes, 3, "all here").await;

    // A third leave (never the bootstrap peer): the rest keep finding and gossiping.
    let leaving: Vec<usize> = (1..NODES).step_by(3).collect();
    assert_eq!(leaving.len(), NODES / 3);
    for &i in &leaving {
        nodes[i].stop().await;
    }
    forget_fetched_blocks(&nodes).await;
    everyone_fetches_the_next_block(&nodes).await;
    gossip_reaches_everyone(&mut nodes, 2, "a third gone").await;

    // They come back with the same identities and stores, on new ports.
    for &i in &leaving {
        nodes[i].start(bootstrap.clone()).await;
    }
    for &i in &leaving {
        let checker = nodes[(i + 1) % NODES].client().clone();
        nodes[i].provide(&checker).await;
    }
    forget_fetched_blocks(&nodes).await;
    everyone_fetches_the_next_block(&nodes).await;
    gossip_reaches_everyone(&mut nodes, leaving[0], "back again").await;

    for node in &mut nodes {
        node.stop().await;
    }
}
