//! [`Store`]: blocks, pins and station state behind one cheap cloneable handle.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use cid::Cid;

use crate::blocking;
use crate::blockstore::{
    BlockInfo, Blockstore, BlockstoreStats, FileBlockstore, MemoryBlockstore, SledBlockstore,
};
use crate::error::{Result, StoreError};
use crate::kv::Kv;

/// sled keeps up to this much of the database in its page cache. Its default (1 GiB) would
/// let a long-running station's memory grow with its archive; blocks are mostly written
/// once and read a few times, so a small cache loses little: at 8 MiB the gateway serves a
/// segment as fast as at 32 MiB (docs/benchmarks.md, station memory notes).
pub const SLED_CACHE_BYTES_DEFAULT: u64 = 8 * 1024 * 1024;
/// Environment variable that overrides [`SLED_CACHE_BYTES_DEFAULT`] (a byte count), read
/// once by [`Store::open`]: the knob for trading memory against gateway reads served from
/// the cache (docs/benchmarks.md measures both).
pub const SLED_CACHE_ENV: &str = "IPFM_SLED_CACHE_BYTES";
/// Accepted cache sizes: below 1 MiB sled's 256 cache shards hold almost nothing; above
/// 1 GiB is sled's own default, the unbounded growth the cap exists to avoid.
pub const SLED_CACHE_BYTES_RANGE: std::ops::RangeInclusive<u64> = (1 << 20)..=(1 << 30);
const PINS_TREE: &str = "pins";
const STATE_TREE: &str = "state";
/// Directory of the block files, inside the store directory next to sled's own files.
pub const BLOCKS_DIR: &str = "blocks";

/// Where a persistent store keeps block bytes (metadata, pins and state are always in sled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BlockBackend {
    /// One file per block under `<store dir>/blocks/` ([`FileBlockstore`]); what
    /// [`Store::open`] uses. Opening moves blocks an older version kept in sled into files.
    #[default]
    Files,
    /// Block bytes inside sled ([`SledBlockstore`]), the layout before block files. Kept to
    /// compare the two (tests, `net_bench --sled-store`); refused on a store that already
    /// has block files, whose blocks it would not see.
    Sled,
}

/// The station's storage. Clone it freely: clones share one database.
///
/// See the crate docs for how work is scheduled and what is durable when.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    blocks: Blocks,
    pub(crate) pins: Kv,
    pub(crate) state: Kv,
    /// Held by GC from mark to sweep and by pin changes, so a pin added mid-GC cannot
    /// have its blocks swept by a mark phase that did not see it.
    pub(crate) pin_lock: tokio::sync::Mutex<()>,
    /// Every GC report, for whoever follows removals (e.g. the DHT provider set).
    pub(crate) gc_reports: tokio::sync::broadcast::Sender<Arc<crate::GcReport>>,
    db: Option<sled::Db>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("persistent", &self.is_persistent())
            .finish_non_exhaustive()
    }
}

/// GC reports a follower may fall behind by before it misses some (GC runs are minutes
/// apart, so this is only reached by a follower that stopped reading).
const GC_REPORTS_QUEUED: usize = 16;

fn gc_report_channel() -> tokio::sync::broadcast::Sender<Arc<crate::GcReport>> {
    tokio::sync::broadcast::channel(GC_REPORTS_QUEUED).0
}

/// Opens sled's database in `path`, working around a sled 0.34 recovery bug: sled writes a
/// snapshot to `snap.<lsn>.generating` and renames it when complete, but at open it also
/// considers `.generating` files, so a process killed while writing one leaves a database
/// that fails to open with "Read corrupted data" (spacejam/sled#1527; our SIGKILL test,
/// store/tests/crash.rs, hit it). An unrenamed snapshot is by definition unfinished and the
/// previous one is still there, so on that error the leftovers are removed and the open is
/// tried once more. Only then: while another process holds the database (and may be
/// writing a snapshot), sled refuses with a lock error instead.
fn open_sled(path: &Path, cache_bytes: u64) -> std::result::Result<sled::Db, sled::Error> {
    let open = || {
        sled::Config::new()
            .path(path)
            .cache_capacity(cache_bytes)
            .open()
    };
    match open() {
        Err(sled::Error::Corruption { .. }) if remove_unfinished_snapshots(path) > 0 => open(),
        other => other,
    }
}

