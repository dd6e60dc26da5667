//! The streaming file builder: the same DAG, byte for byte, as Kubo's `ipfs add`
//! (boxo `importer/balanced` with a fixed-size chunker).
//!
//! boxo's balanced layout makes the first chunk the root; whenever the root is full
//! (`max_links` children at every level) and more data follows, the root becomes the first
//! child of a new root one level deeper, and the new root is filled greedily. The result is
//! equivalent to grouping the leaves, in order, into runs of `max_links` under depth-1 nodes,
//! those into runs of `max_links` under depth-2 nodes, and so on until one node is left —
//! and a single leaf stays the root itself. That formulation can be built incrementally:
//! a node is final the moment it has `max_links` children, so the builder keeps only one
//! open list of links per level and closes the partial ones in [`FileBuilder::finish`].
//! Memory is one chunk plus at most `depth × max_links` links, whatever the file size.

use ::cid::Cid;

use super::{Block, BuilderError, CidMode, MAX_BLOCK_SIZE};
use crate::cid::raw_cid;
use crate::dagpb::{PbLink, PbNode};
use crate::unixfs::UnixFsData;
use crate::varint;

/// Kubo's default chunk size (`size-262144`).
pub const CHUNK_SIZE: usize = 262_144;
/// Kubo's default maximum number of links per file node (`helpers.DefaultLinksPerBlock`).
pub const MAX_LINKS: usize = 174;

/// Chunk size and fan-out of the balanced layout. [`FileLayout::KUBO`] is what `ipfs add`
/// uses; other values reproduce Kubo's `--chunker=size-N` / `--max-file-links` options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileLayout {
    pub chunk_size: usize,
    pub max_links: usize,
}

impl FileLayout {
    /// `ipfs add` defaults: 256 KiB chunks, 174 links per node.
    pub const KUBO: FileLayout = FileLayout {
        chunk_size: CHUNK_SIZE,
        max_links: MAX_LINKS,
    };

    /// The most links a file node may have here: keeps interior nodes (≈ 60 bytes a link)
    /// far below [`MAX_BLOCK_SIZE`].
    pub const MAX_LINKS_LIMIT: usize = 4096;

    fn validate(self, mode: CidMode) -> Result<(), BuilderError> {
        if self.chunk_size == 0 {
            return Err(BuilderError::InvalidLayout(
                "chunk size must be at least 1 byte",
            ));
        }
        if leaf_block_len(mode, self.chunk_size) > MAX_BLOCK_SIZE {
            return Err(BuilderError::InvalidLayout(
                "a full chunk would make a leaf block over 1 MiB",
            ));
        }
        if !(2..=Self::MAX_LINKS_LIMIT).contains(&self.max_links) {
            return Err(BuilderError::InvalidLayout(
                "max links per node must be between 2 and 4096",
            ));
        }
        Ok(())
    }
}

impl Default for FileLayout {
    fn default() -> Self {
        FileLayout::KUBO
    }
}

/// The root of a finished file DAG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileRoot {
    pub cid: Cid,
    /// File bytes.
    pub size: u64,
    /// Total bytes of every block of the DAG: what a parent link's Tsize must say.
    pub tsize: u64,
}

/// A finished child, as its parent links to it.
#[derive(Debug, Clone, Copy)]
struct ChildLink {
    cid: Cid,
    /// Bytes of the child's whole DAG (link Tsize).
    tsize: u64,
    /// File bytes under the child (parent's `blocksizes` entry).
    filesize: u64,
}

/// Builds a file DAG from bytes fed in any pieces; see the module docs.
#[derive(Debug)]
pub struct FileBuilder {
    mode: CidMode,
    layout: FileLayout,
    /// Bytes of the chunk being filled (`< chunk_size` between calls).
    chunk: Vec<u8>,
    /// `levels[d]`: finished children of the open node at depth `d + 1`, each list
    /// shorter than `max_links` between calls.
    levels: Vec<Vec<ChildLink>>,
    leaves: u64,
    size: u64,
}

