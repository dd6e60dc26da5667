//! UnixFS `Data` (the protobuf inside a dag-pb node's Data field), byte-exact with boxo.
//!
//! ```text
//! message Data {
//!   required DataType Type = 1;   // Raw 0, Directory 1, File 2, Metadata 3, Symlink 4, HAMTShard 5
//!   optional bytes Data = 2;
//!   optional uint64 filesize = 3;
//!   repeated uint64 blocksizes = 4; // proto2: NOT packed
//!   optional uint64 hashType = 5;
//!   optional uint64 fanout = 6;
//!   optional uint32 mode = 7;
//!   optional UnixTime mtime = 8;  // { required int64 Seconds = 1; optional fixed32 FractionalNanoseconds = 2; }
//! }
//! ```
//!
//! The encoder writes fields in field-number order, as gogo-protobuf (boxo) and protons
//! (js-ipfs-unixfs) do, so the bytes — hence the CIDs — match theirs. The decoder is an
//! ordinary, bounded proto2 parser: any field order, unknown fields skipped, packed
//! `blocksizes` accepted (every protobuf parser must), missing or unknown `Type` rejected.
//! Nothing is allocated by a length read from the input before that length was checked
//! against the bytes actually left.

use crate::varint;

/// The kind of a UnixFS node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataType {
    Raw = 0,
    Directory = 1,
    File = 2,
    Metadata = 3,
    Symlink = 4,
    HamtShard = 5,
}

impl DataType {
    fn from_wire(value: u64) -> Result<DataType, UnixFsError> {
        Ok(match value {
            0 => DataType::Raw,
            1 => DataType::Directory,
            2 => DataType::File,
            3 => DataType::Metadata,
            4 => DataType::Symlink,
            5 => DataType::HamtShard,
            other => return Err(UnixFsError::UnknownType(other)),
        })
    }
}

/// A modification time: seconds since the Unix epoch plus optional nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UnixTime {
    pub seconds: i64,
    pub fractional_nanoseconds: Option<u32>,
}

/// The UnixFS `Data` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnixFsData {
    pub kind: DataType,
    pub data: Option<Vec<u8>>,
    pub filesize: Option<u64>,
    pub blocksizes: Vec<u64>,
    pub hash_type: Option<u64>,
    pub fanout: Option<u64>,
    pub mode: Option<u32>,
    pub mtime: Option<UnixTime>,
}

/// Why bytes are not a UnixFS `Data` message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UnixFsError {
    #[error("malformed varint: {0}")]
    Varint(#[from] varint::VarintError),
    #[error("field length {declared} exceeds the {remaining} bytes left")]
    LengthOverflow { declared: u64, remaining: usize },
    #[error("input ended inside a fixed-width field")]
    Truncated,
    #[error("field number 0 is not valid protobuf")]
    FieldZero,
    #[error("unsupported protobuf wire type {0}")]
    UnsupportedWireType(u64),
    #[error("field {field} of {context} has wire type {wire_type}, which its type does not allow")]
    WrongWireType {
        context: &'static str,
        field: u64,
        wire_type: u64,
    },
    #[error("required field Type is missing")]
    MissingType,
    #[error("unknown UnixFS Type {0}")]
    UnknownType(u64),
    #[error("mode {0:#x} does not fit in 32 bits")]
    ModeOverflow(u64),
    #[error("required field UnixTime.Seconds is missing")]
    MissingSeconds,
}

const WIRE_VARINT: u64 = 0;
const WIRE_FIXED64: u64 = 1;
const WIRE_LEN: u64 = 2;
const WIRE_FIXED32: u64 = 5;

const FIELD_TYPE: u64 = 1;
const FIELD_DATA: u64 = 2;
const FIELD_FILESIZE: u64 = 3;
const FIELD_BLOCKSIZES: u64 = 4;
const FIELD_HASH_TYPE: u64 = 5;
const FIELD_FANOUT: u64 = 6;
const FIELD_MODE: u64 = 7;
const FIELD_MTIME: u64 = 8;
const FIELD_SECONDS: u64 = 1;
const FIELD_NANOS: u64 = 2;

fn put_key(out: &mut Vec<u8>, field: u64, wire_type: u64) {
    varint::write(field << 3 | wire_type, out);
}

fn put_varint_field(out: &mut Vec<u8>, field: u64, value: u64) {
    put_key(out, field, WIRE_VARINT);
    varint::write(value, out);
}

