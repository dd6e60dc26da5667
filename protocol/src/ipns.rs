//! IPNS records (specs.ipfs.tech/ipns/ipns-record), byte-exact with boxo's `ipns` package.
//!
//! A record carries its signed content twice: the DAG-CBOR `data` map that signatureV2
//! covers (the only part modern resolvers trust) and, for readers older than go-ipfs 0.9,
//! the same fields as plain protobuf fields signed by signatureV1. `create` writes both,
//! as boxo's `NewRecord` does by default; `validate` trusts only `data` + signatureV2 and
//! checks that the legacy fields, when present, say the same.

use std::cmp::Ordering;
use std::time::{Duration, SystemTime};

use ed25519_dalek::{Signer, SigningKey, Verifier};
use prost::Message as _;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::cbor::{self, CborError, Value};
use crate::peer::{
    decode_public_key, PeerError, PeerId, PublicKey, KEY_TYPE_RSA, KEY_TYPE_SECP256K1,
};

/// Largest record accepted (boxo `MaxRecordSize`, 10 KiB).
pub const MAX_RECORD_SIZE: usize = 10 * 1024;

/// The only validity type: "valid until the time in `validity`".
pub const VALIDITY_EOL: u64 = 0;

/// Prefix of the bytes signatureV2 signs.
const SIGNATURE_V2_PREFIX: &[u8] = b"ipns-signature:";

/// Keys of the DAG-CBOR `data` map.
const KEY_VALUE: &str = "Value";
const KEY_VALIDITY: &str = "Validity";
const KEY_VALIDITY_TYPE: &str = "ValidityType";
const KEY_SEQUENCE: &str = "Sequence";
const KEY_TTL: &str = "TTL";

/// The `IpnsEntry` protobuf (boxo `ipns/pb/record.proto`; all fields have presence).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct IpnsEntry {
    #[prost(bytes = "vec", optional, tag = "1")]
    pub value: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub signature_v1: Option<Vec<u8>>,
    /// Enum `ValidityType { EOL = 0 }`.
    #[prost(int32, optional, tag = "3")]
    pub validity_type: Option<i32>,
    #[prost(bytes = "vec", optional, tag = "4")]
    pub validity: Option<Vec<u8>>,
    #[prost(uint64, optional, tag = "5")]
    pub sequence: Option<u64>,
    /// Nanoseconds.
    #[prost(uint64, optional, tag = "6")]
    pub ttl: Option<u64>,
    #[prost(bytes = "vec", optional, tag = "7")]
    pub pub_key: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "8")]
    pub signature_v2: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "9")]
    pub data: Option<Vec<u8>>,
}

/// Errors of IPNS record parsing and validation.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum IpnsError {
    #[error("record is {0} bytes, more than the {MAX_RECORD_SIZE}-byte limit")]
    TooLarge(usize),
    #[error("malformed IpnsEntry protobuf: {0}")]
    Protobuf(String),
    #[error("record has no signatureV2")]
    MissingSignatureV2,
    #[error("record has no data")]
    MissingData,
    #[error("record data is not valid DAG-CBOR: {0}")]
    Cbor(#[from] CborError),
    #[error("record data: {0}")]
    InvalidData(&'static str),
    #[error("invalid public key: {0}")]
    InvalidPublicKey(#[from] PeerError),
    #[error("public key in the record does not match the name")]
    PublicKeyMismatch,
    #[error("name does not inline its public key and the record does not carry one")]
    PublicKeyNotFound,
    #[error("key type {0} is not supported (only RSA = 0 and Ed25519 = 1)")]
    UnsupportedKeyType(i32),
    #[error("signatureV2 does not verify")]
    InvalidSignature,
    #[error("protobuf field {0} does not match the signed data")]
    FieldMismatch(&'static str),
    #[error("unrecognized validity type {0}")]
    UnrecognizedValidity(u64),
    #[error("validity is not an RFC 3339 time: {0}")]
    InvalidValidity(String),
    #[error("record expired")]
    Expired,
}

/// The fields of the signed DAG-CBOR `data` map.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SignedData {
    value: Vec<u8>,
    validity: Vec<u8>,
    validity_type: u64,
    sequence: u64,
    ttl_nanos: u64,
}

impl SignedData {
    fn to_cbor(&self) -> Vec<u8> {
        cbor::encode(&Value::Map(vec![
            (KEY_VALUE.into(), Value::Bytes(self.value.clone())),
            (KEY_VALIDITY.into(), Value::Bytes(self.validity.clone())),
            (
                KEY_VALIDITY_TYPE.into(),
                Value::Unsigned(self.validity_type),
            ),
            (KEY_SEQUENCE.into(), Value::Unsigned(self.sequence)),
            (KEY_TTL.into(), Value::Unsigned(self.ttl_nanos)),
        ]))
    }

    /// Read the five fields; other keys (boxo's custom metadata) are allowed and ignored.
    fn from_cbor(bytes: &[u8]) -> Result<SignedData, IpnsError> {
        let map = cbor::decode(bytes)?;
        if !matches!(map, Value::Map(_)) {
            return Err(IpnsError::InvalidData("not a map"));
        }
        let bytes_field = |key: &'static str| {
            map.get(key)
                .and_then(Value::as_bytes)
                .map(<[u8]>::to_vec)
                .ok_or(IpnsError::InvalidData(key))
        };
        // Integers are int64 in boxo; a negative Sequence or TTL is invalid.
        let int_field = |key: &'static str| {
            map.get(key)
                .and_then(Value::as_unsigned)
                .ok_or(IpnsError::InvalidData(key))
        };
        Ok(SignedData {
            value: bytes_field(KEY_VALUE)?,
            validity: bytes_field(KEY_VALIDITY)?,
            validity_type: int_field(KEY_VALIDITY_TYPE)?,
            sequence: int_field(KEY_SEQUENCE)?,
            ttl_nanos: int_field(KEY_TTL)?,
        })
    }
}

