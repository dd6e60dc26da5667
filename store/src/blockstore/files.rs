//! Blocks as files, metadata in sled: the persistent backend of [`crate::Store`].
//!
//! Why: sled stores values above a quarter of its segment size as separate blob files and
//! rewrites them during node maintenance, so a 256 KiB block was written several times and
//! every `put` waited for sled's log (docs/benchmarks.md, network section). Here a block's
//! bytes are written once, to a file of their own, like Kubo's flatfs:
//!
//! ```text
//! <store dir>/blocks/<shard>/<cid>.data
//! ```
//!
//! `<cid>` is the storage CID (always CIDv1, see the module docs of `blockstore`) in its
//! canonical base32 text form, and `<shard>` is its next-to-last character (the last one
//! carries padding bits; the one before is uniform): 32 directories, all created at open.
//! Kubo's flatfs uses two characters (1024 directories, each made by the first block that
//! lands in it), but a `mkdir` costs 0.6–6 ms here, so with 1024 lazily made shards most
//! of a fresh store's first few hundred puts paid one, and that made the tail latency of
//! one-by-one fetches; ext4's hashed directories hold the tens of thousands of blocks per
//! shard a very large store would put there without trouble. Files are named by
//! the whole CID rather than the multihash so that every file belongs to exactly one
//! metadata entry and deleting one entry can never take bytes another entry still names.
//!
//! The `block_meta` sled tree keeps what [`SledBlockstore`](super::SledBlockstore) keeps:
//! CID bytes → insertion time ‖ size. Listing and GC scan only that tree.
//!
//! # Crash safety without an fsync per block
//!
//! - `put` writes a temporary file in the block's shard directory, renames it over the
//!   final name (a reader sees the whole block or nothing), and only then inserts the
//!   metadata. So after a process crash every metadata entry has its full file.
//! - `delete` removes the metadata first, then unlinks the file.
//! - A crash can leave a file without metadata (between rename and insert, or between
//!   removal and unlink) and temporary files: [`FileBlockstore::open`] removes them.
//! - After a power loss, a file the kernel had not written back yet may be missing or
//!   short while sled's metadata survived. `open` checks every entry's file size, and
//!   `get` checks it again: an entry whose file is missing or of the wrong size is treated
//!   as absent and dropped, with a warning. Nothing ever returns a truncated block.
//! - [`FileBlockstore::sync`] (called by `Store::flush`) fsyncs the files and directories
//!   written since the last sync, so a flushed store keeps its blocks across power loss too.
//!
//! Operations on one CID (put, delete, the sweep's age-checked delete) are serialised by a
//! striped lock, so GC can never unlink a file that a concurrent `put` just refreshed.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::hash::{Hash, Hasher};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use cid::Cid;

mod recovery;

use super::read_cache::ReadCache;
use super::sled_store::{encode_meta, list_infos, read_info, read_meta, META_TREE};
use super::{now_millis, storage_cid, to_millis, BlockInfo, Blockstore, Check};
use crate::blocking;
use crate::error::{Result, StoreError};

/// The characters a shard directory is named by: RFC 4648 base32, lower case (the CID's
/// multibase `b`).
const SHARD_NAMES: &str = "abcdefghijklmnopqrstuvwxyz234567";
/// Suffix of a complete block file.
const DATA_SUFFIX: &str = ".data";
/// Suffix of a block file still being written (removed at open if a crash left it).
const TEMP_SUFFIX: &str = ".tmp";
/// Stripes of the per-CID lock: enough that concurrent puts of different blocks rarely wait
/// on each other, few enough to allocate once.
const LOCK_STRIPES: usize = 64;
/// Files written but not yet fsynced that are remembered for the next [`FileBlockstore::sync`];
/// past this, the `put` that reaches it syncs them, so the list stays bounded.
const MAX_UNSYNCED_FILES: usize = 16_384;
/// Blocks moved out of the old `blocks` tree between two syncs during migration.
const MIGRATION_BATCH: usize = 256;

/// A [`Blockstore`] with block bytes in files and metadata in sled (see the module docs).
/// Cloning gives another handle to the same blocks.
///
/// Every operation runs on tokio's blocking pool, including the hash check of `put`.
#[derive(Clone)]
pub struct FileBlockstore {
    inner: Arc<Inner>,
}

