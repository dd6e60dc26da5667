//! What a follower makes of one message on the station topic: an announcement is
//! authentic only if it is signed by the station and the IPNS record it carries validates
//! for the station now and points at the announced root under the announced sequence.

use std::time::SystemTime;

use ipfm_protocol::announce::{AnnounceError, Announcement};
use ipfm_protocol::ipns::{IpnsError, IpnsRecord};
use ipfm_protocol::peer::PeerId;
use ipfm_protocol::Cid;

/// What a follower does with one message on the station topic.
// One verdict lives per message, briefly, and most are accepts: boxing would only add an
// allocation to the common case.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Authentic and newer than anything accepted before.
    Accept(Announcement),
    /// Authentic but not new (a replay or a duplicate), or a format version this node does
    /// not read: dropped without penalty.
    Ignore(String),
    /// Not an authentic announcement of this station: dropped, sender penalised.
    Reject(Rejection),
}

/// Why a message on the station topic is not an authentic announcement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error(transparent)]
    Announcement(#[from] AnnounceError),
    #[error("the announced IPNS record is invalid: {0}")]
    Record(#[from] IpnsError),
    #[error("the announced IPNS record does not match the announcement: {0}")]
    RecordMismatch(String),
}

/// Judge `data` as an announcement of `station`, given the highest sequence accepted so far.
pub fn judge(data: &[u8], station: &PeerId, highest: Option<u64>) -> Verdict {
    judge_at(data, station, highest, SystemTime::now())
}

/// [`judge`] with the record's validity checked at `now`.
pub fn judge_at(data: &[u8], station: &PeerId, highest: Option<u64>, now: SystemTime) -> Verdict {
    let announcement = match Announcement::verify(data, station) {
        Ok(announcement) => announcement,
        Err(AnnounceError::UnsupportedVersion(version)) => {
            return Verdict::Ignore(format!("announcement version {version}"))
        }
        Err(error) => return Verdict::Reject(error.into()),
    };
    if let Err(rejection) = check_record(&announcement, now) {
        return Verdict::Reject(rejection);
    }
    match highest {
        Some(highest) if announcement.sequence <= highest => Verdict::Ignore(format!(
            "sequence {} is not above {highest}",
            announcement.sequence
        )),
        _ => Verdict::Accept(announcement),
    }
}

/// The announcement's IPNS record: valid for its station at `now` (signature V2, EOL),
/// same sequence, value `/ipfs/<root>`. Only then can a follower serve and re-put it.
pub fn check_record(announcement: &Announcement, now: SystemTime) -> Result<IpnsRecord, Rejection> {
    let record = IpnsRecord::from_bytes(&announcement.record)?;
    record.validate(&announcement.station, now)?;
    if record.sequence() != announcement.sequence {
        return Err(Rejection::RecordMismatch(format!(
            "record sequence {} ≠ announced {}",
            record.sequence(),
            announcement.sequence
        )));
    }
    let points_at = record
        .value_str()
        .and_then(|value| value.strip_prefix("/ipfs/"))
        .and_then(|cid| Cid::try_from(cid).ok());
    if points_at != Some(announcement.root) {
        return Err(Rejection::RecordMismatch(format!(
            "record value {:?} is not /ipfs/{}",
            record.value_str().unwrap_or("<not UTF-8>"),
            announcement.root
        )));
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use ed25519_dalek::SigningKey;
    use ipfm_protocol::announce;
    use ipfm_protocol::cid::raw_cid;

    fn record(key: &SigningKey, value: &str, sequence: u64, eol: SystemTime) -> Vec<u8> {
        IpnsRecord::create(key, value, sequence, eol, Duration::from_secs(1)).to_bytes()
    }

    /// An announcement of `root` carrying `record`, signed by `key`.
    fn announced(key: &SigningKey, sequence: u64, root: Cid, record: Vec<u8>) -> Vec<u8> {
        Announcement::new(
            PeerId::from_ed25519(&key.verifying_key()),
            sequence,
            root,
            vec![raw_cid(b"segment")],
            None,
            SystemTime::now(),
            record,
        )
        .sign(key)
        .unwrap()
    }

    fn signed(key: &SigningKey, sequence: u64) -> Vec<u8> {
        let root = raw_cid(&sequence.to_be_bytes());
        let eol = SystemTime::now() + Duration::from_secs(3600);
        announced(
            key,
            sequence,
            root,
            record(key, &format!("/ipfs/{root}"), sequence, eol),
        )
    }

    #[test]
    fn the_record_must_be_valid_and_match_the_announcement() {
        let key = SigningKey::from_bytes(&[4; 32]);
        let station = PeerId::from_ed25519(&key.verifying_key());
        let root = raw_cid(b"root");
        let value = format!("/ipfs/{root}");
        let later = SystemTime::now() + Duration::from_secs(3600);
        let good = announced(&key, 3, root, record(&key, &value, 3, later));
        assert!(matches!(judge(&good, &station, None), Verdict::Accept(_)));
        let other = SigningKey::from_bytes(&[5; 32]);
        let cases = [
            ("another sequence", record(&key, &value, 4, later)),
            ("another root", record(&key, "/ipfs/bafkqaaa", 3, later)),
            ("not a path", record(&key, "hello", 3, later)),
            ("another key's", record(&other, &value, 3, later)),
            (
                "expired",
                record(&key, &value, 3, SystemTime::now() - Duration::from_secs(1)),
            ),
            ("not a record", b"garbage".to_vec()),
            ("empty", Vec::new()),
        ];
        for (what, bytes) in cases {
            let verdict = judge(&announced(&key, 3, root, bytes), &station, None);
            assert!(
                matches!(
                    verdict,
                    Verdict::Reject(Rejection::Record(_) | Rejection::RecordMismatch(_))
                ),
                "{what}: {verdict:?}"
            );
        }
    }

    #[test]
    fn verdicts_accept_new_ignore_replays_and_reject_the_rest() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let station = PeerId::from_ed25519(&key.verifying_key());
        assert!(matches!(
            judge(&signed(&key, 5), &station, None),
            Verdict::Accept(a) if a.sequence == 5
        ));
        assert!(matches!(
            judge(&signed(&key, 6), &station, Some(5)),
            Verdict::Accept(_)
        ));
        assert!(matches!(
            judge(&signed(&key, 5), &station, Some(5)),
            Verdict::Ignore(_)
        ));
        assert!(matches!(
            judge(&signed(&key, 4), &station, Some(5)),
            Verdict::Ignore(_)
        ));
        let other = SigningKey::from_bytes(&[2; 32]);
        assert!(matches!(
            judge(&signed(&other, 9), &station, None),
            Verdict::Reject(Rejection::Announcement(AnnounceError::WrongStation { .. }))
        ));
        let mut tampered = signed(&key, 7);
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(matches!(
            judge(&tampered, &station, None),
            Verdict::Reject(_)
        ));
        assert!(matches!(
            judge(
                &vec![0; announce::MAX_ANNOUNCEMENT_SIZE + 1],
                &station,
                None
            ),
            Verdict::Reject(Rejection::Announcement(AnnounceError::TooLarge { .. }))
        ));
    }
}
