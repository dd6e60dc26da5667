#![no_main]
use ipfm_protocol::unixfs::UnixFsData;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The decoder is a lenient proto2 parser (any field order, unknown fields skipped), so
    // the input need not re-encode to itself; what must hold is that decode → encode →
    // decode gives the same value and that the encoding is then a fixed point.
    if let Ok(node) = UnixFsData::decode(data) {
        let encoded = node.encode();
        let again = UnixFsData::decode(&encoded).expect("re-encoded UnixFS data decodes");
        assert_eq!(again, node);
        assert_eq!(again.encode(), encoded);
    }
});
