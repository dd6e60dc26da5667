//! Blocks in sled, the embedded database that also holds pins and station state: the
//! layout before block files (`files.rs`), kept as a backend of its own for comparison and
//! as the source of the migration in `FileBlockstore::open`.
//!
//! Two trees, always changed together in one sled transaction so a crash never leaves one
//! without the other:
//! - `blocks`: CID bytes → block bytes;
//! - `block_meta`: CID bytes → insertion time (ms since the Unix epoch, u64 BE) ‖ size
//!   (u64 BE). Listing and GC scan only this small tree, never the block bytes.

use std::time::SystemTime;

use cid::Cid;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::{IVec, Transactional};

use super::{from_millis, now_millis, storage_cid, to_millis, BlockInfo, Blockstore, Check};
use crate::blocking;
use crate::error::{Result, StoreError};

pub(super) const BLOCKS_TREE: &str = "blocks";
pub(super) const META_TREE: &str = "block_meta";
const META_LEN: usize = 16;

/// A [`Blockstore`] in a sled database. Cloning gives another handle to the same trees.
///
/// Every operation runs on tokio's blocking pool (`spawn_blocking`), including the hash
/// check of `put`, so the async runtime's workers never wait on disk or burn CPU hashing.
#[derive(Clone)]
pub struct SledBlockstore {
    blocks: sled::Tree,
    meta: sled::Tree,
}

impl SledBlockstore {
    /// Use (creating if needed) the block trees of `db`. Blocking.
    pub fn open(db: &sled::Db) -> Result<Self> {
        Ok(SledBlockstore {
            blocks: db
                .open_tree(BLOCKS_TREE)
                .map_err(StoreError::db("opening the blocks tree"))?,
            meta: db
                .open_tree(META_TREE)
                .map_err(StoreError::db("opening the block metadata tree"))?,
        })
    }

    fn key(cid: &Cid) -> Vec<u8> {
        storage_cid(cid).to_bytes()
    }

    /// `put` and `put_verified`: hashing (when asked) and the transaction, off the async
    /// runtime.
    async fn put_checked(&self, cid: &Cid, bytes: Vec<u8>, check: Check) -> Result<()> {
        let (this, cid) = (self.clone(), *cid);
        blocking(move || {
            check.run(&cid, &bytes)?;
            let key = Self::key(&cid);
            let meta = encode_meta(now_millis(), bytes.len() as u64);
            let value = IVec::from(bytes);
            (&this.blocks, &this.meta)
                .transaction(|(blocks, metas)| {
                    // Already stored: the bytes are identical (same hash), so only the
                    // insertion time changes; skip rewriting a possibly large value.
                    if metas.get(&key)?.is_none() {
                        blocks.insert(key.as_slice(), value.clone())?;
                    }
                    metas.insert(key.as_slice(), &meta[..])?;
                    Ok::<_, ConflictableTransactionError<StoreError>>(())
                })
                .map_err(transaction_error("storing a block"))
        })
        .await
    }
}

pub(super) fn encode_meta(inserted_at_ms: u64, size: u64) -> [u8; META_LEN] {
    let mut out = [0; META_LEN];
    out[..8].copy_from_slice(&inserted_at_ms.to_be_bytes());
    out[8..].copy_from_slice(&size.to_be_bytes());
    out
}

/// (insertion time in ms, size)
pub(super) fn decode_meta(value: &[u8]) -> Result<(u64, u64)> {
    let value: &[u8; META_LEN] = value.try_into().map_err(|_| StoreError::Corrupt {
        what: "block metadata",
        detail: format!("{} bytes instead of {META_LEN}", value.len()),
    })?;
    let (time, size) = value.split_at(8);
    Ok((
        u64::from_be_bytes(time.try_into().expect("8 bytes")),
        u64::from_be_bytes(size.try_into().expect("8 bytes")),
    ))
}

pub(super) fn decode_key(key: &[u8]) -> Result<Cid> {
    Cid::try_from(key).map_err(|e| StoreError::Corrupt {
        what: "block key",
        detail: e.to_string(),
    })
}

pub(super) fn info(key: &[u8], meta: &[u8]) -> Result<BlockInfo> {
    let (inserted_at_ms, size) = decode_meta(meta)?;
    Ok(BlockInfo {
        cid: decode_key(key)?,
        size,
        inserted_at: from_millis(inserted_at_ms),
    })
}

