//! Request entry points: method dispatch, then for GET/HEAD the content path, the
//! response format, `/ipns/` resolution and path resolution, handed to `respond`.

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, Method, StatusCode, Uri};
use axum::response::Response;
use ipfm_store::Blockstore;

use super::error::{GatewayError, Result};
use super::ipns::{parse_cid, record_max_age, record_target, resolve_name, serve_ipns_record};
use super::negotiate::{car_params, content_location, negotiate, Format, Query};
use super::path::Namespace;
use super::resolve::resolve;
use super::respond::{empty, put, serve_car, serve_raw, serve_web, Freshness, Reply};
use super::{path, Gateway};

type Shared<S> = Arc<Gateway<S>>;

/// `GET /`: redirect to the configured default path.
pub(crate) async fn root<S>(State(gateway): State<Shared<S>>, method: Method) -> Response
where
    S: Blockstore + Clone + Send + Sync + 'static,
{
    let mut response = match method {
        Method::GET | Method::HEAD => match &gateway.config.root_redirect {
            Some(location) => {
                let mut response = empty(StatusCode::FOUND);
                put(response.headers_mut(), header::LOCATION, location);
                response
            }
            None => error_response(
                &GatewayError::NotFound("no default path is configured for /".into()),
                "/",
            ),
        },
        Method::OPTIONS => preflight(),
        _ => method_not_allowed(),
    };
    finish(&method, &mut response);
    response
}

/// Everything under `/ipfs` and `/ipns`.
pub(crate) async fn content<S>(
    State(gateway): State<Shared<S>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response
where
    S: Blockstore + Clone + Send + Sync + 'static,
{
    let mut response = match method {
        Method::GET | Method::HEAD => {
            let request = Request {
                head: method == Method::HEAD,
                raw_path: uri.path(),
                raw_query: uri.query(),
                query: Query::parse(uri.query()),
                headers: &headers,
            };
            match serve(&gateway, &request).await {
                Ok(response) => response,
                Err(error) => error_response(&error, uri.path()),
            }
        }
        Method::OPTIONS => preflight(),
        _ => method_not_allowed(),
    };
    finish(&method, &mut response);
    response
}

/// What a GET/HEAD asked for.
pub(super) struct Request<'a> {
    pub(super) head: bool,
    pub(super) raw_path: &'a str,
    pub(super) raw_query: Option<&'a str>,
    pub(super) query: Query,
    pub(super) headers: &'a HeaderMap,
}

impl Request<'_> {
    pub(super) fn header(&self, name: HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

async fn serve<S>(gateway: &Gateway<S>, request: &Request<'_>) -> Result<Response>
where
    S: Blockstore + Clone + Send + Sync + 'static,
{
    let content_path = path::parse(request.raw_path)?;
    let negotiated = negotiate(&request.query, request.headers)?;
    if negotiated.format == Format::IpnsRecord {
        return serve_ipns_record(gateway, request, &content_path, &negotiated).await;
    }

    let (root, segments, freshness) = match content_path.namespace {
        Namespace::Ipfs => (
            parse_cid(&content_path.root)?,
            content_path.segments.clone(),
            Freshness::Immutable,
        ),
        Namespace::Ipns => {
            let (_, record) = resolve_name(gateway, &content_path.root).await?;
            let (root, mut segments) = record_target(&content_path.root, &record)?;
            segments.extend(content_path.segments.iter().cloned());
            let freshness = Freshness::Mutable {
                max_age: record_max_age(&record, SystemTime::now()),
            };
            (root, segments, freshness)
        }
    };

    let only_if_cached = request
        .header(header::CACHE_CONTROL)
        .is_some_and(|v| v.to_ascii_lowercase().contains("only-if-cached"));
    if only_if_cached && !gateway.blocks.is_local(&root).await? {
        return Err(GatewayError::NotCached(root));
    }

    let resolved = resolve(&gateway.blocks, root, &segments).await?;
    let reply = Reply {
        request,
        roots: resolved.roots.clone(),
        freshness,
        content_location: negotiated
            .by_accept_only
            .then(|| content_location(request, negotiated.format)),
    };
    match negotiated.format {
        Format::Raw => serve_raw(&reply, resolved),
        Format::Car => {
            let params = car_params(&request.query, &negotiated.accept_params)?;
            serve_car(gateway, &reply, &segments, resolved, params)
        }
        // (ipns-record was answered above, before any resolution)
        Format::Web | Format::IpnsRecord => {
            serve_web(gateway, &reply, &content_path, &segments, resolved).await
        }
    }
}

fn error_response(error: &GatewayError, raw_path: &str) -> Response {
    let status = error.status();
    let message = error.to_string();
    if status.is_server_error() {
        tracing::warn!(%status, path = raw_path, "gateway request failed: {message}");
    } else {
        tracing::debug!(%status, path = raw_path, "gateway request refused: {message}");
    }
    let mut response = empty(status);
    let h = response.headers_mut();
    put(h, header::CONTENT_TYPE, "text/plain; charset=utf-8");
    put(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    let body = format!(
        "{} {}: {message}\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or_default()
    );
    *response.body_mut() = Body::from(body);
    response
}

fn preflight() -> Response {
    let mut response = empty(StatusCode::OK);
    put(response.headers_mut(), header::ALLOW, "GET, HEAD, OPTIONS");
    response
}

fn method_not_allowed() -> Response {
    let mut response = empty(StatusCode::METHOD_NOT_ALLOWED);
    let h = response.headers_mut();
    put(h, header::ALLOW, "GET, HEAD, OPTIONS");
    put(h, header::CONTENT_TYPE, "text/plain; charset=utf-8");
    *response.body_mut() = Body::from("405 Method Not Allowed: the gateway is read-only\n");
    response
}

/// CORS on every response (the content is public and the player may be served from another
/// origin), and no body on HEAD.
fn finish(method: &Method, response: &mut Response) {
    let h = response.headers_mut();
    put(h, header::ACCESS_CONTROL_ALLOW_ORIGIN, "*");
    put(
        h,
        header::ACCESS_CONTROL_ALLOW_METHODS,
        "GET, HEAD, OPTIONS",
    );
    put(
        h,
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        "Content-Type, Range, User-Agent, X-Requested-With",
    );
    put(
        h,
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        "Content-Length, Content-Range, Content-Type, Etag, X-Ipfs-Path, X-Ipfs-Roots",
    );
    if *method == Method::HEAD {
        *response.body_mut() = Body::empty();
    }
}
