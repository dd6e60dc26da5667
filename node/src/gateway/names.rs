//! [`LocalNames`]: the IPNS records this node publishes itself.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::{Mutex, RwLock};
use std::time::SystemTime;

use ipfm_protocol::ipns::{compare, IpnsError, IpnsRecord};
use ipfm_protocol::peer::PeerId;

use super::{BoxFuture, NameResolver};

/// Names resolved from records registered locally (the station's own name).
///
/// `publish` keeps, per name, the best record in boxo's order (V2 signature, then higher
/// sequence, then later EOL), so a late or replayed publish never moves a name backwards.
#[derive(Debug, Default)]
pub struct LocalNames {
    records: RwLock<HashMap<PeerId, IpnsRecord>>,
}

impl LocalNames {
    pub fn new() -> Self {
        Self::default()
    }

    /// Register `record` for `name` after checking that it is valid for that name now.
    /// Returns whether it became the current record.
    pub fn publish(&self, name: PeerId, record: IpnsRecord) -> Result<bool, IpnsError> {
        record.validate(&name, SystemTime::now())?;
        // A panic elsewhere while holding the lock cannot leave a half-written map entry.
        let mut records = self.records.write().unwrap_or_else(|e| e.into_inner());
        let better = match records.get(&name) {
            Some(current) => compare(&record, current) == Ordering::Greater,
            None => true,
        };
        if better {
            records.insert(name, record);
        }
        Ok(better)
    }

    /// The current record for `name`.
    pub fn get(&self, name: &PeerId) -> Option<IpnsRecord> {
        let records = self.records.read().unwrap_or_else(|e| e.into_inner());
        records.get(name).cloned()
    }
}

impl NameResolver for LocalNames {
    fn resolve<'a>(&'a self, name: &'a PeerId) -> BoxFuture<'a, Option<IpnsRecord>> {
        Box::pin(async move { self.get(name) })
    }
}

/// Names whose record signature was already checked, so that serving a busy `/ipns/`
/// name (every playlist and segment request of every listener) costs one byte comparison
/// instead of an Ed25519 verification per request.
#[derive(Debug, Default)]
pub(crate) struct ValidationCache {
    /// Name → raw bytes of the record last validated for it.
    checked: Mutex<HashMap<PeerId, Vec<u8>>>,
}

/// Bound on remembered names; past it the cache starts over (it is only a shortcut).
const VALIDATION_CACHE_NAMES: usize = 1024;

impl ValidationCache {
    /// `record.validate(name, now)`, skipping the signature check for bytes already seen
    /// valid for `name` (their EOL is still checked: only time can invalidate them).
    pub fn validate(
        &self,
        name: &PeerId,
        record: &IpnsRecord,
        now: SystemTime,
    ) -> Result<(), IpnsError> {
        let seen = {
            let checked = self.checked.lock().unwrap_or_else(|e| e.into_inner());
            checked
                .get(name)
                .is_some_and(|raw| raw.as_slice() == record.as_bytes())
        };
        if seen {
            return if now > record.eol()? {
                Err(IpnsError::Expired)
            } else {
                Ok(())
            };
        }
        record.validate(name, now)?;
        let mut checked = self.checked.lock().unwrap_or_else(|e| e.into_inner());
        if checked.len() >= VALIDATION_CACHE_NAMES {
            checked.clear();
        }
        checked.insert(*name, record.to_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use std::time::Duration;

    #[test]
    fn keeps_the_highest_sequence() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let name = PeerId::from_ed25519(&key.verifying_key());
        let eol = SystemTime::now() + Duration::from_secs(3600);
        let ttl = Duration::from_secs(60);
        let names = LocalNames::new();
        let two = IpnsRecord::create(&key, "/ipfs/bafkqaaa", 2, eol, ttl);
        let one = IpnsRecord::create(&key, "/ipfs/bafkqaaa", 1, eol, ttl);
        assert!(names.publish(name, two.clone()).unwrap());
        assert!(!names.publish(name, one).unwrap());
        assert_eq!(names.get(&name), Some(two));

        let other = PeerId::from_ed25519(&SigningKey::from_bytes(&[8; 32]).verifying_key());
        let foreign = IpnsRecord::create(&key, "/ipfs/bafkqaaa", 3, eol, ttl);
        assert!(names.publish(other, foreign).is_err());
    }

    #[test]
    fn validation_cache_still_checks_names_and_expiry() {
        let key = SigningKey::from_bytes(&[9; 32]);
        let name = PeerId::from_ed25519(&key.verifying_key());
        let other = PeerId::from_ed25519(&SigningKey::from_bytes(&[10; 32]).verifying_key());
        let now = SystemTime::now();
        let record = IpnsRecord::create(
            &key,
            "/ipfs/bafkqaaa",
            1,
            now + Duration::from_secs(60),
            Duration::from_secs(1),
        );
        let cache = ValidationCache::default();
        assert!(cache.validate(&name, &record, now).is_ok());
        assert!(cache.validate(&name, &record, now).is_ok());
        // Cached for `name` only: another name still gets the full check.
        assert!(cache.validate(&other, &record, now).is_err());
        assert_eq!(
            cache.validate(&name, &record, now + Duration::from_secs(120)),
            Err(IpnsError::Expired)
        );
    }
}
