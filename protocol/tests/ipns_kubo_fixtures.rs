//! Real IPNS records published by Kubo (ipfs/kubo `test/sharness/t0114-gateway-subdomains`
//! and `t0116-gateway-cache` fixtures, Ed25519 keys, valid until 2123). The file name of
//! each fixture is its IPNS name.

use std::time::{Duration, SystemTime};

use ed25519_dalek::SigningKey;
use ipfm_protocol::ipns::{self, IpnsError, IpnsRecord};
use ipfm_protocol::peer::PeerId;

/// t0114: `12D3KooWLQzUv2FHWGVPXTXSZpdHs7oHbXub2G5WC8Tx4NQhyd2d.ipns-record` (Kubo 0.18.1).
const NAME_T0114: &str = "12D3KooWLQzUv2FHWGVPXTXSZpdHs7oHbXub2G5WC8Tx4NQhyd2d";
const RECORD_T0114: &[&str] = &[
    "0a412f697066732f6261666b7265696379736732336b69777633346567326437717765697078776f73646f327079346c",
    "647634326e62617567756c75656e357636616d1240d88810a0677b10fccc0804a7b55b7341d61bc6bdbbdb262e72ac55",
    "ab0672a362524ad0006840fb86e5dd12db121c1df814573b3d74a6fdf01ba08e77952e8a091800221b323132332d3034",
    "2d31325431333a34343a35392e3830313732385a28003080808ca380e0e0e52b4240f81fc2870bd1cddaad67ffe9bf9b",
    "26079e97567e5543c5e365ade18725c77744b53afaf7c4514bdb16c2832498afc2d3118e734cdaeb630ab1e76383f385",
    "6a034a9501a56354544c1b2bcb8300046300006556616c756558412f697066732f6261666b7265696379736732336b69",
    "777633346567326437717765697078776f73646f327079346c647634326e62617567756c75656e357636616d68536571",
    "75656e6365006856616c6964697479581b323132332d30342d31325431333a34343a35392e3830313732385a6c56616c",
    "69646974795479706500",
];

/// t0116: `k51qzi5uqu5dlxdsdu5fpuu7h69wu4ohp32iwm9pdt9nq3y5rpn3ln9j12zfhe.ipns-record`.
const NAME_T0116: &str = "k51qzi5uqu5dlxdsdu5fpuu7h69wu4ohp32iwm9pdt9nq3y5rpn3ln9j12zfhe";
const RECORD_T0116: &[&str] = &[
    "0a412f697066732f62616679626569623366666c3274656971646e6376336d6b7a347232336235637472776b7a727268",
    "637464626e653669626f61797875786b3575691240b2063f37c29394b2f3daa6cc8f06f8472076135f7c8205acb64e02",
    "e9bd26884fe5daa30bdfc73f4dbf406aad36c923a1e2fa909236e17568c394fa225b8328071800221b323132332d3034",
    "2d31325431353a33323a32322e3634363134345a28003080808ca380e0e0e52b42405a44b4b7a48b9a94f44a1bfb692e",
    "31c036dd0070bb6068a2c3661ec0f24021d118f47ca71a0a8a7b8dc3a060c46cf72de7f97cf17fa1019e3d3eb92b4ec7",
    "87094a9501a56354544c1b2bcb8300046300006556616c756558412f697066732f62616679626569623366666c327465",
    "6971646e6376336d6b7a347232336235637472776b7a727268637464626e653669626f61797875786b35756968536571",
    "75656e6365006856616c6964697479581b323132332d30342d31325431353a33323a32322e3634363134345a6c56616c",
    "69646974795479706500",
];

fn bytes(hex_lines: &[&str]) -> Vec<u8> {
    hex::decode(hex_lines.concat()).unwrap()
}

fn at(seconds: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
}

/// 2023-04-13, shortly after the fixtures were made.
const CREATED_AROUND: u64 = 1_681_344_000;

