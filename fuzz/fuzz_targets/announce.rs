#![no_main]
use ipfm_protocol::announce::Announcement;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Anything that passes the signature check must name the key that signed it: verifying
    // it against its own station succeeds too.
    if let Ok(announcement) = Announcement::decode_authentic(data) {
        let again = Announcement::verify(data, &announcement.station).expect("same station");
        assert_eq!(again, announcement);
    }
});
