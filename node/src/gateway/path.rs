//! Content paths as they arrive in request URIs: `/ipfs/<cid>[/seg…]` and
//! `/ipns/<name>[/seg…]`, percent-encoded. Segments are decoded to UTF-8 names, which is
//! what UnixFS directory links hold.

use super::error::{GatewayError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Namespace {
    Ipfs,
    Ipns,
}

impl Namespace {
    pub fn prefix(self) -> &'static str {
        match self {
            Namespace::Ipfs => "/ipfs/",
            Namespace::Ipns => "/ipns/",
        }
    }
}

/// A parsed request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContentPath {
    pub namespace: Namespace,
    /// The CID (`/ipfs/`) or name (`/ipns/`), decoded.
    pub root: String,
    /// Path segments after the root, decoded; empty segments (`a//b`) are dropped.
    pub segments: Vec<String>,
    /// Whether the URI path ended with `/` (directories are served only in that form).
    pub trailing_slash: bool,
}

/// Parse a raw (still percent-encoded) URI path under `/ipfs/` or `/ipns/`.
pub(crate) fn parse(raw_path: &str) -> Result<ContentPath> {
    let (namespace, rest) = if let Some(rest) = raw_path.strip_prefix("/ipfs") {
        (Namespace::Ipfs, rest)
    } else if let Some(rest) = raw_path.strip_prefix("/ipns") {
        (Namespace::Ipns, rest)
    } else {
        return Err(GatewayError::bad_request(format!(
            "path {raw_path:?} is not under /ipfs/ or /ipns/"
        )));
    };
    // "/ipfs" alone is a missing CID; "/ipfsx/…" is no content path at all.
    let rest = match rest.strip_prefix('/') {
        Some(rest) => rest,
        None if rest.is_empty() => "",
        None => {
            return Err(GatewayError::bad_request(format!(
                "path {raw_path:?} is not under /ipfs/ or /ipns/"
            )))
        }
    };
    let mut parts = rest.split('/');
    let root = decode_segment(parts.next().unwrap_or_default())?;
    if root.is_empty() {
        return Err(GatewayError::bad_request(match namespace {
            Namespace::Ipfs => "missing CID after /ipfs/",
            Namespace::Ipns => "missing name after /ipns/",
        }));
    }
    let mut segments = Vec::new();
    for part in parts {
        let name = decode_segment(part)?;
        match name.as_str() {
            "" | "." => {}
            ".." => {
                return Err(GatewayError::bad_request(
                    "path segment \"..\" is not allowed in content paths",
                ))
            }
            _ => segments.push(name),
        }
    }
    Ok(ContentPath {
        namespace,
        root,
        segments,
        trailing_slash: rest.contains('/') && rest.ends_with('/'),
    })
}

/// Percent-decode one path segment into a UTF-8 name.
fn decode_segment(raw: &str) -> Result<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    GatewayError::bad_request(format!("invalid percent-encoding in {raw:?}"))
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let name = String::from_utf8(out).map_err(|_| {
        GatewayError::bad_request(format!("path segment {raw:?} is not UTF-8 once decoded"))
    })?;
    if name.contains('/') {
        return Err(GatewayError::bad_request(format!(
            "path segment {raw:?} decodes to a name containing '/'"
        )));
    }
    Ok(name)
}

/// Decode a query-string key or value (`+` is a space; bad escapes are kept as they are,
/// invalid UTF-8 is replaced): query parameters only steer the response, so leniency is
/// harmless here.
pub(crate) fn decode_query(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], escaped) {
            (_, Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                i += 1;
            }
            (other, None) => {
                out.push(other);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encode a name for use as one URI path segment: everything but RFC 3986
/// unreserved characters is escaped, so the result is also safe inside HTML attributes
/// and HTTP headers.
pub(crate) fn encode_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for &b in name.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_unicode_and_spaces() {
        let path = parse("/ipfs/bafyabc/m%C3%BAsica/my%20song.mp3").unwrap();
        assert_eq!(path.namespace, Namespace::Ipfs);
        assert_eq!(path.root, "bafyabc");
        assert_eq!(path.segments, vec!["música", "my song.mp3"]);
        assert!(!path.trailing_slash);
        assert!(parse("/ipns/k51x/").unwrap().trailing_slash);
        assert!(!parse("/ipns/k51x").unwrap().trailing_slash);
    }

    #[test]
    fn rejects_bad_paths() {
        for bad in [
            "/ipfs/",
            "/ipns",
            "/ipfsx/cid",
            "/ipfs/cid/%zz",
            "/ipfs/cid/%C3",
            "/ipfs/cid/a%2Fb",
            "/ipfs/cid/../x",
            "/other/x",
        ] {
            assert!(
                matches!(parse(bad), Err(GatewayError::BadRequest(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn encoding_round_trips() {
        for name in ["música ñ", "a&b\"c<d>", "100%", "plain-name_1.ts"] {
            let encoded = encode_segment(name);
            assert!(encoded.bytes().all(|b| b.is_ascii_graphic()));
            assert_eq!(decode_segment(&encoded).unwrap(), name);
        }
        assert_eq!(encode_segment("a b"), "a%20b");
    }
}
