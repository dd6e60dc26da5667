//! Blocks by CID: the [`Blockstore`] trait and its backends (memory, files + sled metadata,
//! sled only).
//!
//! Blocks are keyed by CID, with one normalisation: a CIDv0 is stored and looked up as the
//! CIDv1 dag-pb CID with the same multihash (they name the same bytes), so a block added
//! Kubo-style (`Qm…`) is found when asked for as `bafy…` and vice versa. [`Blockstore::cids`]
//! therefore lists CIDv1s.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cid::{Cid, Version};
use ipfm_protocol::cid::DAG_PB;

use crate::error::Result;

mod files;
mod memory;
mod read_cache;
mod sled_store;

pub use files::FileBlockstore;
pub use memory::MemoryBlockstore;
pub use sled_store::SledBlockstore;

/// What the store knows about one block besides its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockInfo {
    /// The block's CID (CIDv1; see the module docs).
    pub cid: Cid,
    /// Size of the block in bytes.
    pub size: u64,
    /// Time of the most recent `put` of this block (millisecond resolution). Retention GC
    /// keeps unpinned blocks for a while after this moment.
    pub inserted_at: SystemTime,
}

/// Number and total size of the stored blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BlockstoreStats {
    pub blocks: u64,
    pub bytes: u64,
}

/// Content-addressed block storage.
///
/// Every method is async and its future is `Send`, so callers can hold a store in any task.
/// Backends that block (sled) run their work on tokio's blocking pool, so they must be used
/// from within a tokio runtime.
pub trait Blockstore: Send + Sync {
    /// The bytes of the block `cid`, if stored.
    fn get(&self, cid: &Cid) -> impl Future<Output = Result<Option<Vec<u8>>>> + Send;

    /// Store `bytes` as the block `cid`.
    ///
    /// Fails with [`StoreError::InvalidBlock`](crate::StoreError::InvalidBlock) unless the
    /// bytes hash to the CID. Idempotent: storing a block that is already there keeps one
    /// copy and only refreshes its insertion time (so retention counts from the latest put).
    fn put(&self, cid: &Cid, bytes: Vec<u8>) -> impl Future<Output = Result<()>> + Send;

    /// Like [`Blockstore::put`], for bytes the caller has already checked against `cid`:
    /// they are not hashed again. The network's fetches use it: the bitswap decoder
    /// computes every received block's CID from its bytes, so a block that answers a want
    /// is verified before it reaches the store, and a second SHA-256 pass over every
    /// fetched byte was a tenth of a fetching node's CPU. Debug builds still check (and
    /// panic on bytes that do not match), so a caller that breaks the promise fails its
    /// tests.
    fn put_verified(&self, cid: &Cid, bytes: Vec<u8>) -> impl Future<Output = Result<()>> + Send;

    /// Whether the block `cid` is stored.
    fn has(&self, cid: &Cid) -> impl Future<Output = Result<bool>> + Send;

    /// Remove the block `cid`; returns whether it was stored.
    fn delete(&self, cid: &Cid) -> impl Future<Output = Result<bool>> + Send;

    /// Size and insertion time of the block `cid`, if stored.
    fn block_info(&self, cid: &Cid) -> impl Future<Output = Result<Option<BlockInfo>>> + Send;

    /// Size and insertion time of every stored block (metadata only; no block bytes are read).
    fn blocks(&self) -> impl Future<Output = Result<Vec<BlockInfo>>> + Send;

    /// Remove the block `cid` only if its latest put happened at or before `cutoff`; returns
    /// the number of bytes freed, or `None` if the block is absent or newer.
    ///
    /// The check and the removal are one atomic step, so a concurrent `put` of the same
    /// block either lands after the removal (and the block is stored again) or refreshes
    /// the insertion time first (and the block is kept). Retention GC relies on this.
    fn delete_if_inserted_before(
        &self,
        cid: &Cid,
        cutoff: SystemTime,
    ) -> impl Future<Output = Result<Option<u64>>> + Send;

    /// The CIDs of all stored blocks.
    fn cids(&self) -> impl Future<Output = Result<Vec<Cid>>> + Send {
        async move { Ok(self.blocks().await?.into_iter().map(|b| b.cid).collect()) }
    }

    /// Number of blocks and their total size.
    fn stats(&self) -> impl Future<Output = Result<BlockstoreStats>> + Send {
        async move {
            let blocks = self.blocks().await?;
            Ok(BlockstoreStats {
                blocks: blocks.len() as u64,
                bytes: blocks.iter().map(|b| b.size).sum(),
            })
        }
    }

    /// Number of stored blocks.
    fn len(&self) -> impl Future<Output = Result<u64>> + Send {
        async move { Ok(self.stats().await?.blocks) }
    }

    /// Whether no block is stored.
    fn is_empty(&self) -> impl Future<Output = Result<bool>> + Send {
        async move { Ok(self.len().await? == 0) }
    }

    /// Total size of the stored blocks in bytes.
    fn total_bytes(&self) -> impl Future<Output = Result<u64>> + Send {
        async move { Ok(self.stats().await?.bytes) }
    }
}

/// Whether a put hashes the bytes first ([`Blockstore::put`]) or the caller did
/// ([`Blockstore::put_verified`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    Hash,
    Trusted,
}

impl Check {
    /// Hash the bytes if asked to (always in debug builds, where a trusted put of bytes
    /// that do not match is a bug in the caller and panics).
    pub(crate) fn run(self, cid: &Cid, bytes: &[u8]) -> Result<()> {
        match self {
            Check::Hash => ipfm_protocol::cid::verify(cid, bytes)
                .map_err(crate::error::StoreError::invalid_block(cid)),
            Check::Trusted => {
                debug_assert!(
                    ipfm_protocol::cid::verify(cid, bytes).is_ok(),
                    "put_verified of bytes that do not hash to {cid}"
                );
                Ok(())
            }
        }
    }
}

/// The CID a block is stored under: CIDv0 becomes the equivalent CIDv1 dag-pb CID.
pub(crate) fn storage_cid(cid: &Cid) -> Cid {
    match cid.version() {
        Version::V0 => Cid::new_v1(DAG_PB, *cid.hash()),
        Version::V1 => *cid,
    }
}

/// Milliseconds since the Unix epoch (0 for clocks set before 1970).
pub(crate) fn to_millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

pub(crate) fn from_millis(millis: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(millis)
}

pub(crate) fn now_millis() -> u64 {
    to_millis(SystemTime::now())
}
