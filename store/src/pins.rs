//! Named recursive pins: each name holds one root CID, and everything reachable from a
//! root through dag-pb links is kept by GC.

use cid::Cid;

use crate::error::{Result, StoreError};
use crate::{blocking, Store};

fn decode_pin(name: Vec<u8>, root: &[u8]) -> Result<(String, Cid)> {
    let name = String::from_utf8(name).map_err(|e| StoreError::Corrupt {
        what: "pin name",
        detail: e.to_string(),
    })?;
    let root = Cid::try_from(root).map_err(|e| StoreError::Corrupt {
        what: "pin root",
        detail: format!("pin {name:?}: {e}"),
    })?;
    Ok((name, root))
}

impl Store {
    /// Pin `root` (and, recursively, everything it links to) under `name`, replacing any
    /// root that name had; returns the replaced root. The root's blocks need not be stored
    /// yet. Durable when it returns. Waits for a running GC to finish, so a GC never
    /// sweeps blocks of a pin its mark phase did not see.
    pub async fn pin(&self, name: &str, root: Cid) -> Result<Option<Cid>> {
        let _no_gc_running = self.inner.pin_lock.lock().await;
        let (pins, name) = (self.inner.pins.clone(), name.to_owned());
        blocking(move || {
            pins.set(name.as_bytes(), root.to_bytes(), "writing a pin")?
                .map(|old| decode_pin(name.into_bytes(), &old).map(|(_, cid)| cid))
                .transpose()
        })
        .await
    }

    /// Remove the pin `name`; returns the root it held. Its blocks become collectable once
    /// no other pin reaches them and they are older than GC's minimum age.
    pub async fn unpin(&self, name: &str) -> Result<Option<Cid>> {
        let _no_gc_running = self.inner.pin_lock.lock().await;
        let (pins, name) = (self.inner.pins.clone(), name.to_owned());
        blocking(move || {
            pins.remove(name.as_bytes(), "removing a pin")?
                .map(|old| decode_pin(name.into_bytes(), &old).map(|(_, cid)| cid))
                .transpose()
        })
        .await
    }

    /// The root pinned under `name`.
    pub async fn pinned(&self, name: &str) -> Result<Option<Cid>> {
        let (pins, name) = (self.inner.pins.clone(), name.to_owned());
        blocking(move || {
            pins.get(name.as_bytes(), "reading a pin")?
                .map(|root| decode_pin(name.into_bytes(), &root).map(|(_, cid)| cid))
                .transpose()
        })
        .await
    }

    /// All pins as (name, root), sorted by name.
    pub async fn pins(&self) -> Result<Vec<(String, Cid)>> {
        let pins = self.inner.pins.clone();
        blocking(move || {
            pins.entries("listing pins")?
                .into_iter()
                .map(|(name, root)| decode_pin(name, &root))
                .collect()
        })
        .await
    }
}
