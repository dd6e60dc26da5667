//! libp2p fetch (`/libp2p/fetch/0.0.1`, github.com/libp2p/specs/tree/master/fetch): ask a
//! peer for the value it holds under a key.
//!
//! IPNS over pubsub uses it: when a peer joins a name's topic, go-libp2p-pubsub-router
//! (Kubo) and `@helia/ipns` fetch the record under the name's routing key
//! (`"/ipns/" ‖ multihash`) from that peer, so a new subscriber has the current record at
//! once instead of at the next publication.
//!
//! One request and one response per stream, each a uvarint-length-prefixed protobuf
//! (`varint::length_prefixed`). The
//! schema's `identifier` is a proto3 `string`, but IPNS keys hold binary multihash bytes
//! (Go sends `string(peerID)`, JS a `Uint8Array`), so it is read and written as bytes here:
//! the same wire form, without a UTF-8 check that would refuse every IPNS key.

use prost::Message as _;

/// The protocol id.
pub const PROTOCOL: &str = "/libp2p/fetch/0.0.1";
/// Largest request body accepted: an IPNS key is "/ipns/" plus a multihash of at most ~70
/// bytes; other keys are not served, so nothing needs more.
pub const MAX_REQUEST_SIZE: usize = 1024;
/// Largest response body accepted or sent: an IPNS record (at most 10 KiB) plus framing.
pub const MAX_RESPONSE_SIZE: usize = crate::ipns::MAX_RECORD_SIZE + 64;

mod pb {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct FetchRequest {
        #[prost(bytes = "vec", tag = "1")]
        pub identifier: Vec<u8>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct FetchResponse {
        #[prost(int32, tag = "1")]
        pub status: i32,
        #[prost(bytes = "vec", tag = "2")]
        pub data: Vec<u8>,
    }
}

/// How a fetch was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchResponse {
    /// The value under the key.
    Found(Vec<u8>),
    /// The peer serves the key's namespace but holds nothing under it.
    NotFound,
    /// The peer could not answer (for instance, it serves no such namespace); the text is
    /// the peer's explanation.
    Error(Vec<u8>),
}

/// Errors of fetch decoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("malformed protobuf: {0}")]
    Protobuf(String),
    #[error("unknown status code {0}")]
    UnknownStatus(i32),
    #[error("message of {len} bytes exceeds the limit of {max}")]
    TooLarge { len: usize, max: usize },
}

const STATUS_OK: i32 = 0;
const STATUS_NOT_FOUND: i32 = 1;
const STATUS_ERROR: i32 = 2;

/// A request for the value under `identifier`, without its length prefix.
pub fn encode_request(identifier: &[u8]) -> Vec<u8> {
    pb::FetchRequest {
        identifier: identifier.to_vec(),
    }
    .encode_to_vec()
}

/// The identifier a request asks for.
pub fn decode_request(body: &[u8]) -> Result<Vec<u8>, FetchError> {
    check_len(body.len(), MAX_REQUEST_SIZE)?;
    let request =
        pb::FetchRequest::decode(body).map_err(|e| FetchError::Protobuf(e.to_string()))?;
    Ok(request.identifier)
}

/// A response, without its length prefix.
pub fn encode_response(response: &FetchResponse) -> Vec<u8> {
    let (status, data) = match response {
        FetchResponse::Found(data) => (STATUS_OK, data.clone()),
        FetchResponse::NotFound => (STATUS_NOT_FOUND, Vec::new()),
        FetchResponse::Error(text) => (STATUS_ERROR, text.clone()),
    };
    pb::FetchResponse { status, data }.encode_to_vec()
}

pub fn decode_response(body: &[u8]) -> Result<FetchResponse, FetchError> {
    check_len(body.len(), MAX_RESPONSE_SIZE)?;
    let response =
        pb::FetchResponse::decode(body).map_err(|e| FetchError::Protobuf(e.to_string()))?;
    match response.status {
        STATUS_OK => Ok(FetchResponse::Found(response.data)),
        STATUS_NOT_FOUND => Ok(FetchResponse::NotFound),
        STATUS_ERROR => Ok(FetchResponse::Error(response.data)),
        other => Err(FetchError::UnknownStatus(other)),
    }
}

fn check_len(len: usize, max: usize) -> Result<(), FetchError> {
    if len > max {
        return Err(FetchError::TooLarge { len, max });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_wire_form_is_the_specs_protobuf() {
        // FetchRequest{identifier: "/ipns/\x00\x24…"}: field 1, length-delimited.
        let key = [b"/ipns/".as_slice(), &[0x00, 0x24, 0x08, 0x01]].concat();
        let body = encode_request(&key);
        assert_eq!(body[..2], [0x0a, key.len() as u8]);
        assert_eq!(decode_request(&body).unwrap(), key);
        // OK is proto3's default (0), so a found value is field 2 alone.
        assert_eq!(
            encode_response(&FetchResponse::Found(vec![7, 7])),
            [0x12, 2, 7, 7]
        );
        assert_eq!(encode_response(&FetchResponse::NotFound), [0x08, 1]);
        assert_eq!(
            decode_response(&[0x08, 2, 0x12, 1, b'x']).unwrap(),
            FetchResponse::Error(b"x".to_vec())
        );
        assert_eq!(
            decode_response(&[0x08, 9]),
            Err(FetchError::UnknownStatus(9))
        );
    }

    #[test]
    fn oversized_messages_are_refused_before_decoding() {
        let big = encode_request(&[b'a'; MAX_REQUEST_SIZE]);
        assert!(matches!(
            decode_request(&big),
            Err(FetchError::TooLarge { .. })
        ));
        let big = encode_response(&FetchResponse::Found(vec![0; MAX_RESPONSE_SIZE]));
        assert!(matches!(
            decode_response(&big),
            Err(FetchError::TooLarge { .. })
        ));
    }

    proptest! {
        #[test]
        fn round_trips(identifier in proptest::collection::vec(any::<u8>(), 0..200),
                       data in proptest::collection::vec(any::<u8>(), 0..2000),
                       kind in 0..3u8) {
            prop_assert_eq!(decode_request(&encode_request(&identifier)).unwrap(), identifier);
            let response = match kind {
                0 => FetchResponse::Found(data),
                1 => FetchResponse::NotFound,
                _ => FetchResponse::Error(data),
            };
            prop_assert_eq!(decode_response(&encode_response(&response)).unwrap(), response);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_request(&bytes);
            let _ = decode_response(&bytes);
        }
    }
}
