//! Which DHT records this node accepts from other peers (Kubo's namespaced validator):
//! `/ipns/<peer id multihash>` records that parse, carry a valid signature for that name,
//! have not expired and fit in 10 KiB; `/pk/<peer id multihash>` public keys that hash to
//! the peer id. Everything else is refused, so strangers cannot use the node as storage.

use std::cmp::Ordering;
use std::time::SystemTime;

use ipfm_protocol::ipns::{compare, IpnsError, IpnsRecord, MAX_RECORD_SIZE};
use ipfm_protocol::peer::{decode_public_key, PeerError, PeerId};

/// DHT key namespace of IPNS records.
pub const IPNS_NAMESPACE: &[u8] = b"/ipns/";
/// DHT key namespace of public keys (for peer ids that do not inline theirs).
pub const PK_NAMESPACE: &[u8] = b"/pk/";

/// Why a DHT record was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum RecordRejected {
    #[error("key is in neither the /ipns/ nor the /pk/ namespace")]
    UnknownNamespace,
    #[error("value is {0} bytes, more than {MAX_RECORD_SIZE}")]
    TooLarge(usize),
    #[error("key does not name a peer: {0}")]
    BadKey(#[from] PeerError),
    #[error("invalid IPNS record: {0}")]
    BadRecord(#[from] IpnsError),
    #[error("public key does not hash to the peer id in the key")]
    KeyMismatch,
    #[error("not newer than the record already stored")]
    NotNewer,
}

/// A record that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValidRecord {
    Ipns {
        name: PeerId,
        record: Box<IpnsRecord>,
    },
    PublicKey {
        peer: PeerId,
    },
}

/// The name an `/ipns/` routing key is for.
pub fn name_of_routing_key(key: &[u8]) -> Result<PeerId, RecordRejected> {
    let multihash = key
        .strip_prefix(IPNS_NAMESPACE)
        .ok_or(RecordRejected::UnknownNamespace)?;
    Ok(PeerId::from_multihash_bytes(multihash)?)
}

/// Validate the IPNS record `value` found under (or offered for) `name` at time `now`.
pub fn validate_ipns(
    name: &PeerId,
    value: &[u8],
    now: SystemTime,
) -> Result<IpnsRecord, IpnsError> {
    let record = IpnsRecord::from_bytes(value)?;
    record.validate(name, now)?;
    Ok(record)
}

/// Validate a record put to us under `key`.
pub fn validate(key: &[u8], value: &[u8], now: SystemTime) -> Result<ValidRecord, RecordRejected> {
    // Checked before parsing anything, so an oversized value costs nothing.
    if value.len() > MAX_RECORD_SIZE {
        return Err(RecordRejected::TooLarge(value.len()));
    }
    if key.starts_with(IPNS_NAMESPACE) {
        let name = name_of_routing_key(key)?;
        let record = Box::new(validate_ipns(&name, value, now)?);
        return Ok(ValidRecord::Ipns { name, record });
    }
    if let Some(multihash) = key.strip_prefix(PK_NAMESPACE) {
        let peer = PeerId::from_multihash_bytes(multihash)?;
        decode_public_key(value)?;
        if PeerId::from_public_key_protobuf(value) != peer {
            return Err(RecordRejected::KeyMismatch);
        }
        return Ok(ValidRecord::PublicKey { peer });
    }
    Err(RecordRejected::UnknownNamespace)
}

/// Validate a record put to us under `key`, given the value already stored there: an IPNS
/// record only replaces a stored one that is worse in boxo's order (or no longer valid).
pub fn accept_put(
    key: &[u8],
    value: &[u8],
    stored: Option<&[u8]>,
    now: SystemTime,
) -> Result<ValidRecord, RecordRejected> {
    let valid = validate(key, value, now)?;
    if let (ValidRecord::Ipns { name, record }, Some(stored)) = (&valid, stored) {
        if let Ok(current) = validate_ipns(name, stored, now) {
            if compare(record, &current) != Ordering::Greater {
                return Err(RecordRejected::NotNewer);
            }
        }
    }
    Ok(valid)
}

