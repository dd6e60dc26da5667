//! The CARv1 fixture of the IPLD specs (ipld/ipld `specs/transport/car/fixture/carv1-basic`):
//! 2 roots, dag-cbor, dag-pb (CIDv0) and raw blocks. Expected values from its
//! `carv1-basic.json`.

use ipfm_protocol::car::{self, CarReader};
use ipfm_protocol::cbor;
use ipfm_protocol::Cid;

/// carv1-basic.car, 715 bytes, hex.
const CARV1_BASIC: &[&str] = &[
    "63a265726f6f747382d82a58250001711220f88bc853804cf294fe417e4fa83028689fcdb1b1592c5102e1474dbc200f",
    "ab8bd82a5825000171122069ea0740f9807a28f4d932c62e7c1c83be055e55072c90266ab3e79df63a365b6776657273",
    "696f6e015b01711220f88bc853804cf294fe417e4fa83028689fcdb1b1592c5102e1474dbc200fab8ba2646c696e6bd8",
    "2a582300122002acecc5de2438ea4126a3010ecb1f8a599c8eff22fff1a1dcffe999b27fd3de646e616d6564626c6970",
    "8301122002acecc5de2438ea4126a3010ecb1f8a599c8eff22fff1a1dcffe999b27fd3de122e0a2401551220b6fbd675",
    "f98e2abd22d4ed29fdc83150fedc48597e92dd1a7a24381d44a274511204626561721804122f0a22122079a982de3c99",
    "07953d4d323cee1d0fb1ed8f45f8ef02870c0cb9e09246bd530a12067365636f6e641895012801551220b6fbd675f98e",
    "2abd22d4ed29fdc83150fedc48597e92dd1a7a24381d44a27451636363638001122079a982de3c9907953d4d323cee1d",
    "0fb1ed8f45f8ef02870c0cb9e09246bd530a122d0a240155122081cc5b17018674b401b42f35ba07bb79e211239c23bf",
    "fe658da1577e3e6468771203646f671804122d0a221220e7dc486e97e6ebe5cdabab3e392bdad128b6e09acc94bb4e2a",
    "a2af7b986d24d0120566697273741833280155122081cc5b17018674b401b42f35ba07bb79e211239c23bffe658da157",
    "7e3e64687762626262511220e7dc486e97e6ebe5cdabab3e392bdad128b6e09acc94bb4e2aa2af7b986d24d0122d0a24",
    "0155122061be55a8e2f6b4e172338bddf184d6dbee29c98853e0a0485ecee7f27b9af0b4120363617418042801551220",
    "61be55a8e2f6b4e172338bddf184d6dbee29c98853e0a0485ecee7f27b9af0b461616161360171122069ea0740f9807a",
    "28f4d932c62e7c1c83be055e55072c90266ab3e79df63a365ba2646c696e6bf6646e616d65656c696d626f",
];

fn fixture() -> Vec<u8> {
    hex::decode(CARV1_BASIC.concat()).unwrap()
}

fn cid(text: &str) -> Cid {
    text.parse().unwrap()
}

/// (CID, block length, section offset, section length) from carv1-basic.json.
const BLOCKS: [(&str, usize, usize, usize); 8] = [
    (
        "bafyreihyrpefhacm6kkp4ql6j6udakdit7g3dmkzfriqfykhjw6cad5lrm",
        55,
        100,
        92,
    ),
    (
        "QmNX6Tffavsya4xgBi2VJQnSuqy9GsxongxZZ9uZBqp16d",
        97,
        192,
        133,
    ),
    (
        "bafkreifw7plhl6mofk6sfvhnfh64qmkq73oeqwl6sloru6rehaoujituke",
        4,
        325,
        41,
    ),
    (
        "QmWXZxVQ9yZfhQxLD35eDR8LiMRsYtHxYqTFCBbJoiJVys",
        94,
        366,
        130,
    ),
    (
        "bafkreiebzrnroamgos2adnbpgw5apo3z4iishhbdx77gldnbk57d4zdio4",
        4,
        496,
        41,
    ),
    (
        "QmdwjhxpxzcMsR3qUuj7vUL8pbA7MgR3GAxWi2GLHjsKCT",
        47,
        537,
        82,
    ),
    (
        "bafkreidbxzk2ryxwwtqxem4l3xyyjvw35yu4tcct4cqeqxwo47zhxgxqwq",
        4,
        619,
        41,
    ),
    (
        "bafyreidj5idub6mapiupjwjsyyxhyhedxycv4vihfsicm2vt46o7morwlm",
        18,
        660,
        55,
    ),
];

const ROOTS: [&str; 2] = [
    "bafyreihyrpefhacm6kkp4ql6j6udakdit7g3dmkzfriqfykhjw6cad5lrm",
    "bafyreidj5idub6mapiupjwjsyyxhyhedxycv4vihfsicm2vt46o7morwlm",
];

#[test]
fn parses_and_verifies_the_spec_fixture() {
    let bytes = fixture();
    assert_eq!(bytes.len(), 715);
    let (roots, blocks) = car::parse(&bytes).unwrap();
    assert_eq!(roots, ROOTS.map(cid));
    assert_eq!(blocks.len(), BLOCKS.len());
    for ((got_cid, data), (want_cid, len, _, _)) in blocks.iter().zip(BLOCKS) {
        assert_eq!(*got_cid, cid(want_cid));
        assert_eq!(data.len(), len);
    }
    // The raw block "cccc" (base64 "Y2NjYw" in the JSON).
    assert_eq!(blocks[2].1, b"cccc");
}

#[test]
fn writer_reproduces_the_fixture_byte_for_byte() {
    let bytes = fixture();
    let (roots, blocks) = car::parse(&bytes).unwrap();
    let header = car::header(&roots);
    assert_eq!(
        header.len(),
        BLOCKS[0].2,
        "header ends where the first block starts"
    );
    let mut rebuilt = header;
    for ((cid, data), (_, _, offset, length)) in blocks.iter().zip(BLOCKS) {
        assert_eq!(rebuilt.len(), offset);
        let section = car::block_section(cid, data);
        assert_eq!(section.len(), length);
        rebuilt.extend_from_slice(&section);
    }
    assert_eq!(rebuilt, bytes);
}

#[test]
fn dag_cbor_blocks_decode_and_reencode_exactly() {
    let bytes = fixture();
    let reader = CarReader::new(&bytes).unwrap();
    let mut seen = 0;
    for block in reader {
        let (cid, data) = block.unwrap();
        if cid.codec() != ipfm_protocol::cid::DAG_CBOR {
            continue;
        }
        let value = cbor::decode(data).unwrap();
        assert_eq!(cbor::encode(&value), data);
        seen += 1;
        if cid == self::cid(ROOTS[0]) {
            // {"link": QmNX6…, "name": "blip"}
            assert_eq!(value.get("name").and_then(|v| v.as_text()), Some("blip"));
            assert_eq!(
                value.get("link").and_then(|v| v.as_link()),
                Some(&self::cid("QmNX6Tffavsya4xgBi2VJQnSuqy9GsxongxZZ9uZBqp16d"))
            );
        }
    }
    assert_eq!(seen, 2);
}

#[test]
fn any_flipped_byte_in_a_block_is_caught() {
    let bytes = fixture();
    // Flip the last byte of each block's data: verification must fail.
    for (_, _, offset, length) in BLOCKS {
        let mut corrupted = bytes.clone();
        corrupted[offset + length - 1] ^= 0x01;
        assert!(car::parse(&corrupted).is_err(), "section at {offset}");
    }
}
