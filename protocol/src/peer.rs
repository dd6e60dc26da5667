//! libp2p public keys and peer ids (libp2p specs `peer-ids/peer-ids.md`).
//!
//! A peer id is the multihash of the protobuf-encoded public key: the identity multihash
//! (key inlined) when that encoding is at most 42 bytes — always the case for Ed25519 —
//! and sha2-256 otherwise. The same multihash, as a CIDv1 with codec libp2p-key, is an
//! IPNS name (`k51…`).

use std::fmt;
use std::str::FromStr;

use ::cid::Cid;
use ed25519_dalek::VerifyingKey;
use multibase::Base;
use multihash::Multihash;

use crate::cid::{sha256_multihash, IDENTITY, LIBP2P_KEY, SHA2_256};
use crate::varint;

/// Keys whose protobuf encoding is at most this long are inlined in the peer id.
pub const MAX_INLINE_KEY_LENGTH: usize = 42;

/// `KeyType` of the libp2p `PublicKey` protobuf.
pub const KEY_TYPE_RSA: i32 = 0;
pub const KEY_TYPE_ED25519: i32 = 1;
pub const KEY_TYPE_SECP256K1: i32 = 2;
pub const KEY_TYPE_ECDSA: i32 = 3;

/// Errors of peer id and public key parsing.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum PeerError {
    #[error("malformed multihash")]
    InvalidMultihash,
    #[error("peer id multihash must be identity (≤ 42 bytes) or sha2-256, got code {code:#x} with {len} bytes")]
    UnsupportedMultihash { code: u64, len: usize },
    #[error("invalid peer id text: {0}")]
    InvalidText(String),
    #[error("CID codec {0:#x} is not libp2p-key (0x72)")]
    NotLibp2pKey(u64),
    #[error("malformed PublicKey protobuf: {0}")]
    InvalidProtobuf(&'static str),
    #[error("invalid Ed25519 public key")]
    InvalidEd25519Key,
    #[error("invalid RSA public key (not a DER SubjectPublicKeyInfo)")]
    InvalidRsaKey,
    #[error("invalid secp256k1 public key (not a 33-byte compressed point on the curve)")]
    InvalidSecp256k1Key,
}

/// A decoded libp2p public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    Ed25519(VerifyingKey),
    /// RSA, Secp256k1, ECDSA or unknown types: kept as the raw `Data` bytes.
    Other {
        key_type: i32,
        data: Vec<u8>,
    },
}

impl PublicKey {
    /// The protobuf `KeyType` of this key.
    pub fn key_type(&self) -> i32 {
        match self {
            PublicKey::Ed25519(_) => KEY_TYPE_ED25519,
            PublicKey::Other { key_type, .. } => *key_type,
        }
    }

    /// The protobuf encoding `PublicKey { Type = 1, Data = 2 }` (both fields always written,
    /// as go-libp2p's proto2 `required` fields are).
    pub fn to_protobuf(&self) -> Vec<u8> {
        match self {
            PublicKey::Ed25519(key) => encode_public_key(KEY_TYPE_ED25519, key.as_bytes()),
            PublicKey::Other { key_type, data } => encode_public_key(*key_type, data),
        }
    }
}

/// Encode `PublicKey { Type, Data }`; Ed25519 gives `08 01 12 20 <32 bytes>`.
pub fn encode_public_key(key_type: i32, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 14);
    out.push(0x08); // field 1, varint
                    // Negative enum values are sign-extended to 64 bits, as protobuf does for int32.
    varint::write(i64::from(key_type) as u64, &mut out);
    out.push(0x12); // field 2, length-delimited
    varint::write(data.len() as u64, &mut out);
    out.extend_from_slice(data);
    out
}

