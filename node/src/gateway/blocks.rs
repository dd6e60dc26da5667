//! Where the gateway gets blocks: inline (identity CIDs), the local store, then the
//! [`BlockFetcher`] hook. Every block from the network is checked against its CID before it
//! is used, so a lying peer can make a request fail but never serve wrong bytes; blocks
//! from the store (verified when they were put) are re-hashed only with `hash_on_read`.

use std::sync::Arc;

use cid::Cid;
use ipfm_protocol::cid::{verify, CidError, IDENTITY};
use ipfm_store::Blockstore;

use super::error::{GatewayError, Result};
use super::BlockFetcher;

/// The gateway's view of the block world. Cheap to clone (store handles are `Arc`s).
pub(crate) struct Blocks<S> {
    pub store: S,
    pub fetcher: Arc<dyn BlockFetcher>,
    pub hash_on_read: bool,
}

impl<S: Clone> Clone for Blocks<S> {
    fn clone(&self) -> Self {
        Blocks {
            store: self.store.clone(),
            fetcher: self.fetcher.clone(),
            hash_on_read: self.hash_on_read,
        }
    }
}

impl<S: Blockstore> Blocks<S> {
    /// The verified bytes of block `cid`; `BlockNotFound` if no source has it.
    pub async fn get(&self, cid: &Cid) -> Result<Vec<u8>> {
        if cid.hash().code() == IDENTITY {
            // The "hash" is the block itself (e.g. the empty-block probe `bafkqaaa`).
            return Ok(cid.hash().digest().to_vec());
        }
        if let Some(bytes) = self.store.get(cid).await? {
            if self.hash_on_read {
                check(cid, &bytes)?;
            }
            return Ok(bytes);
        }
        match self.fetcher.fetch(cid).await {
            Some(bytes) => {
                check(cid, &bytes)?;
                Ok(bytes)
            }
            None => Err(GatewayError::BlockNotFound(*cid)),
        }
    }

    /// Whether `cid` can be served without asking the network.
    pub async fn is_local(&self, cid: &Cid) -> Result<bool> {
        Ok(cid.hash().code() == IDENTITY || self.store.has(cid).await?)
    }
}

fn check(cid: &Cid, bytes: &[u8]) -> Result<()> {
    verify(cid, bytes).map_err(|e| match e {
        CidError::UnsupportedHash(code) => GatewayError::NotImplemented(format!(
            "{cid} uses multihash {code:#x}, which ipfm cannot verify"
        )),
        other => GatewayError::corrupt(cid, other),
    })
}
