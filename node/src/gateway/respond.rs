//! Responses for resolved content: files (streamed, with `Range`), directories (redirect,
//! `index.html`, listing), raw blocks and CARs, with the caching headers of the spec.

use std::time::SystemTime;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use cid::Cid;
use ipfm_protocol::cid::RAW;
use ipfm_store::Blockstore;
use sha2::{Digest, Sha256};

use super::body::spawn_body;
use super::car::{byte_window, write_car, CarParams, Scope};
use super::content_type::{by_extension, sniff, SNIFF_LEN};
use super::error::Result;
use super::file::{read_prefix, write_range};
use super::handler::Request;
use super::negotiate::RAW_TYPE;
use super::path::{encode_segment, ContentPath};
use super::range::{etag_matches, RangeRequest};
use super::resolve::{classify, Node, Resolved};
use super::{listing, range, Gateway};

/// `Cache-Control` of immutable content (path gateway spec).
pub(super) const IMMUTABLE: &str = "public, max-age=29030400, immutable";
/// Generated listings may change with the gateway version, so even on `/ipfs/` they get
/// a bounded lifetime (one week, stale for a month), as boxo does.
pub(super) const LISTING_MAX_AGE: u64 = 604_800;
pub(super) const LISTING_STALE: &str = "stale-while-revalidate=2678400";

pub(super) const X_IPFS_PATH: HeaderName = HeaderName::from_static("x-ipfs-path");
pub(super) const X_IPFS_ROOTS: HeaderName = HeaderName::from_static("x-ipfs-roots");

/// How long caches may keep a response.
#[derive(Debug, Clone, Copy)]
pub(super) enum Freshness {
    /// `/ipfs/`: forever.
    Immutable,
    /// `/ipns/`: the record's remaining TTL.
    Mutable { max_age: u64 },
}

impl Freshness {
    pub(super) fn content(self) -> Option<String> {
        match self {
            Freshness::Immutable => Some(IMMUTABLE.to_owned()),
            Freshness::Mutable { max_age: 0 } => None,
            Freshness::Mutable { max_age } => Some(format!("public, max-age={max_age}")),
        }
    }

    pub(super) fn listing(self) -> Option<String> {
        match self {
            Freshness::Immutable => Some(format!(
                "public, max-age={LISTING_MAX_AGE}, {LISTING_STALE}"
            )),
            Freshness::Mutable { max_age: 0 } => None,
            Freshness::Mutable { max_age } => {
                Some(format!("public, max-age={max_age}, {LISTING_STALE}"))
            }
        }
    }
}

/// Shared state of one content response.
pub(super) struct Reply<'a> {
    pub(super) request: &'a Request<'a>,
    pub(super) roots: Vec<Cid>,
    pub(super) freshness: Freshness,
    pub(super) content_location: Option<String>,
}

impl Reply<'_> {
    /// An empty response with the headers every content response carries.
    pub(super) fn start(
        &self,
        status: StatusCode,
        etag: &str,
        cache_control: Option<&str>,
    ) -> Response {
        let mut response = empty(status);
        let h = response.headers_mut();
        put(h, header::ETAG, etag);
        if let Some(cache_control) = cache_control {
            put(h, header::CACHE_CONTROL, cache_control);
        }
        if let Freshness::Mutable { .. } = self.freshness {
            // The spec asks for the time of resolution on /ipns/ responses.
            put(
                h,
                header::LAST_MODIFIED,
                &httpdate::fmt_http_date(SystemTime::now()),
            );
        }
        put(h, X_IPFS_PATH, self.request.raw_path);
        let roots: Vec<String> = self.roots.iter().map(Cid::to_string).collect();
        put(h, X_IPFS_ROOTS, &roots.join(","));
        if let Some(location) = &self.content_location {
            put(h, header::CONTENT_LOCATION, location);
        }
        response
    }

    pub(super) fn not_modified(&self, etag: &str, cache_control: Option<&str>) -> Option<Response> {
        not_modified(self.request, etag, cache_control)
    }
}