/// Decode a `PublicKey` protobuf. Both fields are required (proto2 `required` in
/// go-libp2p); unknown fields are skipped as protobuf demands.
pub fn decode_public_key(bytes: &[u8]) -> Result<PublicKey, PeerError> {
    let mut key_type: Option<i32> = None;
    let mut data: Option<&[u8]> = None;
    let mut pos = 0;
    while pos < bytes.len() {
        let (tag, n) = read_varint(&bytes[pos..])?;
        pos += n;
        let field = tag >> 3;
        let wire_type = tag & 7;
        match (field, wire_type) {
            (0, _) => return Err(PeerError::InvalidProtobuf("field number 0")),
            (1, 0) | (2, 2) => {}
            (1, _) | (2, _) => return Err(PeerError::InvalidProtobuf("wrong wire type")),
            _ => {}
        }
        match wire_type {
            0 => {
                let (value, n) = read_varint(&bytes[pos..])?;
                pos += n;
                if field == 1 {
                    // int32 enum: the low 32 bits, as protobuf truncates.
                    key_type = Some(value as i32);
                }
            }
            2 => {
                let (len, n) = read_varint(&bytes[pos..])?;
                pos += n;
                let len = usize::try_from(len)
                    .ok()
                    .filter(|len| *len <= bytes.len() - pos)
                    .ok_or(PeerError::InvalidProtobuf("length beyond input"))?;
                if field == 2 {
                    data = Some(&bytes[pos..pos + len]);
                }
                pos += len;
            }
            1 => pos = skip(bytes, pos, 8)?,
            5 => pos = skip(bytes, pos, 4)?,
            _ => return Err(PeerError::InvalidProtobuf("unsupported wire type")),
        }
    }
    let key_type = key_type.ok_or(PeerError::InvalidProtobuf("missing Type"))?;
    let data = data.ok_or(PeerError::InvalidProtobuf("missing Data"))?;
    if key_type == KEY_TYPE_ED25519 {
        let raw: [u8; 32] = data.try_into().map_err(|_| PeerError::InvalidEd25519Key)?;
        let key = VerifyingKey::from_bytes(&raw).map_err(|_| PeerError::InvalidEd25519Key)?;
        Ok(PublicKey::Ed25519(key))
    } else {
        Ok(PublicKey::Other {
            key_type,
            data: data.to_vec(),
        })
    }
}

fn read_varint(bytes: &[u8]) -> Result<(u64, usize), PeerError> {
    varint::read(bytes).map_err(|_| PeerError::InvalidProtobuf("bad varint"))
}

fn skip(bytes: &[u8], pos: usize, n: usize) -> Result<usize, PeerError> {
    if n > bytes.len() - pos {
        return Err(PeerError::InvalidProtobuf("truncated fixed-size field"));
    }
    Ok(pos + n)
}

/// A libp2p peer id: the multihash of a public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerId {
    multihash: Multihash<64>,
}

impl PeerId {
    /// The peer id of an Ed25519 key (always inlined: `12D3KooW…`).
    pub fn from_ed25519(key: &VerifyingKey) -> PeerId {
        PeerId::from_public_key_protobuf(&encode_public_key(KEY_TYPE_ED25519, key.as_bytes()))
    }

    /// The peer id of a public key given as its protobuf encoding.
    pub fn from_public_key_protobuf(protobuf: &[u8]) -> PeerId {
        let multihash = if protobuf.len() <= MAX_INLINE_KEY_LENGTH {
            Multihash::wrap(IDENTITY, protobuf).expect("≤ 42 bytes fit in a 64-byte multihash")
        } else {
            sha256_multihash(protobuf)
        };
        PeerId { multihash }
    }

    /// Parse the binary multihash form (as in DHT keys and IPNS routing keys).
    pub fn from_multihash_bytes(bytes: &[u8]) -> Result<PeerId, PeerError> {
        let multihash =
            Multihash::<64>::from_bytes(bytes).map_err(|_| PeerError::InvalidMultihash)?;
        // Only the canonical encoding: from_bytes tolerates non-minimal varints.
        if multihash.to_bytes() != bytes {
            return Err(PeerError::InvalidMultihash);
        }
        PeerId::from_multihash(multihash)
    }

