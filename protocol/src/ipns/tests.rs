use super::*;
use crate::cid::IDENTITY;
use proptest::prelude::*;

const VALUE: &str = "/ipfs/bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq";

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn at(seconds: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
}

#[test]
fn rfc3339_matches_go_rfc3339nano() {
    let cases = [
        (Duration::new(0, 0), "1970-01-01T00:00:00Z"),
        (
            Duration::new(1_700_000_000, 500_000_000),
            "2023-11-14T22:13:20.5Z",
        ),
        (
            Duration::new(1_700_000_000, 1),
            "2023-11-14T22:13:20.000000001Z",
        ),
        (
            Duration::new(1_700_000_000, 801_728_000),
            "2023-11-14T22:13:20.801728Z",
        ),
        (
            Duration::new(u64::MAX / 2, 0),
            "9999-12-31T23:59:59.999999999Z",
        ),
    ];
    for (since_epoch, text) in cases {
        let t = SystemTime::UNIX_EPOCH + since_epoch;
        assert_eq!(format_rfc3339(t), text);
    }
    assert_eq!(
        parse_rfc3339("2023-11-14T22:13:20.801728Z").unwrap(),
        SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 801_728_000)
    );
    assert_eq!(
        parse_rfc3339("2023-11-15T00:13:20.5+02:00").unwrap(),
        SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 500_000_000)
    );
    assert_eq!(
        parse_rfc3339("1969-12-31T23:59:59Z").unwrap(),
        SystemTime::UNIX_EPOCH - Duration::from_secs(1)
    );
    assert!(parse_rfc3339("yesterday").is_err());
}

#[test]
fn base64url_matches_rfc4648_vectors() {
    // RFC 4648 §10, without padding.
    let cases = [
        ("", ""),
        ("f", "Zg"),
        ("fo", "Zm8"),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg"),
        ("fooba", "Zm9vYmE"),
        ("foobar", "Zm9vYmFy"),
    ];
    for (input, output) in cases {
        assert_eq!(base64url_unpadded(input.as_bytes()), output);
    }
    assert_eq!(base64url_unpadded(&[0xfb, 0xff]), "-_8");
}

#[test]
fn routing_key_and_topic() {
    let name = PeerId::from_ed25519(&key(1).verifying_key());
    let rk = routing_key(&name);
    assert_eq!(&rk[..6], b"/ipns/");
    assert_eq!(&rk[6..], name.to_bytes().as_slice());
    let topic = pubsub_topic(&name);
    // "/ipns/" ‖ 0x00 0x24 0x08 0x01 … always starts with these characters.
    assert!(topic.starts_with("/record/L2lwbnMvACQIAR"), "{topic}");
    let encoded = &topic["/record/".len()..];
    assert!(!encoded.contains(['=', '+', '/']), "{topic}");
    assert_eq!(encoded.len(), (rk.len() * 4).div_ceil(3));
}

/// A topic Kubo subscribes to for a known name (as recorded in plebbit-js's tests,
/// which run against Kubo's namesys pubsub); '-' shows the URL-safe alphabet.
#[test]
fn pubsub_topic_vector() {
    let name = PeerId::parse("12D3KooWJM1TaC9SF1oQq7KHwKUQE8nhCJfbePoQ8ipWiC9B5GUA").unwrap();
    assert_eq!(
        pubsub_topic(&name),
        "/record/L2lwbnMvACQIARIgfrcVczLMYgfibZ2gUU5TZVZWkKFwH6QGE-J2o197RcM"
    );
}

