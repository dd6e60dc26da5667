#![no_main]
use ipfm_protocol::cbor;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = cbor::decode(data) {
        // Strict DAG-CBOR: only canonical bytes decode, so re-encoding gives them back.
        let encoded = cbor::encode(&value);
        assert_eq!(encoded, data);
        assert_eq!(cbor::decode(&encoded).as_ref(), Ok(&value));
    }
});