fn put_len_field(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    put_key(out, field, WIRE_LEN);
    varint::write(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

impl UnixFsData {
    /// A node of `kind` with every optional field absent.
    pub fn new(kind: DataType) -> Self {
        UnixFsData {
            kind,
            data: None,
            filesize: None,
            blocksizes: Vec::new(),
            hash_type: None,
            fanout: None,
            mode: None,
            mtime: None,
        }
    }

    /// What boxo writes for a file leaf in dag-pb-leaves mode: `Type = File`, `Data` (absent
    /// for the empty file, as Go leaves a nil slice out), `filesize = len`.
    pub fn file_leaf(chunk: &[u8]) -> Self {
        UnixFsData {
            data: (!chunk.is_empty()).then(|| chunk.to_vec()),
            filesize: Some(chunk.len() as u64),
            ..UnixFsData::new(DataType::File)
        }
    }

    /// What boxo writes for an interior file node: `Type = File`, `filesize` = the sum of
    /// the children's file bytes, one `blocksizes` entry per child.
    pub fn file_node(blocksizes: Vec<u64>) -> Self {
        UnixFsData {
            filesize: Some(blocksizes.iter().sum()),
            blocksizes,
            ..UnixFsData::new(DataType::File)
        }
    }

    /// A plain directory: `Type = Directory` and nothing else (boxo's `FolderPBData`).
    pub fn directory() -> Self {
        UnixFsData::new(DataType::Directory)
    }

    /// The protobuf bytes, fields in field-number order (= gogo-protobuf's output).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            16 + self.data.as_ref().map_or(0, Vec::len) + 6 * self.blocksizes.len(),
        );
        put_varint_field(&mut out, FIELD_TYPE, self.kind as u64);
        if let Some(data) = &self.data {
            put_len_field(&mut out, FIELD_DATA, data);
        }
        if let Some(filesize) = self.filesize {
            put_varint_field(&mut out, FIELD_FILESIZE, filesize);
        }
        for &size in &self.blocksizes {
            put_varint_field(&mut out, FIELD_BLOCKSIZES, size);
        }
        if let Some(hash_type) = self.hash_type {
            put_varint_field(&mut out, FIELD_HASH_TYPE, hash_type);
        }
        if let Some(fanout) = self.fanout {
            put_varint_field(&mut out, FIELD_FANOUT, fanout);
        }
        if let Some(mode) = self.mode {
            put_varint_field(&mut out, FIELD_MODE, u64::from(mode));
        }
        if let Some(mtime) = &self.mtime {
            let mut inner = Vec::with_capacity(16);
            // int64 is written as the 64-bit two's complement varint (10 bytes if negative).
            put_varint_field(&mut inner, FIELD_SECONDS, mtime.seconds as u64);
            if let Some(nanos) = mtime.fractional_nanoseconds {
                put_key(&mut inner, FIELD_NANOS, WIRE_FIXED32);
                inner.extend_from_slice(&nanos.to_le_bytes());
            }
            put_len_field(&mut out, FIELD_MTIME, &inner);
        }
        out
    }

    /// Parse a UnixFS `Data` message.
    pub fn decode(bytes: &[u8]) -> Result<UnixFsData, UnixFsError> {
        let mut reader = FieldReader { rest: bytes };
        let mut kind = None;
        let mut node = UnixFsData::new(DataType::Raw);
        while let Some((field, value)) = reader.next_field()? {
            match (field, value) {
                (FIELD_TYPE, Value::Varint(v)) => kind = Some(DataType::from_wire(v)?),
                (FIELD_DATA, Value::Bytes(b)) => node.data = Some(b.to_vec()),
                (FIELD_FILESIZE, Value::Varint(v)) => node.filesize = Some(v),
                (FIELD_BLOCKSIZES, Value::Varint(v)) => node.blocksizes.push(v),
                (FIELD_BLOCKSIZES, Value::Bytes(mut packed)) => {
                    // Each packed entry takes at least one byte, so this loop (and the
                    // vector) is bounded by the input length.
                    while !packed.is_empty() {
                        let (v, used) = varint::read(packed)?;
                        node.blocksizes.push(v);
                        packed = &packed[used..];
                    }
                }
                (FIELD_HASH_TYPE, Value::Varint(v)) => node.hash_type = Some(v),
                (FIELD_FANOUT, Value::Varint(v)) => node.fanout = Some(v),
                (FIELD_MODE, Value::Varint(v)) => {
                    node.mode = Some(u32::try_from(v).map_err(|_| UnixFsError::ModeOverflow(v))?)
                }
                (FIELD_MTIME, Value::Bytes(b)) => node.mtime = Some(decode_unix_time(b)?),
                (FIELD_TYPE..=FIELD_MTIME, value) => {
                    return Err(UnixFsError::WrongWireType {
                        context: "Data",
                        field,
                        wire_type: value.wire_type(),
                    })
                }
                // proto2 parsers skip fields they do not know; so does Go's.
                _ => {}
            }
        }
        node.kind = kind.ok_or(UnixFsError::MissingType)?;
        Ok(node)
    }
}

