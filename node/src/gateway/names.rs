//! [`LocalNames`]: the IPNS records this node publishes itself, and (once the network is
//! up) a remote resolver for every other name.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::SystemTime;

use ipfm_protocol::ipns::{compare, IpnsError, IpnsRecord};
use ipfm_protocol::peer::PeerId;

use super::{BoxFuture, NameResolver};

/// Names resolved from records registered locally (the station's own name), and every
/// other name through the remote resolver, if one is set (the network's: DHT + pubsub).
///
/// `publish` keeps, per name, the best record in boxo's order (V2 signature, then higher
/// sequence, then later EOL), so a late or replayed publish never moves a name backwards.
#[derive(Default)]
pub struct LocalNames {
    records: RwLock<HashMap<PeerId, IpnsRecord>>,
    /// Asked for names with no local record. Set once, when the network starts.
    remote: OnceLock<Arc<dyn NameResolver>>,
}

impl std::fmt::Debug for LocalNames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalNames")
            .field("records", &self.records)
            .field("remote", &self.remote.get().is_some())
            .finish()
    }
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

    /// Resolve names without a local record through `remote` from now on. Only the first
    /// call takes effect (returns false after that).
    pub fn set_remote(&self, remote: Arc<dyn NameResolver>) -> bool {
        self.remote.set(remote).is_ok()
    }
}

impl NameResolver for LocalNames {
    fn resolve<'a>(&'a self, name: &'a PeerId) -> BoxFuture<'a, Option<IpnsRecord>> {
        Box::pin(async move {
            // Our own names never leave the node: the local record is the newest there is.
            if let Some(record) = self.get(name) {
                return Some(record);
            }
            match self.remote.get() {
                Some(remote) => remote.resolve(name).await,
                None => None,
            }
        })
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

    /// A resolver that knows one record.
    struct Fixed(PeerId, IpnsRecord);

    impl NameResolver for Fixed {
        fn resolve<'a>(&'a self, name: &'a PeerId) -> BoxFuture<'a, Option<IpnsRecord>> {
            Box::pin(async move { (*name == self.0).then(|| self.1.clone()) })
        }
    }

    #[tokio::test]
    async fn other_names_go_to_the_remote_resolver_and_own_names_stay_local() {
        let eol = SystemTime::now() + Duration::from_secs(3600);
        let ttl = Duration::from_secs(60);
        let own_key = SigningKey::from_bytes(&[12; 32]);
        let own = PeerId::from_ed25519(&own_key.verifying_key());
        let remote_key = SigningKey::from_bytes(&[13; 32]);
        let remote = PeerId::from_ed25519(&remote_key.verifying_key());
        let local_record = IpnsRecord::create(&own_key, "/ipfs/bafkqaaa", 1, eol, ttl);
        let remote_record = IpnsRecord::create(&remote_key, "/ipfs/bafkqaaa", 7, eol, ttl);
        let stale_own = IpnsRecord::create(&own_key, "/ipfs/bafkqaaa", 0, eol, ttl);
        let names = LocalNames::new();
        names.publish(own, local_record.clone()).unwrap();
        assert_eq!(names.resolve(&remote).await, None);
        assert!(names.set_remote(Arc::new(Fixed(remote, remote_record.clone()))));
        assert!(!names.set_remote(Arc::new(Fixed(own, stale_own))));
        assert_eq!(names.resolve(&remote).await, Some(remote_record));
        assert_eq!(names.resolve(&own).await, Some(local_record));
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
