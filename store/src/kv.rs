//! A small key-value map for pins and station state: a sled tree, or a map in memory.
//!
//! Every write is durable when it returns (the sled variant flushes the database, which
//! fsyncs), because what lives here — pins, the station key, sequence numbers — is small,
//! rarely written, and must not go backwards after a crash. All methods block; the
//! [`Store`](crate::Store) calls them on tokio's blocking pool.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::error::{Result, StoreError};

#[derive(Clone)]
pub(crate) enum Kv {
    Sled { db: sled::Db, tree: sled::Tree },
    Memory(Arc<Mutex<BTreeMap<Vec<u8>, Vec<u8>>>>),
}

/// What an [`Kv::update`] closure decides: the new value (`None` = leave as is) and what
/// the caller gets back.
pub(crate) type Update<T> = (Option<Vec<u8>>, T);

impl Kv {
    pub(crate) fn sled(db: &sled::Db, name: &'static str) -> Result<Kv> {
        let tree = db
            .open_tree(name)
            .map_err(StoreError::db("opening a metadata tree"))?;
        Ok(Kv::Sled {
            db: db.clone(),
            tree,
        })
    }

    pub(crate) fn memory() -> Kv {
        Kv::Memory(Arc::default())
    }

    fn with_map<T>(
        map: &Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
        f: impl FnOnce(&mut BTreeMap<Vec<u8>, Vec<u8>>) -> T,
    ) -> T {
        // Every change is one map operation, so a poisoned lock still guards sound data.
        f(&mut map.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub(crate) fn get(&self, key: &[u8], op: &'static str) -> Result<Option<Vec<u8>>> {
        match self {
            Kv::Sled { tree, .. } => Ok(tree
                .get(key)
                .map_err(StoreError::db(op))?
                .map(|v| v.to_vec())),
            Kv::Memory(map) => Ok(Kv::with_map(map, |m| m.get(key).cloned())),
        }
    }

    /// All entries in key order.
    pub(crate) fn entries(&self, op: &'static str) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        match self {
            Kv::Sled { tree, .. } => tree
                .iter()
                .map(|entry| {
                    let (key, value) = entry.map_err(StoreError::db(op))?;
                    Ok((key.to_vec(), value.to_vec()))
                })
                .collect(),
            Kv::Memory(map) => Ok(Kv::with_map(map, |m| {
                m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
            })),
        }
    }

    /// Set `key` to `value` durably; returns the previous value.
    pub(crate) fn set(
        &self,
        key: &[u8],
        value: Vec<u8>,
        op: &'static str,
    ) -> Result<Option<Vec<u8>>> {
        let previous = match self {
            Kv::Sled { tree, .. } => tree
                .insert(key, value)
                .map_err(StoreError::db(op))?
                .map(|v| v.to_vec()),
            Kv::Memory(map) => Kv::with_map(map, |m| m.insert(key.to_vec(), value)),
        };
        self.flush(op)?;
        Ok(previous)
    }

    /// Set every `(key, value)` in one atomic step (all or none survive a crash), with one
    /// flush.
    pub(crate) fn set_all(&self, entries: Vec<(Vec<u8>, Vec<u8>)>, op: &'static str) -> Result<()> {
        match self {
            Kv::Sled { tree, .. } => {
                let mut batch = sled::Batch::default();
                for (key, value) in entries {
                    batch.insert(key, value);
                }
                tree.apply_batch(batch).map_err(StoreError::db(op))?;
            }
            Kv::Memory(map) => Kv::with_map(map, |m| m.extend(entries)),
        }
        self.flush(op)
    }

    /// Remove `key` durably; returns the previous value.
    pub(crate) fn remove(&self, key: &[u8], op: &'static str) -> Result<Option<Vec<u8>>> {
        let previous = match self {
            Kv::Sled { tree, .. } => tree
                .remove(key)
                .map_err(StoreError::db(op))?
                .map(|v| v.to_vec()),
            Kv::Memory(map) => Kv::with_map(map, |m| m.remove(key)),
        };
        self.flush(op)?;
        Ok(previous)
    }

    /// Atomically read-modify-write `key`: `decide` sees the current value and returns the
    /// new one (or `None` to leave it) plus a result. On sled, a concurrent change between
    /// the read and the write makes it retry with the fresh value (compare-and-swap), so
    /// `decide` may run more than once. The write is on disk before this returns.
    pub(crate) fn update<T>(
        &self,
        key: &[u8],
        op: &'static str,
        mut decide: impl FnMut(Option<&[u8]>) -> Result<Update<T>>,
    ) -> Result<T> {
        match self {
            Kv::Sled { tree, .. } => loop {
                let current = tree.get(key).map_err(StoreError::db(op))?;
                let (new, out) = decide(current.as_deref())?;
                let Some(new) = new else { return Ok(out) };
                let swapped = tree
                    .compare_and_swap(key, current.as_ref(), Some(new))
                    .map_err(StoreError::db(op))?;
                if swapped.is_ok() {
                    self.flush(op)?;
                    return Ok(out);
                }
            },
            Kv::Memory(map) => Kv::with_map(map, |m| {
                let (new, out) = decide(m.get(key).map(Vec::as_slice))?;
                if let Some(new) = new {
                    m.insert(key.to_vec(), new);
                }
                Ok(out)
            }),
        }
    }

    pub(crate) fn flush(&self, op: &'static str) -> Result<()> {
        match self {
            Kv::Sled { db, .. } => db.flush().map(drop).map_err(StoreError::db(op)),
            Kv::Memory(_) => Ok(()),
        }
    }
}
