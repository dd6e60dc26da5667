use super::*;
use crate::cid::{cid_v1, raw_cid, DAG_CBOR, RAW};
use proptest::prelude::*;

/// boxo `bitswap/message/pb/cid_test.go`: a BlockPresence holding the CIDv0 of
/// "foobar" (type Have = default, so omitted) encodes to these bytes.
const BOXO_BLOCK_PRESENCE: [u8; 36] = [
    10, 34, 18, 32, 195, 171, 143, 241, 55, 32, 232, 173, 144, 71, 221, 57, 70, 107, 60, 137, 116,
    229, 146, 194, 250, 56, 61, 74, 57, 96, 113, 76, 174, 240, 196, 242,
];

#[test]
fn block_presence_matches_boxo_vector() {
    let cid = Cid::new_v0(sha256_multihash(b"foobar")).unwrap();
    let message = Message {
        presences: vec![BlockPresence {
            cid,
            presence: PresenceType::Have,
        }],
        ..Message::default()
    };
    let encoded = message.encode();
    // Field 4 (blockPresences), length-delimited, 36 bytes, then boxo's bytes.
    assert_eq!(&encoded[..2], &[0x22, 36]);
    assert_eq!(&encoded[2..], &BOXO_BLOCK_PRESENCE);
    assert_eq!(Message::decode(&encoded).unwrap(), message);
}

#[test]
fn golden_full_message() {
    // Hand-assembled from the .proto: proto3 omits default scalars, writes fields in
    // tag order, and go-cid's prefix is version, codec, hash code, digest length.
    let data = b"hello".to_vec();
    let cid = raw_cid(&data);
    let message = Message {
        wantlist: Some(Wantlist {
            entries: vec![WantlistEntry {
                cid,
                priority: 1,
                cancel: false,
                want_type: WantType::Have,
                send_dont_have: true,
            }],
            full: true,
        }),
        blocks: vec![(cid, data.clone())],
        presences: vec![BlockPresence {
            cid,
            presence: PresenceType::DontHave,
        }],
        pending_bytes: 7,
    };
    let cid_bytes = cid.to_bytes();
    assert_eq!(cid_bytes.len(), 36);
    let mut entry = vec![0x0a, 36];
    entry.extend_from_slice(&cid_bytes);
    entry.extend_from_slice(&[0x10, 1, 0x20, 1, 0x28, 1]);
    let mut wantlist = vec![0x0a, entry.len() as u8];
    wantlist.extend_from_slice(&entry);
    wantlist.extend_from_slice(&[0x10, 1]);
    let mut expected = vec![0x0a, wantlist.len() as u8];
    expected.extend_from_slice(&wantlist);
    expected.extend_from_slice(&[0x1a, 13, 0x0a, 4, 0x01, 0x55, 0x12, 0x20, 0x12, 5]);
    expected.extend_from_slice(b"hello");
    expected.extend_from_slice(&[0x22, 40, 0x0a, 36]);
    expected.extend_from_slice(&cid_bytes);
    expected.extend_from_slice(&[0x10, 1, 0x28, 7]);
    assert_eq!(message.encode(), expected);
    assert_eq!(Message::decode(&expected).unwrap(), message);
}

#[test]
fn legacy_blocks_field_gets_cidv0() {
    let node = b"\x0a\x02\x08\x01".to_vec();
    let pbm = pb::Message {
        blocks: vec![node.clone()],
        ..Default::default()
    };
    let decoded = Message::decode(&pbm.encode_to_vec()).unwrap();
    assert_eq!(decoded.blocks, vec![(cid_v0(&node), node)]);
}

#[test]
fn payload_cid_is_computed_from_data() {
    let claimed = raw_cid(b"wanted");
    let message = Message {
        blocks: vec![(claimed, b"something else".to_vec())],
        ..Message::default()
    };
    let decoded = Message::decode(&message.encode()).unwrap();
    assert_eq!(decoded.blocks[0].0, raw_cid(b"something else"));
}

