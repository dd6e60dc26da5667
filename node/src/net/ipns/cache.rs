//! Remote IPNS records this node has resolved (from the DHT) or been pushed (over pubsub),
//! shared by the swarm task and its clients.
//!
//! A record is *fresh* for its signed TTL after it arrived: within that time a resolve
//! answers from here without asking the network. Stale records are kept (until their EOL)
//! so that a newer answer is always compared against the best one seen.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use ipfm_protocol::ipns::{compare, IpnsRecord};
use ipfm_protocol::peer::PeerId;

/// Names remembered at most; past it the entry heard from longest ago is evicted.
pub const MAX_CACHED_NAMES: usize = 1024;
/// Names whose pubsub topics are followed at most (each is a gossipsub subscription).
pub const MAX_FOLLOWED_NAMES: usize = 256;

#[derive(Debug, Clone)]
struct Entry {
    record: IpnsRecord,
    /// When `record` (or an identical copy) last arrived: its TTL counts from here.
    refreshed: Instant,
}

/// Validated records by name. Only ever given records that passed validation.
#[derive(Debug, Default)]
pub struct NameCache {
    entries: Mutex<HashMap<PeerId, Entry>>,
    /// Names whose pubsub topic is followed.
    followed: Mutex<HashSet<PeerId>>,
}

impl NameCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// Remember `record` (already validated for `name`) if it is at least as good as the
    /// one known; an identical record refreshes the TTL. Returns whether it is new.
    pub fn offer(&self, name: PeerId, record: IpnsRecord, now: Instant) -> bool {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let order = entries
            .get(&name)
            .map(|known| compare(&record, &known.record));
        match order {
            Some(Ordering::Less) => false,
            Some(Ordering::Equal) => {
                if let Some(known) = entries.get_mut(&name) {
                    known.refreshed = now;
                }
                false
            }
            Some(Ordering::Greater) | None => {
                if order.is_none() && entries.len() >= MAX_CACHED_NAMES {
                    let oldest = entries
                        .iter()
                        .min_by_key(|(_, e)| e.refreshed)
                        .map(|(name, _)| *name);
                    if let Some(oldest) = oldest {
                        entries.remove(&oldest);
                    }
                }
                entries.insert(
                    name,
                    Entry {
                        record,
                        refreshed: now,
                    },
                );
                true
            }
        }
    }

    /// The record for `name` if it arrived less than its TTL ago and has not expired.
    pub fn fresh(&self, name: &PeerId, now: Instant, wall: SystemTime) -> Option<IpnsRecord> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = entries.get(name)?;
        let age = now.saturating_duration_since(entry.refreshed);
        (age < entry.record.ttl() && not_expired(&entry.record, wall)).then(|| entry.record.clone())
    }

    /// The best record known for `name`, fresh or not, unless it has expired.
    pub fn best(&self, name: &PeerId, wall: SystemTime) -> Option<IpnsRecord> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(name)
            .map(|e| e.record.clone())
            .filter(|r| not_expired(r, wall))
    }
}

impl NameCache {
    /// Claim the follower slot of `name`: true if nobody follows it yet and there is room.
    pub fn start_following(&self, name: PeerId) -> bool {
        let mut followed = self.followed.lock().unwrap_or_else(|e| e.into_inner());
        if followed.len() >= MAX_FOLLOWED_NAMES && !followed.contains(&name) {
            tracing::debug!(%name, "following too many names over pubsub; not this one");
            return false;
        }
        followed.insert(name)
    }

    /// Release the follower slot of `name` (its subscription ended).
    pub fn stop_following(&self, name: &PeerId) {
        let mut followed = self.followed.lock().unwrap_or_else(|e| e.into_inner());
        followed.remove(name);
    }
}

fn not_expired(record: &IpnsRecord, wall: SystemTime) -> bool {
    record.eol().is_ok_and(|eol| wall <= eol)
}

/// How long a resolve waits for better answers once it has a valid one (the DHT query may
/// run much longer, asking ever farther peers).
pub const RESOLVE_GRACE: Duration = Duration::from_secs(2);

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    fn record(sequence: u64, ttl: Duration) -> (PeerId, IpnsRecord) {
        let key = SigningKey::from_bytes(&[11; 32]);
        let name = PeerId::from_ed25519(&key.verifying_key());
        let eol = SystemTime::now() + Duration::from_secs(3600);
        (
            name,
            IpnsRecord::create(&key, "/ipfs/bafkqaaa", sequence, eol, ttl),
        )
    }

    #[test]
    fn fresh_for_the_ttl_and_never_replaced_by_an_older_record() {
        let cache = NameCache::new();
        let now = Instant::now();
        let wall = SystemTime::now();
        let ttl = Duration::from_secs(10);
        let (name, two) = record(2, ttl);
        let (_, one) = record(1, ttl);
        assert!(cache.offer(name, two.clone(), now));
        assert!(!cache.offer(name, one, now));
        assert_eq!(cache.fresh(&name, now, wall), Some(two.clone()));
        let later = now + ttl;
        assert_eq!(cache.fresh(&name, later, wall), None);
        assert_eq!(cache.best(&name, wall), Some(two.clone()));
        // The same record arriving again refreshes it.
        assert!(!cache.offer(name, two.clone(), later));
        assert_eq!(cache.fresh(&name, later, wall), Some(two.clone()));
        // Past its EOL it is gone for good.
        let after_eol = wall + Duration::from_secs(3601);
        assert_eq!(cache.best(&name, after_eol), None);
        assert_eq!(cache.fresh(&name, later, after_eol), None);
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = NameCache::new();
        let now = Instant::now();
        let eol = SystemTime::now() + Duration::from_secs(60);
        for i in 0..=MAX_CACHED_NAMES as u32 {
            let mut seed = [0u8; 32];
            seed[..4].copy_from_slice(&i.to_le_bytes());
            let key = SigningKey::from_bytes(&seed);
            let name = PeerId::from_ed25519(&key.verifying_key());
            let record = IpnsRecord::create(&key, "/ipfs/bafkqaaa", 1, eol, Duration::ZERO);
            cache.offer(name, record, now + Duration::from_millis(u64::from(i)));
        }
        let entries = cache.entries.lock().unwrap();
        assert_eq!(entries.len(), MAX_CACHED_NAMES);
    }
}
