//! Flat UnixFS directories, as Kubo's `ipfs add -r` writes them (boxo `BasicDirectory`):
//! a dag-pb node whose links are sorted by name bytes (Go's string order, which is also
//! Rust's `str` order), each link's Tsize = the child's whole DAG, and Data = UnixFS
//! `{Type: Directory}`.
//!
//! Kubo switches to a HAMT-sharded directory once its estimate of the links passes
//! [`KUBO_HAMT_THRESHOLD`]; ipfm never shards, so callers keep directories well below that
//! ([`DirectoryBuilder::kubo_size_estimate`]). Blocks over [`MAX_BLOCK_SIZE`] are refused.

use std::collections::BTreeMap;

use ::cid::Cid;

use super::{Block, BuilderError, CidMode, MAX_BLOCK_SIZE};
use crate::dagpb::{PbLink, PbNode};
use crate::unixfs::UnixFsData;
use crate::varint;

/// Kubo's `Import.UnixFSHAMTDirectorySizeThreshold` default (256 KiB).
pub const KUBO_HAMT_THRESHOLD: usize = 262_144;

/// The root of a finished directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirRoot {
    pub cid: Cid,
    /// Encoded directory node plus the Tsize of every entry.
    pub tsize: u64,
}

#[derive(Debug, Clone)]
struct Entry {
    cid: Cid,
    tsize: u64,
}

/// Collects directory entries; [`DirectoryBuilder::finish`] makes the node.
#[derive(Debug, Clone)]
pub struct DirectoryBuilder {
    mode: CidMode,
    entries: BTreeMap<String, Entry>,
    /// Exact encoded size of the node with the current entries.
    encoded_len: usize,
    /// Kubo's "links-bytes" estimate: Σ (name bytes + CID bytes).
    kubo_estimate: usize,
}

/// `PBNode.Data = UnixFS {Type: Directory}`: key, length, `08 01`.
const DIRECTORY_DATA_FIELD_LEN: usize = 4;

fn link_field_len(name: &str, cid_len: usize, tsize: u64) -> usize {
    let inner = 1
        + varint::len(cid_len as u64)
        + cid_len
        + 1
        + varint::len(name.len() as u64)
        + name.len()
        + 1
        + varint::len(tsize);
    1 + varint::len(inner as u64) + inner
}

impl DirectoryBuilder {
    /// An empty directory; dag-pb CIDv1 in [`CidMode::V1RawLeaves`], CIDv0 otherwise.
    pub fn new(mode: CidMode) -> Self {
        DirectoryBuilder {
            mode,
            entries: BTreeMap::new(),
            encoded_len: DIRECTORY_DATA_FIELD_LEN,
            kubo_estimate: 0,
        }
    }

