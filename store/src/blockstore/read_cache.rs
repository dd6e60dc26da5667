//! Recently read blocks of the block files store, bounded by bytes.
//!
//! The gateway reads the same few blocks (the root, the rendition directories, the newest
//! segments) for every listener; a hit costs no metadata lookup, file open or blocking-pool
//! hop. Only reads fill it, so a station nobody listens to keeps nothing here (its RSS is
//! a benchmark goal, docs/benchmarks.md).

use std::sync::{Mutex, MutexGuard};

use hashlink::LruCache;

/// Bytes of block data the cache holds at most.
pub(crate) const READ_CACHE_BYTES: usize = 4 * 1024 * 1024;
/// Larger blocks are not cached: one of them would push out many small ones.
const LARGEST_CACHED: usize = READ_CACHE_BYTES / 4;

pub(crate) struct ReadCache {
    state: Mutex<State>,
}

struct State {
    /// Storage CID bytes → block bytes, least recently used first.
    blocks: LruCache<Vec<u8>, Vec<u8>>,
    bytes: usize,
    /// Bumped by every removal: a read that started before one does not fill the cache,
    /// since it may have read a block that was deleted meanwhile.
    removals: u64,
}

impl ReadCache {
    pub(crate) fn new() -> Self {
        ReadCache {
            state: Mutex::new(State {
                blocks: LruCache::new_unbounded(),
                bytes: 0,
                removals: 0,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state stays consistent at every step, so a panic elsewhere poisons nothing.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A copy of the cached bytes of `key` (marked as recently used).
    pub(crate) fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.state().blocks.get(key).cloned()
    }

    /// Taken before reading a block from disk, handed back to [`ReadCache::insert`].
    pub(crate) fn ticket(&self) -> u64 {
        self.state().removals
    }

    /// Caches `bytes` as `key` unless a removal happened since `ticket` was taken; evicts
    /// the least recently used blocks beyond [`READ_CACHE_BYTES`].
    pub(crate) fn insert(&self, key: Vec<u8>, bytes: &[u8], ticket: u64) {
        if bytes.len() > LARGEST_CACHED {
            return;
        }
        let mut state = self.state();
        if state.removals != ticket {
            return;
        }
        state.bytes += bytes.len();
        if let Some(old) = state.blocks.insert(key, bytes.to_vec()) {
            state.bytes -= old.len();
        }
        while state.bytes > READ_CACHE_BYTES {
            let Some((_, evicted)) = state.blocks.remove_lru() else {
                break;
            };
            state.bytes -= evicted.len();
        }
    }

    /// Forgets `key` (called before its block is removed from disk).
    pub(crate) fn remove(&self, key: &[u8]) {
        let mut state = self.state();
        state.removals += 1;
        if let Some(old) = state.blocks.remove(key) {
            state.bytes -= old.len();
        }
    }

    #[cfg(test)]
    fn held_bytes(&self) -> usize {
        self.state().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_at_most_its_budget_and_evicts_the_least_recently_used() {
        let cache = ReadCache::new();
        let block = vec![7u8; LARGEST_CACHED];
        for i in 0u8..4 {
            cache.insert(vec![i], &block, cache.ticket());
        }
        assert_eq!(cache.held_bytes(), READ_CACHE_BYTES);
        // Touch 0, so 1 is now the least recently used.
        assert_eq!(cache.get(&[0]), Some(block.clone()));
        cache.insert(vec![4], &block, cache.ticket());
        assert_eq!(cache.held_bytes(), READ_CACHE_BYTES);
        assert!(cache.get(&[1]).is_none(), "the least recently used went");
        assert!(cache.get(&[0]).is_some() && cache.get(&[4]).is_some());
    }

    #[test]
    fn a_read_that_raced_a_removal_is_not_cached_and_removal_forgets() {
        let cache = ReadCache::new();
        let ticket = cache.ticket();
        cache.insert(vec![1], b"one", ticket);
        cache.remove(&[1]);
        assert!(cache.get(&[1]).is_none());
        assert_eq!(cache.held_bytes(), 0);
        // A read begun before that removal may have read the deleted block: dropped.
        cache.insert(vec![2], b"two", ticket);
        assert!(cache.get(&[2]).is_none());
        cache.insert(vec![2], b"two", cache.ticket());
        assert_eq!(cache.get(&[2]).as_deref(), Some(&b"two"[..]));
    }

    #[test]
    fn blocks_larger_than_a_quarter_of_the_budget_are_not_cached() {
        let cache = ReadCache::new();
        cache.insert(vec![1], &vec![0u8; LARGEST_CACHED + 1], cache.ticket());
        assert!(cache.get(&[1]).is_none());
    }
}
