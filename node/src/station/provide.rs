//! The station's DHT provider set over its lifetime.
//!
//! Kademlia re-announces everything in the provided set every
//! [`crate::net::swarm::NetworkConfig::provider_publication_interval`] (22 h, like Kubo;
//! records live 48 h), so this module only has to keep that set equal to what the station
//! holds pinned: everything the pins reach is provided at start (the set lives in memory,
//! so a restart begins empty; new roots and segments are added as they are published), and
//! whatever GC removes is taken out, so nobody is sent to us for blocks we no longer have.

use std::sync::Arc;

use ipfm_protocol::Cid;
use ipfm_store::{GcReport, Store};
use tokio::sync::{broadcast, mpsc};

use crate::net::swarm::Client;

/// CIDs per batch handed to the provide queue at start.
const START_BATCH: usize = 256;

/// Provide the pinned set, then follow GC runs and stop providing what they removed; runs
/// until the store or the network goes away.
pub async fn keep_provider_set(client: Client, store: Store, queue: mpsc::Sender<Vec<Cid>>) {
    // Subscribed before listing, so a GC between the two cannot be missed.
    let reports = store.gc_reports();
    match store.pinned_blocks().await {
        Ok(pinned) => {
            tracing::info!(blocks = pinned.len(), "providing the pinned set");
            for batch in pinned.chunks(START_BATCH) {
                if queue.send(batch.to_vec()).await.is_err() {
                    return;
                }
            }
        }
        Err(error) => {
            tracing::warn!(%error, "listing pinned blocks failed; not provided until republished")
        }
    }
    stop_providing_removed(client, reports).await;
}

/// For every GC report: stop providing each removed CID. Returns when GC reports end (the
/// store is gone) or the network stopped.
pub async fn stop_providing_removed(
    client: Client,
    mut reports: broadcast::Receiver<Arc<GcReport>>,
) {
    loop {
        let report = match reports.recv().await {
            Ok(report) => report,
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(
                    missed,
                    "GC reports missed; their blocks stay provided until restart"
                );
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if report.removed_cids_truncated {
            tracing::warn!(
                listed = report.removed_cids.len(),
                removed = report.removed_blocks,
                "GC removed more blocks than it lists; the rest stay provided until restart"
            );
        }
        for cid in &report.removed_cids {
            if client.stop_providing(*cid).await.is_err() {
                return;
            }
        }
        tracing::debug!(
            blocks = report.removed_cids.len(),
            "stopped providing blocks GC removed"
        );
    }
}
