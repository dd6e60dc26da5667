#![no_main]
use ipfm_protocol::fetch::{decode_request, decode_response, encode_request, encode_response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Whatever decodes re-encodes to something that decodes to the same value.
    if let Ok(identifier) = decode_request(data) {
        assert_eq!(decode_request(&encode_request(&identifier)), Ok(identifier));
    }
    if let Ok(response) = decode_response(data) {
        assert_eq!(decode_response(&encode_response(&response)), Ok(response));
    }
});