/// A parsed IPNS record: the protobuf entry, its signed data, and the exact bytes it
/// came from (re-published as received, never re-encoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpnsRecord {
    entry: IpnsEntry,
    data: SignedData,
    raw: Vec<u8>,
}

impl IpnsRecord {
    /// Create and sign a record pointing at `value` (e.g. `/ipfs/bafy…`), like boxo's
    /// `NewRecord` with default options: V2 data + signature plus the V1-compatible
    /// protobuf fields and signatureV1; no `pubKey` (the Ed25519 key is in the name).
    ///
    /// `eol` is clamped to 1970-01-01 … 9999-12-31 (what RFC 3339 can express; an EOL
    /// before 1970 is expired either way). A `value` longer than a few KiB makes a record
    /// over `MAX_RECORD_SIZE` that others (and `from_bytes`) reject.
    pub fn create(
        key: &SigningKey,
        value: &str,
        sequence: u64,
        eol: SystemTime,
        ttl: Duration,
    ) -> IpnsRecord {
        let validity = format_rfc3339(eol).into_bytes();
        let data = SignedData {
            value: value.as_bytes().to_vec(),
            validity,
            validity_type: VALIDITY_EOL,
            sequence,
            // Nanoseconds as int64 in boxo; saturate instead of wrapping.
            ttl_nanos: u64::try_from(ttl.as_nanos())
                .unwrap_or(u64::MAX)
                .min(i64::MAX as u64),
        };
        let cbor_data = data.to_cbor();
        let signature_v2 = key
            .sign(&signature_v2_payload(&cbor_data))
            .to_bytes()
            .to_vec();
        let signature_v1 = key
            .sign(&signature_v1_payload(&data.value, &data.validity))
            .to_bytes()
            .to_vec();
        let entry = IpnsEntry {
            value: Some(data.value.clone()),
            signature_v1: Some(signature_v1),
            validity_type: Some(VALIDITY_EOL as i32),
            validity: Some(data.validity.clone()),
            sequence: Some(sequence),
            ttl: Some(data.ttl_nanos),
            pub_key: None,
            signature_v2: Some(signature_v2),
            data: Some(cbor_data),
        };
        let raw = entry.encode_to_vec();
        IpnsRecord { entry, data, raw }
    }

    /// Parse a record (boxo `UnmarshalRecord`), without checking signatures: see `validate`.
    pub fn from_bytes(bytes: &[u8]) -> Result<IpnsRecord, IpnsError> {
        if bytes.len() > MAX_RECORD_SIZE {
            return Err(IpnsError::TooLarge(bytes.len()));
        }
        let entry = IpnsEntry::decode(bytes).map_err(|e| IpnsError::Protobuf(e.to_string()))?;
        if entry.signature_v2.as_deref().unwrap_or_default().is_empty() {
            return Err(IpnsError::MissingSignatureV2);
        }
        let cbor_data = entry.data.as_deref().unwrap_or_default();
        if cbor_data.is_empty() {
            return Err(IpnsError::MissingData);
        }
        let data = SignedData::from_cbor(cbor_data)?;
        Ok(IpnsRecord {
            entry,
            data,
            raw: bytes.to_vec(),
        })
    }