#[test]
fn created_record_round_trips_and_validates() {
    let sk = key(7);
    let name = PeerId::from_ed25519(&sk.verifying_key());
    let eol = at(2_000_000_000) + Duration::from_nanos(123_456_000);
    let record = IpnsRecord::create(&sk, VALUE, 42, eol, Duration::from_secs(300));
    let bytes = record.to_bytes();
    assert!(bytes.len() < MAX_RECORD_SIZE);

    let parsed = IpnsRecord::from_bytes(&bytes).unwrap();
    assert_eq!(parsed, record);
    parsed.validate(&name, at(1_900_000_000)).unwrap();
    assert_eq!(parsed.value(), VALUE.as_bytes());
    assert_eq!(parsed.value_str(), Some(VALUE));
    assert_eq!(parsed.sequence(), 42);
    assert_eq!(parsed.ttl(), Duration::from_secs(300));
    assert_eq!(parsed.validity_type(), VALIDITY_EOL);
    assert_eq!(parsed.validity(), b"2033-05-18T03:33:20.123456Z");
    assert_eq!(parsed.eol().unwrap(), eol);

    let entry = parsed.entry();
    assert_eq!(entry.pub_key, None);
    assert_eq!(entry.value.as_deref(), Some(VALUE.as_bytes()));
    assert_eq!(entry.sequence, Some(42));
    assert_eq!(entry.ttl, Some(300_000_000_000));
    assert_eq!(entry.validity_type, Some(0));
    // signatureV1 covers value ‖ validity ‖ "EOL".
    let sig1 =
        ed25519_dalek::Signature::from_slice(entry.signature_v1.as_deref().unwrap()).unwrap();
    let mut v1 = VALUE.as_bytes().to_vec();
    v1.extend_from_slice(b"2033-05-18T03:33:20.123456ZEOL");
    sk.verifying_key().verify(&v1, &sig1).unwrap();
}

#[test]
fn data_is_the_canonical_cbor_map_in_boxo_key_order() {
    let record = IpnsRecord::create(&key(1), "/ipfs/x", 1, at(0), Duration::from_nanos(5));
    let data = record.entry().data.clone().unwrap();
    let mut expected = vec![0xa5];
    expected.extend_from_slice(b"\x63TTL\x05");
    expected.extend_from_slice(b"\x65Value\x47/ipfs/x");
    expected.extend_from_slice(b"\x68Sequence\x01");
    expected.extend_from_slice(b"\x68Validity\x54");
    expected.extend_from_slice(b"1970-01-01T00:00:00Z");
    expected.extend_from_slice(b"\x6cValidityType\x00");
    assert_eq!(data, expected);
}

/// Re-encode a parsed record with one entry field changed (keeping all else).
fn tampered(
    record: &IpnsRecord,
    change: impl FnOnce(&mut IpnsEntry),
) -> Result<IpnsRecord, IpnsError> {
    let mut entry = record.entry().clone();
    change(&mut entry);
    IpnsRecord::from_bytes(&entry.encode_to_vec())
}

#[test]
fn tampering_is_detected() {
    let sk = key(3);
    let name = PeerId::from_ed25519(&sk.verifying_key());
    let now = at(1_000);
    let record = IpnsRecord::create(&sk, VALUE, 5, at(10_000), Duration::from_secs(60));
    record.validate(&name, now).unwrap();

    // Signed data changed: signatureV2 no longer verifies.
    let other = IpnsRecord::create(&sk, "/ipfs/other", 5, at(10_000), Duration::from_secs(60));
    let swapped = tampered(&record, |e| e.data = other.entry().data.clone()).unwrap();
    assert_eq!(
        swapped.validate(&name, now),
        Err(IpnsError::InvalidSignature)
    );

    // Signature flipped.
    let flipped = tampered(&record, |e| e.signature_v2.as_mut().unwrap()[0] ^= 1).unwrap();
    assert_eq!(
        flipped.validate(&name, now),
        Err(IpnsError::InvalidSignature)
    );

    // Legacy fields disagreeing with the signed data.
    let value = tampered(&record, |e| e.value = Some(b"/ipfs/evil".to_vec())).unwrap();
    assert_eq!(
        value.validate(&name, now),
        Err(IpnsError::FieldMismatch("value"))
    );
    let seq = tampered(&record, |e| e.sequence = Some(6)).unwrap();
    assert_eq!(
        seq.validate(&name, now),
        Err(IpnsError::FieldMismatch("sequence"))
    );
    let ttl = tampered(&record, |e| e.ttl = Some(1)).unwrap();
    assert_eq!(
        ttl.validate(&name, now),
        Err(IpnsError::FieldMismatch("ttl"))
    );
    let validity = tampered(&record, |e| {
        e.validity = Some(b"2100-01-01T00:00:00Z".to_vec())
    })
    .unwrap();
    assert_eq!(
        validity.validate(&name, now),
        Err(IpnsError::FieldMismatch("validity"))
    );

    // V2-only record (legacy fields and signatureV1 stripped) is still valid.
    let v2_only = tampered(&record, |e| {
        e.value = None;
        e.signature_v1 = None;
        e.validity = None;
        e.validity_type = None;
        e.sequence = None;
        e.ttl = None;
    })
    .unwrap();
    v2_only.validate(&name, now).unwrap();

    // Missing signatureV2 / data.
    assert_eq!(
        tampered(&record, |e| e.signature_v2 = None),
        Err(IpnsError::MissingSignatureV2)
    );
    assert_eq!(
        tampered(&record, |e| e.data = Some(Vec::new())),
        Err(IpnsError::MissingData)
    );
}

