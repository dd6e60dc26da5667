//! dag-pb (codec 0x70): the node format of UnixFS.
//!
//! Hand-written rather than derived because byte-exactness decides the CID: the canonical
//! form writes every `Links` (field 2) *before* `Data` (field 1), and within a link
//! `Hash`, `Name`, `Tsize` in that order. The decoder accepts only that canonical form
//! (as go-codec-dagpb and js-dag-pb do), so a node decodes iff it re-encodes to itself.

use ::cid::Cid;

use crate::varint;

/// A link from a dag-pb node to a child block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PbLink {
    pub hash: Cid,
    /// `None` = field absent; `Some("")` = present and empty (Kubo writes this for file
    /// chunks, and it changes the bytes, hence the CID).
    pub name: Option<String>,
    /// Total bytes of the child's whole DAG.
    pub tsize: Option<u64>,
}

/// A dag-pb node: links to children plus opaque data (a UnixFS `Data` message for UnixFS).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PbNode {
    pub links: Vec<PbLink>,
    pub data: Option<Vec<u8>>,
}

/// Why bytes are not a canonical dag-pb node.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DagPbError {
    #[error("malformed varint: {0}")]
    Varint(#[from] varint::VarintError),
    #[error("non-minimal varint (not canonical dag-pb)")]
    NonMinimalVarint,
    #[error("field length {declared} exceeds the {remaining} bytes left")]
    LengthOverflow { declared: u64, remaining: usize },
    #[error("unexpected field {field} with wire type {wire_type} in {context}")]
    UnexpectedField {
        context: &'static str,
        field: u64,
        wire_type: u64,
    },
    #[error("fields out of canonical order in {0}")]
    NonCanonicalOrder(&'static str),
    #[error("link has no Hash")]
    MissingHash,
    #[error("invalid CID in link: {0}")]
    InvalidCid(String),
    #[error("link Name is not UTF-8")]
    NameNotUtf8,
}

const NODE_DATA: u64 = 1;
const NODE_LINKS: u64 = 2;
const LINK_HASH: u64 = 1;
const LINK_NAME: u64 = 2;
const LINK_TSIZE: u64 = 3;
const WIRE_VARINT: u64 = 0;
const WIRE_LEN: u64 = 2;

fn put_len_field(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    varint::write(field << 3 | WIRE_LEN, out);
    varint::write(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

impl PbLink {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(48 + self.name.as_ref().map_or(0, String::len));
        put_len_field(&mut out, LINK_HASH, &self.hash.to_bytes());
        if let Some(name) = &self.name {
            put_len_field(&mut out, LINK_NAME, name.as_bytes());
        }
        if let Some(tsize) = self.tsize {
            varint::write(LINK_TSIZE << 3 | WIRE_VARINT, &mut out);
            varint::write(tsize, &mut out);
        }
        out
    }

    fn decode(bytes: &[u8]) -> Result<PbLink, DagPbError> {
        let mut reader = FieldReader::new(bytes);
        let (mut hash, mut name, mut tsize) = (None, None, None);
        let mut last_field = 0;
        while let Some((field, value)) = reader.next_field("PBLink")? {
            if field <= last_field {
                return Err(DagPbError::NonCanonicalOrder("PBLink"));
            }
            last_field = field;
            match (field, value) {
                (LINK_HASH, FieldValue::Bytes(b)) => hash = Some(decode_link_cid(b)?),
                (LINK_NAME, FieldValue::Bytes(b)) => {
                    name = Some(String::from_utf8(b.to_vec()).map_err(|_| DagPbError::NameNotUtf8)?)
                }
                (LINK_TSIZE, FieldValue::Varint(v)) => tsize = Some(v),
                (field, value) => {
                    return Err(DagPbError::UnexpectedField {
                        context: "PBLink",
                        field,
                        wire_type: value.wire_type(),
                    })
                }
            }
        }
        Ok(PbLink {
            hash: hash.ok_or(DagPbError::MissingHash)?,
            name,
            tsize,
        })
    }
}

/// The CID of a link's Hash field, which must be exactly one CID: `Cid::try_from` stops
/// after the CID and ignores trailing bytes (go-cid's `Cast` rejects them), and accepting
/// them would let two different blocks decode to the same node.
fn decode_link_cid(bytes: &[u8]) -> Result<Cid, DagPbError> {
    let mut rest = bytes;
    let cid = Cid::read_bytes(&mut rest).map_err(|e| DagPbError::InvalidCid(e.to_string()))?;
    if !rest.is_empty() {
        return Err(DagPbError::InvalidCid(format!(
            "{} trailing bytes after the CID",
            rest.len()
        )));
    }
    Ok(cid)
}

impl PbNode {
    /// Canonical dag-pb bytes: links first, then data.
    pub fn encode(&self) -> Vec<u8> {
        let data_len = self.data.as_ref().map_or(0, Vec::len);
        let mut out = Vec::with_capacity(self.links.len() * 56 + data_len + 8);
        for link in &self.links {
            put_len_field(&mut out, NODE_LINKS, &link.encode());
        }
        if let Some(data) = &self.data {
            put_len_field(&mut out, NODE_DATA, data);
        }
        out
    }

    /// Decode canonical dag-pb bytes.
    pub fn decode(bytes: &[u8]) -> Result<PbNode, DagPbError> {
        let mut reader = FieldReader::new(bytes);
        let mut node = PbNode::default();
        while let Some((field, value)) = reader.next_field("PBNode")? {
            if node.data.is_some() {
                // Data must be last and appear once.
                return Err(DagPbError::NonCanonicalOrder("PBNode"));
            }
            match (field, value) {
                (NODE_LINKS, FieldValue::Bytes(b)) => node.links.push(PbLink::decode(b)?),
                (NODE_DATA, FieldValue::Bytes(b)) => node.data = Some(b.to_vec()),
                (field, value) => {
                    return Err(DagPbError::UnexpectedField {
                        context: "PBNode",
                        field,
                        wire_type: value.wire_type(),
                    })
                }
            }
        }
        Ok(node)
    }
}

/// The CIDs a dag-pb block links to (for pin walks and DAG fetches).
pub fn links(bytes: &[u8]) -> Result<Vec<Cid>, DagPbError> {
    Ok(PbNode::decode(bytes)?
        .links
        .into_iter()
        .map(|l| l.hash)
        .collect())
}

enum FieldValue<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

impl FieldValue<'_> {
    fn wire_type(&self) -> u64 {
        match self {
            FieldValue::Varint(_) => WIRE_VARINT,
            FieldValue::Bytes(_) => WIRE_LEN,
        }
    }
}

/// Reads protobuf fields of the two wire types dag-pb uses; anything else is an error.
struct FieldReader<'a> {
    rest: &'a [u8],
}