/// The better of two validated records for the same name (`None` counts as worst).
pub fn best(a: Option<IpnsRecord>, b: Option<IpnsRecord>) -> Option<IpnsRecord> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if compare(&a, &b) == Ordering::Less {
            b
        } else {
            a
        }),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use ipfm_protocol::ipns::routing_key;
    use std::time::Duration;

    fn key_and_name(seed: u8) -> (SigningKey, PeerId) {
        let key = SigningKey::from_bytes(&[seed; 32]);
        let name = PeerId::from_ed25519(&key.verifying_key());
        (key, name)
    }

    fn record(key: &SigningKey, sequence: u64, valid_for: Duration) -> IpnsRecord {
        IpnsRecord::create(
            key,
            "/ipfs/bafkqaaa",
            sequence,
            SystemTime::now() + valid_for,
            Duration::from_secs(1),
        )
    }

    #[test]
    fn valid_ipns_records_are_accepted_and_only_replaced_by_newer_ones() {
        let (key, name) = key_and_name(1);
        let routing = routing_key(&name);
        let hour = Duration::from_secs(3600);
        let now = SystemTime::now();
        let one = record(&key, 1, hour);
        let two = record(&key, 2, hour);
        assert_eq!(
            accept_put(&routing, one.as_bytes(), None, now),
            Ok(ValidRecord::Ipns {
                name,
                record: Box::new(one.clone())
            })
        );
        assert!(accept_put(&routing, two.as_bytes(), Some(one.as_bytes()), now).is_ok());
        assert_eq!(
            accept_put(&routing, one.as_bytes(), Some(two.as_bytes()), now),
            Err(RecordRejected::NotNewer)
        );
        assert_eq!(
            accept_put(&routing, two.as_bytes(), Some(two.as_bytes()), now),
            Err(RecordRejected::NotNewer)
        );
        // A stored record that has expired since is replaced by any valid one.
        let later = now + Duration::from_secs(120);
        let short = record(&key, 9, Duration::from_secs(60));
        assert!(accept_put(&routing, one.as_bytes(), Some(short.as_bytes()), later).is_ok());
    }

    #[test]
    fn forged_expired_oversized_and_foreign_records_are_refused() {
        let (key, name) = key_and_name(2);
        let (other_key, _) = key_and_name(3);
        let routing = routing_key(&name);
        let now = SystemTime::now();
        let forged = record(&other_key, 5, Duration::from_secs(60));
        assert!(matches!(
            validate(&routing, forged.as_bytes(), now),
            Err(RecordRejected::BadRecord(_))
        ));
        let expired = record(&key, 5, Duration::from_secs(60));
        assert_eq!(
            validate(&routing, expired.as_bytes(), now + Duration::from_secs(61)),
            Err(RecordRejected::BadRecord(IpnsError::Expired))
        );
        assert_eq!(
            validate(&routing, &vec![0; MAX_RECORD_SIZE + 1], now),
            Err(RecordRejected::TooLarge(MAX_RECORD_SIZE + 1))
        );
        assert!(validate(&routing, b"junk", now).is_err());
        assert_eq!(
            validate(b"/v/anything", expired.as_bytes(), now),
            Err(RecordRejected::UnknownNamespace)
        );
        assert!(matches!(
            validate(b"/ipns/not a multihash", expired.as_bytes(), now),
            Err(RecordRejected::BadKey(_))
        ));
    }

    #[test]
    fn public_keys_must_hash_to_their_key() {
        let (key, peer) = key_and_name(4);
        let (_, other) = key_and_name(5);
        let protobuf = ipfm_protocol::peer::encode_public_key(1, key.verifying_key().as_bytes());
        let now = SystemTime::now();
        let pk_key = [PK_NAMESPACE, &peer.to_bytes()].concat();
        assert_eq!(
            validate(&pk_key, &protobuf, now),
            Ok(ValidRecord::PublicKey { peer })
        );
        let wrong = [PK_NAMESPACE, &other.to_bytes()].concat();
        assert_eq!(
            validate(&wrong, &protobuf, now),
            Err(RecordRejected::KeyMismatch)
        );
    }

    #[test]
    fn best_prefers_the_higher_sequence() {
        let (key, _) = key_and_name(6);
        let hour = Duration::from_secs(3600);
        let (one, two) = (record(&key, 1, hour), record(&key, 2, hour));
        assert_eq!(
            best(Some(one.clone()), Some(two.clone())),
            Some(two.clone())
        );
        assert_eq!(best(Some(two.clone()), Some(one)), Some(two.clone()));
        assert_eq!(best(None, Some(two.clone())), Some(two));
        assert_eq!(best(None, None), None);
    }
}