#[test]
fn rejects_unknown_hashes_and_enums() {
    let block = |prefix: Vec<u8>| pb::Message {
        payload: vec![pb::Block {
            prefix,
            data: b"x".to_vec(),
        }],
        ..Default::default()
    };
    // sha2-512 prefix.
    let err = Message::decode(&block(vec![1, 0x55, 0x13, 0x40]).encode_to_vec());
    assert_eq!(
        err,
        Err(BitswapError::UnsupportedHash {
            code: 0x13,
            len: 64
        })
    );
    // sha2-256 truncated to 20 bytes.
    assert!(Message::decode(&block(vec![1, 0x55, 0x12, 20]).encode_to_vec()).is_err());
    // Trailing byte in the prefix, version 2, v0 with raw codec.
    assert!(Message::decode(&block(vec![1, 0x55, 0x12, 0x20, 0]).encode_to_vec()).is_err());
    assert!(Message::decode(&block(vec![2, 0x55, 0x12, 0x20]).encode_to_vec()).is_err());
    assert!(Message::decode(&block(vec![0, 0x55, 0x12, 0x20]).encode_to_vec()).is_err());
    // Identity prefix: fine when the length matches the data.
    let ok = Message::decode(&block(vec![1, 0x55, 0x00, 1]).encode_to_vec()).unwrap();
    assert_eq!(ok.blocks[0].0.hash().digest(), b"x");

    let entry = |want_type: i32, block: Vec<u8>| pb::Message {
        wantlist: Some(pb::Wantlist {
            entries: vec![pb::Entry {
                block,
                want_type,
                ..Default::default()
            }],
            full: false,
        }),
        ..Default::default()
    };
    let cid = raw_cid(b"x").to_bytes();
    assert_eq!(
        Message::decode(&entry(2, cid.clone()).encode_to_vec()),
        Err(BitswapError::UnknownWantType(2))
    );
    assert!(Message::decode(&entry(0, Vec::new()).encode_to_vec()).is_err());
    let mut trailing = cid.clone();
    trailing.push(0);
    assert!(Message::decode(&entry(0, trailing).encode_to_vec()).is_err());
    let presence = pb::Message {
        block_presences: vec![pb::BlockPresence { cid, r#type: 5 }],
        ..Default::default()
    };
    assert_eq!(
        Message::decode(&presence.encode_to_vec()),
        Err(BitswapError::UnknownPresenceType(5))
    );
}

#[test]
fn framing() {
    let message = Message {
        presences: vec![BlockPresence {
            cid: raw_cid(b"a"),
            presence: PresenceType::Have,
        }],
        ..Message::default()
    };
    let mut stream = encode_framed(&message);
    let one_len = stream.len();
    stream.extend_from_slice(&encode_framed(&Message::default()));

    // Every strict prefix of the first frame needs more bytes.
    for cut in 0..one_len {
        assert_eq!(
            decode_frame(&stream[..cut], MAX_MESSAGE_SIZE),
            Ok(None),
            "cut {cut}"
        );
    }
    let (first, used) = decode_frame(&stream, MAX_MESSAGE_SIZE).unwrap().unwrap();
    assert_eq!((first, used), (message, one_len));
    let (second, used2) = decode_frame(&stream[used..], MAX_MESSAGE_SIZE)
        .unwrap()
        .unwrap();
    assert_eq!((second, used2), (Message::default(), 1));
}

#[test]
fn oversize_frames_are_rejected_before_the_body_arrives() {
    let mut prefix = Vec::new();
    varint::write(MAX_MESSAGE_SIZE as u64 + 1, &mut prefix);
    assert_eq!(
        decode_frame(&prefix, MAX_MESSAGE_SIZE),
        Err(BitswapError::TooLarge {
            len: MAX_MESSAGE_SIZE as u64 + 1,
            max: MAX_MESSAGE_SIZE
        })
    );
    assert!(decode_frame(&[0xff; 11], MAX_MESSAGE_SIZE).is_err());
    // Non-minimal length prefix.
    assert_eq!(
        decode_frame(&[0x80, 0x00], 10),
        Err(BitswapError::BadLengthPrefix)
    );
    // A small limit applies too.
    let framed = encode_framed(&Message {
        blocks: vec![(raw_cid(&[0; 100]), vec![0; 100])],
        ..Message::default()
    });
    assert!(matches!(
        decode_frame(&framed, 50),
        Err(BitswapError::TooLarge { .. })
    ));
}

fn arb_cid() -> impl Strategy<Value = Cid> {
    (
        proptest::collection::vec(any::<u8>(), 0..16),
        prop_oneof![Just(RAW), Just(DAG_PB), Just(DAG_CBOR)],
        any::<bool>(),
    )
        .prop_map(|(data, codec, v0)| {
            if v0 {
                cid_v0(&data)
            } else {
                cid_v1(codec, &data)
            }
        })
}

fn arb_block() -> impl Strategy<Value = (Cid, Vec<u8>)> {
    (
        proptest::collection::vec(any::<u8>(), 0..64),
        prop_oneof![Just(RAW), Just(DAG_PB)],
        0..3u8,
    )
        .prop_map(|(data, codec, kind)| {
            let cid = match kind {
                0 => cid_v0(&data),
                1 => cid_v1(codec, &data),
                _ => Cid::new_v1(codec, Multihash::wrap(IDENTITY, &data).unwrap()),
            };
            (cid, data)
        })
}

fn arb_message() -> impl Strategy<Value = Message> {
    let entry = (
        arb_cid(),
        any::<i32>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(cid, priority, cancel, have, send_dont_have)| WantlistEntry {
                cid,
                priority,
                cancel,
                want_type: if have {
                    WantType::Have
                } else {
                    WantType::Block
                },
                send_dont_have,
            },
        );
    let wantlist = proptest::option::of(
        (proptest::collection::vec(entry, 0..5), any::<bool>())
            .prop_map(|(entries, full)| Wantlist { entries, full }),
    );
    let presence = (arb_cid(), any::<bool>()).prop_map(|(cid, dont)| BlockPresence {
        cid,
        presence: if dont {
            PresenceType::DontHave
        } else {
            PresenceType::Have
        },
    });
    (
        wantlist,
        proptest::collection::vec(arb_block(), 0..4),
        proptest::collection::vec(presence, 0..4),
        any::<i32>(),
    )
        .prop_map(|(wantlist, blocks, presences, pending_bytes)| Message {
            wantlist,
            blocks,
            presences,
            pending_bytes,
        })
}

proptest! {
    #[test]
    fn round_trip(message in arb_message()) {
        let encoded = message.encode();
        prop_assert_eq!(Message::decode(&encoded).unwrap(), message.clone());
        let framed = encode_framed(&message);
        let (decoded, used) = decode_frame(&framed, MAX_MESSAGE_SIZE).unwrap().unwrap();
        prop_assert_eq!(decoded, message);
        prop_assert_eq!(used, framed.len());
        // The frame is the bare encoding behind its length prefix.
        let mut prefix = Vec::new();
        crate::varint::write(encoded.len() as u64, &mut prefix);
        prop_assert_eq!(&framed[..prefix.len()], &prefix[..]);
        prop_assert_eq!(&framed[prefix.len()..], &encoded[..]);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(message) = Message::decode(&bytes) {
            prop_assert_eq!(Message::decode(&message.encode()).unwrap(), message);
        }
        let _ = decode_frame(&bytes, 256);
    }
}
