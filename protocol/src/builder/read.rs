//! Reassembling a UnixFS file from its blocks: raw leaves, dag-pb UnixFS leaves and
//! interior nodes, in link order, with every block checked against its CID and every size
//! checked against what its parent declared.

use ::cid::Cid;

use crate::cid::{verify, CidError, DAG_PB, RAW};
use crate::dagpb::{DagPbError, PbNode};
use crate::unixfs::{DataType, UnixFsData, UnixFsError};

/// Deepest file DAG accepted. A balanced DAG of 174-link nodes this deep would hold far
/// more than any file; the cap only stops hostile chains from recursing without end.
pub const MAX_DEPTH: usize = 32;

/// Why a file could not be read back.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReadError {
    #[error("block {0} is not available")]
    MissingBlock(Cid),
    #[error("block {0} does not hash to its CID")]
    Corrupt(Cid),
    #[error("block {cid} uses multihash {code:#x}, which ipfm cannot verify")]
    UnsupportedHash { cid: Cid, code: u64 },
    // Sources boxed: a `Cid` is ~90 bytes, and every Result of this module carries the enum.
    #[error("block {cid} is not valid dag-pb: {source}")]
    DagPb { cid: Cid, source: Box<DagPbError> },
    #[error("block {cid} has invalid UnixFS data: {source}")]
    UnixFs { cid: Cid, source: Box<UnixFsError> },
    #[error("dag-pb node {0} has no UnixFS Data")]
    MissingData(Cid),
    #[error("block {cid} has codec {codec:#x}; file DAGs are made of raw and dag-pb blocks")]
    UnsupportedCodec { cid: Cid, codec: u64 },
    #[error("node {cid} is a UnixFS {kind:?}, not a file")]
    NotAFile { cid: Cid, kind: DataType },
    #[error("node {cid} has {links} links but {blocksizes} blocksizes")]
    BlocksizesMismatch {
        cid: Cid,
        links: usize,
        blocksizes: usize,
    },
    #[error("node {cid} holds {actual} file bytes where {expected} were declared")]
    SizeMismatch {
        cid: Cid,
        expected: u64,
        actual: u64,
    },
    #[error("file DAG is deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("file is larger than the {0}-byte limit")]
    TooLarge(u64),
}

/// The bytes of the file whose DAG root is `root`, fetching blocks with `get`.
///
/// The output is bounded by the sizes the DAG declares, which a hostile DAG can make huge
/// (by linking one block many times): use [`read_file_limited`] on untrusted DAGs.
pub fn read_file(root: &Cid, get: impl Fn(&Cid) -> Option<Vec<u8>>) -> Result<Vec<u8>, ReadError> {
    read_file_limited(root, u64::MAX, get)
}

/// Like [`read_file`], but fails with [`ReadError::TooLarge`] as soon as the file is known
/// to exceed `max_len` bytes (before reading that much).
pub fn read_file_limited(
    root: &Cid,
    max_len: u64,
    get: impl Fn(&Cid) -> Option<Vec<u8>>,
) -> Result<Vec<u8>, ReadError> {
    let mut reader = Reader {
        get: &get,
        max_len,
        out: Vec::new(),
    };
    reader.read(root, None, 0)?;
    Ok(reader.out)
}

struct Reader<'a, G: Fn(&Cid) -> Option<Vec<u8>>> {
    get: &'a G,
    max_len: u64,
    out: Vec<u8>,
}

impl<G: Fn(&Cid) -> Option<Vec<u8>>> Reader<'_, G> {
    /// Append the file bytes under `cid`; `expected` is the size the parent declared.
    fn read(&mut self, cid: &Cid, expected: Option<u64>, depth: usize) -> Result<(), ReadError> {
        if depth > MAX_DEPTH {
            return Err(ReadError::TooDeep);
        }
        let bytes = (self.get)(cid).ok_or(ReadError::MissingBlock(*cid))?;
        verify(cid, &bytes).map_err(|e| match e {
            CidError::UnsupportedHash(code) => ReadError::UnsupportedHash { cid: *cid, code },
            CidError::HashMismatch { .. } | CidError::IdentityTooLong(_) => {
                ReadError::Corrupt(*cid)
            }
        })?;
        let start = self.out.len() as u64;
        match cid.codec() {
            RAW => {
                check_size(cid, expected, bytes.len() as u64)?;
                self.append(&bytes)?;
            }
            DAG_PB => {
                let node = PbNode::decode(&bytes).map_err(|e| ReadError::DagPb {
                    cid: *cid,
                    source: Box::new(e),
                })?;
                let data = node.data.as_deref().ok_or(ReadError::MissingData(*cid))?;
                let unixfs = UnixFsData::decode(data).map_err(|e| ReadError::UnixFs {
                    cid: *cid,
                    source: Box::new(e),
                })?;
                if !matches!(unixfs.kind, DataType::File | DataType::Raw) {
                    return Err(ReadError::NotAFile {
                        cid: *cid,
                        kind: unixfs.kind,
                    });
                }
                if unixfs.blocksizes.len() != node.links.len() {
                    return Err(ReadError::BlocksizesMismatch {
                        cid: *cid,
                        links: node.links.len(),
                        blocksizes: unixfs.blocksizes.len(),
                    });
                }
                let own = unixfs.data.as_deref().unwrap_or_default();
                let declared = unixfs
                    .blocksizes
                    .iter()
                    .try_fold(own.len() as u64, |sum, &size| sum.checked_add(size))
                    .ok_or(ReadError::TooLarge(self.max_len))?;
                if let Some(filesize) = unixfs.filesize {
                    check_size(cid, Some(filesize), declared)?;
                }
                check_size(cid, expected, declared)?;
                if declared > self.max_len - start {
                    return Err(ReadError::TooLarge(self.max_len));
                }
                // A node's own data comes before its children's.
                self.append(own)?;
                for (link, &size) in node.links.iter().zip(&unixfs.blocksizes) {
                    self.read(&link.hash, Some(size), depth + 1)?;
                }
            }
            codec => return Err(ReadError::UnsupportedCodec { cid: *cid, codec }),
        }
        check_size(cid, expected, self.out.len() as u64 - start)
    }

    fn append(&mut self, bytes: &[u8]) -> Result<(), ReadError> {
        if bytes.len() as u64 > self.max_len - self.out.len() as u64 {
            return Err(ReadError::TooLarge(self.max_len));
        }
        self.out.extend_from_slice(bytes);
        Ok(())
    }
}

