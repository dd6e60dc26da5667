//! Retention GC: mark everything reachable from the pins, sweep what is neither reachable
//! nor younger than the retention age.
//!
//! The age rule is what makes GC safe next to a running station: blocks written while GC
//! runs (or shortly before) are young and never swept, and removal re-checks the age
//! atomically, so a block re-put during the sweep survives. Hence a minimum age of zero
//! is only for tests and offline maintenance, where nothing writes concurrently.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cid::Cid;
use ipfm_protocol::cid::{DAG_PB, IDENTITY};
use ipfm_protocol::dagpb;

use crate::blockstore::{storage_cid, Blockstore};
use crate::error::Result;
use crate::Store;

/// At most this many removed CIDs are listed in a [`GcReport`] (about 4 MiB); the same as
/// the number of keys the node's DHT layer can provide, so a node can always stop providing
/// everything one run removed unless that run removed more than it could ever provide.
pub const MAX_REPORTED_REMOVED: usize = 100_000;

/// What a GC run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Blocks removed (unreachable from every pin and old enough).
    pub removed_blocks: u64,
    /// Bytes of the removed blocks.
    pub removed_bytes: u64,
    /// Blocks still stored after the run: reachable ones plus young unreachable ones.
    pub kept_blocks: u64,
    /// Stored blocks reachable from the pins.
    pub reachable_blocks: u64,
    /// Blocks some pin reaches (roots included) that are not stored. Not an error: they
    /// may still be on their way (e.g. fetched over bitswap); their own children could not
    /// be walked.
    pub missing_children: Vec<Cid>,
    /// The removed blocks' CIDs (as stored: CIDv1), at most [`MAX_REPORTED_REMOVED`]; e.g.
    /// so the node stops announcing them as a provider.
    pub removed_cids: Vec<Cid>,
    /// More blocks were removed than `removed_cids` lists.
    pub removed_cids_truncated: bool,
}

impl Store {
    /// Remove every block that no pin reaches and whose latest put is at least `min_age`
    /// ago. Use the retention period as `min_age` (segments that left the live window
    /// stay fetchable that long); `Duration::ZERO` only when nothing writes concurrently.
    pub async fn gc(&self, min_age: Duration) -> Result<GcReport> {
        let cutoff = SystemTime::now().checked_sub(min_age).unwrap_or(UNIX_EPOCH);
        self.gc_inserted_before(cutoff).await
    }

    /// Like [`Store::gc`] with an explicit cutoff: unreachable blocks last put at or before
    /// `cutoff` are removed.
    pub async fn gc_inserted_before(&self, cutoff: SystemTime) -> Result<GcReport> {
        // Pins cannot change between mark and sweep; block writes go on meanwhile.
        let _pins_frozen = self.inner.pin_lock.lock().await;
        let roots = self.pins().await?.into_iter().map(|(_, root)| root);
        let marked = self.mark(roots).await?;

        let mut report = GcReport {
            reachable_blocks: marked.stored as u64,
            missing_children: marked.missing,
            ..GcReport::default()
        };
        for block in self.blocks().await? {
            if marked.visited.contains(&block.cid) || block.inserted_at > cutoff {
                report.kept_blocks += 1;
                continue;
            }
            match self.delete_if_inserted_before(&block.cid, cutoff).await? {
                Some(size) => {
                    report.removed_blocks += 1;
                    report.removed_bytes += size;
                    if report.removed_cids.len() < MAX_REPORTED_REMOVED {
                        report.removed_cids.push(block.cid);
                    } else {
                        report.removed_cids_truncated = true;
                    }
                }
                // Re-put since the listing (now young) or deleted by someone else.
                None => report.kept_blocks += u64::from(self.has(&block.cid).await?),
            }
        }
        // Nobody following is fine: the send only fails when there is no receiver.
        let _ = self.inner.gc_reports.send(Arc::new(report.clone()));
        tracing::info!(
            removed_blocks = report.removed_blocks,
            removed_bytes = report.removed_bytes,
            kept_blocks = report.kept_blocks,
            missing = report.missing_children.len(),
            "retention GC done"
        );
        Ok(report)
    }

    /// Follow GC runs: every report from now on (on any clone of this store), removed CIDs
    /// included. A receiver that falls more than a few runs behind gets
    /// `RecvError::Lagged` and misses the oldest reports.
    pub fn gc_reports(&self) -> tokio::sync::broadcast::Receiver<Arc<GcReport>> {
        self.inner.gc_reports.subscribe()
    }

    /// The stored blocks the pins reach (roots included), e.g. to announce them all as a
    /// provider after a restart. Blocks that are pinned but missing are left out.
    pub async fn pinned_blocks(&self) -> Result<Vec<Cid>> {
        let roots = self.pins().await?.into_iter().map(|(_, root)| root);
        let marked = self.mark(roots).await?;
        let missing: HashSet<Cid> = marked.missing.into_iter().collect();
        Ok(marked
            .visited
            .into_iter()
            .filter(|cid| cid.hash().code() != IDENTITY && !missing.contains(cid))
            .collect())
    }

    /// Walk the DAGs under `roots`: dag-pb blocks are decoded for their links, every
    /// other codec is a leaf. Iterative, and each block is visited once.
    async fn mark(&self, roots: impl Iterator<Item = Cid>) -> Result<Marked> {
        let mut marked = Marked::default();
        let mut stack: Vec<Cid> = roots.map(|root| storage_cid(&root)).collect();
        while let Some(cid) = stack.pop() {
            if !marked.visited.insert(cid) {
                continue;
            }
            let bytes = if cid.hash().code() == IDENTITY {
                // The block is inside its CID; nothing is stored for it.
                Some(cid.hash().digest().to_vec())
            } else if cid.codec() == DAG_PB {
                self.get(&cid).await?
            } else if self.has(&cid).await? {
                marked.stored += 1;
                continue;
            } else {
                None
            };
            let Some(bytes) = bytes else {
                marked.missing.push(cid);
                continue;
            };
            if cid.hash().code() != IDENTITY {
                marked.stored += 1;
            }
            if cid.codec() != DAG_PB {
                continue;
            }
            match dagpb::links(&bytes) {
                Ok(links) => stack.extend(links.iter().map(storage_cid)),
                // Stored blocks hash to their CIDs, so this is a peer's non-canonical
                // dag-pb, not corruption; its links cannot be trusted to be complete.
                Err(error) => {
                    tracing::warn!(%cid, %error, "pinned dag-pb block does not decode; its children are not kept")
                }
            }
        }
        Ok(marked)
    }
}

#[derive(Default)]
struct Marked {
    /// Every CID reached, stored or not.
    visited: HashSet<Cid>,
    /// How many of them are stored.
    stored: usize,
    missing: Vec<Cid>,
}
