//! IPNS on the network, the way Kubo does it:
//!
//! - DHT: the record is stored under the routing key `/ipns/` ‖ peer id multihash, on the
//!   LAN and WAN DHTs ([`publisher`]: served locally at once, put at most once per
//!   interval). Incoming `PUT_VALUE`s are validated ([`records`]) before they are stored.
//! - Pubsub: every record is published on `/record/` ‖ base64url(routing key) (go-libp2p-
//!   pubsub-router, `@helia/ipns` pubsub routing); resolving a name subscribes to its
//!   topic, and newer valid records arriving there update the [`cache`].
//! - Delegated routing: `PUT /routing/v1/ipns/{name}` to configured HTTP routers
//!   ([`delegated`]), on the same slots as the DHT put.
//! - libp2p fetch: peers joining a name's topic ask us for its current record
//!   ([`fetch`], served from the records we hold).
//!
//! The swarm side (kad queries, record filtering, gossip) lives in the swarm task; its
//! client offers `serve_ipns_record`, `put_ipns_record` and `resolve_ipns`.

pub mod cache;
pub mod delegated;
pub mod fetch;
pub mod publisher;
pub mod records;

pub use cache::NameCache;
pub use delegated::{DelegatedEndpoint, DelegatedError};
pub use publisher::{IpnsPublishConfig, IpnsPublisher, SlotReport, DEFAULT_DHT_PUT_INTERVAL};
pub use records::RecordRejected;
