//! ipfm's storage: blocks by CID, pins, retention GC and station state, in one directory
//! (a sled database plus one file per block) or in memory.
//!
//! # Shape
//!
//! [`Store`] is a cheap cloneable handle (an `Arc`), not an actor: sled is itself safe for
//! concurrent use, so every clone talks to the database directly and there is no queue to
//! size or task to supervise. Each operation that touches sled runs on tokio's blocking
//! pool (`spawn_blocking`), so async callers never stall a runtime worker on disk I/O or
//! on hashing a block; therefore the store must be used from within a tokio runtime.
//!
//! Blocks go through the [`Blockstore`] trait, with three backends: [`MemoryBlockstore`],
//! [`FileBlockstore`] (block bytes in files, metadata in sled: what [`Store::open`] uses)
//! and [`SledBlockstore`] (everything in sled: the former layout, see [`BlockBackend`]).
//! `Store` implements the trait by forwarding to the backend it was opened with.
//!
//! # Layout of the store directory
//!
//! `blocks/<shard>/<cid>.data` holds each block's bytes (see `FileBlockstore` for naming
//! and crash safety); the rest of the directory is sled's, with these trees:
//!
//! | tree         | key              | value                                   |
//! |--------------|------------------|-----------------------------------------|
//! | `block_meta` | CID bytes        | insertion time ms (u64 BE) ‖ size (u64 BE) |
//! | `blocks`     | CID bytes        | block bytes (only with [`BlockBackend::Sled`]; an older store's are moved into files when it is opened) |
//! | `pins`       | pin name (UTF-8) | root CID bytes                          |
//! | `state`      | entry name       | entry value (see `state.rs`)            |
//!
//! # Durability
//!
//! - Blocks: a `put` is atomic (the file is complete before the metadata names it) and
//!   its metadata reaches disk within sled's flush interval (~0.5 s), its file when the
//!   kernel writes it back, both at [`Store::flush`]. A crash may lose the last puts, never
//!   half of one: a block whose file did not survive is reported absent, not truncated.
//! - Pins and state: every setter flushes (fsyncs) before it returns. In particular
//!   [`Store::next_ipns_sequence`] stores the new sequence durably *before* handing it
//!   out, so IPNS sequences never go backwards across crashes (`tests/crash.rs` checks
//!   this by SIGKILLing a writer at random moments).
//!
//! # Retention GC
//!
//! [`Store::gc`] marks everything reachable from the pins (walking dag-pb links; other
//! codecs are leaves) and removes the other blocks whose latest put is older than the
//! given minimum age. See the `gc` module for why that is safe to run next to writers.

mod blockstore;
mod error;
mod gc;
pub mod keyfile;
mod kv;
mod pins;
mod state;
mod store;

pub use blockstore::{
    BlockInfo, Blockstore, BlockstoreStats, FileBlockstore, MemoryBlockstore, SledBlockstore,
};
pub use error::{Result, StoreError};
pub use gc::{GcReport, MAX_REPORTED_REMOVED};
pub use ipfm_protocol::Cid;
pub use store::{BlockBackend, Store, BLOCKS_DIR};

/// Run blocking store work on tokio's blocking pool.
async fn blocking<T, F>(work: F) -> Result<T>
where
    F: FnOnce() -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work).await?
}
