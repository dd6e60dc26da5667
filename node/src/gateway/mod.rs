//! The HTTP gateway: IPFS content from the local store over HTTP, following the path
//! gateway and trustless gateway specs (specs.ipfs.tech/http-gateways) as boxo implements
//! them.
//!
//! - `GET|HEAD /ipfs/<cid>[/path…]`: UnixFS files (streamed leaf by leaf, `Range`
//!   supported), directories (`index.html`, else a generated listing; a directory URL
//!   without a trailing slash is redirected to the slash form so relative links work), raw
//!   blocks as files.
//! - `GET|HEAD /ipns/<name>[/path…]`: `<name>` (`k51…` or `12D3KooW…`) resolved through the
//!   [`NameResolver`]; the record's value must be `/ipfs/<cid>[/path]`.
//! - Trustless responses via `?format=` or `Accept:`: `raw` (one block), `car` (CAR v1,
//!   depth-first, no duplicates unless `dups=y`; `dag-scope` and `entity-bytes`
//!   supported), `ipns-record`.
//! - `/` redirects to [`GatewayConfig::root_redirect`] (the station's player).
//!
//! Blocks missing from the store are asked of the [`BlockFetcher`] (none by default; the
//! network layer plugs bitswap in there). Every block is verified against its CID.

mod blocks;
mod body;
mod car;
mod content_type;
mod error;
mod file;
mod handler;
mod ipns;
mod listing;
mod names;
mod negotiate;
mod path;
mod range;
mod resolve;
mod respond;

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;

use axum::routing::any;
use axum::Router;
use cid::Cid;
use ipfm_protocol::ipns::IpnsRecord;
use ipfm_protocol::peer::PeerId;
use ipfm_store::Blockstore;
use tokio::net::TcpListener;

pub use error::GatewayError;
pub use names::LocalNames;

use blocks::Blocks;
use names::ValidationCache;

/// A boxed, `Send` future: what the hook traits return, so they stay object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Resolves IPNS names to their current record.
///
/// The station registers its own records ([`LocalNames`]); the network layer adds remote
/// resolution later. The gateway validates whatever record it gets (signature, name, EOL)
/// before using it.
pub trait NameResolver: Send + Sync + 'static {
    /// The best known record for `name`, if any.
    fn resolve<'a>(&'a self, name: &'a PeerId) -> BoxFuture<'a, Option<IpnsRecord>>;
}

/// Fetches blocks the local store lacks (bitswap, later).
///
/// The gateway verifies the bytes against the CID and does not store them: a fetcher that
/// wants to cache blocks puts them into the store itself.
pub trait BlockFetcher: Send + Sync + 'static {
    /// The bytes of block `cid`, or `None` if it cannot be had.
    fn fetch<'a>(&'a self, cid: &'a Cid) -> BoxFuture<'a, Option<Vec<u8>>>;
}

/// The default [`BlockFetcher`]: serves from the local store only.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoFetcher;

impl BlockFetcher for NoFetcher {
    fn fetch<'a>(&'a self, _cid: &'a Cid) -> BoxFuture<'a, Option<Vec<u8>>> {
        Box::pin(async { None })
    }
}

/// Gateway settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GatewayConfig {
    /// Where `GET /` redirects (e.g. `/ipns/k51…/`, the station's player); `None` = 404.
    pub root_redirect: Option<String>,
    /// Re-hash blocks read from the local store before serving them (Kubo's
    /// `Datastore.HashOnRead`, off by default there too). The store verified every block
    /// when it was put and sled checksums what it reads back, so this only guards against
    /// corruption those miss, at the cost of hashing every byte served (a SHA-256 of a
    /// segment costs about as much as the rest of the request). Blocks from the network
    /// are always verified.
    pub hash_on_read: bool,
}

