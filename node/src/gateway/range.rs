//! Single `Range: bytes=…` requests (RFC 9110 §14) and `If-None-Match` matching.

/// What to send for a `Range` header on a representation of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RangeRequest {
    /// No usable range (absent, malformed, multi-range, or not bytes): send everything.
    Full,
    /// Send bytes `start..=end` with 206.
    Partial { start: u64, end: u64 },
    /// A well-formed range that selects nothing: 416.
    Unsatisfiable,
}

/// Interpret a `Range` header. Servers may ignore ranges they do not support, so
/// malformed and multi-range requests get the full representation.
pub(crate) fn parse(header: Option<&str>, size: u64) -> RangeRequest {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeRequest::Full;
    };
    if spec.contains(',') {
        return RangeRequest::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeRequest::Full;
    };
    let number = |text: &str| -> Option<u64> {
        let text = text.trim();
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // Digits only: a parse failure can only be overflow, i.e. "very large".
        Some(text.parse().unwrap_or(u64::MAX))
    };
    match (first.trim().is_empty(), number(first), number(last)) {
        // bytes=-N: the last N bytes.
        (true, _, Some(suffix)) => {
            if suffix == 0 || size == 0 {
                RangeRequest::Unsatisfiable
            } else {
                RangeRequest::Partial {
                    start: size - suffix.min(size),
                    end: size - 1,
                }
            }
        }
        // bytes=A- and bytes=A-B
        (false, Some(start), last) if last.is_some() || last_is_empty(last, spec) => {
            if let Some(end) = last {
                if end < start {
                    return RangeRequest::Full;
                }
            }
            if start >= size {
                return RangeRequest::Unsatisfiable;
            }
            RangeRequest::Partial {
                start,
                end: last.map_or(size - 1, |end| end.min(size - 1)),
            }
        }
        _ => RangeRequest::Full,
    }
}

/// `bytes=A-`: the part after the dash is empty (not malformed).
fn last_is_empty(last: Option<u64>, spec: &str) -> bool {
    last.is_none() && spec.trim().ends_with('-')
}

/// Whether an `If-None-Match` header matches `etag` (weak comparison, as RFC 9110 §13.1.2
/// prescribes for this header).
pub(crate) fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    let opaque = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
    let ours = opaque(etag);
    if_none_match
        .split(',')
        .any(|candidate| candidate.trim() == "*" || opaque(candidate) == ours)
}

#[cfg(test)]
mod tests {
    use super::*;
    use RangeRequest::*;

    #[test]
    fn ranges() {
        let p = |h: &str| parse(Some(h), 100);
        assert_eq!(parse(None, 100), Full);
        assert_eq!(p("bytes=0-9"), Partial { start: 0, end: 9 });
        assert_eq!(p("bytes=90-"), Partial { start: 90, end: 99 });
        assert_eq!(p("bytes=90-1000"), Partial { start: 90, end: 99 });
        assert_eq!(p("bytes=-10"), Partial { start: 90, end: 99 });
        assert_eq!(p("bytes=-1000"), Partial { start: 0, end: 99 });
        assert_eq!(p("bytes=100-"), Unsatisfiable);
        assert_eq!(p("bytes=-0"), Unsatisfiable);
        assert_eq!(p("bytes=5-1"), Full);
        assert_eq!(p("bytes=0-1,5-6"), Full);
        assert_eq!(p("items=0-1"), Full);
        assert_eq!(p("bytes=x-1"), Full);
        assert_eq!(p("bytes=-"), Full);
        assert_eq!(parse(Some("bytes=0-"), 0), Unsatisfiable);
        assert_eq!(p("bytes=99999999999999999999999-"), Unsatisfiable);
    }

    #[test]
    fn etags() {
        assert!(etag_matches("\"abc\"", "\"abc\""));
        assert!(etag_matches("W/\"abc\"", "\"abc\""));
        assert!(etag_matches("\"x\", \"abc\"", "\"abc\""));
        assert!(etag_matches("*", "\"abc\""));
        assert!(!etag_matches("\"abcd\"", "\"abc\""));
    }
}