/// Kubo's `--ttl=876600h` (100 years) in nanoseconds.
const TTL_100_YEARS: Duration = Duration::from_secs(876_600 * 3600);

#[test]
fn kubo_records_validate() {
    let fixtures = [
        (
            NAME_T0114,
            RECORD_T0114,
            "/ipfs/bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am",
            "2123-04-12T13:44:59.801728Z",
        ),
        (
            NAME_T0116,
            RECORD_T0116,
            "/ipfs/bafybeib3ffl2teiqdncv3mkz4r23b5ctrwkzrrhctdbne6iboayxuxk5ui",
            "2123-04-12T15:32:22.646144Z",
        ),
    ];
    for (name, hex_lines, value, validity) in fixtures {
        let name = PeerId::parse(name).unwrap();
        let raw = bytes(hex_lines);
        let record = IpnsRecord::from_bytes(&raw).unwrap();
        record.validate(&name, at(CREATED_AROUND)).unwrap();
        assert_eq!(record.value_str(), Some(value));
        assert_eq!(record.sequence(), 0);
        assert_eq!(record.ttl(), TTL_100_YEARS);
        assert_eq!(record.validity(), validity.as_bytes());
        assert_eq!(ipns::format_rfc3339(record.eol().unwrap()), validity);
        assert_eq!(record.to_bytes(), raw);
        assert_eq!(record.entry().pub_key, None);

        // Past its EOL, and under another name, it is invalid.
        let after = record.eol().unwrap() + Duration::from_secs(1);
        assert_eq!(record.validate(&name, after), Err(IpnsError::Expired));
        let other = PeerId::from_ed25519(&SigningKey::from_bytes(&[1; 32]).verifying_key());
        assert_eq!(
            record.validate(&other, at(CREATED_AROUND)),
            Err(IpnsError::InvalidSignature)
        );
    }
}

/// Our record for the same fields has Kubo's exact layout: only the two 64-byte
/// signatures differ (another key signs it).
#[test]
fn created_records_match_kubo_layout() {
    for hex_lines in [RECORD_T0114, RECORD_T0116] {
        let kubo_bytes = bytes(hex_lines);
        let kubo = IpnsRecord::from_bytes(&kubo_bytes).unwrap();
        let key = SigningKey::from_bytes(&[9; 32]);
        let ours = IpnsRecord::create(
            &key,
            kubo.value_str().unwrap(),
            kubo.sequence(),
            kubo.eol().unwrap(),
            kubo.ttl(),
        );
        let ours_bytes = ours.to_bytes();
        assert_eq!(ours_bytes.len(), kubo_bytes.len());

        let kubo_entry = kubo.entry();
        let ours_entry = ours.entry();
        assert_eq!(
            ours_entry.data, kubo_entry.data,
            "DAG-CBOR data is byte-identical"
        );
        assert_eq!(ours_entry.value, kubo_entry.value);
        assert_eq!(ours_entry.validity, kubo_entry.validity);
        assert_eq!(ours_entry.validity_type, kubo_entry.validity_type);
        assert_eq!(ours_entry.sequence, kubo_entry.sequence);
        assert_eq!(ours_entry.ttl, kubo_entry.ttl);

        // Blank both signatures: the remaining bytes are identical.
        let blank = |bytes: &[u8], record: &IpnsRecord| {
            let mut out = bytes.to_vec();
            for sig in [&record.entry().signature_v1, &record.entry().signature_v2] {
                let sig = sig.as_deref().unwrap();
                assert_eq!(sig.len(), 64);
                let at = out.windows(64).position(|w| w == sig).unwrap();
                out[at..at + 64].fill(0);
            }
            out
        };
        assert_eq!(blank(&ours_bytes, &ours), blank(&kubo_bytes, &kubo));
        let name = PeerId::from_ed25519(&key.verifying_key());
        ours.validate(&name, at(CREATED_AROUND)).unwrap();
    }
}
