//! Path resolution through UnixFS directories, and what the block at the end of a path is.

use cid::Cid;
use ipfm_protocol::cid::{DAG_PB, RAW};
use ipfm_protocol::dagpb::{PbLink, PbNode};
use ipfm_protocol::unixfs::{DataType, UnixFsData};
use ipfm_store::Blockstore;

use super::blocks::Blocks;
use super::error::{GatewayError, Result};

/// A content path resolved down to its last block.
pub(crate) struct Resolved {
    /// One CID per logical path element: the root, then one per segment (`X-Ipfs-Roots`).
    pub roots: Vec<Cid>,
    /// The directory blocks traversed on the way, in order (CAR responses start with them
    /// so a client can verify the path, not only the content).
    pub path_blocks: Vec<(Cid, Vec<u8>)>,
    /// The block the path ends at.
    pub cid: Cid,
    pub bytes: Vec<u8>,
}

/// What a resolved block is, as far as serving it goes.
pub(crate) enum Node {
    /// A UnixFS file (dag-pb) or a raw block, `size` bytes long.
    File { size: u64 },
    /// A UnixFS directory with its links.
    Directory { links: Vec<PbLink> },
    /// A UnixFS symlink and its target.
    Symlink { target: Vec<u8> },
}

/// Follow `segments` from `root` through UnixFS directories.
pub(crate) async fn resolve<S: Blockstore>(
    blocks: &Blocks<S>,
    root: Cid,
    segments: &[String],
) -> Result<Resolved> {
    let mut cid = root;
    let mut bytes = blocks.get(&root).await?;
    let mut roots = vec![root];
    let mut path_blocks = Vec::new();
    for name in segments {
        let child = child_link(&cid, &bytes, name)?;
        path_blocks.push((cid, std::mem::take(&mut bytes)));
        cid = child;
        bytes = blocks.get(&cid).await?;
        roots.push(cid);
    }
    Ok(Resolved {
        roots,
        path_blocks,
        cid,
        bytes,
    })
}

/// The CID that directory block `cid` links under `name`.
fn child_link(cid: &Cid, bytes: &[u8], name: &str) -> Result<Cid> {
    let no_such_link = || GatewayError::NoSuchLink {
        name: name.to_owned(),
        parent: *cid,
    };
    match cid.codec() {
        RAW => Err(no_such_link()),
        DAG_PB => {
            let (node, unixfs) = decode_unixfs(cid, bytes)?;
            match unixfs.kind {
                DataType::Directory => node
                    .links
                    .into_iter()
                    .find(|link| link.name.as_deref() == Some(name))
                    .map(|link| link.hash)
                    .ok_or_else(no_such_link),
                DataType::HamtShard => Err(hamt_unsupported(cid)),
                _ => Err(no_such_link()),
            }
        }
        codec => Err(GatewayError::NotImplemented(format!(
            "cannot follow path {name:?} into {cid}: codec {codec:#x} is not UnixFS"
        ))),
    }
}

/// Classify the block at the end of a path.
pub(crate) fn classify(cid: &Cid, bytes: &[u8]) -> Result<Node> {
    match cid.codec() {
        RAW => Ok(Node::File {
            size: bytes.len() as u64,
        }),
        DAG_PB => {
            let (node, unixfs) = decode_unixfs(cid, bytes)?;
            match unixfs.kind {
                DataType::File | DataType::Raw => Ok(Node::File {
                    size: file_size(cid, &node, &unixfs)?,
                }),
                DataType::Directory => Ok(Node::Directory { links: node.links }),
                DataType::Symlink => Ok(Node::Symlink {
                    target: unixfs.data.unwrap_or_default(),
                }),
                DataType::HamtShard => Err(hamt_unsupported(cid)),
                DataType::Metadata => Err(GatewayError::NotImplemented(format!(
                    "{cid} is a UnixFS metadata node, which this gateway does not render"
                ))),
            }
        }
        codec => Err(GatewayError::NotImplemented(format!(
            "{cid} has codec {codec:#x}, which this gateway does not render; \
             request it with ?format=raw or ?format=car"
        ))),
    }
}

/// The dag-pb node and its UnixFS data.
pub(crate) fn decode_unixfs(cid: &Cid, bytes: &[u8]) -> Result<(PbNode, UnixFsData)> {
    let node = PbNode::decode(bytes).map_err(|e| GatewayError::corrupt(cid, e))?;
    let data = node
        .data
        .as_deref()
        .ok_or_else(|| GatewayError::corrupt(cid, "dag-pb node without UnixFS data"))?;
    let unixfs = UnixFsData::decode(data).map_err(|e| GatewayError::corrupt(cid, e))?;
    Ok((node, unixfs))
}

/// The byte length a UnixFS file node declares: its own data plus its children's
/// blocksizes, which must agree with `filesize` when that is present.
pub(crate) fn file_size(cid: &Cid, node: &PbNode, unixfs: &UnixFsData) -> Result<u64> {
    if unixfs.blocksizes.len() != node.links.len() {
        return Err(GatewayError::corrupt(
            cid,
            format!(
                "{} links but {} blocksizes",
                node.links.len(),
                unixfs.blocksizes.len()
            ),
        ));
    }
    let own = unixfs.data.as_ref().map_or(0, Vec::len) as u64;
    let declared = unixfs
        .blocksizes
        .iter()
        .try_fold(own, |sum, &size| sum.checked_add(size))
        .ok_or_else(|| GatewayError::corrupt(cid, "blocksizes overflow"))?;
    match unixfs.filesize {
        Some(filesize) if filesize != declared => Err(GatewayError::corrupt(
            cid,
            format!("filesize {filesize} but blocks add up to {declared}"),
        )),
        _ => Ok(declared),
    }
}

fn hamt_unsupported(cid: &Cid) -> GatewayError {
    GatewayError::NotImplemented(format!(
        "{cid} is a HAMT-sharded directory, which this gateway does not traverse"
    ))
}