    /// The record's bytes (exactly as parsed, or as created).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.raw.clone()
    }

    /// The record's bytes, borrowed.
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw
    }

    /// The protobuf entry.
    pub fn entry(&self) -> &IpnsEntry {
        &self.entry
    }

    /// Check the record for `name` at time `now`, as boxo's `ipns.ValidateWithName`:
    /// public key from `pubKey` (must hash to `name`) or inlined in `name`; signatureV2
    /// over "ipns-signature:" ‖ data; legacy fields equal to the signed ones when a V1
    /// value or signature is present; validity type EOL and not past.
    pub fn validate(&self, name: &PeerId, now: SystemTime) -> Result<(), IpnsError> {
        if self.raw.len() > MAX_RECORD_SIZE {
            return Err(IpnsError::TooLarge(self.raw.len()));
        }
        let key = self.public_key(name)?;
        let signature = self.entry.signature_v2.as_deref().unwrap_or_default();
        let cbor_data = self.entry.data.as_deref().unwrap_or_default();
        verify_signature(&key, &signature_v2_payload(cbor_data), signature)?;

        let has_v1_value = !self.entry.value.as_deref().unwrap_or_default().is_empty();
        let has_v1_signature = !self
            .entry
            .signature_v1
            .as_deref()
            .unwrap_or_default()
            .is_empty();
        if has_v1_value || has_v1_signature {
            self.check_legacy_fields()?;
        }

        let eol = self.eol()?;
        if now > eol {
            return Err(IpnsError::Expired);
        }
        Ok(())
    }

    /// The key that must have signed this record (boxo `ExtractPublicKey`).
    fn public_key(&self, name: &PeerId) -> Result<PublicKey, IpnsError> {
        match self.entry.pub_key.as_deref() {
            Some(embedded) if !embedded.is_empty() => {
                let key = decode_public_key(embedded)?;
                if PeerId::from_public_key_protobuf(embedded) != *name {
                    return Err(IpnsError::PublicKeyMismatch);
                }
                Ok(key)
            }
            _ => name.public_key().ok_or(IpnsError::PublicKeyNotFound),
        }
    }

    /// Legacy protobuf fields must equal the signed ones; absent fields count as their
    /// default, exactly as boxo's `validateCborDataMatchesPbData` reads them.
    fn check_legacy_fields(&self) -> Result<(), IpnsError> {
        let entry = &self.entry;
        if entry.value.as_deref().unwrap_or_default() != self.data.value {
            return Err(IpnsError::FieldMismatch("value"));
        }
        if entry.validity.as_deref().unwrap_or_default() != self.data.validity {
            return Err(IpnsError::FieldMismatch("validity"));
        }
        if i64::from(entry.validity_type.unwrap_or_default()) as u64 != self.data.validity_type {
            return Err(IpnsError::FieldMismatch("validityType"));
        }
        if entry.sequence.unwrap_or_default() != self.data.sequence {
            return Err(IpnsError::FieldMismatch("sequence"));
        }
        if entry.ttl.unwrap_or_default() != self.data.ttl_nanos {
            return Err(IpnsError::FieldMismatch("ttl"));
        }
        Ok(())
    }

    /// The signed value, normally a path such as `/ipfs/bafy…`.
    pub fn value(&self) -> &[u8] {
        &self.data.value
    }

    /// The signed value as text, if it is UTF-8.
    pub fn value_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.data.value).ok()
    }

    /// The signed sequence number.
    pub fn sequence(&self) -> u64 {
        self.data.sequence
    }

    /// The signed TTL: how long resolvers may cache the record.
    pub fn ttl(&self) -> Duration {
        Duration::from_nanos(self.data.ttl_nanos)
    }

    /// The signed validity type (0 = EOL).
    pub fn validity_type(&self) -> u64 {
        self.data.validity_type
    }

    /// The signed validity text (RFC 3339 for EOL records).
    pub fn validity(&self) -> &[u8] {
        &self.data.validity
    }

    /// The end of validity of an EOL record.
    pub fn eol(&self) -> Result<SystemTime, IpnsError> {
        if self.data.validity_type != VALIDITY_EOL {
            return Err(IpnsError::UnrecognizedValidity(self.data.validity_type));
        }
        let text = std::str::from_utf8(&self.data.validity)
            .map_err(|_| IpnsError::InvalidValidity("not UTF-8".into()))?;
        parse_rfc3339(text)
    }
}