struct Inner {
    /// `<store dir>/blocks`
    root: PathBuf,
    meta: sled::Tree,
    key_locks: Vec<Mutex<()>>,
    unsynced: Mutex<Unsynced>,
    /// Makes temporary file names unique within this process.
    temp_counter: AtomicU64,
    /// Blocks read lately (see `read_cache`).
    read_cache: ReadCache,
}

/// Written since the last sync.
#[derive(Default)]
struct Unsynced {
    files: Vec<PathBuf>,
    dirs: HashSet<PathBuf>,
}

/// What [`FileBlockstore::open`] found and repaired.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct OpenReport {
    migrated: u64,
    dropped_entries: u64,
    removed_orphans: u64,
    removed_temps: u64,
}

impl FileBlockstore {
    /// Use (creating if needed) the block files under `root` and the metadata tree of `db`.
    /// Blocking.
    ///
    /// Also moves blocks a previous version left in sled's `blocks` tree into files (one
    /// block in memory at a time), drops metadata whose file is missing or short, and
    /// removes files that have no metadata and temporary files left by a crash. Open one
    /// handle per store directory (clone it to share): that cleanup assumes no other handle
    /// is between writing a file and its metadata.
    pub fn open(db: &sled::Db, root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        let _span = tracing::info_span!("open_file_blockstore", root = %root.display()).entered();
        fs::create_dir_all(&root)
            .map_err(StoreError::io("creating the blocks directory", &root))?;
        // All shards up front: a `put` never pays a `mkdir` (see the module docs).
        for shard in SHARD_NAMES.chars() {
            let dir = root.join(shard.to_string());
            fs::create_dir_all(&dir)
                .map_err(StoreError::io("creating a blocks shard directory", &dir))?;
        }
        let store = FileBlockstore {
            inner: Arc::new(Inner {
                meta: db
                    .open_tree(META_TREE)
                    .map_err(StoreError::db("opening the block metadata tree"))?,
                root,
                key_locks: (0..LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
                unsynced: Mutex::default(),
                temp_counter: AtomicU64::new(0),
                read_cache: ReadCache::new(),
            }),
        };
        let mut report = OpenReport {
            migrated: store.migrate_sled_blocks(db)?,
            ..OpenReport::default()
        };
        report.dropped_entries = store.drop_entries_without_files()?;
        (report.removed_orphans, report.removed_temps) = store.remove_orphan_files()?;
        if report != OpenReport::default() {
            tracing::info!(
                migrated_from_sled = report.migrated,
                dropped_entries_without_file = report.dropped_entries,
                removed_files_without_entry = report.removed_orphans,
                removed_temporary_files = report.removed_temps,
                "block files checked"
            );
        }
        Ok(store)
    }

    /// Make every block written so far durable: fsync the files and the directories their
    /// names were added to. Blocking.
    pub fn sync(&self) -> Result<()> {
        let Unsynced { files, dirs } = std::mem::take(&mut *lock(&self.inner.unsynced));
        for path in &files {
            match File::open(path) {
                Ok(file) => file
                    .sync_data()
                    .map_err(StoreError::io("syncing a block file", path))?,
                // Deleted since it was written: nothing left to make durable.
                Err(error) if error.kind() == ErrorKind::NotFound => {}
                Err(error) => {
                    return Err(StoreError::io("opening a block file to sync it", path)(
                        error,
                    ))
                }
            }
        }
        for dir in &dirs {
            File::open(dir)
                .and_then(|dir| dir.sync_all())
                .map_err(StoreError::io("syncing a blocks directory", dir))?;
        }
        Ok(())
    }

    fn key(cid: &Cid) -> Vec<u8> {
        storage_cid(cid).to_bytes()
    }

    /// The stripe of the per-CID lock that `key` falls in.
    fn lock_key(&self, key: &[u8]) -> MutexGuard<'_, ()> {
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        let stripe = (hasher.finish() % LOCK_STRIPES as u64) as usize;
        lock(&self.inner.key_locks[stripe])
    }

    /// `<root>/<shard>` and `<cid>.data` for a storage CID.
    fn location(&self, cid: &Cid) -> (PathBuf, String) {
        let name = storage_cid(cid).to_string();
        // Base32 CIDs are ASCII and far longer than 2 characters; the fallback only
        // guards against a surprising text form.
        let shard = name
            .get(name.len().saturating_sub(2)..name.len().saturating_sub(1))
            .unwrap_or("_");
        (self.inner.root.join(shard), format!("{name}{DATA_SUFFIX}"))
    }

    fn path(&self, cid: &Cid) -> PathBuf {
        let (dir, name) = self.location(cid);
        dir.join(name)
    }

