//! Station announcements: what a station says on its gossipsub topic for every new root.
//!
//! An announcement tells followers (relays, listeners) "root R is my newest, published under
//! IPNS sequence S, and these segment blocks are new in it", before any DHT or IPNS lookup
//! could. Followers must be able to trust it without asking the station, so it is signed
//! with the station's Ed25519 key (the key its peer id and IPNS name derive from).
//!
//! # Wire format (version 1)
//!
//! One strict DAG-CBOR map (see [`crate::cbor`]):
//!
//! ```text
//! { "body": { "version": 1, "station": <peer id multihash bytes>, "sequence": <u64>,
//!             "root": <CID link>, "segments": [<CID link>, …],
//!             "nowPlaying": {"title": <text>, "artist": <text>} | null,
//!             "publishedAt": <unix ms>,
//!             "record": <bytes: the station's IPNS record for root, as it signed it> },
//!   "signature": <64 bytes: Ed25519 over "ipfm-announce:" ‖ DAG-CBOR(body)> }
//! ```
//!
//! DAG-CBOR rather than protobuf because our DAG-CBOR codec only produces and only accepts
//! the canonical encoding (decode → encode gives back the same bytes), so the signed bytes
//! are simply the re-encoded body and no second copy of them travels; protobuf allows
//! several encodings of one message (field order, repeated or unknown fields), so it would
//! have to carry and trust the raw signed bytes. The domain prefix keeps a station's
//! signature over an announcement from ever being valid for anything else the same key
//! signs (IPNS records, libp2p handshakes).
//!
//! Decoding checks the size first ([`MAX_ANNOUNCEMENT_SIZE`]), accepts only the keys above
//! with the right types, bounds every count and text, and verifies the signature against
//! the key inlined in the station's peer id (Ed25519 only), so a decoded announcement is
//! always an authentic one. Replay protection (sequence must grow) is stateful and is the
//! receiver's job.
//!
//! The body carries the station's IPNS record for the root (at most [`MAX_RECORD_LEN`]
//! bytes, opaque here): a follower that accepted the announcement can then serve and
//! re-put the name without a DHT lookup. Checking that the record validates and points at
//! `/ipfs/<root>` under the same sequence needs the IPNS validator and is the receiver's
//! job too (the node's `judge`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ::cid::Cid;
use ed25519_dalek::{Signature, Signer, SigningKey};

use crate::cbor::{self, CborError, Value};
use crate::peer::PeerId;

/// The only format version this code reads and writes.
pub const VERSION: u64 = 1;
/// Largest encoded announcement accepted (and produced): far above a normal one (~300 bytes
/// for three renditions), far below gossipsub's 64 KiB message limit.
pub const MAX_ANNOUNCEMENT_SIZE: usize = 8 * 1024;
/// Most new segment CIDs one announcement lists (one root normally adds one per rendition).
pub const MAX_NEW_SEGMENTS: usize = 64;
/// Longest title or artist, in bytes of UTF-8.
pub const MAX_TEXT_LEN: usize = 512;
/// Largest IPNS record an announcement carries: a station's record (an `/ipfs/<cid>`
/// value, V1 + V2 signatures, CBOR data) is about 400 bytes.
pub const MAX_RECORD_LEN: usize = 2 * 1024;
/// Prefix of the signed bytes: separates announcement signatures from every other use of
/// the station key.
pub const SIGNATURE_DOMAIN: &[u8] = b"ipfm-announce:";
/// Prefix of every station topic (the version is part of the topic, so a future format gets
/// a topic of its own and old followers never see it).
pub const TOPIC_PREFIX: &str = "/ipfm/1/station/";

const ED25519_SIGNATURE_LEN: usize = 64;

/// The gossipsub topic a station announces on: `/ipfm/1/station/<k51… IPNS name>`.
pub fn topic(station: &PeerId) -> String {
    format!("{TOPIC_PREFIX}{}", station.to_ipns_name())
}

/// What is playing when the root was published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NowPlaying {
    pub title: String,
    /// Empty when unknown.
    pub artist: String,
}

/// One announcement: the station's newest root and what is new in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    /// The announcing station (its peer id inlines the Ed25519 key that signs).
    pub station: PeerId,
    /// The IPNS sequence of the record pointing at `root`: strictly grows per root.
    pub sequence: u64,
    pub root: Cid,
    /// Segment blocks that are new in this root (at most [`MAX_NEW_SEGMENTS`]).
    pub new_segments: Vec<Cid>,
    pub now_playing: Option<NowPlaying>,
    /// When the station published the root, in milliseconds since the Unix epoch.
    pub published_at_ms: u64,
    /// The station's IPNS record for `root` (protobuf, exactly as signed; at most
    /// [`MAX_RECORD_LEN`] bytes). Not interpreted here: see the module docs.
    pub record: Vec<u8>,
}

