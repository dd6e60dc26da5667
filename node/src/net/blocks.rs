//! The network's view of the blockstore.
//!
//! `ipfm_store::Blockstore` uses `async fn`-style methods, which cannot be called through a
//! trait object. The swarm task needs one store handle of a type that does not make the whole
//! network generic, and lookups must never block its `poll`: [`BlockAccess`] returns boxed
//! `'static` futures that the bitswap behaviour polls alongside everything else.

use std::sync::Arc;

use cid::Cid;
use futures::future::BoxFuture;
use ipfm_store::Blockstore;

/// A blockstore failure, as seen by the network (the peer only ever learns "don't have").
#[derive(Debug, Clone, thiserror::Error)]
#[error("blockstore: {0}")]
pub struct BlockAccessError(pub String);

/// A future answering one block question.
pub type BlockFuture<T> = BoxFuture<'static, Result<T, BlockAccessError>>;

/// Block storage reachable from the swarm task.
pub trait BlockAccess: Send + Sync + 'static {
    /// The block's bytes, if stored.
    fn get(&self, cid: Cid) -> BlockFuture<Option<Vec<u8>>>;
    /// Whether the block is stored.
    fn has(&self, cid: Cid) -> BlockFuture<bool>;
    /// Store a block (the caller has verified it against `cid`).
    fn put(&self, cid: Cid, bytes: Vec<u8>) -> BlockFuture<()>;
}

/// Adapts any cloneable [`Blockstore`] (`ipfm_store::Store`, `MemoryBlockstore`).
#[derive(Clone)]
pub struct StoreBlocks<B>(pub B);

impl<B> StoreBlocks<B>
where
    B: Blockstore + Clone + 'static,
{
    /// The store as a shared trait object, ready for [`crate::net::swarm::spawn`].
    pub fn shared(store: B) -> Arc<dyn BlockAccess> {
        Arc::new(StoreBlocks(store))
    }
}

fn store_error(error: ipfm_store::StoreError) -> BlockAccessError {
    BlockAccessError(error.to_string())
}

impl<B> BlockAccess for StoreBlocks<B>
where
    B: Blockstore + Clone + 'static,
{
    fn get(&self, cid: Cid) -> BlockFuture<Option<Vec<u8>>> {
        let store = self.0.clone();
        Box::pin(async move { store.get(&cid).await.map_err(store_error) })
    }

    fn has(&self, cid: Cid) -> BlockFuture<bool> {
        let store = self.0.clone();
        Box::pin(async move { store.has(&cid).await.map_err(store_error) })
    }

    fn put(&self, cid: Cid, bytes: Vec<u8>) -> BlockFuture<()> {
        let store = self.0.clone();
        Box::pin(async move { store.put_verified(&cid, bytes).await.map_err(store_error) })
    }
}
