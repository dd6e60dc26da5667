//! CAR v1 (ipld.io/specs/transport/car/carv1): a header naming the roots, then blocks.
//!
//! ```text
//! uvarint(len(header)) ‖ DAG-CBOR {"roots": [CID…], "version": 1}
//! uvarint(len(cid) + len(data)) ‖ cid ‖ data      (repeated)
//! ```
//! Reading verifies every block against its CID, so a CAR from an untrusted gateway or
//! peer yields only content-addressed data.

use ::cid::Cid;

use crate::cbor::{self, CborError, Value};
use crate::cid::{verify, CidError};
use crate::varint;

/// Errors of CAR reading.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CarError {
    #[error("input ended inside a section")]
    Truncated,
    #[error("malformed section length")]
    BadLength,
    #[error("header is not valid DAG-CBOR: {0}")]
    HeaderCbor(#[from] CborError),
    #[error("header: {0}")]
    BadHeader(&'static str),
    #[error("unsupported CAR version {0}")]
    UnsupportedVersion(u64),
    #[error("empty section")]
    EmptySection,
    #[error("malformed CID in block section")]
    BadCid,
    /// Boxed: `CidError` holds two CIDs, and this error travels through every read.
    #[error("block failed verification: {0}")]
    Block(Box<CidError>),
}

/// The CAR v1 header section: uvarint length ‖ DAG-CBOR {"roots": [...], "version": 1}.
pub fn header(roots: &[Cid]) -> Vec<u8> {
    let body = cbor::encode(&Value::Map(vec![
        (
            "roots".into(),
            Value::Array(roots.iter().copied().map(Value::Link).collect()),
        ),
        ("version".into(), Value::Unsigned(1)),
    ]));
    varint::length_prefixed(&body)
}

/// One block section: uvarint(len(cid bytes) + len(data)) ‖ cid bytes ‖ data.
pub fn block_section(cid: &Cid, data: &[u8]) -> Vec<u8> {
    let cid_bytes = cid.to_bytes();
    let len = cid_bytes.len() + data.len();
    let mut out = Vec::with_capacity(len + varint::len(len as u64));
    varint::write(len as u64, &mut out);
    out.extend_from_slice(&cid_bytes);
    out.extend_from_slice(data);
    out
}

/// Split a uvarint-length-prefixed section off the front of `input`.
fn section(input: &[u8]) -> Result<(&[u8], &[u8]), CarError> {
    let (len, prefix_len) = varint::read(input).map_err(|e| match e {
        varint::VarintError::Truncated => CarError::Truncated,
        varint::VarintError::Overflow => CarError::BadLength,
    })?;
    let rest = &input[prefix_len..];
    let len = usize::try_from(len).map_err(|_| CarError::Truncated)?;
    if len > rest.len() {
        return Err(CarError::Truncated);
    }
    Ok(rest.split_at(len))
}

/// A streaming reader over a CAR held in memory: roots up front, then blocks one by one,
/// each verified against its CID.
pub struct CarReader<'a> {
    roots: Vec<Cid>,
    rest: &'a [u8],
    failed: bool,
}

