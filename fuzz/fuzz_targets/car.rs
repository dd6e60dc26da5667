#![no_main]
use ipfm_protocol::car;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((roots, blocks)) = car::parse(data) {
        // Re-writing a parsed CAR and parsing it again gives the same roots and blocks.
        let mut rebuilt = car::header(&roots);
        for (cid, block) in &blocks {
            rebuilt.extend_from_slice(&car::block_section(cid, block));
        }
        assert_eq!(car::parse(&rebuilt), Ok((roots, blocks)));
    }
});
