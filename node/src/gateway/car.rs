//! CAR v1 responses (trustless gateway): the blocks that prove the path, then the DAG at
//! its end in depth-first link order, streamed block by block.

use std::collections::HashSet;

use bytes::Bytes;
use cid::Cid;
use ipfm_protocol::car::{block_section, header};
use ipfm_protocol::cid::{DAG_PB, IDENTITY};
use ipfm_protocol::dagpb::PbNode;
use ipfm_protocol::unixfs::DataType;
use ipfm_store::Blockstore;

use super::blocks::Blocks;
use super::body::Sink;
use super::error::{GatewayError, Result};
use super::resolve::{classify, decode_unixfs, file_size, Node, Resolved};

/// With `dups=y` a hostile DAG (one block linked many times over several levels) could
/// make the stream practically endless; stop after this many block sections.
const MAX_SECTIONS_WITH_DUPS: u64 = 1_000_000;

/// How much of the DAG at the end of the path to send (`dag-scope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Only the terminal block.
    Block,
    /// What it takes to read the terminal entity: a whole file, or a directory's own block.
    Entity,
    /// The whole DAG under the terminal block.
    All,
}

impl Scope {
    pub fn parse(text: &str) -> Option<Scope> {
        match text {
            "block" => Some(Scope::Block),
            "entity" => Some(Scope::Entity),
            "all" => Some(Scope::All),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Block => "block",
            Scope::Entity => "entity",
            Scope::All => "all",
        }
    }
}

/// The negotiated CAR parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CarParams {
    pub scope: Scope,
    /// `dups=y`: repeat a block every time the walk meets it.
    pub dups: bool,
    /// `entity-bytes=from:to`: only the blocks of that byte range of a file.
    pub entity_bytes: Option<EntityBytes>,
}

/// An `entity-bytes=from:to` range: offsets may count from the end (negative), `to` may
/// be `*` (`None`, the end of the entity); both ends inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EntityBytes {
    pub from: i64,
    pub to: Option<i64>,
}

impl EntityBytes {
    pub fn parse(text: &str) -> Option<EntityBytes> {
        let (from, to) = text.split_once(':')?;
        let from = from.parse().ok()?;
        let to = match to {
            "*" => None,
            to => Some(to.parse().ok()?),
        };
        Some(EntityBytes { from, to })
    }
}

impl std::fmt::Display for EntityBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.to {
            Some(to) => write!(f, "{}:{to}", self.from),
            None => write!(f, "{}:*", self.from),
        }
    }
}

/// What `entity-bytes` selects in the entity at the end of the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Window {
    /// Bytes `start..end` of a file.
    Range { start: u64, end: u64 },
    /// Nothing: the response is as for `dag-scope=block`.
    Empty,
}

/// Resolve the request's `entity-bytes` against the terminal entity: `None` when there is
/// no such parameter or the entity is not a file (then the parameter is ignored, per
/// spec). A range entirely past the end of the file is a 400, decided before streaming.
pub(crate) fn byte_window(params: &CarParams, resolved: &Resolved) -> Result<Option<Window>> {
    let Some(range) = params.entity_bytes else {
        return Ok(None);
    };
    let size = match classify(&resolved.cid, &resolved.bytes) {
        Ok(Node::File { size }) => size,
        _ => return Ok(None),
    };
    if size == 0 {
        return Ok(Some(Window::Empty));
    }
    let offset = |value: i64| -> u64 {
        if value < 0 {
            size.saturating_sub(value.unsigned_abs())
        } else {
            value.unsigned_abs()
        }
    };
    let start = offset(range.from);
    if start >= size {
        return Err(GatewayError::bad_request(format!(
            "entity-bytes={range} starts past the end of the {size}-byte file"
        )));
    }
    let last = range.to.map_or(size - 1, |to| offset(to).min(size - 1));
    Ok(Some(if last < start {
        Window::Empty
    } else {
        Window::Range {
            start,
            end: last + 1,
        }
    }))
}

impl CarParams {
    /// `Content-Type` of the response, with every parameter spelled out (IPIP-412).
    pub fn content_type(&self) -> String {
        format!(
            "application/vnd.ipld.car; version=1; order=dfs; dups={}",
            if self.dups { "y" } else { "n" }
        )
    }
}