impl FileBuilder {
    /// A builder with Kubo's default layout.
    pub fn new(mode: CidMode) -> Self {
        FileBuilder::with_checked_layout(mode, FileLayout::KUBO)
    }

    /// A builder with another chunk size / fan-out (Kubo's `--chunker`, `--max-file-links`).
    pub fn with_layout(mode: CidMode, layout: FileLayout) -> Result<Self, BuilderError> {
        layout.validate(mode)?;
        Ok(FileBuilder::with_checked_layout(mode, layout))
    }

    fn with_checked_layout(mode: CidMode, layout: FileLayout) -> Self {
        FileBuilder {
            mode,
            layout,
            chunk: Vec::with_capacity(layout.chunk_size),
            levels: Vec::new(),
            leaves: 0,
            size: 0,
        }
    }

    /// File bytes fed so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Feed the next bytes of the file. Returns the blocks completed by them, every child
    /// before its parent (so a store can check links as blocks arrive).
    pub fn write(&mut self, mut bytes: &[u8]) -> Vec<Block> {
        let mut out = Vec::new();
        self.size += bytes.len() as u64;
        while !bytes.is_empty() {
            let room = self.layout.chunk_size - self.chunk.len();
            let (now, later) = bytes.split_at(room.min(bytes.len()));
            self.chunk.extend_from_slice(now);
            bytes = later;
            if self.chunk.len() == self.layout.chunk_size {
                let chunk =
                    std::mem::replace(&mut self.chunk, Vec::with_capacity(self.layout.chunk_size));
                self.push_leaf(chunk, &mut out);
            }
        }
        out
    }

    /// Close the DAG: the last (partial) chunk, the partial nodes on every level, the root.
    pub fn finish(mut self) -> (FileRoot, Vec<Block>) {
        let mut out = Vec::new();
        // The empty file is one empty leaf; otherwise a partial chunk is the last leaf and
        // an exact multiple of the chunk size adds nothing (boxo's splitter never yields an
        // empty chunk after data).
        if !self.chunk.is_empty() || self.leaves == 0 {
            let chunk = std::mem::take(&mut self.chunk);
            self.push_leaf(chunk, &mut out);
        }
        let root = self.close_levels(&mut out);
        (
            FileRoot {
                cid: root.cid,
                size: self.size,
                tsize: root.tsize,
            },
            out,
        )
    }

    /// Close the open node of every level bottom-up; the single link left on the topmost
    /// level is the root (a lone leaf, or a node that filled up exactly).
    fn close_levels(&mut self, out: &mut Vec<Block>) -> ChildLink {
        let mut depth = 0;
        loop {
            let children = std::mem::take(&mut self.levels[depth]);
            let is_top = self.levels[depth + 1..].iter().all(Vec::is_empty);
            if is_top && children.len() == 1 {
                return children[0];
            }
            if !children.is_empty() {
                // The level above has fewer than max_links links, so this push fills it
                // at most exactly: no cascade needed.
                let link = self.emit_node(&children, out);
                self.level_mut(depth + 1).push(link);
            }
            depth += 1;
        }
    }

    fn level_mut(&mut self, depth: usize) -> &mut Vec<ChildLink> {
        while self.levels.len() <= depth {
            self.levels.push(Vec::with_capacity(self.layout.max_links));
        }
        &mut self.levels[depth]
    }

    fn push_leaf(&mut self, chunk: Vec<u8>, out: &mut Vec<Block>) {
        let filesize = chunk.len() as u64;
        let block = match self.mode {
            CidMode::V1RawLeaves => Block {
                cid: raw_cid(&chunk),
                data: chunk,
            },
            CidMode::V0DagPbLeaves => {
                let data = dag_pb_leaf(&chunk);
                Block {
                    cid: self.mode.dag_pb_cid(&data),
                    data,
                }
            }
        };
        let link = ChildLink {
            cid: block.cid,
            tsize: block.data.len() as u64,
            filesize,
        };
        out.push(block);
        self.leaves += 1;
        self.push_link(0, link, out);
    }