/// (insertion time in ms, size) of the block stored under `key` in the metadata tree.
pub(super) fn read_meta(meta: &sled::Tree, key: &[u8]) -> Result<Option<(u64, u64)>> {
    meta.get(key)
        .map_err(StoreError::db("reading block metadata"))?
        .map(|value| decode_meta(&value))
        .transpose()
}

/// The [`BlockInfo`] of the block stored under `key` in the metadata tree.
pub(super) fn read_info(meta: &sled::Tree, key: &[u8]) -> Result<Option<BlockInfo>> {
    meta.get(key)
        .map_err(StoreError::db("reading block metadata"))?
        .map(|value| info(key, &value))
        .transpose()
}

/// Every block's [`BlockInfo`], from the metadata tree alone.
pub(super) fn list_infos(meta: &sled::Tree) -> Result<Vec<BlockInfo>> {
    meta.iter()
        .map(|entry| {
            let (key, value) = entry.map_err(StoreError::db("listing blocks"))?;
            info(&key, &value)
        })
        .collect()
}

fn transaction_error(op: &'static str) -> impl FnOnce(TransactionError<StoreError>) -> StoreError {
    move |error| match error {
        TransactionError::Abort(error) => error,
        TransactionError::Storage(source) => StoreError::Database { op, source },
    }
}

impl Blockstore for SledBlockstore {
    async fn get(&self, cid: &Cid) -> Result<Option<Vec<u8>>> {
        let (tree, key) = (self.blocks.clone(), Self::key(cid));
        blocking(move || {
            Ok(tree
                .get(key)
                .map_err(StoreError::db("reading a block"))?
                .map(|value| value.to_vec()))
        })
        .await
    }

    async fn put(&self, cid: &Cid, bytes: Vec<u8>) -> Result<()> {
        self.put_checked(cid, bytes, Check::Hash).await
    }

    async fn put_verified(&self, cid: &Cid, bytes: Vec<u8>) -> Result<()> {
        self.put_checked(cid, bytes, Check::Trusted).await
    }

    async fn has(&self, cid: &Cid) -> Result<bool> {
        let (tree, key) = (self.meta.clone(), Self::key(cid));
        blocking(move || {
            tree.contains_key(key)
                .map_err(StoreError::db("looking up a block"))
        })
        .await
    }

    async fn delete(&self, cid: &Cid) -> Result<bool> {
        let (this, key) = (self.clone(), Self::key(cid));
        blocking(move || {
            (&this.blocks, &this.meta)
                .transaction(|(blocks, metas)| {
                    let existed = metas.remove(key.as_slice())?.is_some();
                    blocks.remove(key.as_slice())?;
                    Ok::<_, ConflictableTransactionError<StoreError>>(existed)
                })
                .map_err(transaction_error("deleting a block"))
        })
        .await
    }

    async fn block_info(&self, cid: &Cid) -> Result<Option<BlockInfo>> {
        let (tree, key) = (self.meta.clone(), Self::key(cid));
        blocking(move || read_info(&tree, &key)).await
    }

    async fn blocks(&self) -> Result<Vec<BlockInfo>> {
        let tree = self.meta.clone();
        blocking(move || list_infos(&tree)).await
    }

    async fn delete_if_inserted_before(
        &self,
        cid: &Cid,
        cutoff: SystemTime,
    ) -> Result<Option<u64>> {
        let (this, key, cutoff_ms) = (self.clone(), Self::key(cid), to_millis(cutoff));
        blocking(move || {
            (&this.blocks, &this.meta)
                .transaction(|(blocks, metas)| {
                    let Some(meta) = metas.get(&key)? else {
                        return Ok(None);
                    };
                    let (inserted_at_ms, size) =
                        decode_meta(&meta).map_err(ConflictableTransactionError::Abort)?;
                    if inserted_at_ms > cutoff_ms {
                        return Ok(None);
                    }
                    metas.remove(key.as_slice())?;
                    blocks.remove(key.as_slice())?;
                    Ok(Some(size))
                })
                .map_err(transaction_error("removing an expired block"))
        })
        .await
    }
}
