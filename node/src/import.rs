//! `ipfm add`: import files and directories as UnixFS, the way `ipfs add` does.
//!
//! Files stream through [`FileBuilder`] in chunk-sized reads, so memory stays bounded by a
//! few chunks whatever the file size. Directories are walked in name order; like Kubo,
//! hidden entries (names starting with '.') are skipped unless asked for.

use std::path::{Path, PathBuf};

use ipfm_protocol::builder::{Block, CidMode, DirectoryBuilder, FileBuilder};
use ipfm_protocol::Cid;
use tokio::io::AsyncReadExt;

/// How to import.
#[derive(Debug, Clone, Copy, Default)]
pub struct ImportOptions {
    pub mode: CidMode,
    /// Include names starting with '.' (Kubo's `--hidden`).
    pub hidden: bool,
}

/// One imported file or directory, reported in the order Kubo prints them (children first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Added {
    pub cid: Cid,
    /// Path as Kubo prints it: the argument's base name, then `/`-joined children.
    pub name: String,
    /// File bytes (directories: 0).
    pub size: u64,
    /// Total bytes of the whole DAG.
    pub tsize: u64,
    pub is_dir: bool,
}

/// Why an import failed; each variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: file name is not valid UTF-8 (UnixFS names are text)")]
    NonUtf8Name { path: PathBuf },
    #[error("{path}: not a regular file or directory (symlinks and devices are not imported)")]
    Unsupported { path: PathBuf },
    #[error("{path}: {reason}")]
    Directory { path: PathBuf, reason: String },
    #[error("storing a block of {path}: {reason}")]
    Store { path: PathBuf, reason: String },
}

/// Where imported blocks go: the store, or nowhere (`--only-hash`).
pub trait BlockSink {
    fn put_block(
        &self,
        block: Block,
    ) -> impl std::future::Future<Output = Result<(), String>> + Send;
}

/// Discards blocks: computes CIDs only.
pub struct OnlyHash;

impl BlockSink for OnlyHash {
    async fn put_block(&self, _block: Block) -> Result<(), String> {
        Ok(())
    }
}

impl<S: ipfm_store::Blockstore + Sync> BlockSink for S {
    async fn put_block(&self, block: Block) -> Result<(), String> {
        self.put(&block.cid, block.data)
            .await
            .map_err(|e| e.to_string())
    }
}

/// Progress callback: called with the number of file bytes just read.
pub type Progress<'a> = &'a (dyn Fn(u64) + Sync);

/// Total bytes of regular files under `path` (for a progress bar), honouring `hidden`.
pub fn total_size(path: &Path, hidden: bool) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if meta.is_file() {
        return meta.len();
    }
    if !meta.is_dir() {
        return 0;
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| hidden || !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| total_size(&e.path(), hidden))
        .sum()
}

/// Import `path` (file or directory, recursively) into `sink`; returns every entry added,
/// children before parents, the argument itself last.
pub async fn add_path(
    sink: &impl BlockSink,
    path: &Path,
    options: ImportOptions,
    progress: Progress<'_>,
) -> Result<Vec<Added>, ImportError> {
    let name = match path.file_name() {
        Some(n) => n
            .to_str()
            .ok_or_else(|| ImportError::NonUtf8Name { path: path.into() })?
            .to_owned(),
        // `ipfm add .` or `/`: name it after the canonical path, like Kubo does.
        None => std::fs::canonicalize(path)
            .ok()
            .and_then(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_owned))
            .unwrap_or_default(),
    };
    let mut added = Vec::new();
    add_entry(sink, path, name, options, progress, &mut added).await?;
    Ok(added)
}

async fn add_entry(
    sink: &impl BlockSink,
    path: &Path,
    name: String,
    options: ImportOptions,
    progress: Progress<'_>,
    added: &mut Vec<Added>,
) -> Result<(), ImportError> {
    let meta = tokio::fs::symlink_metadata(path)
        .await
        .map_err(|source| ImportError::Io {
            path: path.into(),
            source,
        })?;
    if meta.is_file() {
        let entry = add_file(sink, path, name, options.mode, progress).await?;
        added.push(entry);
        return Ok(());
    }
    if !meta.is_dir() {
        return Err(ImportError::Unsupported { path: path.into() });
    }
    let mut children = Vec::new();
    let mut dir = tokio::fs::read_dir(path)
        .await
        .map_err(|source| ImportError::Io {
            path: path.into(),
            source,
        })?;
    while let Some(entry) = dir.next_entry().await.map_err(|source| ImportError::Io {
        path: path.into(),
        source,
    })? {
        let child_path = entry.path();
        let child_name = entry
            .file_name()
            .into_string()
            .map_err(|_| ImportError::NonUtf8Name {
                path: child_path.clone(),
            })?;
        if !options.hidden && child_name.starts_with('.') {
            continue;
        }
        children.push((child_name, child_path));
    }
    children.sort();
    let mut builder = DirectoryBuilder::new(options.mode);
    for (child_name, child_path) in children {
        let before = added.len();
        let full_name = if name.is_empty() {
            child_name.clone()
        } else {
            format!("{name}/{child_name}")
        };
        Box::pin(add_entry(
            sink,
            &child_path,
            full_name,
            options,
            progress,
            added,
        ))
        .await?;
        let child = added
            .get(before..)
            .and_then(|a| a.last())
            .expect("add_entry pushes the entry itself last");
        builder
            .add(&child_name, child.cid, child.tsize)
            .map_err(|e| ImportError::Directory {
                path: child_path.clone(),
                reason: e.to_string(),
            })?;
    }
    let (root, block) = builder.finish();
    put(sink, block, path).await?;
    added.push(Added {
        cid: root.cid,
        name,
        size: 0,
        tsize: root.tsize,
        is_dir: true,
    });
    Ok(())
}

/// Store one block, naming the file it belongs to if that fails.
async fn put(sink: &impl BlockSink, block: Block, path: &Path) -> Result<(), ImportError> {
    sink.put_block(block)
        .await
        .map_err(|reason| ImportError::Store {
            path: path.into(),
            reason,
        })
}

async fn add_file(
    sink: &impl BlockSink,
    path: &Path,
    name: String,
    mode: CidMode,
    progress: Progress<'_>,
) -> Result<Added, ImportError> {
    let io_err = |source| ImportError::Io {
        path: path.into(),
        source,
    };
    let mut file = tokio::fs::File::open(path).await.map_err(io_err)?;
    let mut builder = FileBuilder::new(mode);
    let mut buf = vec![0u8; ipfm_protocol::builder::CHUNK_SIZE];
    loop {
        let n = file.read(&mut buf).await.map_err(io_err)?;
        if n == 0 {
            break;
        }
        progress(n as u64);
        for block in builder.write(&buf[..n]) {
            put(sink, block, path).await?;
        }
    }
    let (root, blocks) = builder.finish();
    for block in blocks {
        put(sink, block, path).await?;
    }
    Ok(Added {
        cid: root.cid,
        name,
        size: root.size,
        tsize: root.tsize,
        is_dir: false,
    })
}