    /// Add an entry `name` → `cid`, whose whole DAG is `tsize` bytes (a file's
    /// [`FileRoot::tsize`](super::FileRoot), a subdirectory's [`DirRoot::tsize`]).
    pub fn add(&mut self, name: &str, cid: Cid, tsize: u64) -> Result<(), BuilderError> {
        if name.is_empty() {
            return Err(BuilderError::EmptyName);
        }
        if name == "." || name == ".." || name.contains('/') {
            return Err(BuilderError::InvalidName(name.to_owned()));
        }
        if self.entries.contains_key(name) {
            return Err(BuilderError::DuplicateName(name.to_owned()));
        }
        let cid_len = cid.encoded_len();
        let size = self.encoded_len + link_field_len(name, cid_len, tsize);
        if size > MAX_BLOCK_SIZE {
            return Err(BuilderError::DirectoryTooLarge {
                size,
                limit: MAX_BLOCK_SIZE,
            });
        }
        self.encoded_len = size;
        self.kubo_estimate += name.len() + cid_len;
        self.entries.insert(name.to_owned(), Entry { cid, tsize });
        Ok(())
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry was added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Exact size in bytes of the block [`DirectoryBuilder::finish`] would make now.
    pub fn encoded_len(&self) -> usize {
        self.encoded_len
    }

    /// Kubo's estimate of this directory (Σ name bytes + CID bytes), the number it compares
    /// with [`KUBO_HAMT_THRESHOLD`] to decide whether to shard.
    pub fn kubo_size_estimate(&self) -> usize {
        self.kubo_estimate
    }

    /// The directory node.
    pub fn finish(self) -> (DirRoot, Block) {
        // Saturating: Tsize is caller-supplied, and a bogus value must not panic here.
        let children_tsize = self
            .entries
            .values()
            .fold(0u64, |sum, e| sum.saturating_add(e.tsize));
        let node = PbNode {
            links: self
                .entries
                .into_iter()
                .map(|(name, entry)| PbLink {
                    hash: entry.cid,
                    name: Some(name),
                    tsize: Some(entry.tsize),
                })
                .collect(),
            data: Some(UnixFsData::directory().encode()),
        };
        let data = node.encode();
        debug_assert_eq!(data.len(), self.encoded_len);
        let cid = self.mode.dag_pb_cid(&data);
        let root = DirRoot {
            cid,
            tsize: children_tsize.saturating_add(data.len() as u64),
        };
        (root, Block { cid, data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::build_file;
    use crate::cid::raw_cid;
    use proptest::prelude::*;

    #[test]
    fn empty_directories_match_kubo() {
        let (root, block) = DirectoryBuilder::new(CidMode::V0DagPbLeaves).finish();
        assert_eq!(
            root.cid.to_string(),
            "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"
        );
        assert_eq!(block.data, [0x0a, 0x02, 0x08, 0x01]);
        assert_eq!(root.tsize, 4);
        // js-ipfs-unixfs ipip-499 test vector (= kubo).
        let (root, _) = DirectoryBuilder::new(CidMode::V1RawLeaves).finish();
        assert_eq!(
            root.cid.to_string(),
            "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"
        );
    }

    #[test]
    fn links_are_sorted_by_name_bytes_and_carry_tsize() {
        let mut dir = DirectoryBuilder::default_v1();
        let names = ["b", "a", "Z", "é", "a b", "1", "ab", "line\nbreak", "_"];
        for (i, name) in names.iter().enumerate() {
            dir.add(name, raw_cid(name.as_bytes()), i as u64 * 10)
                .unwrap();
        }
        let expected_len = dir.encoded_len();
        let (root, block) = dir.finish();
        assert_eq!(block.data.len(), expected_len);
        let node = PbNode::decode(&block.data).unwrap();
        let got: Vec<&str> = node
            .links
            .iter()
            .map(|l| l.name.as_deref().unwrap())
            .collect();
        assert_eq!(
            got,
            ["1", "Z", "_", "a", "a b", "ab", "b", "line\nbreak", "é"]
        );
        for link in &node.links {
            let name = link.name.as_deref().unwrap();
            let i = names.iter().position(|n| *n == name).unwrap();
            assert_eq!(link.tsize, Some(i as u64 * 10));
            assert_eq!(link.hash, raw_cid(name.as_bytes()));
        }
        assert_eq!(node.data.as_deref(), Some(&[0x08, 0x01][..]));
        assert_eq!(
            root.tsize,
            block.data.len() as u64 + (0..9).map(|i| i * 10).sum::<u64>()
        );
        assert_eq!(root.cid.codec(), crate::cid::DAG_PB);
        assert_eq!(root.cid.version(), ::cid::Version::V1);
    }

    #[test]
    fn rejects_bad_and_duplicate_names() {
        let mut dir = DirectoryBuilder::default_v1();
        let cid = raw_cid(b"x");
        assert_eq!(dir.add("", cid, 1), Err(BuilderError::EmptyName));
        for bad in [".", "..", "a/b", "/", "dir/"] {
            assert_eq!(
                dir.add(bad, cid, 1),
                Err(BuilderError::InvalidName(bad.into()))
            );
        }
        dir.add("...", cid, 1).unwrap();
        dir.add(" ", cid, 1).unwrap();
        assert_eq!(
            dir.add("...", cid, 1),
            Err(BuilderError::DuplicateName("...".into()))
        );
        assert_eq!(dir.len(), 2);
    }

    #[test]
    fn refuses_to_grow_past_one_mebibyte() {
        let mut dir = DirectoryBuilder::default_v1();
        let cid = raw_cid(b"x");
        let long = "n".repeat(200);
        let mut added = 0;
        let err = loop {
            match dir.add(&format!("{long}{added:08}"), cid, 1) {
                Ok(()) => added += 1,
                Err(e) => break e,
            }
        };
        assert!(matches!(err, BuilderError::DirectoryTooLarge { .. }));
        assert!(dir.encoded_len() <= MAX_BLOCK_SIZE);
        let (_, block) = dir.finish();
        assert!(block.data.len() <= MAX_BLOCK_SIZE);
        assert!(block.data.len() > MAX_BLOCK_SIZE - 300);
    }

    #[test]
    fn nested_directory_tsize_counts_the_whole_dag() {
        let (file, file_blocks) = build_file(&[1u8; 300_000], CidMode::V1RawLeaves);
        let mut inner = DirectoryBuilder::default_v1();
        inner.add("f", file.cid, file.tsize).unwrap();
        let (inner_root, inner_block) = inner.finish();
        let mut outer = DirectoryBuilder::default_v1();
        outer.add("sub", inner_root.cid, inner_root.tsize).unwrap();
        let (outer_root, outer_block) = outer.finish();
        let all: u64 = file_blocks.iter().map(|b| b.data.len() as u64).sum::<u64>()
            + inner_block.data.len() as u64
            + outer_block.data.len() as u64;
        assert_eq!(outer_root.tsize, all);
    }

    impl DirectoryBuilder {
        fn default_v1() -> Self {
            DirectoryBuilder::new(CidMode::V1RawLeaves)
        }
    }

    proptest! {
        #[test]
        fn encoded_len_is_exact(
            entries in proptest::collection::btree_map("[^/]{1,40}", any::<u64>(), 0..20),
            v0 in any::<bool>(),
        ) {
            let mode = if v0 { CidMode::V0DagPbLeaves } else { CidMode::V1RawLeaves };
            let mut dir = DirectoryBuilder::new(mode);
            for (name, tsize) in &entries {
                if name == "." || name == ".." {
                    continue;
                }
                let (child, _) = build_file(name.as_bytes(), mode);
                dir.add(name, child.cid, *tsize).unwrap();
            }
            let expected = dir.encoded_len();
            let (_, block) = dir.finish();
            prop_assert_eq!(block.data.len(), expected);
            prop_assert!(PbNode::decode(&block.data).is_ok());
        }
    }
}
