//! Building a UnixFS directory tree from `path → file` entries (paths `/`-separated).

use std::collections::BTreeMap;

use ipfm_protocol::builder::{Block, BuilderError, CidMode, DirRoot, DirectoryBuilder};
use ipfm_protocol::Cid;

/// A finished file (or raw block) to link into a tree: its root CID and DAG size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Linked {
    pub cid: Cid,
    pub tsize: u64,
}

/// Builds the directory tree holding every entry of `files` (e.g. `lofi/12.ts`); returns
/// the root and every directory block, children before parents.
pub fn build_tree(
    files: &BTreeMap<String, Linked>,
    mode: CidMode,
) -> Result<(DirRoot, Vec<Block>), BuilderError> {
    let mut blocks = Vec::new();
    let root = build_dir(
        files.iter().map(|(p, l)| (p.as_str(), *l)),
        mode,
        &mut blocks,
    )?;
    Ok((root, blocks))
}

fn build_dir<'a>(
    entries: impl Iterator<Item = (&'a str, Linked)>,
    mode: CidMode,
    blocks: &mut Vec<Block>,
) -> Result<DirRoot, BuilderError> {
    let mut files: Vec<(&str, Linked)> = Vec::new();
    let mut subdirs: BTreeMap<&str, Vec<(&str, Linked)>> = BTreeMap::new();
    for (path, linked) in entries {
        match path.split_once('/') {
            Some((dir, rest)) => subdirs.entry(dir).or_default().push((rest, linked)),
            None => files.push((path, linked)),
        }
    }
    let mut dir = DirectoryBuilder::new(mode);
    for (name, linked) in files {
        dir.add(name, linked.cid, linked.tsize)?;
    }
    for (name, children) in subdirs {
        let sub = build_dir(children.into_iter(), mode, blocks)?;
        dir.add(name, sub.cid, sub.tsize)?;
    }
    let (root, block) = dir.finish();
    blocks.push(block);
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipfm_protocol::cid::raw_cid;

    #[test]
    fn nested_paths_become_subdirectories() {
        let file = |b: &[u8]| Linked {
            cid: raw_cid(b),
            tsize: b.len() as u64,
        };
        let mut files = BTreeMap::new();
        files.insert("master.m3u8".to_owned(), file(b"m"));
        files.insert("lofi/1.ts".to_owned(), file(b"one"));
        files.insert("lofi/2.ts".to_owned(), file(b"two"));
        let (root, blocks) = build_tree(&files, CidMode::V1RawLeaves).unwrap();
        // One block for `lofi/`, one for the root, the root last.
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[1].cid, root.cid);
        let mut flat = DirectoryBuilder::new(CidMode::V1RawLeaves);
        flat.add("1.ts", file(b"one").cid, 3).unwrap();
        flat.add("2.ts", file(b"two").cid, 3).unwrap();
        assert_eq!(blocks[0], flat.finish().1);
    }

    #[test]
    fn a_name_used_as_file_and_directory_is_refused() {
        let l = Linked {
            cid: raw_cid(b"x"),
            tsize: 1,
        };
        let mut files = BTreeMap::new();
        files.insert("lofi".to_owned(), l);
        files.insert("lofi/1.ts".to_owned(), l);
        assert!(build_tree(&files, CidMode::V1RawLeaves).is_err());
    }
}