#[test]
fn wrong_name_and_embedded_keys() {
    let sk = key(3);
    let name = PeerId::from_ed25519(&sk.verifying_key());
    let other_name = PeerId::from_ed25519(&key(4).verifying_key());
    let record = IpnsRecord::create(&sk, VALUE, 1, at(10_000), Duration::from_secs(60));
    assert_eq!(
        record.validate(&other_name, at(0)),
        Err(IpnsError::InvalidSignature)
    );

    // An embedded key must hash to the name.
    let own_key = PublicKey::Ed25519(sk.verifying_key()).to_protobuf();
    let embedded = tampered(&record, |e| e.pub_key = Some(own_key.clone())).unwrap();
    embedded.validate(&name, at(0)).unwrap();
    assert_eq!(
        embedded.validate(&other_name, at(0)),
        Err(IpnsError::PublicKeyMismatch)
    );

    // A hashed (RSA-style) name needs the key in the record, and it must be a real key.
    let rsa_key = crate::peer::encode_public_key(crate::peer::KEY_TYPE_RSA, &[1u8; 270]);
    let rsa_name = PeerId::from_public_key_protobuf(&rsa_key);
    assert_eq!(
        record.validate(&rsa_name, at(0)),
        Err(IpnsError::PublicKeyNotFound)
    );
    let with_rsa = tampered(&record, |e| e.pub_key = Some(rsa_key.clone())).unwrap();
    assert_eq!(
        with_rsa.validate(&rsa_name, at(0)),
        Err(IpnsError::InvalidPublicKey(PeerError::InvalidRsaKey))
    );

    // Other key types (ECDSA: a P-256 key in X.509 form) are named as unsupported.
    let ecdsa_key = crate::peer::encode_public_key(crate::peer::KEY_TYPE_ECDSA, &[2u8; 91]);
    let ecdsa_name = PeerId::from_public_key_protobuf(&ecdsa_key);
    let with_ecdsa = tampered(&record, |e| e.pub_key = Some(ecdsa_key.clone())).unwrap();
    assert_eq!(
        with_ecdsa.validate(&ecdsa_name, at(0)),
        Err(IpnsError::UnsupportedKeyType(crate::peer::KEY_TYPE_ECDSA))
    );
}

/// An RSA keypair from a PKCS#8 file made as ring documents it: `openssl genpkey -algorithm
/// RSA -pkeyopt rsa_keygen_bits:2048 | openssl pkcs8 -topk8 -nocrypt -outform der`.
fn rsa_key(pkcs8: &[u8]) -> libp2p_identity::rsa::Keypair {
    libp2p_identity::rsa::Keypair::try_decode_pkcs8(&mut pkcs8.to_vec()).unwrap()
}

/// A record for `value` signed (V1 and V2) by a key of another type: `public` is the key's
/// protobuf, put in `pubKey` when the name hashes it (RSA, as Kubo makes such records) and
/// left out when the name inlines it (secp256k1); and the key's name.
fn foreign_signed_record(
    public: &[u8],
    sign: impl Fn(&[u8]) -> Vec<u8>,
    sequence: u64,
) -> (IpnsRecord, PeerId) {
    // Any key gives the same data: sign that again with the other key.
    let data_from = IpnsRecord::create(
        &key(1),
        VALUE,
        sequence,
        at(10_000),
        Duration::from_secs(60),
    );
    let name = PeerId::from_public_key_protobuf(public);
    let inlined = name.multihash().code() == IDENTITY;
    let cbor_data = data_from.entry().data.clone().unwrap();
    let signature_v2 = sign(&signature_v2_payload(&cbor_data));
    let signature_v1 = sign(&signature_v1_payload(
        &data_from.data.value,
        &data_from.data.validity,
    ));
    let record = tampered(&data_from, |e| {
        e.pub_key = (!inlined).then(|| public.to_vec());
        e.signature_v2 = Some(signature_v2);
        e.signature_v1 = Some(signature_v1);
    })
    .unwrap();
    (record, name)
}

