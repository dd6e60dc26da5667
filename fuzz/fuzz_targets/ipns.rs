#![no_main]
use std::time::SystemTime;

use ipfm_protocol::ipns::IpnsRecord;
use ipfm_protocol::peer::PeerId;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = IpnsRecord::from_bytes(data) {
        // Records are kept as received: their bytes parse again to the same record.
        let bytes = record.to_bytes();
        assert_eq!(bytes, data);
        assert_eq!(IpnsRecord::from_bytes(&bytes).as_ref(), Ok(&record));
        // Validation must not panic whatever the content.
        let name: PeerId = "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq"
            .parse()
            .expect("valid peer id");
        let _ = record.validate(&name, SystemTime::UNIX_EPOCH);
        let _ = record.eol();
    }
});