    /// Add a finished child to the open node at `depth + 1`; a node that reaches
    /// `max_links` children is final, so emit it and carry its link one level up.
    fn push_link(&mut self, mut depth: usize, mut link: ChildLink, out: &mut Vec<Block>) {
        loop {
            let max_links = self.layout.max_links;
            let level = self.level_mut(depth);
            level.push(link);
            if level.len() < max_links {
                return;
            }
            let children = std::mem::replace(level, Vec::with_capacity(max_links));
            link = self.emit_node(&children, out);
            depth += 1;
        }
    }

    /// An interior file node as boxo's `FSNodeOverDag` commits it: links with an empty
    /// (present) Name and Tsize = the child's whole DAG, Data = UnixFS File with filesize
    /// and one blocksize per child.
    fn emit_node(&self, children: &[ChildLink], out: &mut Vec<Block>) -> ChildLink {
        let unixfs = UnixFsData::file_node(children.iter().map(|c| c.filesize).collect());
        let filesize = unixfs.filesize.unwrap_or_default();
        let node = PbNode {
            links: children
                .iter()
                .map(|c| PbLink {
                    hash: c.cid,
                    name: Some(String::new()),
                    tsize: Some(c.tsize),
                })
                .collect(),
            data: Some(unixfs.encode()),
        };
        let data = node.encode();
        let cid = self.mode.dag_pb_cid(&data);
        let tsize = data.len() as u64 + children.iter().map(|c| c.tsize).sum::<u64>();
        out.push(Block { cid, data });
        ChildLink {
            cid,
            tsize,
            filesize,
        }
    }
}

/// Build the whole DAG of `bytes` at once.
pub fn build_file(bytes: &[u8], mode: CidMode) -> (FileRoot, Vec<Block>) {
    let mut builder = FileBuilder::new(mode);
    let mut blocks = builder.write(bytes);
    let (root, rest) = builder.finish();
    blocks.extend(rest);
    (root, blocks)
}

/// A dag-pb UnixFS leaf (`PBNode { Data: UnixFS { Type: File, Data: chunk, filesize } }`),
/// written straight into one buffer: the same bytes as `PbNode::encode` of
/// `UnixFsData::file_leaf`, without copying the chunk twice.
fn dag_pb_leaf(chunk: &[u8]) -> Vec<u8> {
    let n = chunk.len() as u64;
    let mut unixfs_head = Vec::with_capacity(16);
    unixfs_head.push(0x08); // Type = File
    unixfs_head.push(0x02);
    if !chunk.is_empty() {
        unixfs_head.push(0x12); // Data
        varint::write(n, &mut unixfs_head);
    }
    let mut unixfs_tail = vec![0x18]; // filesize
    varint::write(n, &mut unixfs_tail);
    let unixfs_len = unixfs_head.len() + chunk.len() + unixfs_tail.len();

    let mut out = Vec::with_capacity(1 + varint::len(unixfs_len as u64) + unixfs_len);
    out.push(0x0a); // PBNode.Data
    varint::write(unixfs_len as u64, &mut out);
    out.extend_from_slice(&unixfs_head);
    out.extend_from_slice(chunk);
    out.extend_from_slice(&unixfs_tail);
    out
}

