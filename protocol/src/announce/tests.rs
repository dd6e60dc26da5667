use super::*;
use crate::cid::raw_cid;
use proptest::prelude::*;

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn station(key: &SigningKey) -> PeerId {
    PeerId::from_ed25519(&key.verifying_key())
}

fn sample(key: &SigningKey, sequence: u64) -> Announcement {
    Announcement {
        station: station(key),
        sequence,
        root: raw_cid(format!("root {sequence}").as_bytes()),
        new_segments: (0..3)
            .map(|r| raw_cid(format!("segment {sequence} {r}").as_bytes()))
            .collect(),
        now_playing: Some(NowPlaying {
            title: "Gymnopédie No. 1".into(),
            artist: "Erik Satie".into(),
        }),
        published_at_ms: 1_700_000_000_123,
        // Opaque to this module (the node validates it as an IPNS record).
        record: format!("record {sequence}").into_bytes(),
    }
}

/// Re-sign a modified body with `key`, as a forger holding some key would.
fn envelope(body: Value, signature: Vec<u8>) -> Vec<u8> {
    cbor::encode(&Value::Map(vec![
        ("body".into(), body),
        ("signature".into(), Value::Bytes(signature)),
    ]))
}

fn sign_body(body: &Value, key: &SigningKey) -> Vec<u8> {
    key.sign(&signed_bytes(body)).to_bytes().to_vec()
}

#[test]
fn topic_is_versioned_and_names_the_station() {
    let name = station(&key(1));
    let topic = topic(&name);
    assert_eq!(topic, format!("/ipfm/1/station/{}", name.to_ipns_name()));
    assert!(topic.starts_with("/ipfm/1/station/k51"));
}

#[test]
fn signed_announcement_round_trips_and_is_canonical() {
    let key = key(1);
    let announcement = sample(&key, 42);
    let bytes = announcement.sign(&key).unwrap();
    assert!(bytes.len() < 1024, "{} bytes", bytes.len());
    assert_eq!(
        Announcement::verify(&bytes, &station(&key)).unwrap(),
        announcement
    );
    // Signing is deterministic (Ed25519) and the encoding canonical.
    assert_eq!(announcement.sign(&key).unwrap(), bytes);
    assert_eq!(cbor::encode(&cbor::decode(&bytes).unwrap()), bytes);
}

#[test]
fn no_now_playing_and_no_segments_round_trip() {
    let key = key(2);
    let mut announcement = sample(&key, 1);
    announcement.now_playing = None;
    announcement.new_segments.clear();
    let bytes = announcement.sign(&key).unwrap();
    assert_eq!(
        Announcement::decode_authentic(&bytes).unwrap(),
        announcement
    );
}

#[test]
fn a_forged_signature_is_rejected() {
    let key = key(1);
    let bytes = sample(&key, 7).sign(&key).unwrap();
    let Value::Map(entries) = cbor::decode(&bytes).unwrap() else {
        unreachable!()
    };
    let body = entries[0].1.clone();
    let mut signature = entries[1].1.as_bytes().unwrap().to_vec();
    signature[10] ^= 1;
    assert_eq!(
        Announcement::decode_authentic(&envelope(body, signature)),
        Err(AnnounceError::BadSignature)
    );
}

#[test]
fn a_body_signed_by_another_key_is_rejected() {
    // The forger claims to be the station but signs with its own key.
    let station_key = key(1);
    let forger = key(9);
    let body = sample(&station_key, 8).body();
    let forged = envelope(body.clone(), sign_body(&body, &forger));
    assert_eq!(
        Announcement::verify(&forged, &station(&station_key)),
        Err(AnnounceError::BadSignature)
    );
    // Signed without the domain prefix (e.g. a signature lifted from elsewhere): rejected.
    let undomained = station_key.sign(&cbor::encode(&body)).to_bytes().to_vec();
    assert_eq!(
        Announcement::decode_authentic(&envelope(body, undomained)),
        Err(AnnounceError::BadSignature)
    );
}

