//! The one error type of the store: every variant names the operation that failed.

use std::path::PathBuf;

use cid::Cid;
use ipfm_protocol::cid::CidError;

use crate::keyfile::KeyFileError;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `put` was given bytes that do not hash to the CID (or a CID we cannot check).
    /// Boxed because CIDs are large and this error travels in every `Result`.
    #[error("refusing to store block {cid}: {source}")]
    InvalidBlock {
        cid: Box<Cid>,
        #[source]
        source: Box<CidError>,
    },
    /// The database could not be opened (missing permissions, locked by another process,
    /// unrecoverable corruption).
    #[error("cannot open the store at {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },
    /// A read, write or flush of the database failed.
    #[error("database error while {op}: {source}")]
    Database {
        op: &'static str,
        #[source]
        source: sled::Error,
    },
    /// A block file could not be created, written, read, renamed, synced or removed.
    #[error("file system error while {op} ({path}): {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A value in the database does not have the shape this crate writes.
    #[error("corrupt {what} in the store: {detail}")]
    Corrupt { what: &'static str, detail: String },
    /// A key file could not be read, parsed or written.
    #[error("key file {path}: {source}")]
    KeyFile {
        path: PathBuf,
        #[source]
        source: KeyFileError,
    },
    /// `import_key` found a different station key already stored; replacing it would
    /// change the station's peer id and IPNS name.
    #[error(
        "the store already holds a different station key (peer identity); refusing to replace it"
    )]
    KeyExists,
    /// A setting of the store (e.g. the page cache size from the environment) is invalid.
    #[error("invalid {name}: {detail}")]
    InvalidSetting { name: &'static str, detail: String },
    /// `export_key` was called before the station key was created.
    #[error("the store holds no station key yet")]
    NoKey,
    /// The IPNS sequence reached `u64::MAX`; no higher record can ever be published.
    #[error("IPNS sequence exhausted (u64::MAX reached)")]
    SequenceExhausted,
    /// A blocking database task panicked or was cancelled.
    #[error("blocking store task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl StoreError {
    pub(crate) fn invalid_block(cid: &Cid) -> impl FnOnce(CidError) -> StoreError + '_ {
        move |source| StoreError::InvalidBlock {
            cid: Box::new(*cid),
            source: Box::new(source),
        }
    }

    /// Wrap an I/O error with the operation it interrupted and the path it was about.
    pub(crate) fn io(
        op: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> StoreError {
        let path = path.to_path_buf();
        move |source| StoreError::Io { op, path, source }
    }

    /// Wrap a sled error with the operation it interrupted.
    pub(crate) fn db(op: &'static str) -> impl FnOnce(sled::Error) -> StoreError {
        move |source| StoreError::Database { op, source }
    }
}

/// Result of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