    /// `put` and `put_verified`: hashing (when asked) and the write, off the async runtime.
    async fn put_checked(&self, cid: &Cid, bytes: Vec<u8>, check: Check) -> Result<()> {
        let (this, cid) = (self.clone(), *cid);
        blocking(move || {
            check.run(&cid, &bytes)?;
            this.put_blocking(&cid, &bytes)
        })
        .await
    }

    /// The body of `put` once the bytes are known to match the CID.
    fn put_blocking(&self, cid: &Cid, bytes: &[u8]) -> Result<()> {
        let key = Self::key(cid);
        let meta = encode_meta(now_millis(), bytes.len() as u64);
        let _guard = self.lock_key(&key);
        let stored = self
            .inner
            .meta
            .contains_key(&key)
            .map_err(StoreError::db("looking up a block"))?;
        if !stored {
            // File first: metadata must never name a file that is not complete.
            let path = self.write_file(cid, bytes)?;
            if let Err(error) = self.inner.meta.insert(&key, &meta[..]) {
                remove_file_if_present(&path);
                return Err(StoreError::db("storing block metadata")(error));
            }
        } else {
            // Same hash, same bytes: only the insertion time changes.
            self.inner
                .meta
                .insert(&key, &meta[..])
                .map_err(StoreError::db("refreshing block metadata"))?;
        }
        Ok(())
    }

    /// Write `bytes` to the block file of `cid` atomically (temporary file, then rename);
    /// returns the file's path.
    fn write_file(&self, cid: &Cid, bytes: &[u8]) -> Result<PathBuf> {
        let (dir, name) = self.location(cid);
        let path = dir.join(&name);
        let temp = dir.join(format!(
            ".{name}.{}-{}{TEMP_SUFFIX}",
            std::process::id(),
            self.inner.temp_counter.fetch_add(1, Ordering::Relaxed)
        ));
        let mut new_dir = false;
        let mut file = match OpenOptions::new().write(true).create_new(true).open(&temp) {
            Err(error) if error.kind() == ErrorKind::NotFound => {
                // The shard was removed since open (or the name fell back to "_").
                fs::create_dir_all(&dir)
                    .map_err(StoreError::io("creating a blocks shard directory", &dir))?;
                new_dir = true;
                OpenOptions::new().write(true).create_new(true).open(&temp)
            }
            other => other,
        }
        .map_err(StoreError::io("creating a block file", &temp))?;
        let written = file
            .write_all(bytes)
            .map_err(StoreError::io("writing a block file", &temp));
        drop(file);
        let renamed = written.and_then(|()| {
            fs::rename(&temp, &path).map_err(StoreError::io("renaming a block file", &path))
        });
        if let Err(error) = renamed {
            remove_file_if_present(&temp);
            return Err(error);
        }
        self.note_unsynced(path.clone(), dir, new_dir)?;
        Ok(path)
    }

    fn note_unsynced(&self, file: PathBuf, dir: PathBuf, new_dir: bool) -> Result<()> {
        let full = {
            let mut unsynced = lock(&self.inner.unsynced);
            unsynced.files.push(file);
            unsynced.dirs.insert(dir);
            if new_dir {
                unsynced.dirs.insert(self.inner.root.clone());
            }
            unsynced.files.len() >= MAX_UNSYNCED_FILES
        };
        if full {
            tracing::debug!(
                files = MAX_UNSYNCED_FILES,
                "syncing block files written so far"
            );
            self.sync()?;
        }
        Ok(())
    }

    fn get_blocking(&self, cid: &Cid) -> Result<Option<Vec<u8>>> {
        let key = Self::key(cid);
        let Some((_, size)) = read_meta(&self.inner.meta, &key)? else {
            return Ok(None);
        };
        match self.read_file(cid, size)? {
            Some(bytes) => Ok(Some(bytes)),
            // Missing or short: maybe a delete is between its two steps; decide under the lock.
            None => self.get_or_drop_damaged(cid, &key),
        }
    }

    /// The block file's bytes if it exists and has `size` bytes.
    fn read_file(&self, cid: &Cid, size: u64) -> Result<Option<Vec<u8>>> {
        let path = self.path(cid);
        match fs::read(&path) {
            Ok(bytes) if bytes.len() as u64 == size => Ok(Some(bytes)),
            Ok(_) => Ok(None),
            Err(error) if error.kind() == ErrorKind::NotFound => Ok(None),
            Err(error) => Err(StoreError::io("reading a block file", &path)(error)),
        }
    }