#[test]
fn another_stations_authentic_announcement_is_not_ours() {
    let ours = key(1);
    let theirs = key(2);
    let bytes = sample(&theirs, 3).sign(&theirs).unwrap();
    assert!(Announcement::decode_authentic(&bytes).is_ok());
    assert_eq!(
        Announcement::verify(&bytes, &station(&ours)),
        Err(AnnounceError::WrongStation {
            expected: station(&ours).to_string(),
            got: station(&theirs).to_string(),
        })
    );
}

#[test]
fn signing_with_a_key_that_is_not_the_stations_fails() {
    let announcement = sample(&key(1), 1);
    assert_eq!(announcement.sign(&key(2)), Err(AnnounceError::KeyMismatch));
}

#[test]
fn tampered_fields_break_the_signature() {
    let key = key(3);
    let announcement = sample(&key, 5);
    let signed = announcement.sign(&key).unwrap();
    let signature = sign_body(&announcement.body(), &key);
    for tamper in [
        |a: &mut Announcement| a.sequence += 1,
        |a: &mut Announcement| a.root = raw_cid(b"another root"),
        |a: &mut Announcement| a.new_segments.pop().map(drop).unwrap_or(()),
        |a: &mut Announcement| a.now_playing = None,
        |a: &mut Announcement| a.published_at_ms += 1,
        |a: &mut Announcement| a.record[0] ^= 1,
    ] {
        let mut changed = announcement.clone();
        tamper(&mut changed);
        let bytes = envelope(changed.body(), signature.clone());
        assert_ne!(bytes, signed);
        assert_eq!(
            Announcement::decode_authentic(&bytes),
            Err(AnnounceError::BadSignature)
        );
    }
}

#[test]
fn unsigned_or_malformed_envelopes_are_rejected() {
    let key = key(4);
    let body = sample(&key, 1).body();
    let unsigned = cbor::encode(&Value::Map(vec![("body".into(), body.clone())]));
    assert!(matches!(
        Announcement::decode_authentic(&unsigned),
        Err(AnnounceError::Malformed(_))
    ));
    let short_signature = envelope(body.clone(), vec![0; 63]);
    assert!(matches!(
        Announcement::decode_authentic(&short_signature),
        Err(AnnounceError::Malformed(_))
    ));
    // An extra field in the body, even correctly signed, is not version 1.
    let Value::Map(mut entries) = body else {
        unreachable!()
    };
    entries.push(("extra".into(), Value::Null));
    let extended = Value::Map(entries);
    let bytes = envelope(extended.clone(), sign_body(&extended, &key));
    assert!(matches!(
        Announcement::decode_authentic(&bytes),
        Err(AnnounceError::Malformed(_))
    ));
}

#[test]
fn other_versions_are_refused() {
    let key = key(5);
    let Value::Map(mut entries) = sample(&key, 1).body() else {
        unreachable!()
    };
    for (k, v) in &mut entries {
        if k == "version" {
            *v = Value::Unsigned(2);
        }
    }
    let body = Value::Map(entries);
    let bytes = envelope(body.clone(), sign_body(&body, &key));
    assert_eq!(
        Announcement::decode_authentic(&bytes),
        Err(AnnounceError::UnsupportedVersion(2))
    );
}

