//! Bitswap 1.2.0 messages (specs.ipfs.tech/bitswap-protocol; boxo `bitswap/message`).
//!
//! On the wire a message is a uvarint-length-prefixed protobuf; several may follow each
//! other on one stream. Blocks travel as `payload` entries (CID prefix + data): the
//! receiver rebuilds the CID by hashing the data, so whether that CID was actually
//! wanted is for the caller to check. Decoding is bounded by the input: nothing is
//! allocated by a length the input does not contain.

use ::cid::{Cid, Version};
use multihash::Multihash;
use prost::Message as _;

use crate::cid::{cid_v0, sha256_multihash, DAG_PB, IDENTITY, SHA2_256};
use crate::varint;

/// Largest message accepted or sent (libp2p `network.MessageSizeMax`, 4 MiB).
pub const MAX_MESSAGE_SIZE: usize = 4 * 1024 * 1024;

/// The protocol ids, newest first.
pub const PROTOCOLS: [&str; 4] = [
    "/ipfs/bitswap/1.2.0",
    "/ipfs/bitswap/1.1.0",
    "/ipfs/bitswap/1.0.0",
    "/ipfs/bitswap",
];

/// What a wantlist entry asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WantType {
    /// Send the block.
    Block,
    /// Say whether you have the block (HAVE / DONT_HAVE).
    Have,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantlistEntry {
    pub cid: Cid,
    pub priority: i32,
    pub cancel: bool,
    pub want_type: WantType,
    pub send_dont_have: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Wantlist {
    pub entries: Vec<WantlistEntry>,
    /// A full wantlist replaces the previous one; otherwise it is a patch.
    pub full: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PresenceType {
    Have,
    DontHave,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockPresence {
    pub cid: Cid,
    pub presence: PresenceType,
}

/// A bitswap message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    pub wantlist: Option<Wantlist>,
    /// Blocks with their CIDs. Only the CID's prefix goes on the wire: a block whose data
    /// does not hash to its CID decodes with a different CID.
    pub blocks: Vec<(Cid, Vec<u8>)>,
    pub presences: Vec<BlockPresence>,
    /// Bytes the sender still has queued for the receiver.
    pub pending_bytes: i32,
}

/// Errors of bitswap decoding and framing.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum BitswapError {
    #[error("malformed protobuf: {0}")]
    Protobuf(String),
    #[error("invalid CID in {0}")]
    InvalidCid(&'static str),
    #[error("unknown want type {0}")]
    UnknownWantType(i32),
    #[error("unknown block presence type {0}")]
    UnknownPresenceType(i32),
    #[error("invalid CID prefix")]
    InvalidPrefix,
    #[error("unsupported multihash {code:#x} of length {len} in block prefix")]
    UnsupportedHash { code: u64, len: u64 },
    #[error("message of {len} bytes exceeds the limit of {max}")]
    TooLarge { len: u64, max: usize },
    #[error("malformed length prefix")]
    BadLengthPrefix,
}

mod pb {
    //! The protobuf schema (boxo `bitswap/message/pb/message.proto`, proto3).

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Message {
        #[prost(message, optional, tag = "1")]
        pub wantlist: Option<Wantlist>,
        #[prost(bytes = "vec", repeated, tag = "2")]
        pub blocks: Vec<Vec<u8>>,
        #[prost(message, repeated, tag = "3")]
        pub payload: Vec<Block>,
        #[prost(message, repeated, tag = "4")]
        pub block_presences: Vec<BlockPresence>,
        #[prost(int32, tag = "5")]
        pub pending_bytes: i32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Wantlist {
        #[prost(message, repeated, tag = "1")]
        pub entries: Vec<Entry>,
        #[prost(bool, tag = "2")]
        pub full: bool,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Entry {
        #[prost(bytes = "vec", tag = "1")]
        pub block: Vec<u8>,
        #[prost(int32, tag = "2")]
        pub priority: i32,
        #[prost(bool, tag = "3")]
        pub cancel: bool,
        /// Enum `WantType { Block = 0; Have = 1; }`.
        #[prost(int32, tag = "4")]
        pub want_type: i32,
        #[prost(bool, tag = "5")]
        pub send_dont_have: bool,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Block {
        #[prost(bytes = "vec", tag = "1")]
        pub prefix: Vec<u8>,
        #[prost(bytes = "vec", tag = "2")]
        pub data: Vec<u8>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct BlockPresence {
        #[prost(bytes = "vec", tag = "1")]
        pub cid: Vec<u8>,
        /// Enum `BlockPresenceType { Have = 0; DontHave = 1; }`.
        #[prost(int32, tag = "2")]
        pub r#type: i32,
    }
}

impl Message {
    /// Encode as the bare protobuf (no length prefix), in the 1.1.0+ form: blocks as
    /// `payload`.
    pub fn encode(&self) -> Vec<u8> {
        self.clone().into_pb().encode_to_vec()
    }

    /// Encode with the uvarint length prefix, ready for a stream, consuming the message:
    /// block bytes move into the protobuf struct and are written once, straight behind the
    /// prefix (a server sends ~1 MiB of blocks per message, and every extra copy of them
    /// showed in its profile).
    pub fn into_framed(self) -> Vec<u8> {
        let pb = self.into_pb();
        let len = pb.encoded_len();
        let mut out = Vec::with_capacity(len + varint::len(len as u64));
        varint::write(len as u64, &mut out);
        // A Vec grows as needed, so raw encoding cannot run out of room.
        pb.encode_raw(&mut out);
        out
    }

    fn into_pb(self) -> pb::Message {
        pb::Message {
            wantlist: self.wantlist.map(|wantlist| pb::Wantlist {
                entries: wantlist
                    .entries
                    .into_iter()
                    .map(|e| pb::Entry {
                        block: e.cid.to_bytes(),
                        priority: e.priority,
                        cancel: e.cancel,
                        want_type: match e.want_type {
                            WantType::Block => 0,
                            WantType::Have => 1,
                        },
                        send_dont_have: e.send_dont_have,
                    })
                    .collect(),
                full: wantlist.full,
            }),
            blocks: Vec::new(),
            payload: self
                .blocks
                .into_iter()
                .map(|(cid, data)| pb::Block {
                    prefix: cid_prefix(&cid),
                    data,
                })
                .collect(),
            block_presences: self
                .presences
                .into_iter()
                .map(|p| pb::BlockPresence {
                    cid: p.cid.to_bytes(),
                    r#type: match p.presence {
                        PresenceType::Have => 0,
                        PresenceType::DontHave => 1,
                    },
                })
                .collect(),
            pending_bytes: self.pending_bytes,
        }
    }

    /// Decode a bare protobuf message (any bitswap version). Blocks from 1.0.0's `blocks`
    /// field get the CIDv0 of their data; `payload` blocks get the CID their prefix
    /// describes, computed over the data.
    pub fn decode(bytes: &[u8]) -> Result<Message, BitswapError> {
        let pbm = pb::Message::decode(bytes).map_err(|e| BitswapError::Protobuf(e.to_string()))?;
        let wantlist = match pbm.wantlist {
            None => None,
            Some(w) => Some(Wantlist {
                entries: w
                    .entries
                    .into_iter()
                    .map(|e| {
                        Ok(WantlistEntry {
                            cid: exact_cid(&e.block, "wantlist entry")?,
                            priority: e.priority,
                            cancel: e.cancel,
                            want_type: match e.want_type {
                                0 => WantType::Block,
                                1 => WantType::Have,
                                other => return Err(BitswapError::UnknownWantType(other)),
                            },
                            send_dont_have: e.send_dont_have,
                        })
                    })
                    .collect::<Result<_, _>>()?,
                full: w.full,
            }),
        };
        let mut blocks = Vec::with_capacity(pbm.blocks.len() + pbm.payload.len());
        for data in pbm.blocks {
            blocks.push((cid_v0(&data), data));
        }
        for block in pbm.payload {
            let cid = cid_from_prefix(&block.prefix, &block.data)?;
            blocks.push((cid, block.data));
        }
        let presences = pbm
            .block_presences
            .into_iter()
            .map(|p| {
                Ok(BlockPresence {
                    cid: exact_cid(&p.cid, "block presence")?,
                    presence: match p.r#type {
                        0 => PresenceType::Have,
                        1 => PresenceType::DontHave,
                        other => return Err(BitswapError::UnknownPresenceType(other)),
                    },
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Message {
            wantlist,
            blocks,
            presences,
            pending_bytes: pbm.pending_bytes,
        })
    }
}

/// A CID that spans exactly `bytes` in its canonical encoding (like go-cid's `Cast`).
fn exact_cid(bytes: &[u8], what: &'static str) -> Result<Cid, BitswapError> {
    let cid = Cid::try_from(bytes).map_err(|_| BitswapError::InvalidCid(what))?;
    if cid.to_bytes() != bytes {
        return Err(BitswapError::InvalidCid(what));
    }
    Ok(cid)
}

/// go-cid's `Prefix.Bytes()`: version, codec, multihash code, digest length as uvarints.
pub fn cid_prefix(cid: &Cid) -> Vec<u8> {
    let mut out = Vec::with_capacity(8);
    let version = match cid.version() {
        Version::V0 => 0,
        Version::V1 => 1,
    };
    varint::write(version, &mut out);
    varint::write(cid.codec(), &mut out);
    varint::write(cid.hash().code(), &mut out);
    varint::write(cid.hash().size().into(), &mut out);
    out
}

/// Rebuild a block's CID from its prefix by hashing `data` (go-cid `Prefix.Sum`).
/// Only sha2-256 (32-byte digests) and identity are accepted.
fn cid_from_prefix(prefix: &[u8], data: &[u8]) -> Result<Cid, BitswapError> {
    let mut pos = 0;
    let mut next = || -> Result<u64, BitswapError> {
        let (value, n) = varint::read(&prefix[pos..]).map_err(|_| BitswapError::InvalidPrefix)?;
        pos += n;
        Ok(value)
    };
    let (version, codec, code, len) = (next()?, next()?, next()?, next()?);
    if pos != prefix.len() {
        return Err(BitswapError::InvalidPrefix);
    }
    let multihash = match (code, len) {
        (SHA2_256, 32) => sha256_multihash(data),
        // Identity "hashes" are the data itself; the declared length must match it.
        (IDENTITY, len) if len == data.len() as u64 => Multihash::<64>::wrap(IDENTITY, data)
            .map_err(|_| BitswapError::UnsupportedHash { code, len })?,
        _ => return Err(BitswapError::UnsupportedHash { code, len }),
    };
    match version {
        0 if codec == DAG_PB && code == SHA2_256 => {
            Cid::new_v0(multihash).map_err(|_| BitswapError::InvalidPrefix)
        }
        1 => Ok(Cid::new_v1(codec, multihash)),
        _ => Err(BitswapError::InvalidPrefix),
    }
}

/// Encode `message` with its uvarint length prefix, ready for a stream (a copy of
/// [`Message::into_framed`] for callers that keep the message).
pub fn encode_framed(message: &Message) -> Vec<u8> {
    message.clone().into_framed()
}

/// Decode one length-prefixed message from the front of `buf`.
///
/// `Ok(None)`: `buf` does not hold a whole frame yet (read more and call again).
/// `Ok(Some((message, consumed)))`: a message and the bytes it took, prefix included.
/// `Err`: the declared length exceeds `max_len` (checked before waiting for the body), the
/// prefix is malformed, or the body is not a valid message.
pub fn decode_frame(buf: &[u8], max_len: usize) -> Result<Option<(Message, usize)>, BitswapError> {
    let (len, prefix_len) = match varint::read(buf) {
        Ok(read) => read,
        Err(varint::VarintError::Truncated) => return Ok(None),
        Err(varint::VarintError::Overflow) => return Err(BitswapError::BadLengthPrefix),
    };
    // A length must be written minimally (go-msgio rejects padded varints too).
    if prefix_len != varint::len(len) {
        return Err(BitswapError::BadLengthPrefix);
    }
    if len > max_len as u64 {
        return Err(BitswapError::TooLarge { len, max: max_len });
    }
    // len ≤ max_len, so it fits in usize; the sum cannot overflow a slice length check.
    let end = prefix_len.saturating_add(len as usize);
    let Some(body) = buf.get(prefix_len..end) else {
        return Ok(None);
    };
    let message = Message::decode(body)?;
    Ok(Some((message, end)))
}

#[cfg(test)]
mod tests;