fn decode_unix_time(bytes: &[u8]) -> Result<UnixTime, UnixFsError> {
    let mut reader = FieldReader { rest: bytes };
    let mut seconds = None;
    let mut fractional_nanoseconds = None;
    while let Some((field, value)) = reader.next_field()? {
        match (field, value) {
            (FIELD_SECONDS, Value::Varint(v)) => seconds = Some(v as i64),
            (FIELD_NANOS, Value::Fixed32(v)) => fractional_nanoseconds = Some(v),
            (FIELD_SECONDS | FIELD_NANOS, value) => {
                return Err(UnixFsError::WrongWireType {
                    context: "UnixTime",
                    field,
                    wire_type: value.wire_type(),
                })
            }
            _ => {}
        }
    }
    Ok(UnixTime {
        seconds: seconds.ok_or(UnixFsError::MissingSeconds)?,
        fractional_nanoseconds,
    })
}

enum Value<'a> {
    Varint(u64),
    Fixed64,
    Bytes(&'a [u8]),
    Fixed32(u32),
}

impl Value<'_> {
    fn wire_type(&self) -> u64 {
        match self {
            Value::Varint(_) => WIRE_VARINT,
            Value::Fixed64 => WIRE_FIXED64,
            Value::Bytes(_) => WIRE_LEN,
            Value::Fixed32(_) => WIRE_FIXED32,
        }
    }
}

/// Reads the protobuf wire types proto2 still uses (no groups), bounded by the input.
struct FieldReader<'a> {
    rest: &'a [u8],
}