#[test]
fn bounds_are_enforced_on_both_sides() {
    let key = key(6);
    let mut many = sample(&key, 1);
    many.new_segments = (0..=MAX_NEW_SEGMENTS as u32)
        .map(|i| raw_cid(&i.to_be_bytes()))
        .collect();
    assert_eq!(
        many.sign(&key),
        Err(AnnounceError::TooManySegments {
            count: MAX_NEW_SEGMENTS + 1
        })
    );
    // A hand-made body with too many segments, validly signed, is refused on receipt too.
    let body = many.body();
    let bytes = envelope(body.clone(), sign_body(&body, &key));
    assert!(matches!(
        Announcement::decode_authentic(&bytes),
        Err(AnnounceError::TooManySegments { .. })
    ));

    let mut long = sample(&key, 1);
    long.now_playing = Some(NowPlaying {
        title: "x".repeat(MAX_TEXT_LEN + 1),
        artist: String::new(),
    });
    assert!(matches!(
        long.sign(&key),
        Err(AnnounceError::TextTooLong { field: "title", .. })
    ));

    let mut big_record = sample(&key, 1);
    big_record.record = vec![7; MAX_RECORD_LEN + 1];
    assert_eq!(
        big_record.sign(&key),
        Err(AnnounceError::RecordTooLarge {
            len: MAX_RECORD_LEN + 1
        })
    );
    let body = big_record.body();
    let bytes = envelope(body.clone(), sign_body(&body, &key));
    assert_eq!(
        Announcement::decode_authentic(&bytes),
        Err(AnnounceError::RecordTooLarge {
            len: MAX_RECORD_LEN + 1
        })
    );
    // The record is required: a body without it is not version 1.
    let Value::Map(mut entries) = sample(&key, 1).body() else {
        unreachable!()
    };
    entries.retain(|(k, _)| k != "record");
    let without = Value::Map(entries);
    let bytes = envelope(without.clone(), sign_body(&without, &key));
    assert!(matches!(
        Announcement::decode_authentic(&bytes),
        Err(AnnounceError::Malformed(_))
    ));

    let oversized = vec![0u8; MAX_ANNOUNCEMENT_SIZE + 1];
    assert_eq!(
        Announcement::decode_authentic(&oversized),
        Err(AnnounceError::TooLarge {
            len: MAX_ANNOUNCEMENT_SIZE + 1,
            max: MAX_ANNOUNCEMENT_SIZE
        })
    );
}

#[test]
fn the_largest_allowed_announcement_fits_the_size_limit() {
    // Every bound at its maximum (64 SHA-256 CIDs, two 512-byte texts, a 2 KiB record)
    // must still encode.
    let key = key(7);
    let mut big = sample(&key, u64::MAX);
    big.new_segments = (0..MAX_NEW_SEGMENTS as u32)
        .map(|i| raw_cid(&i.to_be_bytes()))
        .collect();
    big.now_playing = Some(NowPlaying {
        title: "t".repeat(MAX_TEXT_LEN),
        artist: "a".repeat(MAX_TEXT_LEN),
    });
    big.published_at_ms = u64::MAX;
    big.record = vec![0xff; MAX_RECORD_LEN];
    let bytes = big.sign(&key).unwrap();
    assert!(bytes.len() <= MAX_ANNOUNCEMENT_SIZE);
    assert_eq!(Announcement::decode_authentic(&bytes).unwrap(), big);
}

fn arb_announcement() -> impl Strategy<Value = (u8, Announcement)> {
    (
        1u8..=255,
        any::<u64>(),
        proptest::collection::vec(any::<Vec<u8>>(), 0..=MAX_NEW_SEGMENTS),
        proptest::option::of(("\\PC{0,40}", "\\PC{0,40}")),
        any::<u64>(),
        proptest::collection::vec(any::<u8>(), 0..=64),
    )
        .prop_map(|(seed, sequence, segments, playing, at, record)| {
            let key = key(seed);
            let announcement = Announcement {
                station: station(&key),
                sequence,
                root: raw_cid(&sequence.to_be_bytes()),
                new_segments: segments.iter().map(|s| raw_cid(s)).collect(),
                now_playing: playing.map(|(title, artist)| NowPlaying { title, artist }),
                published_at_ms: at,
                record,
            };
            (seed, announcement)
        })
}

proptest! {
    #[test]
    fn any_signed_announcement_round_trips((seed, announcement) in arb_announcement()) {
        let bytes = announcement.sign(&key(seed)).unwrap();
        prop_assert!(bytes.len() <= MAX_ANNOUNCEMENT_SIZE);
        prop_assert_eq!(Announcement::verify(&bytes, &announcement.station).unwrap(), announcement);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        // Random bytes essentially never carry a valid signature.
        prop_assert!(Announcement::decode_authentic(&bytes).is_err());
    }

    #[test]
    fn any_single_bit_flip_is_rejected(
        (seed, announcement) in arb_announcement(),
        position in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let mut bytes = announcement.sign(&key(seed)).unwrap();
        let i = position.index(bytes.len());
        bytes[i] ^= 1 << bit;
        prop_assert!(Announcement::verify(&bytes, &announcement.station).is_err());
    }
}