/// Removes `snap.*.generating` files from sled's directory; returns how many.
fn remove_unfinished_snapshots(path: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with("snap.") && name.ends_with(".generating")) {
            continue;
        }
        match std::fs::remove_file(entry.path()) {
            Ok(()) => {
                tracing::warn!(file = %entry.path().display(), "removed an unfinished sled snapshot left by a crash");
                removed += 1;
            }
            Err(error) => {
                tracing::warn!(file = %entry.path().display(), %error, "cannot remove an unfinished sled snapshot");
            }
        }
    }
    removed
}

enum Blocks {
    Memory(MemoryBlockstore),
    Files(FileBlockstore),
    Sled(SledBlockstore),
}

impl Store {
    /// Open (creating if needed) the store in the directory `path`: sled's database, and
    /// the block files in its `blocks/` subdirectory ([`BlockBackend::Files`]).
    ///
    /// sled takes an exclusive lock on the database, so a second process opening the same
    /// path gets [`StoreError::Open`].
    pub async fn open(path: impl AsRef<Path>) -> Result<Store> {
        Self::open_with(path, BlockBackend::Files).await
    }

    /// Like [`Store::open`], with block bytes kept where `backend` says.
    pub async fn open_with(path: impl AsRef<Path>, backend: BlockBackend) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        let cache_bytes = sled_cache_bytes()?;
        tracing::debug!(cache_bytes, ?backend, path = %path.display(), "opening store");
        blocking(move || {
            let db = open_sled(&path, cache_bytes).map_err(|source| StoreError::Open {
                path: path.clone(),
                source,
            })?;
            let blocks = match backend {
                BlockBackend::Files => {
                    Blocks::Files(FileBlockstore::open(&db, path.join(BLOCKS_DIR))?)
                }
                BlockBackend::Sled => {
                    refuse_sled_over_block_files(&path)?;
                    Blocks::Sled(SledBlockstore::open(&db)?)
                }
            };
            Ok(Store {
                inner: Arc::new(Inner {
                    blocks,
                    pins: Kv::sled(&db, PINS_TREE)?,
                    state: Kv::sled(&db, STATE_TREE)?,
                    pin_lock: tokio::sync::Mutex::new(()),
                    gc_reports: gc_report_channel(),
                    db: Some(db),
                }),
            })
        })
        .await
    }

    /// A store that lives in memory only (tests, throwaway nodes): nothing survives the
    /// last clone being dropped.
    pub fn open_in_memory() -> Store {
        Store {
            inner: Arc::new(Inner {
                blocks: Blocks::Memory(MemoryBlockstore::new()),
                pins: Kv::memory(),
                state: Kv::memory(),
                pin_lock: tokio::sync::Mutex::new(()),
                gc_reports: gc_report_channel(),
                db: None,
            }),
        }
    }

    /// Whether this store keeps its data on disk.
    pub fn is_persistent(&self) -> bool {
        self.inner.db.is_some()
    }

    /// Make every write so far durable (fsync). Dropping the last clone of a sled store
    /// also flushes, but blockingly on the dropping thread; async code should call this
    /// first so the drop finds nothing left to write.
    ///
    /// Without it, block metadata reaches disk through sled's background flusher within
    /// about half a second and block files when the kernel writes them back (a power loss
    /// before that loses those blocks, detectably: see `FileBlockstore`); pins and state
    /// are flushed by their own setters.
    pub async fn flush(&self) -> Result<()> {
        let Some(db) = self.inner.db.clone() else {
            return Ok(());
        };
        let files = match &self.inner.blocks {
            Blocks::Files(files) => Some(files.clone()),
            Blocks::Memory(_) | Blocks::Sled(_) => None,
        };
        blocking(move || {
            // Files before metadata, so flushed metadata never names an unflushed file.
            if let Some(files) = files {
                files.sync()?;
            }
            db.flush()
                .map(drop)
                .map_err(StoreError::db("flushing the database"))
        })
        .await
    }
}

/// Forward a [`Blockstore`] call to whichever backend the store uses.
macro_rules! dispatch {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match &$self.inner.blocks {
            Blocks::Memory(blocks) => blocks.$method($($arg),*).await,
            Blocks::Files(blocks) => blocks.$method($($arg),*).await,
            Blocks::Sled(blocks) => blocks.$method($($arg),*).await,
        }
    };
}

