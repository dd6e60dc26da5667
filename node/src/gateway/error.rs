//! Why a gateway request failed, and the HTTP status each reason maps to.
//!
//! Every error body is one line of plain text that names what was asked for and what went
//! wrong, so a listener debugging a broken stream with `curl` sees the cause directly.

use axum::http::StatusCode;
use cid::Cid;
use ipfm_store::StoreError;

/// A failed gateway request. `status()` picks the HTTP status; `Display` is the body.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The request itself is malformed: bad CID, bad name, bad path, bad parameter.
    #[error("{0}")]
    BadRequest(String),
    /// A block the request needs is neither stored nor fetchable.
    #[error("block {0} not found")]
    BlockNotFound(Cid),
    /// A path segment names no entry of the directory it is looked up in.
    #[error("no link named {name:?} under {parent}")]
    NoSuchLink { name: String, parent: Cid },
    /// Nothing is served at this path.
    #[error("{0}")]
    NotFound(String),
    /// The name has no known IPNS record.
    #[error("no IPNS record known for {0}")]
    NameNotFound(String),
    /// `Cache-Control: only-if-cached` and the root block is not stored locally.
    #[error("{0} is not in the local store (only-if-cached)")]
    NotCached(Cid),
    /// Valid content this gateway cannot render (HAMT shards, foreign codecs, …).
    #[error("{0}")]
    NotImplemented(String),
    /// A stored or fetched block does not hash to its CID, or decodes to nonsense.
    #[error("block {cid} is corrupt: {detail}")]
    Corrupt { cid: Cid, detail: String },
    /// The IPNS record for a name cannot be used.
    #[error("IPNS record for {name} is unusable: {detail}")]
    BadRecord { name: String, detail: String },
    /// The block store failed.
    #[error("block store error: {0}")]
    Store(#[from] StoreError),
}

impl GatewayError {
    pub fn status(&self) -> StatusCode {
        match self {
            GatewayError::BadRequest(_) => StatusCode::BAD_REQUEST,
            GatewayError::BlockNotFound(_)
            | GatewayError::NoSuchLink { .. }
            | GatewayError::NotFound(_)
            | GatewayError::NameNotFound(_) => StatusCode::NOT_FOUND,
            GatewayError::NotCached(_) => StatusCode::PRECONDITION_FAILED,
            GatewayError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            GatewayError::Corrupt { .. }
            | GatewayError::BadRecord { .. }
            | GatewayError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        GatewayError::BadRequest(message.into())
    }

    pub(crate) fn corrupt(cid: &Cid, detail: impl ToString) -> Self {
        GatewayError::Corrupt {
            cid: *cid,
            detail: detail.to_string(),
        }
    }
}

/// Result of gateway internals.
pub type Result<T, E = GatewayError> = std::result::Result<T, E>;
