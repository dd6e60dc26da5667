//! Blocks in a hash map: for tests and for nodes that keep nothing across restarts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use cid::Cid;

use super::{from_millis, now_millis, storage_cid, to_millis, BlockInfo, Blockstore, Check};
use crate::error::Result;

struct Entry {
    bytes: Vec<u8>,
    inserted_at_ms: u64,
}

/// An in-memory [`Blockstore`]. Cloning gives another handle to the same blocks.
///
/// Operations take a short `std` mutex and never await while holding it; hashing on
/// `put` runs on the caller's task (cheap next to the network I/O that produced the block).
#[derive(Clone, Default)]
pub struct MemoryBlockstore {
    blocks: Arc<Mutex<HashMap<Cid, Entry>>>,
}

impl MemoryBlockstore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Cid, Entry>> {
        // A panic while holding the lock cannot leave a half-updated entry (every update
        // is a single map operation), so the data behind a poisoned lock is still sound.
        self.blocks.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn insert(&self, cid: &Cid, bytes: Vec<u8>, check: Check) -> Result<()> {
        check.run(cid, &bytes)?;
        let inserted_at_ms = now_millis();
        let mut blocks = self.lock();
        match blocks.get_mut(&storage_cid(cid)) {
            Some(entry) => entry.inserted_at_ms = inserted_at_ms,
            None => {
                blocks.insert(
                    storage_cid(cid),
                    Entry {
                        bytes,
                        inserted_at_ms,
                    },
                );
            }
        }
        Ok(())
    }

    fn info(cid: &Cid, entry: &Entry) -> BlockInfo {
        BlockInfo {
            cid: *cid,
            size: entry.bytes.len() as u64,
            inserted_at: from_millis(entry.inserted_at_ms),
        }
    }
}

impl Blockstore for MemoryBlockstore {
    async fn get(&self, cid: &Cid) -> Result<Option<Vec<u8>>> {
        Ok(self
            .lock()
            .get(&storage_cid(cid))
            .map(|entry| entry.bytes.clone()))
    }

    async fn put(&self, cid: &Cid, bytes: Vec<u8>) -> Result<()> {
        self.insert(cid, bytes, Check::Hash)
    }

    async fn put_verified(&self, cid: &Cid, bytes: Vec<u8>) -> Result<()> {
        self.insert(cid, bytes, Check::Trusted)
    }

    async fn has(&self, cid: &Cid) -> Result<bool> {
        Ok(self.lock().contains_key(&storage_cid(cid)))
    }

    async fn delete(&self, cid: &Cid) -> Result<bool> {
        Ok(self.lock().remove(&storage_cid(cid)).is_some())
    }

    async fn block_info(&self, cid: &Cid) -> Result<Option<BlockInfo>> {
        let key = storage_cid(cid);
        Ok(self.lock().get(&key).map(|entry| Self::info(&key, entry)))
    }

    async fn blocks(&self) -> Result<Vec<BlockInfo>> {
        Ok(self
            .lock()
            .iter()
            .map(|(cid, entry)| Self::info(cid, entry))
            .collect())
    }

    async fn delete_if_inserted_before(
        &self,
        cid: &Cid,
        cutoff: SystemTime,
    ) -> Result<Option<u64>> {
        let key = storage_cid(cid);
        let mut blocks = self.lock();
        match blocks.get(&key) {
            Some(entry) if entry.inserted_at_ms <= to_millis(cutoff) => {
                let size = entry.bytes.len() as u64;
                blocks.remove(&key);
                Ok(Some(size))
            }
            _ => Ok(None),
        }
    }
}