impl<'a> FieldReader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], UnixFsError> {
        if self.rest.len() < n {
            return Err(UnixFsError::Truncated);
        }
        let (taken, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(taken)
    }

    fn varint(&mut self) -> Result<u64, UnixFsError> {
        let (value, used) = varint::read(self.rest)?;
        self.rest = &self.rest[used..];
        Ok(value)
    }

    fn next_field(&mut self) -> Result<Option<(u64, Value<'a>)>, UnixFsError> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let (field, wire_type) = (key >> 3, key & 7);
        if field == 0 {
            return Err(UnixFsError::FieldZero);
        }
        let value = match wire_type {
            WIRE_VARINT => Value::Varint(self.varint()?),
            WIRE_FIXED64 => {
                self.take(8)?;
                Value::Fixed64
            }
            WIRE_LEN => {
                let declared = self.varint()?;
                if declared > self.rest.len() as u64 {
                    return Err(UnixFsError::LengthOverflow {
                        declared,
                        remaining: self.rest.len(),
                    });
                }
                Value::Bytes(self.take(declared as usize)?)
            }
            WIRE_FIXED32 => {
                let bytes = self.take(4)?;
                Value::Fixed32(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
            }
            other => return Err(UnixFsError::UnsupportedWireType(other)),
        };
        Ok(Some((field, value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn directory_is_type_only() {
        assert_eq!(UnixFsData::directory().encode(), [0x08, 0x01]);
    }

    #[test]
    fn file_leaf_matches_go_unixfs_bytes() {
        // go-unixfs FSNode{Type: File}.SetData("hello world\n"): Type, Data, filesize.
        let mut expected = vec![0x08, 0x02, 0x12, 0x0c];
        expected.extend_from_slice(b"hello world\n");
        expected.extend_from_slice(&[0x18, 0x0c]);
        assert_eq!(UnixFsData::file_leaf(b"hello world\n").encode(), expected);
    }

    #[test]
    fn empty_file_leaf_has_filesize_zero_and_no_data() {
        // Go keeps `Filesize` initialised to 0 and leaves a nil Data slice out.
        assert_eq!(
            UnixFsData::file_leaf(b"").encode(),
            [0x08, 0x02, 0x18, 0x00]
        );
    }

    #[test]
    fn interior_node_writes_unpacked_blocksizes() {
        let node = UnixFsData::file_node(vec![262_144, 1]);
        assert_eq!(
            node.encode(),
            [0x08, 0x02, 0x18, 0x81, 0x80, 0x10, 0x20, 0x80, 0x80, 0x10, 0x20, 0x01]
        );
    }

    #[test]
    fn mtime_and_mode_round_trip_in_field_order() {
        let node = UnixFsData {
            mode: Some(0o644),
            mtime: Some(UnixTime {
                seconds: -1,
                fractional_nanoseconds: Some(5),
            }),
            ..UnixFsData::new(DataType::Symlink)
        };
        let bytes = node.encode();
        assert_eq!(&bytes[..2], [0x08, 0x04]);
        assert_eq!(&bytes[2..5], [0x38, 0xa4, 0x03]);
        assert_eq!(bytes[5], 0x42, "mtime is field 8, length-delimited");
        assert_eq!(UnixFsData::decode(&bytes), Ok(node));
    }

    #[test]
    fn accepts_packed_blocksizes_and_any_field_order() {
        // filesize before Type, blocksizes packed [3, 4], an unknown varint field 15.
        let bytes = [0x18, 0x07, 0x08, 0x02, 0x22, 0x02, 0x03, 0x04, 0x78, 0x01];
        let node = UnixFsData::decode(&bytes).unwrap();
        assert_eq!(node, UnixFsData::file_node(vec![3, 4]));
    }

    #[test]
    fn rejects_malformed_input() {
        assert_eq!(UnixFsData::decode(&[]), Err(UnixFsError::MissingType));
        assert_eq!(
            UnixFsData::decode(&[0x08, 0x06]),
            Err(UnixFsError::UnknownType(6))
        );
        assert_eq!(
            UnixFsData::decode(&[0x08]),
            Err(UnixFsError::Varint(varint::VarintError::Truncated))
        );
        assert!(matches!(
            UnixFsData::decode(&[0x08, 0x02, 0x12, 0x05, 0x00]),
            Err(UnixFsError::LengthOverflow {
                declared: 5,
                remaining: 1
            })
        ));
        assert!(matches!(
            UnixFsData::decode(&[0x0a, 0x00]),
            Err(UnixFsError::WrongWireType { field: 1, .. })
        ));
        assert_eq!(
            UnixFsData::decode(&[0x0b]),
            Err(UnixFsError::UnsupportedWireType(3))
        );
        assert_eq!(
            UnixFsData::decode(&[0x00, 0x00]),
            Err(UnixFsError::FieldZero)
        );
        assert_eq!(
            UnixFsData::decode(&[0x08, 0x02, 0x38, 0x80, 0x80, 0x80, 0x80, 0x10]),
            Err(UnixFsError::ModeOverflow(1 << 32))
        );
        assert_eq!(
            UnixFsData::decode(&[0x08, 0x02, 0x42, 0x05, 0x15, 0x01, 0x00, 0x00, 0x00]),
            Err(UnixFsError::MissingSeconds)
        );
        assert_eq!(
            UnixFsData::decode(&[0x08, 0x02, 0x42, 0x04, 0x08, 0x01, 0x15, 0x01]),
            Err(UnixFsError::Truncated)
        );
    }

    fn arb_kind() -> impl Strategy<Value = DataType> {
        prop_oneof![
            Just(DataType::Raw),
            Just(DataType::Directory),
            Just(DataType::File),
            Just(DataType::Metadata),
            Just(DataType::Symlink),
            Just(DataType::HamtShard),
        ]
    }

    fn arb_data() -> impl Strategy<Value = UnixFsData> {
        (
            arb_kind(),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
            proptest::option::of(any::<u64>()),
            proptest::collection::vec(any::<u64>(), 0..8),
            proptest::option::of(any::<u64>()),
            proptest::option::of(any::<u64>()),
            proptest::option::of(any::<u32>()),
            proptest::option::of((any::<i64>(), proptest::option::of(any::<u32>()))),
        )
            .prop_map(
                |(kind, data, filesize, blocksizes, hash_type, fanout, mode, mtime)| UnixFsData {
                    kind,
                    data,
                    filesize,
                    blocksizes,
                    hash_type,
                    fanout,
                    mode,
                    mtime: mtime.map(|(seconds, fractional_nanoseconds)| UnixTime {
                        seconds,
                        fractional_nanoseconds,
                    }),
                },
            )
    }

    proptest! {
        #[test]
        fn round_trip(node in arb_data()) {
            prop_assert_eq!(UnixFsData::decode(&node.encode()), Ok(node));
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_decoding_is_stable(bytes: Vec<u8>) {
            if let Ok(node) = UnixFsData::decode(&bytes) {
                let encoded = node.encode();
                let again = UnixFsData::decode(&encoded).expect("re-encoded data decodes");
                prop_assert_eq!(&again, &node);
                prop_assert_eq!(again.encode(), encoded);
            }
        }
    }
}
