//! `/ipns/` names: resolution through the `NameResolver`, record values, cache lifetimes,
//! and `format=ipns-record` responses.

use std::time::SystemTime;

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::Response;
use cid::Cid;
use ipfm_protocol::cid::{IDENTITY, SHA2_256};
use ipfm_protocol::ipns::IpnsRecord;
use ipfm_protocol::peer::PeerId;
use sha2::{Digest, Sha256};

use super::error::{GatewayError, Result};
use super::handler::Request;
use super::negotiate::{content_location, Format, Negotiated, IPNS_RECORD_TYPE};
use super::path::{ContentPath, Namespace};
use super::respond::{content_disposition, empty, hex_prefix, not_modified, put, X_IPFS_PATH};
use super::Gateway;

pub(super) fn parse_cid(text: &str) -> Result<Cid> {
    let cid = Cid::try_from(text)
        .map_err(|e| GatewayError::bad_request(format!("invalid CID {text:?}: {e}")))?;
    match cid.hash().code() {
        SHA2_256 | IDENTITY => Ok(cid),
        code => Err(GatewayError::bad_request(format!(
            "CID {text} uses multihash {code:#x}; this gateway verifies sha2-256 only"
        ))),
    }
}

/// The validated current record of an `/ipns/` name.
pub(super) async fn resolve_name<S>(
    gateway: &Gateway<S>,
    name: &str,
) -> Result<(PeerId, IpnsRecord)> {
    if name.contains('.') {
        return Err(GatewayError::bad_request(format!(
            "{name:?} looks like a DNSLink domain, which this gateway does not resolve; \
             /ipns/ takes a key name (k51… or 12D3KooW…)"
        )));
    }
    let peer = PeerId::parse(name)
        .map_err(|e| GatewayError::bad_request(format!("invalid IPNS name {name:?}: {e}")))?;
    let record = gateway
        .names
        .resolve(&peer)
        .await
        .ok_or_else(|| GatewayError::NameNotFound(name.to_owned()))?;
    gateway
        .validated
        .validate(&peer, &record, SystemTime::now())
        .map_err(|e| GatewayError::BadRecord {
            name: name.to_owned(),
            detail: e.to_string(),
        })?;
    Ok((peer, record))
}

/// The `/ipfs/<cid>[/path]` a record points at.
pub(super) fn record_target(name: &str, record: &IpnsRecord) -> Result<(Cid, Vec<String>)> {
    let bad = |detail: String| GatewayError::BadRecord {
        name: name.to_owned(),
        detail,
    };
    let value = record
        .value_str()
        .ok_or_else(|| bad("value is not UTF-8".into()))?;
    let Some(rest) = value.strip_prefix("/ipfs/") else {
        return Err(bad(format!(
            "value {value:?} is not an /ipfs/ path (recursive IPNS is not supported)"
        )));
    };
    let mut parts = rest.split('/');
    let cid_text = parts.next().unwrap_or_default();
    let cid = Cid::try_from(cid_text).map_err(|e| bad(format!("value {value:?}: {e}")))?;
    let segments = parts.filter(|s| !s.is_empty()).map(str::to_owned).collect();
    Ok((cid, segments))
}

/// Seconds a cache may keep what a record resolves to: its TTL, but never past its EOL.
pub(super) fn record_max_age(record: &IpnsRecord, now: SystemTime) -> u64 {
    let until_eol = record
        .eol()
        .ok()
        .and_then(|eol| eol.duration_since(now).ok())
        .unwrap_or_default();
    record.ttl().min(until_eol).as_secs()
}

pub(super) async fn serve_ipns_record<S>(
    gateway: &Gateway<S>,
    request: &Request<'_>,
    content_path: &ContentPath,
    negotiated: &Negotiated,
) -> Result<Response> {
    if content_path.namespace != Namespace::Ipns {
        return Err(GatewayError::bad_request(
            "format=ipns-record needs an /ipns/<name> path",
        ));
    }
    if !content_path.segments.is_empty() {
        return Err(GatewayError::bad_request(
            "format=ipns-record needs a bare /ipns/<name>, without a path after the name",
        ));
    }
    let name = &content_path.root;
    let (_, record) = resolve_name(gateway, name).await?;
    let bytes = record.to_bytes();
    let digest = Sha256::digest(&bytes);
    let etag = format!("\"{}\"", hex_prefix(&digest, 16));
    let max_age = record_max_age(&record, SystemTime::now());
    let cache_control = (max_age > 0).then(|| format!("public, max-age={max_age}"));
    if let Some(response) = not_modified(request, &etag, cache_control.as_deref()) {
        return Ok(response);
    }
    let mut response = empty(StatusCode::OK);
    let h = response.headers_mut();
    put(h, header::ETAG, &etag);
    if let Some(cache_control) = &cache_control {
        put(h, header::CACHE_CONTROL, cache_control);
    }
    put(h, header::CONTENT_TYPE, IPNS_RECORD_TYPE);
    put(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    let filename = request
        .query
        .get("filename")
        .filter(|f| !f.is_empty())
        .map_or_else(|| format!("{name}.ipns-record"), str::to_owned);
    put(
        h,
        header::CONTENT_DISPOSITION,
        &content_disposition("attachment", &filename),
    );
    put(h, header::CONTENT_LENGTH, &bytes.len().to_string());
    put(h, X_IPFS_PATH, request.raw_path);
    if negotiated.by_accept_only {
        put(
            h,
            header::CONTENT_LOCATION,
            &content_location(request, Format::IpnsRecord),
        );
    }
    if !request.head {
        *response.body_mut() = Body::from(bytes);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use std::time::Duration;

    #[test]
    fn max_age_is_the_ttl_capped_by_the_eol() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let now = SystemTime::now();
        let long = IpnsRecord::create(
            &key,
            "/ipfs/bafkqaaa",
            1,
            now + Duration::from_secs(3600),
            Duration::from_secs(300),
        );
        assert_eq!(record_max_age(&long, now), 300);
        let short = IpnsRecord::create(
            &key,
            "/ipfs/bafkqaaa",
            1,
            now + Duration::from_secs(100),
            Duration::from_secs(300),
        );
        assert!((98..=100).contains(&record_max_age(&short, now)));
        assert_eq!(record_max_age(&short, now + Duration::from_secs(200)), 0);
    }

    #[test]
    fn record_targets() {
        let key = SigningKey::from_bytes(&[4; 32]);
        let eol = SystemTime::now() + Duration::from_secs(60);
        let ttl = Duration::from_secs(1);
        let with_path = IpnsRecord::create(&key, "/ipfs/bafkqaaa/a/b c", 1, eol, ttl);
        let (cid, segments) = record_target("n", &with_path).unwrap();
        assert_eq!(cid.to_string(), "bafkqaaa");
        assert_eq!(segments, vec!["a", "b c"]);
        let recursive = IpnsRecord::create(&key, "/ipns/k51abc", 1, eol, ttl);
        assert!(matches!(
            record_target("n", &recursive),
            Err(GatewayError::BadRecord { .. })
        ));
    }
}
