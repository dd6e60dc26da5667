//! Reading a byte range of a UnixFS file (or raw block) leaf by leaf.
//!
//! The walk uses each node's `blocksizes` to skip whole subtrees outside the range, so a
//! `Range` request near the end of a large file fetches only the blocks on the way there.
//! Every block is verified, every size checked against what its parent declared, and the
//! depth is bounded, exactly like `ipfm_protocol::builder::read_file`, but streaming.

use bytes::Bytes;
use cid::Cid;
use ipfm_protocol::builder::read::MAX_DEPTH;
use ipfm_protocol::cid::{DAG_PB, RAW};
use ipfm_protocol::unixfs::DataType;
use ipfm_store::Blockstore;

use super::blocks::Blocks;
use super::body::Sink;
use super::error::{GatewayError, Result};
use super::resolve::{decode_unixfs, file_size};

/// A node still to visit: where its bytes start in the file and how many it must hold.
struct Pending {
    cid: Cid,
    bytes: Option<Vec<u8>>,
    offset: u64,
    expected: Option<u64>,
    depth: usize,
}

/// Write bytes `start..end` of the file whose root block is `root` (bytes already at hand)
/// to `sink`. Stops quietly when the sink's reader goes away.
pub(crate) async fn write_range<S: Blockstore>(
    blocks: &Blocks<S>,
    root: Cid,
    root_bytes: Vec<u8>,
    start: u64,
    end: u64,
    sink: &mut Sink,
) -> Result<()> {
    let mut stack = vec![Pending {
        cid: root,
        bytes: Some(root_bytes),
        offset: 0,
        expected: None,
        depth: 0,
    }];
    while let Some(node) = stack.pop() {
        if node.depth > MAX_DEPTH {
            return Err(GatewayError::corrupt(
                &root,
                format!("file DAG is deeper than {MAX_DEPTH} levels"),
            ));
        }
        let bytes = match node.bytes {
            Some(bytes) => bytes,
            None => blocks.get(&node.cid).await?,
        };
        match node.cid.codec() {
            RAW => {
                check_size(&node.cid, node.expected, bytes.len() as u64)?;
                if !emit(sink, Bytes::from(bytes), node.offset, start, end).await {
                    return Ok(());
                }
            }
            DAG_PB => {
                let (pb, unixfs) = decode_unixfs(&node.cid, &bytes)?;
                if !matches!(unixfs.kind, DataType::File | DataType::Raw) {
                    return Err(GatewayError::corrupt(
                        &node.cid,
                        format!("a UnixFS {:?} node inside a file", unixfs.kind),
                    ));
                }
                check_size(
                    &node.cid,
                    node.expected,
                    file_size(&node.cid, &pb, &unixfs)?,
                )?;
                let own = Bytes::from(unixfs.data.unwrap_or_default());
                let mut child_offset = node.offset + own.len() as u64;
                if !emit(sink, own, node.offset, start, end).await {
                    return Ok(());
                }
                let mut children = Vec::new();
                for (link, &size) in pb.links.iter().zip(&unixfs.blocksizes) {
                    // Sizes were summed without overflow in `file_size`, so this cannot
                    // overflow either.
                    let child_end = child_offset + size;
                    if child_end > start && child_offset < end {
                        children.push(Pending {
                            cid: link.hash,
                            bytes: None,
                            offset: child_offset,
                            expected: Some(size),
                            depth: node.depth + 1,
                        });
                    }
                    child_offset = child_end;
                }
                // Last child first on the stack, so the first one is visited next.
                stack.extend(children.into_iter().rev());
            }
            codec => {
                return Err(GatewayError::corrupt(
                    &node.cid,
                    format!("codec {codec:#x} inside a UnixFS file"),
                ))
            }
        }
    }
    Ok(())
}

/// The first `len` bytes of a file (for content-type sniffing).
pub(crate) async fn read_prefix<S: Blockstore>(
    blocks: &Blocks<S>,
    root: Cid,
    root_bytes: Vec<u8>,
    len: u64,
) -> Result<Vec<u8>> {
    let mut sink = Sink::Buffer(Vec::new());
    write_range(blocks, root, root_bytes, 0, len, &mut sink).await?;
    Ok(match sink {
        Sink::Buffer(buffer) => buffer,
        Sink::Channel(_) => Vec::new(),
    })
}

/// Push the part of `data` (which sits at `offset` in the file) inside `start..end`.
async fn emit(sink: &mut Sink, data: Bytes, offset: u64, start: u64, end: u64) -> bool {
    let data_end = offset + data.len() as u64;
    let from = start.max(offset);
    let to = end.min(data_end);
    if from >= to {
        return true;
    }
    // Both bounds lie within `data`, whose length fits in usize.
    let slice = data.slice((from - offset) as usize..(to - offset) as usize);
    sink.push(slice).await
}

fn check_size(cid: &Cid, expected: Option<u64>, actual: u64) -> Result<()> {
    match expected {
        Some(expected) if expected != actual => Err(GatewayError::corrupt(
            cid,
            format!("holds {actual} file bytes where its parent declared {expected}"),
        )),
        _ => Ok(()),
    }
}