/// Write the CAR for `resolved` to `sink`: header (root = the path's terminal CID), the
/// path's directory blocks, then the terminal DAG per `params`. Identity-hash blocks are
/// never written (their bytes are in the CID), as the trustless gateway spec requires.
pub(crate) async fn write_car<S: Blockstore>(
    blocks: &Blocks<S>,
    resolved: Resolved,
    params: CarParams,
    window: Option<Window>,
    sink: &mut Sink,
) -> Result<()> {
    if !sink.push(Bytes::from(header(&[resolved.cid]))).await {
        return Ok(());
    }
    let mut writer = SectionWriter {
        seen: HashSet::new(),
        dups: params.dups,
        sections: 0,
    };
    for (cid, bytes) in &resolved.path_blocks {
        if !writer.write(sink, cid, bytes).await? {
            return Ok(());
        }
    }

    let walk = match (window, params.scope) {
        (Some(Window::Empty), _) | (None, Scope::Block) => Walk::Block,
        (Some(Window::Range { start, end }), _) => Walk::Range { start, end },
        (None, Scope::All) => Walk::All,
        (None, Scope::Entity) if is_unixfs_file(&resolved.cid, &resolved.bytes) => Walk::All,
        (None, Scope::Entity) => Walk::Block,
    };
    // (block, its bytes if at hand, where its bytes start in the file for ranged walks)
    let mut stack = vec![(resolved.cid, Some(resolved.bytes), 0u64)];
    while let Some((cid, bytes, offset)) = stack.pop() {
        if !params.dups && writer.seen.contains(&cid) {
            // Already sent, and so was everything under it.
            continue;
        }
        let bytes = match bytes {
            Some(bytes) => bytes,
            None => blocks.get(&cid).await?,
        };
        if !writer.write(sink, &cid, &bytes).await? {
            return Ok(());
        }
        if cid.codec() != DAG_PB {
            continue;
        }
        match walk {
            Walk::Block => {}
            Walk::All => {
                let node = PbNode::decode(&bytes).map_err(|e| GatewayError::corrupt(&cid, e))?;
                stack.extend(node.links.iter().rev().map(|link| (link.hash, None, 0)));
            }
            Walk::Range { start, end } => {
                let (node, unixfs) = decode_unixfs(&cid, &bytes)?;
                // Children whose bytes overlap the window; sizes were checked to add up
                // without overflow by `file_size`.
                file_size(&cid, &node, &unixfs)?;
                let mut child_offset = offset + unixfs.data.as_ref().map_or(0, Vec::len) as u64;
                let mut children = Vec::new();
                for (link, &size) in node.links.iter().zip(&unixfs.blocksizes) {
                    if child_offset < end && child_offset + size > start {
                        children.push((link.hash, None, child_offset));
                    }
                    child_offset += size;
                }
                stack.extend(children.into_iter().rev());
            }
        }
    }
    Ok(())
}

/// Which blocks under the terminal one the walk follows.
#[derive(Debug, Clone, Copy)]
enum Walk {
    Block,
    All,
    /// File blocks overlapping bytes `start..end`.
    Range {
        start: u64,
        end: u64,
    },
}

struct SectionWriter {
    seen: HashSet<Cid>,
    dups: bool,
    sections: u64,
}

impl SectionWriter {
    /// Write one block section (unless it is an identity block, or a repeat with
    /// `dups=n`); Ok(false) when the reader has gone away.
    async fn write(&mut self, sink: &mut Sink, cid: &Cid, bytes: &[u8]) -> Result<bool> {
        let first_time = self.seen.insert(*cid);
        if cid.hash().code() == IDENTITY || !(first_time || self.dups) {
            return Ok(true);
        }
        self.sections += 1;
        if self.sections > MAX_SECTIONS_WITH_DUPS && self.dups {
            return Err(GatewayError::bad_request(format!(
                "CAR with dups=y would exceed {MAX_SECTIONS_WITH_DUPS} blocks"
            )));
        }
        Ok(sink.push(Bytes::from(block_section(cid, bytes))).await)
    }
}

fn is_unixfs_file(cid: &Cid, bytes: &[u8]) -> bool {
    cid.codec() == DAG_PB
        && decode_unixfs(cid, bytes)
            .is_ok_and(|(_, unixfs)| matches!(unixfs.kind, DataType::File | DataType::Raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_bytes_syntax() {
        assert_eq!(
            EntityBytes::parse("0:*"),
            Some(EntityBytes { from: 0, to: None })
        );
        assert_eq!(
            EntityBytes::parse("-1024:*"),
            Some(EntityBytes {
                from: -1024,
                to: None
            })
        );
        assert_eq!(
            EntityBytes::parse("499:-1000"),
            Some(EntityBytes {
                from: 499,
                to: Some(-1000)
            })
        );
        for bad in ["", "1", "a:b", "1:", ":5", "1:*x"] {
            assert_eq!(EntityBytes::parse(bad), None, "{bad}");
        }
        assert_eq!(EntityBytes::parse("-5:7").unwrap().to_string(), "-5:7");
    }
}