    fn from_multihash(multihash: Multihash<64>) -> Result<PeerId, PeerError> {
        let len = multihash.digest().len();
        let ok = match multihash.code() {
            IDENTITY => len <= MAX_INLINE_KEY_LENGTH,
            SHA2_256 => len == 32,
            _ => false,
        };
        if ok {
            Ok(PeerId { multihash })
        } else {
            Err(PeerError::UnsupportedMultihash {
                code: multihash.code(),
                len,
            })
        }
    }

    /// Parse a peer id as go-libp2p's `peer.Decode` does: base58btc multihash (`12D3KooW…`,
    /// `Qm…`), or a CIDv1 with codec libp2p-key in any multibase (`k51…`, `bafzaa…`).
    pub fn parse(text: &str) -> Result<PeerId, PeerError> {
        if text.starts_with("Qm") || text.starts_with('1') {
            let bytes = bs58::decode(text)
                .into_vec()
                .map_err(|e| PeerError::InvalidText(e.to_string()))?;
            return PeerId::from_multihash_bytes(&bytes);
        }
        let (_, bytes) =
            multibase::decode(text).map_err(|e| PeerError::InvalidText(e.to_string()))?;
        let cid =
            Cid::try_from(bytes.as_slice()).map_err(|e| PeerError::InvalidText(e.to_string()))?;
        if cid.to_bytes() != bytes {
            return Err(PeerError::InvalidText("bytes after the CID".into()));
        }
        if cid.codec() != LIBP2P_KEY {
            return Err(PeerError::NotLibp2pKey(cid.codec()));
        }
        PeerId::from_multihash(*cid.hash())
    }

    /// The multihash bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.multihash.to_bytes()
    }

    /// The multihash itself.
    pub fn multihash(&self) -> &Multihash<64> {
        &self.multihash
    }

    /// base58btc of the multihash, as libp2p prints peer ids.
    pub fn to_base58(&self) -> String {
        bs58::encode(self.to_bytes()).into_string()
    }

    /// CIDv1 with codec libp2p-key (0x72).
    pub fn to_cid(&self) -> Cid {
        Cid::new_v1(LIBP2P_KEY, self.multihash)
    }

    /// The IPNS name: the libp2p-key CID in base36 lower case (`k51…`), as Kubo prints it.
    pub fn to_ipns_name(&self) -> String {
        multibase::encode(Base::Base36Lower, self.to_cid().to_bytes())
    }

    /// The inlined public key, if this peer id inlines one (identity multihash).
    pub fn public_key(&self) -> Option<PublicKey> {
        if self.multihash.code() != IDENTITY {
            return None;
        }
        decode_public_key(self.multihash.digest()).ok()
    }

    /// The Ed25519 key inlined in this peer id, if it is one.
    pub fn ed25519_public_key(&self) -> Option<VerifyingKey> {
        match self.public_key()? {
            PublicKey::Ed25519(key) => Some(key),
            PublicKey::Other { .. } => None,
        }
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base58())
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({})", self.to_base58())
    }
}

impl FromStr for PeerId {
    type Err = PeerError;

    fn from_str(text: &str) -> Result<PeerId, PeerError> {
        PeerId::parse(text)
    }
}