/// As Kubo makes a record for an RSA identity (the key in `pubKey`, a sha2-256 name).
fn rsa_signed_record(rsa: &libp2p_identity::rsa::Keypair, sequence: u64) -> (IpnsRecord, PeerId) {
    let public = crate::peer::encode_public_key(KEY_TYPE_RSA, &rsa.public().encode_x509());
    foreign_signed_record(&public, |payload| rsa.sign(payload).unwrap(), sequence)
}

#[test]
fn rsa_signed_records_validate_under_their_hashed_name() {
    let rsa = rsa_key(include_bytes!("rsa-2048-test-key.pk8"));
    let (record, name) = rsa_signed_record(&rsa, 3);
    assert_eq!(
        name.ed25519_public_key(),
        None,
        "an RSA name hashes its key"
    );
    record.validate(&name, at(0)).unwrap();
    assert_eq!(record.sequence(), 3);

    // Not under another name, not with the signature or the data changed, not expired.
    let other = PeerId::from_ed25519(&key(2).verifying_key());
    assert_eq!(
        record.validate(&other, at(0)),
        Err(IpnsError::PublicKeyMismatch)
    );
    let mut bad_signature = record.entry().signature_v2.clone().unwrap();
    bad_signature[10] ^= 1;
    let forged = tampered(&record, |e| e.signature_v2 = Some(bad_signature)).unwrap();
    assert_eq!(
        forged.validate(&name, at(0)),
        Err(IpnsError::InvalidSignature)
    );
    let truncated = tampered(&record, |e| e.signature_v2 = Some(vec![1; 16])).unwrap();
    assert_eq!(
        truncated.validate(&name, at(0)),
        Err(IpnsError::InvalidSignature)
    );
    let resequenced = {
        let (other_data, _) = rsa_signed_record(&rsa, 4);
        tampered(&record, |e| e.data = other_data.entry().data.clone()).unwrap()
    };
    assert!(resequenced.validate(&name, at(0)).is_err());
    assert_eq!(record.validate(&name, at(20_000)), Err(IpnsError::Expired));
}

#[test]
fn secp256k1_signed_records_validate_under_their_inlined_name() {
    let secret = libp2p_identity::secp256k1::SecretKey::try_from_bytes([7u8; 32]).unwrap();
    let keypair = libp2p_identity::secp256k1::Keypair::from(secret);
    let public = crate::peer::encode_public_key(KEY_TYPE_SECP256K1, &keypair.public().to_bytes());
    let (record, name) =
        foreign_signed_record(&public, |payload| keypair.secret().sign(payload), 5);
    assert_eq!(name.multihash().code(), IDENTITY, "the key is inlined");
    assert_eq!(record.entry().pub_key, None);
    record.validate(&name, at(0)).unwrap();

    let mut bad_signature = record.entry().signature_v2.clone().unwrap();
    let last = bad_signature.len() - 1;
    bad_signature[last] ^= 1;
    let forged = tampered(&record, |e| e.signature_v2 = Some(bad_signature)).unwrap();
    assert_eq!(
        forged.validate(&name, at(0)),
        Err(IpnsError::InvalidSignature)
    );
    let not_der = tampered(&record, |e| e.signature_v2 = Some(vec![0x30; 70])).unwrap();
    assert_eq!(
        not_der.validate(&name, at(0)),
        Err(IpnsError::InvalidSignature)
    );
    // A name inlining 33 bytes that are not a point on the curve.
    let off_curve = crate::peer::encode_public_key(KEY_TYPE_SECP256K1, &[5u8; 33]);
    let off_curve_name = PeerId::from_public_key_protobuf(&off_curve);
    assert_eq!(
        record.validate(&off_curve_name, at(0)),
        Err(IpnsError::InvalidPublicKey(PeerError::InvalidSecp256k1Key))
    );
}

#[test]
fn expiry() {
    let sk = key(9);
    let name = PeerId::from_ed25519(&sk.verifying_key());
    let record = IpnsRecord::create(&sk, VALUE, 1, at(10_000), Duration::from_secs(60));
    record.validate(&name, at(10_000)).unwrap();
    assert_eq!(record.validate(&name, at(10_001)), Err(IpnsError::Expired));
}

