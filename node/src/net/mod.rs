//! The station as an IPFS peer: a libp2p swarm (TCP, QUIC, noise, yamux, identify, ping,
//! LAN + WAN Kademlia, gossipsub, AutoNAT, circuit relay v2 client, DCUtR, connection
//! limits) and a bitswap 1.2.0 implementation of our own.
//!
//! - [`bitswap`]: the bitswap `NetworkBehaviour` (server answering from a blockstore, client
//!   fetching and verifying blocks).
//! - [`swarm`]: the swarm built from a [`swarm::NetworkConfig`], run by one task
//!   ([`swarm::EventLoop`]) and driven through a cheap, cloneable [`swarm::Client`].
//! - [`blocks`]: how the network reaches the store without blocking the swarm task.
//! - [`ipns`]: IPNS records on the DHTs, over pubsub and to delegated routers.

pub mod bitswap;
pub mod blocks;
pub mod ipns;
pub mod swarm;

pub use blocks::{BlockAccess, BlockAccessError, StoreBlocks};
