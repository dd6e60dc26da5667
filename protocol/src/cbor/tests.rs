use super::*;
use crate::cid::{cid_v0, raw_cid};
use proptest::prelude::*;

fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

#[test]
fn integers_use_shortest_form() {
    // Vectors from RFC 8949 appendix A.
    let cases: &[(Value, &str)] = &[
        (Value::Unsigned(0), "00"),
        (Value::Unsigned(23), "17"),
        (Value::Unsigned(24), "1818"),
        (Value::Unsigned(255), "18ff"),
        (Value::Unsigned(256), "190100"),
        (Value::Unsigned(1_000_000), "1a000f4240"),
        (Value::Unsigned(1_000_000_000_000), "1b000000e8d4a51000"),
        (Value::Unsigned(u64::MAX), "1bffffffffffffffff"),
        (Value::Negative(0), "20"),
        (Value::Negative(99), "3863"),
        (Value::Bool(false), "f4"),
        (Value::Bool(true), "f5"),
        (Value::Null, "f6"),
        (Value::Text("IETF".into()), "6449455446"),
        (Value::Bytes(vec![1, 2, 3, 4]), "4401020304"),
    ];
    for (value, expected) in cases {
        assert_eq!(hex(&encode(value)), *expected, "{value:?}");
        assert_eq!(&decode(&hex::decode(expected).unwrap()).unwrap(), value);
    }
}

#[test]
fn map_keys_are_sorted_by_length_then_bytes() {
    let value = Value::Map(vec![
        ("Validity".into(), Value::Null),
        ("TTL".into(), Value::Null),
        ("Sequence".into(), Value::Null),
        ("a".into(), Value::Null),
    ]);
    let encoded = encode(&value);
    // a, TTL, Sequence, Validity
    assert_eq!(
        hex(&encoded),
        "a46161f66354544cf66853657175656e6365f66856616c6964697479f6"
    );
    let decoded = decode(&encoded).unwrap();
    let keys: Vec<&str> = match &decoded {
        Value::Map(entries) => entries.iter().map(|(k, _)| k.as_str()).collect(),
        _ => panic!("not a map"),
    };
    assert_eq!(keys, ["a", "TTL", "Sequence", "Validity"]);
}

#[test]
fn duplicate_keys_keep_the_last_value() {
    let value = Value::Map(vec![
        ("k".into(), Value::Unsigned(1)),
        ("k".into(), Value::Unsigned(2)),
    ]);
    assert_eq!(hex(&encode(&value)), "a1616b02");
}

#[test]
fn links_are_tag_42_with_zero_prefix() {
    let cid = raw_cid(b"hello");
    let encoded = encode(&Value::Link(cid));
    let mut expected = vec![0xd8, 0x2a, 0x58, 0x25, 0x00];
    expected.extend_from_slice(&cid.to_bytes());
    assert_eq!(encoded, expected);
    assert_eq!(decode(&encoded).unwrap(), Value::Link(cid));

    let v0 = cid_v0(b"x");
    assert_eq!(decode(&encode(&Value::Link(v0))).unwrap(), Value::Link(v0));
}

#[test]
fn rejects_non_canonical_input() {
    let reject = |hex_in: &str, err: CborError| {
        assert_eq!(decode(&hex::decode(hex_in).unwrap()), Err(err), "{hex_in}");
    };
    reject("1817", CborError::NonMinimalInteger);
    reject("190017", CborError::NonMinimalInteger);
    reject("1a0000ffff", CborError::NonMinimalInteger);
    reject("1b00000000ffffffff", CborError::NonMinimalInteger);
    reject("5f4101ff", CborError::IndefiniteLength);
    reject("9fff", CborError::IndefiniteLength);
    reject("1c", CborError::ReservedInfo(28));
    reject("f93c00", CborError::Float);
    reject("fb3ff199999999999a", CborError::Float);
    reject("f7", CborError::UnsupportedSimple(23));
    reject("c11a514b67b0", CborError::UnsupportedTag(1));
    reject("a10101", CborError::NonTextKey);
    // {"b": 1, "a": 2}: wrong order; {"a": 1, "a": 2}: duplicate; {"aa":1,"b":2}: length first.
    reject("a2616201616102", CborError::UnsortedKeys);
    reject("a2616101616102", CborError::UnsortedKeys);
    reject(
        "a2626161016162 02".replace(' ', "").as_str(),
        CborError::UnsortedKeys,
    );
    reject("0000", CborError::TrailingBytes(1));
    reject("62ff00", CborError::InvalidUtf8);
    // Link without the 0x00 prefix, and with bytes after the CID.
    reject("d82a420155", CborError::InvalidCid);
    let mut long = vec![0xd8, 0x2a, 0x58, 0x26, 0x00];
    long.extend_from_slice(&raw_cid(b"x").to_bytes());
    long.push(0);
    assert_eq!(decode(&long), Err(CborError::InvalidCid));
}

#[test]
fn declared_lengths_beyond_input_are_rejected_without_allocating() {
    // Byte string, array and map claiming 2^64-1 items in a few bytes.
    for input in [
        "5bffffffffffffffff",
        "9bffffffffffffffff",
        "bbffffffffffffffff",
    ] {
        assert_eq!(
            decode(&hex::decode(input).unwrap()),
            Err(CborError::Truncated)
        );
    }
    assert_eq!(decode(&[]), Err(CborError::Truncated));
}

#[test]
fn depth_is_limited() {
    let mut nested = Value::Null;
    for _ in 0..=MAX_DEPTH {
        nested = Value::Array(vec![nested]);
    }
    assert_eq!(decode(&encode(&nested)), Err(CborError::TooDeep));
    let Value::Array(inner) = nested else {
        unreachable!()
    };
    let ok = inner.into_iter().next().unwrap();
    assert_eq!(decode(&encode(&ok)).unwrap(), ok);
}

fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<u64>().prop_map(Value::Unsigned),
        any::<u64>().prop_map(Value::Negative),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::Bytes),
        ".{0,12}".prop_map(Value::Text),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(|b| Value::Link(raw_cid(&b))),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map("[a-zA-Z]{0,6}", inner, 0..6)
                .prop_map(|m| Value::Map(m.into_iter().collect())),
        ]
    })
}

/// Sort maps canonically so a generated value can be compared with a decoded one.
fn canonicalize(value: Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.into_iter().map(canonicalize).collect()),
        Value::Map(mut entries) => {
            entries.sort_by(|a, b| canonical_key_order(&a.0, &b.0));
            Value::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, canonicalize(v)))
                    .collect(),
            )
        }
        other => other,
    }
}

proptest! {
    #[test]
    fn round_trip(value in arb_value()) {
        let encoded = encode(&value);
        let decoded = decode(&encoded).unwrap();
        prop_assert_eq!(&decoded, &canonicalize(value));
        prop_assert_eq!(encode(&decoded), encoded);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_reencode_exactly(bytes: Vec<u8>) {
        if let Ok(value) = decode(&bytes) {
            // Strict decoding means the accepted input was already canonical.
            prop_assert_eq!(encode(&value), bytes);
        }
    }
}