impl<'a> FieldReader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        FieldReader { rest: bytes }
    }

    /// A varint in its shortest form only: canonical dag-pb has exactly one encoding.
    fn varint(&mut self) -> Result<u64, DagPbError> {
        let (value, used) = varint::read(self.rest)?;
        if used != varint::len(value) {
            return Err(DagPbError::NonMinimalVarint);
        }
        self.rest = &self.rest[used..];
        Ok(value)
    }

    fn next_field(
        &mut self,
        context: &'static str,
    ) -> Result<Option<(u64, FieldValue<'a>)>, DagPbError> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let (field, wire_type) = (key >> 3, key & 7);
        match wire_type {
            WIRE_VARINT => {
                let value = self.varint()?;
                Ok(Some((field, FieldValue::Varint(value))))
            }
            WIRE_LEN => {
                let declared = self.varint()?;
                let after = self.rest;
                if declared > after.len() as u64 {
                    return Err(DagPbError::LengthOverflow {
                        declared,
                        remaining: after.len(),
                    });
                }
                let (value, rest) = after.split_at(declared as usize);
                self.rest = rest;
                Ok(Some((field, FieldValue::Bytes(value))))
            }
            other => Err(DagPbError::UnexpectedField {
                context,
                field,
                wire_type: other,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cid::raw_cid;
    use proptest::prelude::*;

    #[test]
    fn empty_directory_matches_kubo() {
        // The empty UnixFS directory every IPFS implementation knows:
        // QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn = dag-pb { Data: UnixFS{Type: Directory} }.
        let node = PbNode {
            links: vec![],
            data: Some(vec![0x08, 0x01]),
        };
        let bytes = node.encode();
        assert_eq!(bytes, [0x0a, 0x02, 0x08, 0x01]);
        assert_eq!(
            crate::cid::cid_v0(&bytes).to_string(),
            "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"
        );
    }

    #[test]
    fn links_come_before_data() {
        let node = PbNode {
            links: vec![PbLink {
                hash: raw_cid(b"x"),
                name: Some(String::new()),
                tsize: Some(1),
            }],
            data: Some(vec![0x08, 0x02]),
        };
        let bytes = node.encode();
        assert_eq!(bytes[0], 0x12, "first field is Links (2)");
        assert_eq!(PbNode::decode(&bytes).unwrap(), node);
    }

    #[test]
    fn rejects_data_before_links() {
        let mut bytes = vec![0x0a, 0x00];
        bytes.extend(
            PbNode {
                links: vec![PbLink {
                    hash: raw_cid(b"x"),
                    name: None,
                    tsize: None,
                }],
                data: None,
            }
            .encode(),
        );
        assert_eq!(
            PbNode::decode(&bytes),
            Err(DagPbError::NonCanonicalOrder("PBNode"))
        );
    }

    #[test]
    fn rejects_trailing_bytes_after_a_link_cid() {
        let mut hash = raw_cid(b"x").to_bytes();
        hash.push(0);
        // PBLink { Hash: cid ‖ 0x00 } inside PBNode.Links.
        let mut link = vec![0x0a, hash.len() as u8];
        link.extend_from_slice(&hash);
        let mut bytes = vec![0x12, link.len() as u8];
        bytes.extend_from_slice(&link);
        assert!(matches!(
            PbNode::decode(&bytes),
            Err(DagPbError::InvalidCid(_))
        ));
    }

    #[test]
    fn rejects_non_minimal_varints() {
        // Data field with length 0 written as two bytes (0x80 0x00).
        assert_eq!(
            PbNode::decode(&[0x0a, 0x80, 0x00]),
            Err(DagPbError::NonMinimalVarint)
        );
    }

    #[test]
    fn rejects_lengths_past_the_end() {
        assert!(matches!(
            PbNode::decode(&[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]),
            Err(DagPbError::LengthOverflow { .. })
        ));
    }

    fn arb_link() -> impl Strategy<Value = PbLink> {
        (
            any::<Vec<u8>>(),
            proptest::option::of(".{0,12}"),
            proptest::option::of(any::<u64>()),
        )
            .prop_map(|(seed, name, tsize)| PbLink {
                hash: raw_cid(&seed),
                name,
                tsize,
            })
    }

    proptest! {
        #[test]
        fn round_trip(links in proptest::collection::vec(arb_link(), 0..8), data in proptest::option::of(any::<Vec<u8>>())) {
            let node = PbNode { links, data };
            let bytes = node.encode();
            prop_assert_eq!(PbNode::decode(&bytes).unwrap(), node);
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_decoded_nodes_reencode_exactly(bytes: Vec<u8>) {
            if let Ok(node) = PbNode::decode(&bytes) {
                prop_assert_eq!(node.encode(), bytes);
            }
        }
    }
}