/// A gateway over block store `S`; turn it into an axum [`Router`] with [`Gateway::router`].
pub struct Gateway<S> {
    blocks: Blocks<S>,
    names: Arc<dyn NameResolver>,
    validated: ValidationCache,
    config: GatewayConfig,
}

impl<S> Gateway<S>
where
    S: Blockstore + Clone + Send + Sync + 'static,
{
    /// A gateway serving `store`, with no names, no fetcher and no `/` redirect.
    pub fn new(store: S) -> Self {
        Gateway {
            blocks: Blocks {
                store,
                fetcher: Arc::new(NoFetcher),
                hash_on_read: false,
            },
            names: Arc::new(LocalNames::new()),
            validated: ValidationCache::default(),
            config: GatewayConfig::default(),
        }
    }

    /// Resolve `/ipns/` names with `names`.
    pub fn with_name_resolver(mut self, names: Arc<dyn NameResolver>) -> Self {
        self.names = names;
        self
    }

    /// Ask `fetcher` for blocks the store lacks.
    pub fn with_block_fetcher(mut self, fetcher: Arc<dyn BlockFetcher>) -> Self {
        self.blocks.fetcher = fetcher;
        self
    }

    /// Use `config`.
    pub fn with_config(mut self, config: GatewayConfig) -> Self {
        self.blocks.hash_on_read = config.hash_on_read;
        self.config = config;
        self
    }

    /// The routes: `/`, `/ipfs/…`, `/ipns/…` (all methods; GET, HEAD and OPTIONS are
    /// served, others get 405). Other routes (API, metrics) can be merged alongside.
    pub fn router(self) -> Router {
        router(self)
    }
}

/// The gateway's routes; same as [`Gateway::router`].
pub fn router<S>(gateway: Gateway<S>) -> Router
where
    S: Blockstore + Clone + Send + Sync + 'static,
{
    let shared = Arc::new(gateway);
    Router::new()
        .route("/", any(handler::root::<S>))
        .route("/ipfs", any(handler::content::<S>))
        .route("/ipns", any(handler::content::<S>))
        .route("/ipfs/", any(handler::content::<S>))
        .route("/ipns/", any(handler::content::<S>))
        .route("/ipfs/{*rest}", any(handler::content::<S>))
        .route("/ipns/{*rest}", any(handler::content::<S>))
        .with_state(shared)
}

/// The bytes of the UnixFS file at `path` (one element per directory level) under `root`,
/// from `store` only, resolved and read exactly like a gateway request (every size checked
/// against its parent's declaration). A file over `max_len` bytes is refused before any of
/// it is read, so a hostile DAG cannot make the caller allocate what it declares.
pub async fn read_file_at<S>(
    store: S,
    root: Cid,
    path: &[String],
    max_len: u64,
) -> Result<Vec<u8>, GatewayError>
where
    S: Blockstore + Clone + Send + Sync + 'static,
{
    let blocks = Blocks {
        store,
        fetcher: Arc::new(NoFetcher),
        hash_on_read: false,
    };
    let resolved = resolve::resolve(&blocks, root, path).await?;
    match resolve::classify(&resolved.cid, &resolved.bytes)? {
        resolve::Node::File { size } if size <= max_len => {
            file::read_prefix(&blocks, resolved.cid, resolved.bytes, size).await
        }
        resolve::Node::File { size } => Err(GatewayError::BadRequest(format!(
            "/{} is {size} bytes, more than the {max_len} allowed",
            path.join("/")
        ))),
        _ => Err(GatewayError::NotFound(format!(
            "/{} under {root} is not a file",
            path.join("/")
        ))),
    }
}

/// Serve `router` on `listener` until `shutdown` completes, then stop accepting and wait
/// for the open connections to finish their responses.
///
/// A listener streaming a long response keeps the server alive after `shutdown`; callers
/// with a deadline wrap this future in `tokio::time::timeout`.
pub async fn serve<F>(listener: TcpListener, router: Router, shutdown: F) -> io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
