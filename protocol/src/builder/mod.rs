//! Building UnixFS DAGs exactly as Kubo does, and reading file DAGs back.
//!
//! - [`file`]: the streaming balanced file builder (`ipfs add`, 256 KiB chunks, 174 links).
//! - [`dir`]: flat UnixFS directories (sorted links, whole-DAG Tsize).
//! - [`read`]: reassembles a file from its blocks (for the gateway and for tests).

pub mod dir;
pub mod file;
pub mod read;

use ::cid::Cid;

use crate::cid::{cid_v0, cid_v1, DAG_PB};

pub use dir::{DirRoot, DirectoryBuilder, KUBO_HAMT_THRESHOLD};
pub use file::{build_file, FileBuilder, FileLayout, FileRoot, CHUNK_SIZE, MAX_LINKS};
pub use read::{read_file, read_file_limited, ReadError};

/// No block ipfm makes is larger than this: boxo's bitswap only guarantees blocks up to
/// 1 MiB (its hard limit is 2 MiB).
pub const MAX_BLOCK_SIZE: usize = 1_048_576;

/// Which of Kubo's two `ipfs add` flavours to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CidMode {
    /// `ipfs add --cid-version=1`: raw leaves (`bafkrei…`), CIDv1 dag-pb nodes (`bafybei…`).
    #[default]
    V1RawLeaves,
    /// Kubo 0.22's default `ipfs add`: UnixFS dag-pb leaves, CIDv0 (`Qm…`) everywhere.
    V0DagPbLeaves,
}

impl CidMode {
    /// The CID of an encoded dag-pb node in this mode.
    pub(crate) fn dag_pb_cid(self, node: &[u8]) -> Cid {
        match self {
            CidMode::V1RawLeaves => cid_v1(DAG_PB, node),
            CidMode::V0DagPbLeaves => cid_v0(node),
        }
    }
}

/// A finished block: its CID and the exact bytes that hash to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub cid: Cid,
    pub data: Vec<u8>,
}

/// Why a builder refused its input.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BuilderError {
    #[error("directory entry names must not be empty")]
    EmptyName,
    #[error("directory entry name {0:?} is not allowed (contains '/', or is \".\" or \"..\")")]
    InvalidName(String),
    #[error("directory already has an entry named {0:?}")]
    DuplicateName(String),
    #[error("directory block would be {size} bytes, over the {limit}-byte block limit")]
    DirectoryTooLarge { size: usize, limit: usize },
    #[error("invalid file layout: {0}")]
    InvalidLayout(&'static str),
}