fn check_size(cid: &Cid, expected: Option<u64>, actual: u64) -> Result<(), ReadError> {
    match expected {
        Some(expected) if expected != actual => Err(ReadError::SizeMismatch {
            cid: *cid,
            expected,
            actual,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::{build_file, CidMode};
    use crate::cid::{cid_v1, raw_cid};
    use crate::dagpb::PbLink;
    use std::collections::HashMap;

    fn put(map: &mut HashMap<Cid, Vec<u8>>, node: &PbNode) -> Cid {
        let bytes = node.encode();
        let cid = cid_v1(DAG_PB, &bytes);
        map.insert(cid, bytes);
        cid
    }

    fn file_node(links: Vec<(Cid, u64)>, blocksizes: Vec<u64>) -> PbNode {
        PbNode {
            links: links
                .into_iter()
                .map(|(hash, tsize)| PbLink {
                    hash,
                    name: Some(String::new()),
                    tsize: Some(tsize),
                })
                .collect(),
            data: Some(UnixFsData::file_node(blocksizes).encode()),
        }
    }

    #[test]
    fn reads_built_files() {
        let bytes: Vec<u8> = (0..700_000u32).map(|i| (i % 256) as u8).collect();
        for mode in [CidMode::V1RawLeaves, CidMode::V0DagPbLeaves] {
            let (root, blocks) = build_file(&bytes, mode);
            let map: HashMap<_, _> = blocks.into_iter().map(|b| (b.cid, b.data)).collect();
            assert_eq!(
                read_file(&root.cid, |c| map.get(c).cloned()).unwrap(),
                bytes
            );
            assert_eq!(
                read_file_limited(&root.cid, 699_999, |c| map.get(c).cloned()),
                Err(ReadError::TooLarge(699_999))
            );
        }
    }

    #[test]
    fn reports_missing_and_corrupt_blocks() {
        let (root, blocks) = build_file(&[7u8; 300_000], CidMode::V1RawLeaves);
        let mut map: HashMap<_, _> = blocks.into_iter().map(|b| (b.cid, b.data)).collect();
        let leaf = *map.keys().find(|c| c.codec() == RAW).unwrap();
        let good = map.remove(&leaf).unwrap();
        assert_eq!(
            read_file(&root.cid, |c| map.get(c).cloned()),
            Err(ReadError::MissingBlock(leaf))
        );
        let mut bad = good.clone();
        bad[0] ^= 1;
        map.insert(leaf, bad);
        assert_eq!(
            read_file(&root.cid, |c| map.get(c).cloned()),
            Err(ReadError::Corrupt(leaf))
        );
    }

    #[test]
    fn rejects_sizes_that_disagree_with_the_parent() {
        let mut map = HashMap::new();
        let leaf = raw_cid(b"abc");
        map.insert(leaf, b"abc".to_vec());
        let root = put(&mut map, &file_node(vec![(leaf, 3)], vec![4]));
        assert_eq!(
            read_file(&root, |c| map.get(c).cloned()),
            Err(ReadError::SizeMismatch {
                cid: leaf,
                expected: 4,
                actual: 3
            })
        );
        let root = put(&mut map, &file_node(vec![(leaf, 3)], vec![]));
        assert!(matches!(
            read_file(&root, |c| map.get(c).cloned()),
            Err(ReadError::BlocksizesMismatch { .. })
        ));
    }

    #[test]
    fn rejects_directories_and_endless_chains() {
        let mut map = HashMap::new();
        let dir = put(
            &mut map,
            &PbNode {
                links: vec![],
                data: Some(UnixFsData::directory().encode()),
            },
        );
        assert!(matches!(
            read_file(&dir, |c| map.get(c).cloned()),
            Err(ReadError::NotAFile {
                kind: DataType::Directory,
                ..
            })
        ));

        let leaf = raw_cid(b"z");
        map.insert(leaf, b"z".to_vec());
        let mut top = leaf;
        for _ in 0..=MAX_DEPTH {
            top = put(&mut map, &file_node(vec![(top, 1)], vec![1]));
        }
        assert_eq!(
            read_file(&top, |c| map.get(c).cloned()),
            Err(ReadError::TooDeep)
        );
    }

    #[test]
    fn shared_blocks_cannot_blow_past_the_limit() {
        // Each level links the level below 100 times: 100^4 bytes declared from 5 blocks.
        let mut map = HashMap::new();
        let leaf = raw_cid(b"q");
        map.insert(leaf, b"q".to_vec());
        let mut top = (leaf, 1u64);
        for _ in 0..4 {
            let (child, child_size) = top;
            let node = file_node(vec![(child, child_size); 100], vec![child_size; 100]);
            top = (put(&mut map, &node), child_size * 100);
        }
        assert_eq!(
            read_file_limited(&top.0, 1 << 20, |c| map.get(c).cloned()),
            Err(ReadError::TooLarge(1 << 20))
        );
    }
}