/// Encoded size of a leaf block holding a full chunk of `chunk_size` bytes.
fn leaf_block_len(mode: CidMode, chunk_size: usize) -> usize {
    match mode {
        CidMode::V1RawLeaves => chunk_size,
        CidMode::V0DagPbLeaves => {
            let n = chunk_size as u64;
            let unixfs = 2 + 1 + varint::len(n) + chunk_size + 1 + varint::len(n);
            1 + varint::len(unixfs as u64) + unixfs
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::read::read_file;
    use crate::cid::{verify, DAG_PB, RAW};
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn store(blocks: &[Block]) -> HashMap<Cid, Vec<u8>> {
        blocks.iter().map(|b| (b.cid, b.data.clone())).collect()
    }

    /// Bytes that differ per position so misordered chunks would be noticed.
    fn pattern(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i % 251) as u8 ^ (i / 251) as u8)
            .collect()
    }

    #[test]
    fn dag_pb_leaf_equals_generic_encoding() {
        for chunk in [&b""[..], b"x", &pattern(300), &pattern(CHUNK_SIZE)] {
            let generic = PbNode {
                links: vec![],
                data: Some(UnixFsData::file_leaf(chunk).encode()),
            }
            .encode();
            assert_eq!(dag_pb_leaf(chunk), generic);
            if !chunk.is_empty() {
                assert_eq!(
                    leaf_block_len(CidMode::V0DagPbLeaves, chunk.len()),
                    generic.len()
                );
            }
        }
    }

    #[test]
    fn empty_file_matches_kubo() {
        let (root, blocks) = build_file(b"", CidMode::V1RawLeaves);
        assert_eq!(
            root.cid.to_string(),
            "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
        );
        assert_eq!((root.size, root.tsize, blocks.len()), (0, 0, 1));

        let (root, blocks) = build_file(b"", CidMode::V0DagPbLeaves);
        assert_eq!(
            root.cid.to_string(),
            "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"
        );
        assert_eq!(blocks[0].data, [0x0a, 0x04, 0x08, 0x02, 0x18, 0x00]);
        assert_eq!((root.size, root.tsize), (0, 6));
    }

    #[test]
    fn small_files_match_kubo() {
        // kubo test/cli/add_test.go
        let (root, _) = build_file(b"hello world", CidMode::V0DagPbLeaves);
        assert_eq!(
            root.cid.to_string(),
            "Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD"
        );
        let (root, _) = build_file(b"hello world", CidMode::V1RawLeaves);
        assert_eq!(
            root.cid.to_string(),
            "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
        );
        // The classic `echo "hello world" | ipfs add`.
        let (root, _) = build_file(b"hello world\n", CidMode::V0DagPbLeaves);
        assert_eq!(
            root.cid.to_string(),
            "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
        );
    }

    #[test]
    fn one_byte_file_is_one_block() {
        let (root, blocks) = build_file(b"x", CidMode::V1RawLeaves);
        assert_eq!(blocks.len(), 1);
        assert_eq!(root.cid, raw_cid(b"x"));
        assert_eq!((root.size, root.tsize), (1, 1));

        let (root, blocks) = build_file(b"x", CidMode::V0DagPbLeaves);
        assert_eq!(blocks.len(), 1);
        assert_eq!(root.cid.version(), ::cid::Version::V0);
        assert_eq!(root.tsize, blocks[0].data.len() as u64);
    }

    #[test]
    fn exactly_one_chunk_is_a_single_leaf() {
        let bytes = pattern(CHUNK_SIZE);
        let (root, blocks) = build_file(&bytes, CidMode::V1RawLeaves);
        assert_eq!(blocks.len(), 1);
        assert_eq!(root.cid, raw_cid(&bytes));
        let (root, blocks) = build_file(&bytes, CidMode::V0DagPbLeaves);
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].data, dag_pb_leaf(&bytes));
        assert_eq!(root.tsize, blocks[0].data.len() as u64);
    }

    #[test]
    fn one_chunk_plus_one_byte_makes_a_root_with_two_leaves() {
        let bytes = pattern(CHUNK_SIZE + 1);
        let (root, blocks) = build_file(&bytes, CidMode::V1RawLeaves);
        assert_eq!(blocks.len(), 3);
        assert_eq!(root.cid.codec(), DAG_PB);
        assert_eq!(root.cid, blocks[2].cid);
        let node = PbNode::decode(&blocks[2].data).unwrap();
        assert_eq!(node.links.len(), 2);
        for (link, leaf) in node.links.iter().zip(&blocks[..2]) {
            assert_eq!(link.hash, leaf.cid);
            assert_eq!(link.hash.codec(), RAW);
            assert_eq!(link.name.as_deref(), Some(""), "Kubo writes an empty Name");
            assert_eq!(link.tsize, Some(leaf.data.len() as u64));
        }
        let unixfs = UnixFsData::decode(node.data.as_deref().unwrap()).unwrap();
        assert_eq!(unixfs, UnixFsData::file_node(vec![CHUNK_SIZE as u64, 1]));
        assert_eq!(
            root.tsize,
            blocks.iter().map(|b| b.data.len() as u64).sum::<u64>()
        );
        assert_eq!(root.size, CHUNK_SIZE as u64 + 1);
    }

    /// Shape of the DAG under `cid`: leaves per depth-1 node etc., as nested link counts.
    fn depth_of(cid: &Cid, blocks: &HashMap<Cid, Vec<u8>>) -> usize {
        if cid.codec() == RAW {
            return 0;
        }
        let node = PbNode::decode(&blocks[cid]).unwrap();
        match node.links.first() {
            None => 0,
            Some(first) => 1 + depth_of(&first.hash, blocks),
        }
    }

    #[test]
    fn layout_grows_a_level_past_max_links_and_nests_partial_nodes() {
        // Tiny chunks make boxo's shapes cheap to check: 4 links per node.
        let layout = FileLayout {
            chunk_size: 1,
            max_links: 4,
        };
        for (len, depth, root_links) in [
            (1, 0, 0),
            (2, 1, 2),
            (4, 1, 4),
            (5, 2, 2),
            (16, 2, 4),
            (17, 3, 2),
        ] {
            let mut builder = FileBuilder::with_layout(CidMode::V1RawLeaves, layout).unwrap();
            let bytes = pattern(len);
            let mut blocks = builder.write(&bytes);
            let (root, rest) = builder.finish();
            blocks.extend(rest);
            let map = store(&blocks);
            assert_eq!(depth_of(&root.cid, &map), depth, "len {len}");
            if depth > 0 {
                let node = PbNode::decode(&map[&root.cid]).unwrap();
                assert_eq!(node.links.len(), root_links, "len {len}");
                // The last child of a deeper root is a chain of single-child nodes down
                // to the lone last leaf, as boxo's fillNodeRec makes it.
                if len == 17 {
                    let last = PbNode::decode(&map[&node.links[1].hash]).unwrap();
                    assert_eq!(last.links.len(), 1);
                    assert_eq!(depth_of(&node.links[1].hash, &map), 2);
                }
            }
            assert_eq!(
                read_file(&root.cid, |c| map.get(c).cloned()).unwrap(),
                bytes
            );
        }
    }

    #[test]
    fn rejects_layouts_that_would_make_oversized_blocks() {
        let too_big = FileLayout {
            chunk_size: MAX_BLOCK_SIZE,
            max_links: MAX_LINKS,
        };
        assert!(FileBuilder::with_layout(CidMode::V1RawLeaves, too_big).is_ok());
        assert!(matches!(
            FileBuilder::with_layout(CidMode::V0DagPbLeaves, too_big),
            Err(BuilderError::InvalidLayout(_))
        ));
        for max_links in [0, 1, 4097] {
            let layout = FileLayout {
                chunk_size: CHUNK_SIZE,
                max_links,
            };
            assert!(FileBuilder::with_layout(CidMode::V1RawLeaves, layout).is_err());
        }
        let empty_chunks = FileLayout {
            chunk_size: 0,
            max_links: MAX_LINKS,
        };
        assert!(FileBuilder::with_layout(CidMode::V1RawLeaves, empty_chunks).is_err());
    }

    #[test]
    fn ten_mebibytes_round_trip_in_both_modes() {
        let bytes = pattern(10 * 1024 * 1024);
        for mode in [CidMode::V1RawLeaves, CidMode::V0DagPbLeaves] {
            let (root, blocks) = build_file(&bytes, mode);
            assert_eq!(blocks.len(), 40 + 1);
            for block in &blocks {
                verify(&block.cid, &block.data).unwrap();
                assert!(block.data.len() <= MAX_BLOCK_SIZE);
            }
            assert_eq!(
                root.tsize,
                blocks.iter().map(|b| b.data.len() as u64).sum::<u64>()
            );
            let map = store(&blocks);
            assert_eq!(
                read_file(&root.cid, |c| map.get(c).cloned()).unwrap(),
                bytes
            );
        }
    }

    #[test]
    fn memory_stays_bounded_while_streaming() {
        // 174 × 256 KiB + 1 forces depth 2; feed it in odd pieces and drop the blocks, as
        // `ipfm add` does, while checking the builder never holds more than a chunk and
        // one open link list per level.
        let piece = pattern(100_003);
        let total = MAX_LINKS * CHUNK_SIZE + 1;
        let mut builder = FileBuilder::new(CidMode::V1RawLeaves);
        let mut fed = 0;
        let mut blocks_seen = 0;
        while fed < total {
            let n = piece.len().min(total - fed);
            blocks_seen += builder.write(&piece[..n]).len();
            fed += n;
            assert!(builder.chunk.len() < CHUNK_SIZE);
            assert!(builder.levels.iter().all(|l| l.len() < MAX_LINKS));
            assert!(builder.levels.len() <= 2);
        }
        let (root, rest) = builder.finish();
        blocks_seen += rest.len();
        // 175 leaves, two depth-1 nodes, the root.
        assert_eq!(blocks_seen, 175 + 2 + 1);
        assert_eq!(root.size, total as u64);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn any_split_gives_the_same_dag(
            len in 0usize..3000,
            cuts in proptest::collection::vec(0usize..3000, 0..12),
            v0 in any::<bool>(),
        ) {
            // Small chunks so a few KiB exercise multi-level trees.
            let layout = FileLayout { chunk_size: 37, max_links: 5 };
            let mode = if v0 { CidMode::V0DagPbLeaves } else { CidMode::V1RawLeaves };
            let bytes = pattern(len);

            let mut whole = FileBuilder::with_layout(mode, layout).unwrap();
            let mut expected = whole.write(&bytes);
            let (expected_root, rest) = whole.finish();
            expected.extend(rest);

            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(len)).collect();
            cuts.sort_unstable();
            let mut split = FileBuilder::with_layout(mode, layout).unwrap();
            let mut blocks = Vec::new();
            let mut start = 0;
            for cut in cuts.into_iter().chain([len]) {
                blocks.extend(split.write(&bytes[start..cut]));
                start = cut;
            }
            let (root, rest) = split.finish();
            blocks.extend(rest);

            prop_assert_eq!(root, expected_root);
            prop_assert_eq!(&blocks, &expected);
            // Every child comes before its parent, every block verifies, the root is last.
            let mut seen = std::collections::HashSet::new();
            for block in &blocks {
                verify(&block.cid, &block.data).unwrap();
                if block.cid.codec() == DAG_PB {
                    for link in PbNode::decode(&block.data).unwrap().links {
                        prop_assert!(seen.contains(&link.hash));
                    }
                }
                seen.insert(block.cid);
            }
            prop_assert_eq!(blocks.last().unwrap().cid, root.cid);
            let map = store(&blocks);
            prop_assert_eq!(read_file(&root.cid, |c| map.get(c).cloned()).unwrap(), bytes);
        }
    }
}
