//! Where a new station root goes once it is built and signed.
//!
//! The station always registers its record with the gateway's [`LocalNames`]; other
//! transports (DHT put, IPNS over pubsub, bitswap announcements) implement [`Publisher`]
//! and are handed to the station at start.

use ipfm_protocol::ipns::IpnsRecord;
use ipfm_protocol::peer::PeerId;
use ipfm_protocol::Cid;

use crate::gateway::{BoxFuture, LocalNames};

/// One publication: the signed record, the root it points at, and the segment blocks that
/// are new in this root (what a network layer would announce first).
#[derive(Debug, Clone)]
pub struct RootUpdate {
    pub name: PeerId,
    pub record: IpnsRecord,
    pub root: Cid,
    pub new_segments: Vec<Cid>,
}

/// Something that makes a new root known: the local resolver, the DHT, pubsub…
pub trait Publisher: Send + Sync + 'static {
    /// Publish `update`. Errors are reported by the station and do not stop it (a
    /// transport that is down must not silence the stream).
    fn publish<'a>(&'a self, update: &'a RootUpdate) -> BoxFuture<'a, Result<(), String>>;
}

impl Publisher for LocalNames {
    fn publish<'a>(&'a self, update: &'a RootUpdate) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            LocalNames::publish(self, update.name, update.record.clone())
                .map(drop)
                .map_err(|e| e.to_string())
        })
    }
}