#[test]
fn oversized_records_are_rejected() {
    let sk = key(9);
    let name = PeerId::from_ed25519(&sk.verifying_key());
    let big_value = format!("/ipfs/{}", "a".repeat(6000));
    let record = IpnsRecord::create(&sk, &big_value, 1, at(10_000), Duration::from_secs(60));
    assert!(record.as_bytes().len() > MAX_RECORD_SIZE);
    assert_eq!(
        IpnsRecord::from_bytes(record.as_bytes()),
        Err(IpnsError::TooLarge(record.as_bytes().len()))
    );
    assert!(matches!(
        record.validate(&name, at(0)),
        Err(IpnsError::TooLarge(_))
    ));
    assert_eq!(
        IpnsRecord::from_bytes(&vec![0u8; MAX_RECORD_SIZE + 1]),
        Err(IpnsError::TooLarge(MAX_RECORD_SIZE + 1))
    );
}

#[test]
fn malformed_input_is_rejected() {
    assert!(matches!(
        IpnsRecord::from_bytes(b"blah blah blah"),
        Err(IpnsError::Protobuf(_))
    ));
    // Data that is not a map, and a map missing Sequence.
    let sk = key(1);
    let record = IpnsRecord::create(&sk, VALUE, 1, at(10_000), Duration::from_secs(60));
    assert_eq!(
        tampered(&record, |e| e.data = Some(vec![0x01])),
        Err(IpnsError::InvalidData("not a map"))
    );
    let no_seq = cbor::encode(&Value::Map(vec![
        (KEY_VALUE.into(), Value::Bytes(b"/ipfs/x".to_vec())),
        (
            KEY_VALIDITY.into(),
            Value::Bytes(b"2100-01-01T00:00:00Z".to_vec()),
        ),
        (KEY_VALIDITY_TYPE.into(), Value::Unsigned(0)),
        (KEY_TTL.into(), Value::Unsigned(1)),
    ]));
    assert_eq!(
        tampered(&record, |e| e.data = Some(no_seq)),
        Err(IpnsError::InvalidData(KEY_SEQUENCE))
    );
}

#[test]
fn compare_prefers_sequence_then_eol() {
    let sk = key(2);
    let ttl = Duration::from_secs(60);
    let low = IpnsRecord::create(&sk, VALUE, 1, at(50_000), ttl);
    let high = IpnsRecord::create(&sk, VALUE, 2, at(10_000), ttl);
    let high_later = IpnsRecord::create(&sk, VALUE, 2, at(20_000), ttl);
    assert_eq!(compare(&high, &low), Ordering::Greater);
    assert_eq!(compare(&low, &high), Ordering::Less);
    assert_eq!(compare(&high_later, &high), Ordering::Greater);
    assert_eq!(compare(&high, &high), Ordering::Equal);
    let mut all = [high.clone(), low.clone(), high_later.clone()];
    all.sort_by(compare);
    assert_eq!(all.last(), Some(&high_later));
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(record) = IpnsRecord::from_bytes(&bytes) {
            let _ = record.validate(&PeerId::from_ed25519(&key(1).verifying_key()), at(0));
            prop_assert_eq!(record.to_bytes(), bytes);
        }
    }

    #[test]
    fn create_parse_validate(seed: [u8; 32], seq: u64, eol_secs in 0u64..MAX_RFC3339_SECONDS, nanos in 0u32..1_000_000_000, ttl: u32) {
        let sk = SigningKey::from_bytes(&seed);
        let name = PeerId::from_ed25519(&sk.verifying_key());
        let eol = at(eol_secs) + Duration::from_nanos(u64::from(nanos));
        let record = IpnsRecord::create(&sk, VALUE, seq, eol, Duration::from_nanos(u64::from(ttl)));
        let parsed = IpnsRecord::from_bytes(&record.to_bytes()).unwrap();
        prop_assert_eq!(parsed.eol().unwrap(), eol);
        prop_assert_eq!(parsed.sequence(), seq);
        prop_assert!(parsed.validate(&name, eol).is_ok());
        prop_assert_eq!(parsed.validate(&name, eol + Duration::from_nanos(1)), Err(IpnsError::Expired));
    }
}
