#![no_main]
use ipfm_protocol::peer::{decode_public_key, PeerId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(key) = decode_public_key(data) {
        let encoded = key.to_protobuf();
        assert_eq!(decode_public_key(&encoded).as_ref(), Ok(&key));
    }
    if let Ok(peer) = PeerId::from_multihash_bytes(data) {
        assert_eq!(peer.to_bytes(), data);
        assert_eq!(PeerId::parse(&peer.to_base58()), Ok(peer));
        assert_eq!(PeerId::parse(&peer.to_ipns_name()), Ok(peer));
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(peer) = PeerId::parse(text) {
            assert_eq!(PeerId::from_multihash_bytes(&peer.to_bytes()), Ok(peer));
        }
    }
});