/// Why an announcement cannot be encoded or was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnnounceError {
    #[error("announcement of {len} bytes exceeds the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("not canonical DAG-CBOR: {0}")]
    Cbor(#[from] CborError),
    #[error("malformed announcement: {0}")]
    Malformed(&'static str),
    #[error("unsupported announcement version {0} (this node reads {VERSION})")]
    UnsupportedVersion(u64),
    #[error("{count} new segments, more than the {MAX_NEW_SEGMENTS} allowed")]
    TooManySegments { count: usize },
    #[error("{field} is {len} bytes, more than the {MAX_TEXT_LEN} allowed")]
    TextTooLong { field: &'static str, len: usize },
    #[error("the station id does not inline an Ed25519 key")]
    NotEd25519Station,
    /// Peer ids as text (base58), which keeps this error type small.
    #[error("announcement from {got}, expected {expected}")]
    WrongStation { expected: String, got: String },
    #[error("the signature does not verify")]
    BadSignature,
    #[error("the signing key is not the station's key")]
    KeyMismatch,
    #[error("the IPNS record is {len} bytes, more than the {MAX_RECORD_LEN} allowed")]
    RecordTooLarge { len: usize },
}

impl Announcement {
    /// The announcement for `root` published now-ish; `published_at` is converted to unix ms.
    /// `record` is the station's IPNS record bytes for `root` under `sequence`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        station: PeerId,
        sequence: u64,
        root: Cid,
        new_segments: Vec<Cid>,
        now_playing: Option<NowPlaying>,
        published_at: SystemTime,
        record: Vec<u8>,
    ) -> Announcement {
        let published_at_ms = published_at
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_millis()
            .try_into()
            .unwrap_or(u64::MAX);
        Announcement {
            station,
            sequence,
            root,
            new_segments,
            now_playing,
            published_at_ms,
            record,
        }
    }

    /// `published_at_ms` as a time.
    pub fn published_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.published_at_ms)
    }

    /// Sign with the station key and encode. Fails if `key` is not the key of
    /// [`Announcement::station`], or if a bound is exceeded (so whatever is sent will also
    /// be accepted by receivers).
    pub fn sign(&self, key: &SigningKey) -> Result<Vec<u8>, AnnounceError> {
        if PeerId::from_ed25519(&key.verifying_key()) != self.station {
            return Err(AnnounceError::KeyMismatch);
        }
        self.check_bounds()?;
        let body = self.body();
        let signature = key.sign(&signed_bytes(&body));
        let envelope = Value::Map(vec![
            ("body".into(), body),
            (
                "signature".into(),
                Value::Bytes(signature.to_bytes().to_vec()),
            ),
        ]);
        let bytes = cbor::encode(&envelope);
        if bytes.len() > MAX_ANNOUNCEMENT_SIZE {
            return Err(AnnounceError::TooLarge {
                len: bytes.len(),
                max: MAX_ANNOUNCEMENT_SIZE,
            });
        }
        Ok(bytes)
    }

    /// Decode `bytes` and verify the signature against the key the announced station's peer
    /// id inlines. Any station's authentic announcement passes: use [`Announcement::verify`]
    /// to accept only one station's.
    pub fn decode_authentic(bytes: &[u8]) -> Result<Announcement, AnnounceError> {
        if bytes.len() > MAX_ANNOUNCEMENT_SIZE {
            return Err(AnnounceError::TooLarge {
                len: bytes.len(),
                max: MAX_ANNOUNCEMENT_SIZE,
            });
        }
        let envelope = cbor::decode(bytes)?;
        let Value::Map(entries) = &envelope else {
            return Err(AnnounceError::Malformed("not a map"));
        };
        let [(body_key, body), (signature_key, signature)] = entries.as_slice() else {
            return Err(AnnounceError::Malformed(
                "the envelope needs exactly body and signature",
            ));
        };
        if body_key != "body" || signature_key != "signature" {
            return Err(AnnounceError::Malformed(
                "the envelope needs exactly body and signature",
            ));
        }
        let signature = signature
            .as_bytes()
            .and_then(|b| <[u8; ED25519_SIGNATURE_LEN]>::try_from(b).ok())
            .map(|b| Signature::from_bytes(&b))
            .ok_or(AnnounceError::Malformed("signature is not 64 bytes"))?;
        let announcement = Announcement::from_body(body)?;
        let key = announcement
            .station
            .ed25519_public_key()
            .ok_or(AnnounceError::NotEd25519Station)?;
        // The body decoded from canonical DAG-CBOR re-encodes to exactly the bytes received.
        key.verify_strict(&signed_bytes(body), &signature)
            .map_err(|_| AnnounceError::BadSignature)?;
        Ok(announcement)
    }

    /// Like [`Announcement::decode_authentic`], and the announcement must be `station`'s.
    pub fn verify(bytes: &[u8], station: &PeerId) -> Result<Announcement, AnnounceError> {
        let announcement = Announcement::decode_authentic(bytes)?;
        if announcement.station != *station {
            return Err(AnnounceError::WrongStation {
                expected: station.to_string(),
                got: announcement.station.to_string(),
            });
        }
        Ok(announcement)
    }

    fn check_bounds(&self) -> Result<(), AnnounceError> {
        if self.new_segments.len() > MAX_NEW_SEGMENTS {
            return Err(AnnounceError::TooManySegments {
                count: self.new_segments.len(),
            });
        }
        if let Some(playing) = &self.now_playing {
            check_text("title", &playing.title)?;
            check_text("artist", &playing.artist)?;
        }
        check_record(&self.record)
    }

    fn body(&self) -> Value {
        let now_playing = match &self.now_playing {
            Some(playing) => Value::Map(vec![
                ("title".into(), Value::Text(playing.title.clone())),
                ("artist".into(), Value::Text(playing.artist.clone())),
            ]),
            None => Value::Null,
        };
        Value::Map(vec![
            ("version".into(), Value::Unsigned(VERSION)),
            ("station".into(), Value::Bytes(self.station.to_bytes())),
            ("sequence".into(), Value::Unsigned(self.sequence)),
            ("root".into(), Value::Link(self.root)),
            (
                "segments".into(),
                Value::Array(self.new_segments.iter().copied().map(Value::Link).collect()),
            ),
            ("nowPlaying".into(), now_playing),
            ("publishedAt".into(), Value::Unsigned(self.published_at_ms)),
            ("record".into(), Value::Bytes(self.record.clone())),
        ])
    }

    fn from_body(body: &Value) -> Result<Announcement, AnnounceError> {
        let Value::Map(entries) = body else {
            return Err(AnnounceError::Malformed("body is not a map"));
        };
        // Strict: exactly the version-1 keys (canonical order makes duplicates impossible).
        const KEYS: [&str; 8] = [
            "root",
            "record",
            "station",
            "version",
            "sequence",
            "segments",
            "nowPlaying",
            "publishedAt",
        ];
        let version = body
            .get("version")
            .and_then(Value::as_unsigned)
            .ok_or(AnnounceError::Malformed("version missing"))?;
        if version != VERSION {
            return Err(AnnounceError::UnsupportedVersion(version));
        }
        if entries.len() != KEYS.len() || entries.iter().any(|(k, _)| !KEYS.contains(&k.as_str())) {
            return Err(AnnounceError::Malformed(
                "unexpected or missing body fields",
            ));
        }
        let field = |name: &'static str| body.get(name).ok_or(AnnounceError::Malformed(name));
        let station = field("station")?
            .as_bytes()
            .ok_or(AnnounceError::Malformed("station is not bytes"))
            .and_then(|b| {
                PeerId::from_multihash_bytes(b)
                    .map_err(|_| AnnounceError::Malformed("station is not a peer id"))
            })?;
        let sequence = field("sequence")?
            .as_unsigned()
            .ok_or(AnnounceError::Malformed(
                "sequence is not an unsigned integer",
            ))?;
        let root = *field("root")?
            .as_link()
            .ok_or(AnnounceError::Malformed("root is not a CID link"))?;
        let segments = field("segments")?
            .as_array()
            .ok_or(AnnounceError::Malformed("segments is not an array"))?;
        if segments.len() > MAX_NEW_SEGMENTS {
            return Err(AnnounceError::TooManySegments {
                count: segments.len(),
            });
        }
        let new_segments = segments
            .iter()
            .map(|s| {
                s.as_link()
                    .copied()
                    .ok_or(AnnounceError::Malformed("a segment is not a CID link"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let now_playing = match field("nowPlaying")? {
            Value::Null => None,
            playing @ Value::Map(entries) if entries.len() == 2 => {
                let text = |name: &'static str| -> Result<String, AnnounceError> {
                    let text = playing.get(name).and_then(Value::as_text).ok_or(
                        AnnounceError::Malformed("nowPlaying needs title and artist"),
                    )?;
                    check_text(name, text)?;
                    Ok(text.to_string())
                };
                Some(NowPlaying {
                    title: text("title")?,
                    artist: text("artist")?,
                })
            }
            _ => {
                return Err(AnnounceError::Malformed(
                    "nowPlaying is neither null nor a map",
                ))
            }
        };
        let published_at_ms =
            field("publishedAt")?
                .as_unsigned()
                .ok_or(AnnounceError::Malformed(
                    "publishedAt is not an unsigned integer",
                ))?;
        let record = field("record")?
            .as_bytes()
            .ok_or(AnnounceError::Malformed("record is not bytes"))?;
        check_record(record)?;
        Ok(Announcement {
            station,
            sequence,
            root,
            new_segments,
            now_playing,
            published_at_ms,
            record: record.to_vec(),
        })
    }
}

fn check_text(field: &'static str, text: &str) -> Result<(), AnnounceError> {
    if text.len() > MAX_TEXT_LEN {
        return Err(AnnounceError::TextTooLong {
            field,
            len: text.len(),
        });
    }
    Ok(())
}

fn check_record(record: &[u8]) -> Result<(), AnnounceError> {
    if record.len() > MAX_RECORD_LEN {
        return Err(AnnounceError::RecordTooLarge { len: record.len() });
    }
    Ok(())
}

/// What the station key signs: the domain prefix, then the canonical body.
fn signed_bytes(body: &Value) -> Vec<u8> {
    let mut bytes = SIGNATURE_DOMAIN.to_vec();
    cbor::encode_into(body, &mut bytes);
    bytes
}

#[cfg(test)]
mod tests;