impl<'a> CarReader<'a> {
    /// Read the header; blocks are read by iterating.
    pub fn new(bytes: &'a [u8]) -> Result<CarReader<'a>, CarError> {
        let (header_bytes, rest) = section(bytes)?;
        let header = cbor::decode(header_bytes)?;
        let version = header
            .get("version")
            .ok_or(CarError::BadHeader("no version"))?
            .as_unsigned()
            .ok_or(CarError::BadHeader("version is not an integer"))?;
        if version != 1 {
            return Err(CarError::UnsupportedVersion(version));
        }
        let roots = header
            .get("roots")
            .and_then(Value::as_array)
            .ok_or(CarError::BadHeader("roots missing or not a list"))?
            .iter()
            .map(|root| {
                root.as_link()
                    .copied()
                    .ok_or(CarError::BadHeader("root is not a CID"))
            })
            .collect::<Result<Vec<Cid>, CarError>>()?;
        Ok(CarReader {
            roots,
            rest,
            failed: false,
        })
    }

    pub fn roots(&self) -> &[Cid] {
        &self.roots
    }

    fn next_block(&mut self) -> Result<(Cid, &'a [u8]), CarError> {
        let (body, rest) = section(self.rest)?;
        if body.is_empty() {
            return Err(CarError::EmptySection);
        }
        let mut cursor = body;
        let cid = Cid::read_bytes(&mut cursor).map_err(|_| CarError::BadCid)?;
        let cid_len = body.len() - cursor.len();
        // Only the canonical encoding: the bytes read must be the CID's own bytes.
        if cid.to_bytes() != body[..cid_len] {
            return Err(CarError::BadCid);
        }
        let data = cursor;
        verify(&cid, data).map_err(|e| CarError::Block(Box::new(e)))?;
        self.rest = rest;
        Ok((cid, data))
    }
}

impl<'a> Iterator for CarReader<'a> {
    type Item = Result<(Cid, &'a [u8]), CarError>;

    /// The next verified block; after the first error the iteration ends.
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let item = self.next_block();
        self.failed = item.is_err();
        Some(item)
    }
}

/// Blocks with their CIDs, in CAR order.
pub type Blocks = Vec<(Cid, Vec<u8>)>;

/// Parse a whole CAR: its roots and every block, each verified against its CID.
pub fn parse(bytes: &[u8]) -> Result<(Vec<Cid>, Blocks), CarError> {
    let mut reader = CarReader::new(bytes)?;
    let mut blocks = Vec::new();
    for block in reader.by_ref() {
        let (cid, data) = block?;
        blocks.push((cid, data.to_vec()));
    }
    Ok((reader.roots, blocks))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cid::{cid_v0, raw_cid};
    use proptest::prelude::*;

    #[test]
    fn header_layout() {
        let root = raw_cid(b"hello");
        let bytes = header(&[root]);
        // 0x3a = 58 bytes: a2 65"roots" 81 d8 2a 58 25 00 <36-byte CID> 67"version" 01
        let mut expected = vec![0x3a, 0xa2, 0x65];
        expected.extend_from_slice(b"roots");
        expected.extend_from_slice(&[0x81, 0xd8, 0x2a, 0x58, 0x25, 0x00]);
        expected.extend_from_slice(&root.to_bytes());
        expected.push(0x67);
        expected.extend_from_slice(b"version");
        expected.push(0x01);
        assert_eq!(bytes, expected);
    }

    #[test]
    fn write_then_parse() {
        let a = b"a block".to_vec();
        let b = b"\x0a\x02\x08\x01".to_vec();
        let (ca, cb) = (raw_cid(&a), cid_v0(&b));
        let mut car = header(&[ca]);
        car.extend_from_slice(&block_section(&ca, &a));
        car.extend_from_slice(&block_section(&cb, &b));
        let (roots, blocks) = parse(&car).unwrap();
        assert_eq!(roots, vec![ca]);
        assert_eq!(blocks, vec![(ca, a), (cb, b)]);
    }

    #[test]
    fn corrupted_blocks_are_rejected() {
        let data = b"payload".to_vec();
        let cid = raw_cid(&data);
        let mut car = header(&[cid]);
        let mut section = block_section(&cid, &data);
        *section.last_mut().unwrap() ^= 1;
        car.extend_from_slice(&section);
        let err = parse(&car).unwrap_err();
        assert!(
            matches!(&err, CarError::Block(e) if matches!(**e, CidError::HashMismatch { .. })),
            "{err:?}"
        );

        // Truncated block, empty section, section length beyond the input.
        let mut truncated = header(&[cid]);
        let full = block_section(&cid, &data);
        truncated.extend_from_slice(&full[..full.len() - 1]);
        assert_eq!(parse(&truncated), Err(CarError::Truncated));
        let mut empty = header(&[]);
        empty.push(0);
        assert_eq!(parse(&empty), Err(CarError::EmptySection));
        let mut huge = header(&[]);
        huge.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert_eq!(parse(&huge), Err(CarError::Truncated));
    }

    #[test]
    fn bad_headers_are_rejected() {
        let with = |value: Value| parse(&varint::length_prefixed(&cbor::encode(&value)));
        assert_eq!(
            with(Value::Map(vec![
                ("roots".into(), Value::Array(vec![])),
                ("version".into(), Value::Unsigned(2)),
            ])),
            Err(CarError::UnsupportedVersion(2))
        );
        assert!(matches!(
            with(Value::Map(vec![("version".into(), Value::Unsigned(1))])),
            Err(CarError::BadHeader(_))
        ));
        assert!(matches!(
            with(Value::Map(vec![
                ("roots".into(), Value::Array(vec![Value::Text("x".into())])),
                ("version".into(), Value::Unsigned(1)),
            ])),
            Err(CarError::BadHeader(_))
        ));
        assert!(parse(&[]).is_err());
    }

    proptest! {
        #[test]
        fn round_trip(blocks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..100), 0..6)) {
            let blocks: Vec<(Cid, Vec<u8>)> = blocks.into_iter().map(|d| (raw_cid(&d), d)).collect();
            let roots: Vec<Cid> = blocks.iter().take(2).map(|(c, _)| *c).collect();
            let mut car = header(&roots);
            for (cid, data) in &blocks {
                car.extend_from_slice(&block_section(cid, data));
            }
            prop_assert_eq!(parse(&car).unwrap(), (roots, blocks));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse(&bytes);
        }
    }
}
