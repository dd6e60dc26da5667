#![no_main]
use ipfm_protocol::bitswap::{decode_frame, encode_framed, Message, MAX_MESSAGE_SIZE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = Message::decode(data) {
        // Field order and defaults may differ from the input, but the decoded value is
        // stable: encode → decode gives the same message.
        let encoded = message.encode();
        assert_eq!(Message::decode(&encoded).as_ref(), Ok(&message));
    }
    if let Ok(Some((message, used))) = decode_frame(data, MAX_MESSAGE_SIZE) {
        assert!(used <= data.len());
        let framed = encode_framed(&message);
        let again = decode_frame(&framed, MAX_MESSAGE_SIZE).unwrap().unwrap();
        assert_eq!(again, (message, framed.len()));
    }
});
