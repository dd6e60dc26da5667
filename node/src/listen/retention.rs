//! Keeping the listener's in-memory store bounded over hours of listening: the newest
//! followed root stays pinned (its whole window), and what older roots alone held is
//! collected once it is `min_age` old (a little slack for a reader still on it).

use std::time::Duration;

use ipfm_store::Store;
use tokio::sync::watch;

use crate::follow::FollowedRoot;

/// The pin holding the newest followed root.
pub const LISTEN_ROOT_PIN: &str = "listen-root";
/// How often unreferenced blocks are collected by default.
pub const DEFAULT_GC_INTERVAL: Duration = Duration::from_secs(30);
/// How long unreferenced blocks stay by default: a player a few segments behind the live
/// edge still finds them, and a block fetched for a root in progress is never young enough.
pub const DEFAULT_GC_MIN_AGE: Duration = Duration::from_secs(120);

/// Pins each new root of `roots` and collects garbage every `interval`, until `roots`' sender
/// is dropped. Store errors are logged: losing a GC run only costs memory for a while.
pub async fn keep_window(
    store: Store,
    mut roots: watch::Receiver<Option<FollowedRoot>>,
    interval: Duration,
    min_age: Duration,
) {
    let current = roots.borrow_and_update().as_ref().map(|f| f.root);
    if let Some(root) = current {
        pin(&store, root).await;
    }
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            changed = roots.changed() => {
                if changed.is_err() {
                    return;
                }
                let root = roots.borrow_and_update().as_ref().map(|f| f.root);
                if let Some(root) = root {
                    pin(&store, root).await;
                }
            }
            _ = ticks.tick() => {
                match store.gc(min_age).await {
                    Ok(report) => tracing::debug!(
                        removed = report.removed_blocks,
                        kept = report.kept_blocks,
                        "listener GC"
                    ),
                    Err(error) => tracing::warn!(%error, "listener GC failed"),
                }
            }
        }
    }
}

async fn pin(store: &Store, root: ipfm_protocol::Cid) {
    if let Err(error) = store.pin(LISTEN_ROOT_PIN, root).await {
        tracing::warn!(%root, %error, "pinning the followed root failed");
    }
}