pub(super) fn serve_raw(reply: &Reply<'_>, resolved: Resolved) -> Result<Response> {
    let cid = resolved.cid;
    let etag = format!("\"{cid}.raw\"");
    let cache_control = reply.freshness.content();
    if let Some(response) = reply.not_modified(&etag, cache_control.as_deref()) {
        return Ok(response);
    }
    let filename = reply
        .request
        .query
        .get("filename")
        .filter(|f| !f.is_empty())
        .map_or_else(|| format!("{cid}.bin"), str::to_owned);
    let mut response = reply.start(StatusCode::OK, &etag, cache_control.as_deref());
    let h = response.headers_mut();
    put(h, header::CONTENT_TYPE, RAW_TYPE);
    put(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    put(
        h,
        header::CONTENT_DISPOSITION,
        &content_disposition("attachment", &filename),
    );
    let bytes = Bytes::from(resolved.bytes);
    let size = bytes.len() as u64;
    Ok(ranged(
        reply.request,
        response,
        &etag,
        size,
        |start, end| {
            // Bounds are within the block, whose length fits in usize.
            Body::from(bytes.slice(start as usize..end as usize))
        },
    ))
}

pub(super) fn serve_car<S>(
    gateway: &Gateway<S>,
    reply: &Reply<'_>,
    segments: &[String],
    resolved: Resolved,
    params: CarParams,
) -> Result<Response>
where
    S: Blockstore + Clone + Send + Sync + 'static,
{
    let cid = resolved.cid;
    let window = byte_window(&params, &resolved)?;
    // The CAR depends on the path (its blocks come first) and on the parameters.
    let mut identity = format!("{}/{}", reply.roots[0], segments.join("/"));
    if params.scope != Scope::All {
        identity.push_str("\0scope=");
        identity.push_str(params.scope.as_str());
    }
    if params.dups {
        identity.push_str("\0dups=y");
    }
    if let Some(range) = params.entity_bytes {
        identity.push_str(&format!("\0range={range}"));
    }
    let etag = format!(
        "W/\"{cid}.car.{}\"",
        hex_prefix(&Sha256::digest(identity.as_bytes()), 16)
    );
    let cache_control = reply.freshness.content();
    if let Some(response) = reply.not_modified(&etag, cache_control.as_deref()) {
        return Ok(response);
    }
    let mut response = reply.start(StatusCode::OK, &etag, cache_control.as_deref());
    let h = response.headers_mut();
    put(h, header::CONTENT_TYPE, &params.content_type());
    put(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    // Partial CARs are asked for with dag-scope / entity-bytes, not byte ranges.
    put(h, header::ACCEPT_RANGES, "none");
    let filename = reply
        .request
        .query
        .get("filename")
        .filter(|f| !f.is_empty())
        .map_or_else(|| format!("{cid}.car"), str::to_owned);
    put(
        h,
        header::CONTENT_DISPOSITION,
        &content_disposition("attachment", &filename),
    );
    if !reply.request.head {
        let blocks = gateway.blocks.clone();
        *response.body_mut() = spawn_body(format!("CAR of {cid}"), move |mut sink| async move {
            write_car(&blocks, resolved, params, window, &mut sink).await
        });
    }
    Ok(response)
}

pub(super) async fn serve_web<S>(
    gateway: &Gateway<S>,
    reply: &Reply<'_>,
    content_path: &ContentPath,
    segments: &[String],
    resolved: Resolved,
) -> Result<Response>
where
    S: Blockstore + Clone + Send + Sync + 'static,
{
    let cid = resolved.cid;
    let etag = format!("\"{cid}\"");
    let listing_etag = format!("\"DirIndex-{}_CID-{cid}\"", listing::template_version());
    // Cheap check before any further I/O, against both variants (file or index.html, and
    // generated listing), as boxo does.
    if let Some(response) = reply.not_modified(&etag, reply.freshness.content().as_deref()) {
        return Ok(response);
    }
    if let Some(response) = reply.not_modified(&listing_etag, reply.freshness.listing().as_deref())
    {
        return Ok(response);
    }
    match classify(&cid, &resolved.bytes)? {
        Node::File { size } => {
            let name = segments.last().map(String::as_str);
            serve_file(gateway, reply, &etag, cid, resolved.bytes, size, name).await
        }
        Node::Symlink { target } => {
            let mut response =
                reply.start(StatusCode::OK, &etag, reply.freshness.content().as_deref());
            put(
                response.headers_mut(),
                header::CONTENT_TYPE,
                "inode/symlink",
            );
            set_body(reply.request, &mut response, Bytes::from(target));
            Ok(response)
        }
        Node::Directory { links } => {
            if !content_path.trailing_slash {
                return Ok(redirect_to_slash(reply.request));
            }
            if let Some(index) = links
                .iter()
                .find(|link| link.name.as_deref() == Some("index.html"))
            {
                let bytes = gateway.blocks.get(&index.hash).await?;
                if let Node::File { size } = classify(&index.hash, &bytes)? {
                    return serve_file(
                        gateway,
                        reply,
                        &etag,
                        index.hash,
                        bytes,
                        size,
                        Some("index.html"),
                    )
                    .await;
                }
            }
            let display_path = display_path(content_path);
            let page = listing::render(&display_path, &cid, &links, !segments.is_empty());
            let mut response = reply.start(
                StatusCode::OK,
                &listing_etag,
                reply.freshness.listing().as_deref(),
            );
            put(response.headers_mut(), header::CONTENT_TYPE, "text/html");
            set_body(reply.request, &mut response, Bytes::from(page));
            Ok(response)
        }
    }
}

/// A UnixFS file (or raw block) `file`, `size` bytes, with `Range` support.
pub(super) async fn serve_file<S>(
    gateway: &Gateway<S>,
    reply: &Reply<'_>,
    etag: &str,
    file: Cid,
    file_bytes: Vec<u8>,
    size: u64,
    name: Option<&str>,
) -> Result<Response>
where
    S: Blockstore + Clone + Send + Sync + 'static,
{
    let query = &reply.request.query;
    let filename = query.get("filename").filter(|f| !f.is_empty());
    let content_type = match filename.or(name).and_then(by_extension) {
        Some(known) => known,
        None if file.codec() == RAW => {
            sniff(&file_bytes[..file_bytes.len().min(SNIFF_LEN as usize)])
        }
        None => sniff(&read_prefix(&gateway.blocks, file, file_bytes.clone(), SNIFF_LEN).await?),
    };
    let mut response = reply.start(StatusCode::OK, etag, reply.freshness.content().as_deref());
    let h = response.headers_mut();
    put(h, header::CONTENT_TYPE, content_type);
    put(h, header::ACCEPT_RANGES, "bytes");
    if let Some(filename) = filename {
        let disposition = if query.get("download") == Some("true") {
            "attachment"
        } else {
            "inline"
        };
        put(
            h,
            header::CONTENT_DISPOSITION,
            &content_disposition(disposition, filename),
        );
    }
    let blocks = gateway.blocks.clone();
    Ok(ranged(
        reply.request,
        response,
        etag,
        size,
        move |start, end| {
            if file.codec() == RAW {
                // A single block: no walk needed.
                let bytes = Bytes::from(file_bytes);
                return Body::from(bytes.slice(start as usize..end as usize));
            }
            spawn_body(format!("file {file}"), move |mut sink| async move {
                write_range(&blocks, file, file_bytes, start, end, &mut sink).await
            })
        },
    ))
}

/// Finish `response` (status 200, headers set) for a representation of `size` bytes,
/// honouring a single `Range` (206 / 416); `body(start, end)` makes bytes `start..end`.
pub(super) fn ranged(
    request: &Request<'_>,
    mut response: Response,
    etag: &str,
    size: u64,
    body: impl FnOnce(u64, u64) -> Body,
) -> Response {
    let mut range = range::parse(request.header(header::RANGE), size);
    // If-Range: the range applies only if the client's copy is still current.
    if let Some(if_range) = request.header(header::IF_RANGE) {
        if if_range.trim() != etag {
            range = RangeRequest::Full;
        }
    }
    let (start, end) = match range {
        RangeRequest::Full => (0, size),
        RangeRequest::Partial { start, end } => {
            *response.status_mut() = StatusCode::PARTIAL_CONTENT;
            put(
                response.headers_mut(),
                header::CONTENT_RANGE,
                &format!("bytes {start}-{end}/{size}"),
            );
            (start, end + 1)
        }
        RangeRequest::Unsatisfiable => {
            *response.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
            let h = response.headers_mut();
            put(h, header::CONTENT_RANGE, &format!("bytes */{size}"));
            put(h, header::CONTENT_TYPE, "text/plain; charset=utf-8");
            let message = format!("416 Range Not Satisfiable: the content is {size} bytes\n");
            set_body(request, &mut response, Bytes::from(message));
            return response;
        }
    };
    put(
        response.headers_mut(),
        header::CONTENT_LENGTH,
        &(end - start).to_string(),
    );
    if !request.head && end > start {
        *response.body_mut() = body(start, end);
    }
    response
}

pub(super) fn redirect_to_slash(request: &Request<'_>) -> Response {
    let mut location = format!("{}/", request.raw_path);
    if let Some(query) = request.raw_query.filter(|q| !q.is_empty()) {
        location.push('?');
        location.push_str(query);
    }
    let mut response = empty(StatusCode::MOVED_PERMANENTLY);
    put(response.headers_mut(), header::LOCATION, &location);
    response
}

/// `/ipfs/<cid>/dir/` as people read it (decoded), for the listing's title.
pub(super) fn display_path(content_path: &ContentPath) -> String {
    let mut text = format!("{}{}/", content_path.namespace.prefix(), content_path.root);
    for segment in &content_path.segments {
        text.push_str(segment);
        text.push('/');
    }
    text
}

/// 304 if `If-None-Match` matches `etag`.
pub(super) fn not_modified(
    request: &Request<'_>,
    etag: &str,
    cache_control: Option<&str>,
) -> Option<Response> {
    let if_none_match = request.header(header::IF_NONE_MATCH)?;
    if !etag_matches(if_none_match, etag) {
        return None;
    }
    let mut response = empty(StatusCode::NOT_MODIFIED);
    let h = response.headers_mut();
    put(h, header::ETAG, etag);
    if let Some(cache_control) = cache_control {
        put(h, header::CACHE_CONTROL, cache_control);
    }
    Some(response)
}

/// `inline|attachment; filename="ascii"; filename*=UTF-8''percent-encoded` (RFC 6266).
pub(super) fn content_disposition(disposition: &str, filename: &str) -> String {
    let ascii: String = filename
        .chars()
        .map(|c| if c.is_ascii() { c } else { '_' })
        .collect();
    format!(
        "{disposition}; filename=\"{}\"; filename*=UTF-8''{}",
        encode_segment(&ascii),
        encode_segment(filename)
    )
}

pub(super) fn set_body(request: &Request<'_>, response: &mut Response, bytes: Bytes) {
    put(
        response.headers_mut(),
        header::CONTENT_LENGTH,
        &bytes.len().to_string(),
    );
    if !request.head {
        *response.body_mut() = Body::from(bytes);
    }
}

pub(super) fn empty(status: StatusCode) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

/// Set a header; every value this module builds is visible ASCII (paths arrive
/// percent-encoded, names are percent-encoded before they go into headers).
pub(super) fn put(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    match HeaderValue::from_str(value) {
        Ok(value) => {
            headers.insert(name, value);
        }
        Err(_) => tracing::warn!(%name, value, "dropping a header value that is not visible ASCII"),
    }
}

pub(super) fn hex_prefix(bytes: &[u8], chars: usize) -> String {
    bytes
        .iter()
        .flat_map(|b| [b >> 4, b & 0xf])
        .take(chars)
        .map(|nibble| char::from_digit(u32::from(nibble), 16).unwrap_or('0'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_disposition_has_ascii_and_utf8_names() {
        assert_eq!(
            content_disposition("inline", "testтест.pdf"),
            "inline; filename=\"test____.pdf\"; filename*=UTF-8''test%D1%82%D0%B5%D1%81%D1%82.pdf"
        );
    }
}