impl PartialOrd for PeerId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Ordered by multihash bytes, as go-libp2p orders its string-typed `peer.ID`.
impl Ord for PeerId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.to_bytes().cmp(&other.to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// libp2p specs `peer-ids.md` test vector; go-libp2p's p2p/http/auth tests derive
    /// the peer id `12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq` from it.
    const SPEC_ED25519_PUBLIC: &str =
        "080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e";
    const SPEC_ED25519_PEER_ID: &str = "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq";
    /// The private key of the same vector (protobuf `PrivateKey`: seed ‖ public key).
    const SPEC_ED25519_SEED: &str =
        "7e0830617c4a7de83925dfb2694556b12936c477a0e1feb2e148ec9da60fee7d";

    #[test]
    fn spec_ed25519_vector() {
        let seed: [u8; 32] = hex::decode(SPEC_ED25519_SEED).unwrap().try_into().unwrap();
        let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
        let verifying = signing.verifying_key();
        let protobuf = PublicKey::Ed25519(verifying).to_protobuf();
        assert_eq!(hex::encode(&protobuf), SPEC_ED25519_PUBLIC);
        assert_eq!(
            decode_public_key(&protobuf).unwrap(),
            PublicKey::Ed25519(verifying)
        );

        let peer = PeerId::from_ed25519(&verifying);
        assert_eq!(peer.to_base58(), SPEC_ED25519_PEER_ID);
        assert_eq!(peer.to_string(), SPEC_ED25519_PEER_ID);
        assert_eq!(peer, PeerId::from_public_key_protobuf(&protobuf));
        assert_eq!(&peer.to_bytes()[..2], &[0x00, 0x24]);
        assert_eq!(peer.ed25519_public_key(), Some(verifying));
        assert_eq!(SPEC_ED25519_PEER_ID.parse::<PeerId>().unwrap(), peer);
    }

    /// boxo `ipns/name_test.go`: the same names as base58 peer ids and base36 CIDs.
    #[test]
    fn boxo_name_vectors() {
        let vectors = [
            (
                "12D3KooWSzRuSFHgLsKr6jJboAPdP7xMga2YBgBspYuErxswcgvt",
                "k51qzi5uqu5dmjjgoe7s21dncepi970722cn30qlhm9qridas1c9ktkjb6ejux",
            ),
            (
                "QmRp2LvtSQtCkUWCpi92ph5MdQyRtfb9jHbkNgZzGExGuG",
                "k2k4r8kpauqq30hoj9oktej5btbgz1jeos16d3te36xd78trvak0jcor",
            ),
            (
                "16Uiu2HAmUymv6JpFwNZppdKUMxGJuHsTeicXgHGKbBasu4Ruj3K1",
                "kzwfwjn5ji4puw3jc1qw4b073j74xvq21iziuqw4rem21pr7f0l4dj8i9yb978s",
            ),
        ];
        for (base58, base36) in vectors {
            let from_base58 = PeerId::parse(base58).unwrap();
            let from_base36 = PeerId::parse(base36).unwrap();
            assert_eq!(from_base58, from_base36);
            assert_eq!(from_base58.to_ipns_name(), base36);
            assert_eq!(from_base36.to_base58(), base58);
            // The same CID in base32 also parses.
            let base32 = from_base58.to_cid().to_string();
            assert!(base32.starts_with('b'));
            assert_eq!(PeerId::parse(&base32).unwrap(), from_base58);
        }
        let ed = PeerId::parse("12D3KooWSzRuSFHgLsKr6jJboAPdP7xMga2YBgBspYuErxswcgvt").unwrap();
        assert!(ed.ed25519_public_key().is_some());
        let rsa = PeerId::parse("QmRp2LvtSQtCkUWCpi92ph5MdQyRtfb9jHbkNgZzGExGuG").unwrap();
        assert_eq!(rsa.ed25519_public_key(), None);
        let secp = PeerId::parse("16Uiu2HAmUymv6JpFwNZppdKUMxGJuHsTeicXgHGKbBasu4Ruj3K1").unwrap();
        assert_eq!(secp.public_key().unwrap().key_type(), KEY_TYPE_SECP256K1);
        assert_eq!(secp.ed25519_public_key(), None);
    }

    #[test]
    fn long_keys_are_hashed() {
        let protobuf = encode_public_key(KEY_TYPE_RSA, &[7u8; 300]);
        let peer = PeerId::from_public_key_protobuf(&protobuf);
        assert_eq!(peer.multihash().code(), SHA2_256);
        assert!(peer.to_base58().starts_with("Qm"));
        assert_eq!(peer.public_key(), None);
    }

    #[test]
    fn rejects_bad_input() {
        // A dag-pb CID is not a peer id.
        let dag_pb = Cid::new_v1(crate::cid::DAG_PB, sha256_multihash(b"x")).to_string();
        assert_eq!(
            PeerId::parse(&dag_pb),
            Err(PeerError::NotLibp2pKey(crate::cid::DAG_PB))
        );
        assert!(PeerId::parse("").is_err());
        assert!(PeerId::parse("12D3KooW0000").is_err());
        // Identity multihash longer than 42 bytes, and an unknown hash code.
        let mut long = vec![0x00, 43];
        long.extend_from_slice(&[0u8; 43]);
        assert!(matches!(
            PeerId::from_multihash_bytes(&long),
            Err(PeerError::UnsupportedMultihash { .. })
        ));
        assert!(PeerId::from_multihash_bytes(&[0x13, 0x01, 0x00]).is_err());
        // Trailing bytes.
        let mut trailing = PeerId::parse(SPEC_ED25519_PEER_ID).unwrap().to_bytes();
        trailing.push(0);
        assert!(PeerId::from_multihash_bytes(&trailing).is_err());
        // Protobuf without Data, Ed25519 key of the wrong size.
        assert!(decode_public_key(&[0x08, 0x01]).is_err());
        assert_eq!(
            decode_public_key(&[0x08, 0x01, 0x12, 0x01, 0x00]),
            Err(PeerError::InvalidEd25519Key)
        );
        assert!(decode_public_key(&[0x08, 0x01, 0x12, 0x7f]).is_err());
        // Type sent as bytes.
        assert!(decode_public_key(&[0x0a, 0x00, 0x12, 0x00]).is_err());
        // Unknown fields are skipped.
        let mut extra = encode_public_key(KEY_TYPE_SECP256K1, &[1, 2, 3]);
        extra.extend_from_slice(&[0x18, 0x05, 0x25, 0, 0, 0, 0]);
        assert_eq!(
            decode_public_key(&extra).unwrap().key_type(),
            KEY_TYPE_SECP256K1
        );
    }

    proptest! {
        #[test]
        fn public_key_protobuf_round_trip(key_type in 0i32..4, data in proptest::collection::vec(any::<u8>(), 0..80)) {
            prop_assume!(key_type != KEY_TYPE_ED25519);
            let encoded = encode_public_key(key_type, &data);
            let decoded = decode_public_key(&encoded).unwrap();
            prop_assert_eq!(decoded.to_protobuf(), encoded);
        }

        #[test]
        fn ed25519_peer_ids_round_trip_through_text(seed: [u8; 32]) {
            let key = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
            let peer = PeerId::from_ed25519(&key);
            prop_assert!(peer.to_base58().starts_with("12D3KooW"));
            prop_assert!(peer.to_ipns_name().starts_with("k51"));
            prop_assert_eq!(PeerId::parse(&peer.to_base58()).unwrap(), peer);
            prop_assert_eq!(PeerId::parse(&peer.to_ipns_name()).unwrap(), peer);
            prop_assert_eq!(PeerId::from_multihash_bytes(&peer.to_bytes()).unwrap(), peer);
            prop_assert_eq!(peer.ed25519_public_key(), Some(key));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes: Vec<u8>) {
            let _ = decode_public_key(&bytes);
            if let Ok(peer) = PeerId::from_multihash_bytes(&bytes) {
                prop_assert_eq!(peer.to_bytes(), bytes);
            }
        }

        #[test]
        fn arbitrary_text_never_panics(text in ".{0,80}") {
            let _ = PeerId::parse(&text);
        }
    }
}
