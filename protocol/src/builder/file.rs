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
mod tests;