/// The bytes signatureV2 covers: "ipns-signature:" ‖ data.
/// Verify `signature` over `payload` as go-libp2p's `PubKey.Verify` does for the key types
/// IPNS names use: Ed25519; RSA (PKCS#1 v1.5 over SHA-256, 2048 to 8192 bits: the key type
/// of older Kubo identities, whose names are the sha2-256 of the key and whose records carry
/// it in `pubKey`); and secp256k1 (a DER ECDSA signature over the SHA-256 of the payload;
/// the compressed key is inlined in the name). ECDSA (P-256) names are refused as
/// unsupported: no implementation we can test against makes them (npm's peer-id has none).
fn verify_signature(key: &PublicKey, payload: &[u8], signature: &[u8]) -> Result<(), IpnsError> {
    let verified = match key {
        PublicKey::Ed25519(key) => ed25519_dalek::Signature::from_slice(signature)
            .is_ok_and(|signature| key.verify(payload, &signature).is_ok()),
        PublicKey::Other {
            key_type: KEY_TYPE_RSA,
            data,
        } => {
            // ring refuses keys outside 2048..=8192 bits here, as go-libp2p refuses them
            // when it unmarshals the key.
            libp2p_identity::rsa::PublicKey::try_decode_x509(data)
                .map_err(|_| IpnsError::InvalidPublicKey(PeerError::InvalidRsaKey))?
                .verify(payload, signature)
        }
        PublicKey::Other {
            key_type: KEY_TYPE_SECP256K1,
            data,
        } => libp2p_identity::secp256k1::PublicKey::try_from_bytes(data)
            .map_err(|_| IpnsError::InvalidPublicKey(PeerError::InvalidSecp256k1Key))?
            .verify(payload, signature),
        PublicKey::Other { key_type, .. } => return Err(IpnsError::UnsupportedKeyType(*key_type)),
    };
    if verified {
        Ok(())
    } else {
        Err(IpnsError::InvalidSignature)
    }
}

fn signature_v2_payload(cbor_data: &[u8]) -> Vec<u8> {
    [SIGNATURE_V2_PREFIX, cbor_data].concat()
}

/// The bytes signatureV1 covers: value ‖ validity ‖ "EOL" (boxo formats the validity
/// type enum with `%v`, which prints its name).
fn signature_v1_payload(value: &[u8], validity: &[u8]) -> Vec<u8> {
    [value, validity, b"EOL"].concat()
}

/// Order two records as boxo's selector does: a record with signatureV2 beats one
/// without, then the higher sequence wins, then the later EOL (an unparsable EOL counts
/// as earliest), and finally the record bytes break ties so the order is total.
/// `Greater` means `a` is the better record.
pub fn compare(a: &IpnsRecord, b: &IpnsRecord) -> Ordering {
    let has_v2 = |r: &IpnsRecord| {
        !r.entry
            .signature_v2
            .as_deref()
            .unwrap_or_default()
            .is_empty()
    };
    has_v2(a)
        .cmp(&has_v2(b))
        .then(a.sequence().cmp(&b.sequence()))
        .then_with(|| a.eol().ok().cmp(&b.eol().ok()))
        .then_with(|| a.raw.cmp(&b.raw))
}

/// The DHT key of a name: "/ipns/" ‖ peer id multihash bytes.
pub fn routing_key(name: &PeerId) -> Vec<u8> {
    [b"/ipns/".as_slice(), &name.to_bytes()].concat()
}

/// The gossipsub topic Kubo's namesys-pubsub uses for a name (go-libp2p-pubsub-router
/// `KeyToTopic`): "/record/" ‖ base64url-unpadded(routing key).
pub fn pubsub_topic(name: &PeerId) -> String {
    format!("/record/{}", base64url_unpadded(&routing_key(name)))
}

/// RFC 4648 §5 base64url without padding (Go's `base64.RawURLEncoding`).
fn base64url_unpadded(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 0x3f) as usize] as char);
        }
    }
    out
}

/// Seconds from the Unix epoch to 9999-12-31T23:59:59Z, the last second RFC 3339 has.
const MAX_RFC3339_SECONDS: u64 = 253_402_300_799;

/// Format like Go's `t.UTC().Format(time.RFC3339Nano)` (boxo `util.FormatRFC3339`):
/// UTC, "Z", fractional seconds with trailing zeros removed (none if whole).
pub fn format_rfc3339(t: SystemTime) -> String {
    let since_epoch = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let since_epoch = since_epoch.min(Duration::new(MAX_RFC3339_SECONDS, 999_999_999));
    let dt = OffsetDateTime::from_unix_timestamp(since_epoch.as_secs() as i64)
        .expect("clamped to the range the time crate supports");
    let mut out = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    );
    let nanos = since_epoch.subsec_nanos();
    if nanos != 0 {
        let fraction = format!("{nanos:09}");
        out.push('.');
        out.push_str(fraction.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// Parse any RFC 3339 time (any offset, any number of fractional digits).
pub fn parse_rfc3339(text: &str) -> Result<SystemTime, IpnsError> {
    let dt = OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|e| IpnsError::InvalidValidity(e.to_string()))?;
    let seconds = dt.unix_timestamp();
    let offset = Duration::new(seconds.unsigned_abs(), 0);
    let whole = if seconds >= 0 {
        SystemTime::UNIX_EPOCH.checked_add(offset)
    } else {
        SystemTime::UNIX_EPOCH.checked_sub(offset)
    };
    whole
        .and_then(|t| t.checked_add(Duration::from_nanos(u64::from(dt.nanosecond()))))
        .ok_or_else(|| IpnsError::InvalidValidity("out of range".into()))
}

#[cfg(test)]
mod tests;