    /// Second look at a block whose file was missing or short, with writers of that CID
    /// held off: if its metadata is still there and the file still bad, the metadata is
    /// dropped (a power loss lost the file) and the block reported absent.
    fn get_or_drop_damaged(&self, cid: &Cid, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let _guard = self.lock_key(key);
        let Some((_, size)) = read_meta(&self.inner.meta, key)? else {
            return Ok(None);
        };
        if let Some(bytes) = self.read_file(cid, size)? {
            return Ok(Some(bytes));
        }
        tracing::warn!(%cid, size, "block file missing or truncated; dropping the block");
        self.remove_locked(cid, key)?;
        Ok(None)
    }

    /// Metadata first, then the file. The caller holds the CID's lock.
    fn remove_locked(&self, cid: &Cid, key: &[u8]) -> Result<bool> {
        self.inner.read_cache.remove(key);
        let existed = self
            .inner
            .meta
            .remove(key)
            .map_err(StoreError::db("removing block metadata"))?
            .is_some();
        let path = self.path(cid);
        match fs::remove_file(&path) {
            Ok(()) => Ok(existed),
            Err(error) if error.kind() == ErrorKind::NotFound => Ok(existed),
            Err(error) => Err(StoreError::io("removing a block file", &path)(error)),
        }
    }

    fn delete_if_inserted_before_blocking(&self, cid: &Cid, cutoff_ms: u64) -> Result<Option<u64>> {
        let key = Self::key(cid);
        let _guard = self.lock_key(&key);
        let Some((inserted_at_ms, size)) = read_meta(&self.inner.meta, &key)? else {
            return Ok(None);
        };
        if inserted_at_ms > cutoff_ms {
            return Ok(None);
        }
        self.remove_locked(cid, &key)?;
        Ok(Some(size))
    }
}

/// Lock a mutex whose data cannot be left half-updated by a panic (unit, or lists that are
/// only pushed to and taken whole).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn remove_file_if_present(path: &Path) {
    if let Err(error) = fs::remove_file(path) {
        if error.kind() != ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), %error, "could not remove a block file");
        }
    }
}

impl Blockstore for FileBlockstore {
    async fn get(&self, cid: &Cid) -> Result<Option<Vec<u8>>> {
        let key = Self::key(cid);
        if let Some(bytes) = self.inner.read_cache.get(&key) {
            return Ok(Some(bytes));
        }
        let ticket = self.inner.read_cache.ticket();
        let (this, cid) = (self.clone(), *cid);
        let bytes = blocking(move || this.get_blocking(&cid)).await?;
        if let Some(bytes) = &bytes {
            self.inner.read_cache.insert(key, bytes, ticket);
        }
        Ok(bytes)
    }

    async fn put(&self, cid: &Cid, bytes: Vec<u8>) -> Result<()> {
        self.put_checked(cid, bytes, Check::Hash).await
    }

    async fn put_verified(&self, cid: &Cid, bytes: Vec<u8>) -> Result<()> {
        self.put_checked(cid, bytes, Check::Trusted).await
    }

    async fn has(&self, cid: &Cid) -> Result<bool> {
        let (this, key) = (self.clone(), Self::key(cid));
        blocking(move || {
            this.inner
                .meta
                .contains_key(key)
                .map_err(StoreError::db("looking up a block"))
        })
        .await
    }

    async fn delete(&self, cid: &Cid) -> Result<bool> {
        let (this, cid) = (self.clone(), *cid);
        blocking(move || {
            let key = Self::key(&cid);
            let _guard = this.lock_key(&key);
            this.remove_locked(&cid, &key)
        })
        .await
    }

    async fn block_info(&self, cid: &Cid) -> Result<Option<BlockInfo>> {
        let (this, key) = (self.clone(), Self::key(cid));
        blocking(move || read_info(&this.inner.meta, &key)).await
    }

    async fn blocks(&self) -> Result<Vec<BlockInfo>> {
        let this = self.clone();
        blocking(move || list_infos(&this.inner.meta)).await
    }

    async fn delete_if_inserted_before(
        &self,
        cid: &Cid,
        cutoff: SystemTime,
    ) -> Result<Option<u64>> {
        let (this, cid, cutoff_ms) = (self.clone(), *cid, to_millis(cutoff));
        blocking(move || this.delete_if_inserted_before_blocking(&cid, cutoff_ms)).await
    }
}