impl Blockstore for Store {
    async fn get(&self, cid: &Cid) -> Result<Option<Vec<u8>>> {
        dispatch!(self.get(cid))
    }

    async fn put(&self, cid: &Cid, bytes: Vec<u8>) -> Result<()> {
        dispatch!(self.put(cid, bytes))
    }

    async fn put_verified(&self, cid: &Cid, bytes: Vec<u8>) -> Result<()> {
        dispatch!(self.put_verified(cid, bytes))
    }

    async fn has(&self, cid: &Cid) -> Result<bool> {
        dispatch!(self.has(cid))
    }

    async fn delete(&self, cid: &Cid) -> Result<bool> {
        dispatch!(self.delete(cid))
    }

    async fn block_info(&self, cid: &Cid) -> Result<Option<BlockInfo>> {
        dispatch!(self.block_info(cid))
    }

    async fn blocks(&self) -> Result<Vec<BlockInfo>> {
        dispatch!(self.blocks())
    }

    async fn delete_if_inserted_before(
        &self,
        cid: &Cid,
        cutoff: SystemTime,
    ) -> Result<Option<u64>> {
        dispatch!(self.delete_if_inserted_before(cid, cutoff))
    }

    async fn cids(&self) -> Result<Vec<Cid>> {
        dispatch!(self.cids())
    }

    async fn stats(&self) -> Result<BlockstoreStats> {
        dispatch!(self.stats())
    }
}

/// [`BlockBackend::Sled`] would not see blocks kept in files: refuse a store that has some.
fn refuse_sled_over_block_files(path: &Path) -> Result<()> {
    let dir = path.join(BLOCKS_DIR);
    let has_files = match std::fs::read_dir(&dir) {
        Ok(mut entries) => entries.next().is_some(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => false,
        Err(error) => return Err(StoreError::io("listing the blocks directory", &dir)(error)),
    };
    if has_files {
        return Err(StoreError::InvalidSetting {
            name: "block backend",
            detail: format!(
                "{} holds block files; the sled block backend would not see them",
                dir.display()
            ),
        });
    }
    Ok(())
}

/// The page cache size for [`Store::open`]: [`SLED_CACHE_ENV`] if set, else the default.
fn sled_cache_bytes() -> Result<u64> {
    match std::env::var(SLED_CACHE_ENV) {
        Err(std::env::VarError::NotPresent) => Ok(SLED_CACHE_BYTES_DEFAULT),
        Err(std::env::VarError::NotUnicode(_)) => Err(StoreError::InvalidSetting {
            name: SLED_CACHE_ENV,
            detail: "not valid UTF-8".into(),
        }),
        Ok(text) => parse_cache_bytes(&text).map_err(|detail| StoreError::InvalidSetting {
            name: SLED_CACHE_ENV,
            detail,
        }),
    }
}

/// A cache size in bytes (decimal digits), within [`SLED_CACHE_BYTES_RANGE`].
fn parse_cache_bytes(text: &str) -> std::result::Result<u64, String> {
    let bytes: u64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a byte count (decimal digits, e.g. 16777216)"))?;
    if SLED_CACHE_BYTES_RANGE.contains(&bytes) {
        Ok(bytes)
    } else {
        Err(format!(
            "{bytes} is outside {}..={} bytes (1 MiB to 1 GiB)",
            SLED_CACHE_BYTES_RANGE.start(),
            SLED_CACHE_BYTES_RANGE.end()
        ))
    }
}

#[cfg(test)]
mod cache_setting_tests {
    use super::*;

    #[test]
    fn accepts_byte_counts_within_range() {
        assert_eq!(parse_cache_bytes("8388608"), Ok(8 << 20));
        assert_eq!(parse_cache_bytes(" 1048576\n"), Ok(1 << 20));
        assert_eq!(parse_cache_bytes("1073741824"), Ok(1 << 30));
    }

    #[test]
    fn rejects_out_of_range_and_non_numbers() {
        for bad in [
            "0",
            "1048575",
            "1073741825",
            "18446744073709551616",
            "16MiB",
            "",
            "-1",
        ] {
            let err = parse_cache_bytes(bad).expect_err(bad);
            assert!(!err.is_empty(), "{bad}: empty error");
        }
        assert!(parse_cache_bytes("1048575")
            .unwrap_err()
            .contains("outside"));
    }
}
