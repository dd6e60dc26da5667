//! Response-format negotiation (`?format=` and `Accept`, IPIP-523) and the query string.

use axum::http::{header, HeaderMap};

use super::car::{CarParams, EntityBytes, Scope};
use super::error::{GatewayError, Result};
use super::handler::Request;
use super::path;

pub(super) const RAW_TYPE: &str = "application/vnd.ipld.raw";
pub(super) const IPNS_RECORD_TYPE: &str = "application/vnd.ipfs.ipns-record";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    /// Deserialized UnixFS (the default).
    Web,
    Raw,
    Car,
    IpnsRecord,
}

impl Format {
    pub(super) fn from_param(value: &str) -> Option<Format> {
        match value {
            "raw" => Some(Format::Raw),
            "car" => Some(Format::Car),
            "ipns-record" => Some(Format::IpnsRecord),
            _ => None,
        }
    }

    pub(super) fn from_media_type(media: &str) -> Option<Format> {
        match media {
            RAW_TYPE => Some(Format::Raw),
            "application/vnd.ipld.car" => Some(Format::Car),
            IPNS_RECORD_TYPE => Some(Format::IpnsRecord),
            _ => None,
        }
    }

    pub(super) fn param(self) -> &'static str {
        match self {
            Format::Web => "",
            Format::Raw => "raw",
            Format::Car => "car",
            Format::IpnsRecord => "ipns-record",
        }
    }
}

pub(super) struct Negotiated {
    pub(super) format: Format,
    /// Parameters of the matching `Accept` entry (`version`, `order`, `dups` for CAR).
    pub(super) accept_params: Vec<(String, String)>,
    /// Chosen by `Accept` alone: the response then names its `?format=` URL in
    /// `Content-Location`, so HTTP caches keep the variants apart.
    pub(super) by_accept_only: bool,
}

/// `?format=` wins over `Accept` (IPIP-523); in `Accept`, the first IPFS-specific media type
/// counts, as in boxo. Generic types (`text/html`, `*/*`) mean the default response.
pub(super) fn negotiate(query: &Query, headers: &HeaderMap) -> Result<Negotiated> {
    let from_query = match query.get("format") {
        None | Some("") => None,
        Some(value) => Some(Format::from_param(value).ok_or_else(|| {
            GatewayError::bad_request(format!(
                "unsupported format {value:?}: this gateway serves format=raw, format=car \
                 and format=ipns-record"
            ))
        })?),
    };
    let mut accepted = None;
    'values: for value in headers.get_all(header::ACCEPT) {
        let Ok(text) = value.to_str() else { continue };
        for item in text.split(',') {
            let mut parts = item.split(';');
            let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let ipfs_specific = media.starts_with("application/vnd.ipld.")
                || media.starts_with("application/vnd.ipfs.")
                || media == "application/x-tar";
            if !ipfs_specific {
                continue;
            }
            match Format::from_media_type(&media) {
                Some(format) => {
                    let params = parts
                        .filter_map(|p| p.split_once('='))
                        .map(|(k, v)| {
                            (
                                k.trim().to_ascii_lowercase(),
                                v.trim().trim_matches('"').to_owned(),
                            )
                        })
                        .collect();
                    accepted = Some((format, params));
                }
                None if from_query.is_none() => {
                    return Err(GatewayError::bad_request(format!(
                        "unsupported response type {media:?} in Accept: this gateway serves \
                         application/vnd.ipld.raw, application/vnd.ipld.car and \
                         application/vnd.ipfs.ipns-record"
                    )))
                }
                None => {}
            }
            break 'values;
        }
    }
    Ok(match (from_query, accepted) {
        (Some(format), Some((accepted, params))) if format == accepted => Negotiated {
            format,
            accept_params: params,
            by_accept_only: false,
        },
        (Some(format), _) => Negotiated {
            format,
            accept_params: Vec::new(),
            by_accept_only: false,
        },
        (None, Some((format, params))) => Negotiated {
            format,
            accept_params: params,
            by_accept_only: true,
        },
        (None, None) => Negotiated {
            format: Format::Web,
            accept_params: Vec::new(),
            by_accept_only: false,
        },
    })
}

pub(super) fn car_params(query: &Query, accept: &[(String, String)]) -> Result<CarParams> {
    // URL parameters take precedence over Accept parameters (IPIP-523).
    let param = |query_key: &str, accept_key: &str| -> String {
        query
            .get(query_key)
            .filter(|v| !v.is_empty())
            .or_else(|| {
                accept
                    .iter()
                    .find(|(k, _)| k == accept_key)
                    .map(|(_, v)| v.as_str())
            })
            .unwrap_or_default()
            .to_owned()
    };
    let version = param("car-version", "version");
    if !matches!(version.as_str(), "" | "1") {
        return Err(GatewayError::bad_request(format!(
            "unsupported CAR version {version:?}: only version=1 is supported"
        )));
    }
    let order = param("car-order", "order");
    if !matches!(order.as_str(), "" | "dfs" | "unk") {
        return Err(GatewayError::bad_request(format!(
            "unsupported CAR order {order:?}: only order=dfs is supported"
        )));
    }
    let dups = match param("car-dups", "dups").as_str() {
        "" | "n" => false,
        "y" => true,
        other => {
            return Err(GatewayError::bad_request(format!(
                "invalid CAR dups {other:?}: expected y or n"
            )))
        }
    };
    let mut scope = match query.get("dag-scope") {
        None => Scope::All,
        Some(text) => Scope::parse(text).ok_or_else(|| {
            GatewayError::bad_request(format!(
                "invalid dag-scope {text:?}: expected block, entity or all"
            ))
        })?,
    };
    let entity_bytes = match query.get("entity-bytes") {
        None => None,
        Some(text) => {
            // entity-bytes implies dag-scope=entity.
            scope = Scope::Entity;
            Some(EntityBytes::parse(text).ok_or_else(|| {
                GatewayError::bad_request(format!(
                    "invalid entity-bytes {text:?}: expected from:to, e.g. 0:1023, -1024:* or 10:-10"
                ))
            })?)
        }
    };
    Ok(CarParams {
        scope,
        dups,
        entity_bytes,
    })
}

pub(super) fn content_location(request: &Request<'_>, format: Format) -> String {
    let mut location = format!("{}?", request.raw_path);
    if let Some(query) = request.raw_query.filter(|q| !q.is_empty()) {
        location.push_str(query);
        location.push('&');
    }
    location.push_str("format=");
    location.push_str(format.param());
    location
}

pub(super) struct Query {
    pub(super) pairs: Vec<(String, String)>,
}

impl Query {
    pub(super) fn parse(raw: Option<&str>) -> Query {
        let pairs = raw
            .unwrap_or_default()
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                (path::decode_query(key), path::decode_query(value))
            })
            .collect();
        Query { pairs }
    }

    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}
