//! What `FileBlockstore::open` does before the store is used: carry blocks of the old
//! layout (bytes inside sled) over into files, and repair what a crash left behind
//! (metadata without an intact file, files without metadata, temporary files).

use std::fs;
use std::io::ErrorKind;
use std::str::FromStr;

use cid::Cid;

use super::{remove_file_if_present, FileBlockstore, DATA_SUFFIX, MIGRATION_BATCH, TEMP_SUFFIX};
use crate::blockstore::now_millis;
use crate::blockstore::sled_store::{decode_key, encode_meta, info, BLOCKS_TREE};
use crate::error::{Result, StoreError};

impl FileBlockstore {
    /// Move the blocks of the old layout (bytes in sled's `blocks` tree) into files, a
    /// batch at a time: files written and synced first, then their entries removed from
    /// the tree, so a crash mid-way loses nothing and the next open carries on.
    pub(super) fn migrate_sled_blocks(&self, db: &sled::Db) -> Result<u64> {
        if !db
            .tree_names()
            .iter()
            .any(|name| name == BLOCKS_TREE.as_bytes())
        {
            return Ok(0);
        }
        let old = db
            .open_tree(BLOCKS_TREE)
            .map_err(StoreError::db("opening the old blocks tree"))?;
        let mut moved = 0u64;
        loop {
            let mut batch = Vec::with_capacity(MIGRATION_BATCH);
            // One value in memory at a time; only the (small) keys are kept for the batch.
            for entry in old.iter().take(MIGRATION_BATCH) {
                let (key, bytes) = entry.map_err(StoreError::db("reading the old blocks tree"))?;
                match decode_key(&key) {
                    Ok(cid) => self.migrate_one(&cid, &key, &bytes)?,
                    Err(error) => {
                        tracing::warn!(%error, "dropping an old block with a corrupt key")
                    }
                }
                batch.push(key);
            }
            if batch.is_empty() {
                break;
            }
            self.sync()?;
            self.inner
                .meta
                .flush()
                .map_err(StoreError::db("flushing migrated block metadata"))?;
            for key in &batch {
                old.remove(key).map_err(StoreError::db(
                    "removing a migrated block from the old tree",
                ))?;
            }
            moved += batch.len() as u64;
        }
        db.drop_tree(BLOCKS_TREE)
            .map_err(StoreError::db("dropping the old blocks tree"))?;
        db.flush()
            .map_err(StoreError::db("flushing after the block migration"))?;
        if moved > 0 {
            tracing::info!(blocks = moved, "moved blocks from sled into block files");
        }
        Ok(moved)
    }

    fn migrate_one(&self, cid: &Cid, key: &[u8], bytes: &[u8]) -> Result<()> {
        // The old store verified every put; a mismatch now would be disk corruption,
        // and carrying it over would hand peers bytes that fail their hash check.
        if let Err(error) = ipfm_protocol::cid::verify(cid, bytes) {
            tracing::warn!(%cid, %error, "old block does not match its CID; not migrated");
            self.inner
                .meta
                .remove(key)
                .map_err(StoreError::db("removing block metadata"))?;
            return Ok(());
        }
        self.write_file(cid, bytes)?;
        // The old layout kept the same metadata; keep its insertion time if present.
        if !self
            .inner
            .meta
            .contains_key(key)
            .map_err(StoreError::db("looking up block metadata"))?
        {
            let meta = encode_meta(now_millis(), bytes.len() as u64);
            self.inner
                .meta
                .insert(key, &meta[..])
                .map_err(StoreError::db("storing block metadata"))?;
        }
        Ok(())
    }

    /// Drop metadata whose file is missing or has the wrong size (lost in a power failure);
    /// returns how many.
    pub(super) fn drop_entries_without_files(&self) -> Result<u64> {
        let mut dropped = 0;
        for entry in self.inner.meta.iter() {
            let (key, meta) = entry.map_err(StoreError::db("listing blocks"))?;
            let block = info(&key, &meta)?;
            let path = self.path(&block.cid);
            let intact = match fs::metadata(&path) {
                Ok(file) => file.is_file() && file.len() == block.size,
                Err(error) if error.kind() == ErrorKind::NotFound => false,
                Err(error) => return Err(StoreError::io("checking a block file", &path)(error)),
            };
            if !intact {
                tracing::warn!(cid = %block.cid, "block file missing or truncated; dropping the block");
                self.remove_locked(&block.cid, &key)?;
                dropped += 1;
            }
        }
        Ok(dropped)
    }

    /// Remove block files without metadata and temporary files; returns (orphans, temps).
    /// Only at open, when no `put` can be between its rename and its metadata insert.
    pub(super) fn remove_orphan_files(&self) -> Result<(u64, u64)> {
        let (mut orphans, mut temps) = (0, 0);
        let root = &self.inner.root;
        for shard in
            fs::read_dir(root).map_err(StoreError::io("listing the blocks directory", root))?
        {
            let shard = shard.map_err(StoreError::io("listing the blocks directory", root))?;
            if !shard.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let dir = shard.path();
            for file in
                fs::read_dir(&dir).map_err(StoreError::io("listing a blocks shard", &dir))?
            {
                let file = file.map_err(StoreError::io("listing a blocks shard", &dir))?;
                let name = file.file_name();
                let Some(name) = name.to_str() else { continue };
                if name.ends_with(TEMP_SUFFIX) {
                    remove_file_if_present(&file.path());
                    temps += 1;
                } else if let Some(cid) = name.strip_suffix(DATA_SUFFIX) {
                    let Ok(cid) = Cid::from_str(cid) else {
                        tracing::warn!(file = %file.path().display(), "unexpected file among the blocks; left alone");
                        continue;
                    };
                    let has_meta = self
                        .inner
                        .meta
                        .contains_key(Self::key(&cid))
                        .map_err(StoreError::db("looking up a block"))?;
                    if !has_meta {
                        remove_file_if_present(&file.path());
                        orphans += 1;
                    }
                }
            }
        }
        Ok((orphans, temps))
    }
}
