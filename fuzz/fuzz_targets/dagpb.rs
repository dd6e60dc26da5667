#![no_main]
use ipfm_protocol::dagpb::PbNode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(node) = PbNode::decode(data) {
        // The decoder only accepts canonical bytes, so re-encoding must give them back.
        assert_eq!(node.encode(), data);
    }
});
