use super::*;
use crate::builder::read::read_file;
use crate::cid::{verify, DAG_PB, RAW};
use proptest::prelude::*;
use std::collections::HashMap;

fn store(blocks: &[Block]) -> HashMap<Cid, Vec<u8>> {
    blocks.iter().map(|b| (b.cid, b.data.clone())).collect()
}

/// Bytes that differ per position so misordered chunks would be noticed.
fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ (i / 251) as u8)
        .collect()
}

#[test]
fn dag_pb_leaf_equals_generic_encoding() {
    for chunk in [&b""[..], b"x", &pattern(300), &pattern(CHUNK_SIZE)] {
        let generic = PbNode {
            links: vec![],
            data: Some(UnixFsData::file_leaf(chunk).encode()),
        }
        .encode();
        assert_eq!(dag_pb_leaf(chunk), generic);
        if !chunk.is_empty() {
            assert_eq!(
                leaf_block_len(CidMode::V0DagPbLeaves, chunk.len()),
                generic.len()
            );
        }
    }
}

#[test]
fn empty_file_matches_kubo() {
    let (root, blocks) = build_file(b"", CidMode::V1RawLeaves);
    assert_eq!(
        root.cid.to_string(),
        "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    );
    assert_eq!((root.size, root.tsize, blocks.len()), (0, 0, 1));

    let (root, blocks) = build_file(b"", CidMode::V0DagPbLeaves);
    assert_eq!(
        root.cid.to_string(),
        "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"
    );
    assert_eq!(blocks[0].data, [0x0a, 0x04, 0x08, 0x02, 0x18, 0x00]);
    assert_eq!((root.size, root.tsize), (0, 6));
}

#[test]
fn small_files_match_kubo() {
    // kubo test/cli/add_test.go
    let (root, _) = build_file(b"hello world", CidMode::V0DagPbLeaves);
    assert_eq!(
        root.cid.to_string(),
        "Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD"
    );
    let (root, _) = build_file(b"hello world", CidMode::V1RawLeaves);
    assert_eq!(
        root.cid.to_string(),
        "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
    );
    // The classic `echo "hello world" | ipfs add`.
    let (root, _) = build_file(b"hello world\n", CidMode::V0DagPbLeaves);
    assert_eq!(
        root.cid.to_string(),
        "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
    );
}

#[test]
fn one_byte_file_is_one_block() {
    let (root, blocks) = build_file(b"x", CidMode::V1RawLeaves);
    assert_eq!(blocks.len(), 1);
    assert_eq!(root.cid, raw_cid(b"x"));
    assert_eq!((root.size, root.tsize), (1, 1));

    let (root, blocks) = build_file(b"x", CidMode::V0DagPbLeaves);
    assert_eq!(blocks.len(), 1);
    assert_eq!(root.cid.version(), ::cid::Version::V0);
    assert_eq!(root.tsize, blocks[0].data.len() as u64);
}

#[test]
fn exactly_one_chunk_is_a_single_leaf() {
    let bytes = pattern(CHUNK_SIZE);
    let (root, blocks) = build_file(&bytes, CidMode::V1RawLeaves);
    assert_eq!(blocks.len(), 1);
    assert_eq!(root.cid, raw_cid(&bytes));
    let (root, blocks) = build_file(&bytes, CidMode::V0DagPbLeaves);
    assert_eq!(blocks.len(), 1);
    assert_eq!(blocks[0].data, dag_pb_leaf(&bytes));
    assert_eq!(root.tsize, blocks[0].data.len() as u64);
}

#[test]
fn one_chunk_plus_one_byte_makes_a_root_with_two_leaves() {
    let bytes = pattern(CHUNK_SIZE + 1);
    let (root, blocks) = build_file(&bytes, CidMode::V1RawLeaves);
    assert_eq!(blocks.len(), 3);
    assert_eq!(root.cid.codec(), DAG_PB);
    assert_eq!(root.cid, blocks[2].cid);
    let node = PbNode::decode(&blocks[2].data).unwrap();
    assert_eq!(node.links.len(), 2);
    for (link, leaf) in node.links.iter().zip(&blocks[..2]) {
        assert_eq!(link.hash, leaf.cid);
        assert_eq!(link.hash.codec(), RAW);
        assert_eq!(link.name.as_deref(), Some(""), "Kubo writes an empty Name");
        assert_eq!(link.tsize, Some(leaf.data.len() as u64));
    }
    let unixfs = UnixFsData::decode(node.data.as_deref().unwrap()).unwrap();
    assert_eq!(unixfs, UnixFsData::file_node(vec![CHUNK_SIZE as u64, 1]));
    assert_eq!(
        root.tsize,
        blocks.iter().map(|b| b.data.len() as u64).sum::<u64>()
    );
    assert_eq!(root.size, CHUNK_SIZE as u64 + 1);
}

/// Shape of the DAG under `cid`: leaves per depth-1 node etc., as nested link counts.
fn depth_of(cid: &Cid, blocks: &HashMap<Cid, Vec<u8>>) -> usize {
    if cid.codec() == RAW {
        return 0;
    }
    let node = PbNode::decode(&blocks[cid]).unwrap();
    match node.links.first() {
        None => 0,
        Some(first) => 1 + depth_of(&first.hash, blocks),
    }
}

#[test]
fn layout_grows_a_level_past_max_links_and_nests_partial_nodes() {
    // Tiny chunks make boxo's shapes cheap to check: 4 links per node.
    let layout = FileLayout {
        chunk_size: 1,
        max_links: 4,
    };
    for (len, depth, root_links) in [
        (1, 0, 0),
        (2, 1, 2),
        (4, 1, 4),
        (5, 2, 2),
        (16, 2, 4),
        (17, 3, 2),
    ] {
        let mut builder = FileBuilder::with_layout(CidMode::V1RawLeaves, layout).unwrap();
        let bytes = pattern(len);
        let mut blocks = builder.write(&bytes);
        let (root, rest) = builder.finish();
        blocks.extend(rest);
        let map = store(&blocks);
        assert_eq!(depth_of(&root.cid, &map), depth, "len {len}");
        if depth > 0 {
            let node = PbNode::decode(&map[&root.cid]).unwrap();
            assert_eq!(node.links.len(), root_links, "len {len}");
            // The last child of a deeper root is a chain of single-child nodes down
            // to the lone last leaf, as boxo's fillNodeRec makes it.
            if len == 17 {
                let last = PbNode::decode(&map[&node.links[1].hash]).unwrap();
                assert_eq!(last.links.len(), 1);
                assert_eq!(depth_of(&node.links[1].hash, &map), 2);
            }
        }
        assert_eq!(
            read_file(&root.cid, |c| map.get(c).cloned()).unwrap(),
            bytes
        );
    }
}

#[test]
fn rejects_layouts_that_would_make_oversized_blocks() {
    let too_big = FileLayout {
        chunk_size: MAX_BLOCK_SIZE,
        max_links: MAX_LINKS,
    };
    assert!(FileBuilder::with_layout(CidMode::V1RawLeaves, too_big).is_ok());
    assert!(matches!(
        FileBuilder::with_layout(CidMode::V0DagPbLeaves, too_big),
        Err(BuilderError::InvalidLayout(_))
    ));
    for max_links in [0, 1, 4097] {
        let layout = FileLayout {
            chunk_size: CHUNK_SIZE,
            max_links,
        };
        assert!(FileBuilder::with_layout(CidMode::V1RawLeaves, layout).is_err());
    }
    let empty_chunks = FileLayout {
        chunk_size: 0,
        max_links: MAX_LINKS,
    };
    assert!(FileBuilder::with_layout(CidMode::V1RawLeaves, empty_chunks).is_err());
}

#[test]
fn ten_mebibytes_round_trip_in_both_modes() {
    let bytes = pattern(10 * 1024 * 1024);
    for mode in [CidMode::V1RawLeaves, CidMode::V0DagPbLeaves] {
        let (root, blocks) = build_file(&bytes, mode);
        assert_eq!(blocks.len(), 40 + 1);
        for block in &blocks {
            verify(&block.cid, &block.data).unwrap();
            assert!(block.data.len() <= MAX_BLOCK_SIZE);
        }
        assert_eq!(
            root.tsize,
            blocks.iter().map(|b| b.data.len() as u64).sum::<u64>()
        );
        let map = store(&blocks);
        assert_eq!(
            read_file(&root.cid, |c| map.get(c).cloned()).unwrap(),
            bytes
        );
    }
}

#[test]
fn memory_stays_bounded_while_streaming() {
    // 174 × 256 KiB + 1 forces depth 2; feed it in odd pieces and drop the blocks, as
    // `ipfm add` does, while checking the builder never holds more than a chunk and
    // one open link list per level.
    let piece = pattern(100_003);
    let total = MAX_LINKS * CHUNK_SIZE + 1;
    let mut builder = FileBuilder::new(CidMode::V1RawLeaves);
    let mut fed = 0;
    let mut blocks_seen = 0;
    while fed < total {
        let n = piece.len().min(total - fed);
        blocks_seen += builder.write(&piece[..n]).len();
        fed += n;
        assert!(builder.chunk.len() < CHUNK_SIZE);
        assert!(builder.levels.iter().all(|l| l.len() < MAX_LINKS));
        assert!(builder.levels.len() <= 2);
    }
    let (root, rest) = builder.finish();
    blocks_seen += rest.len();
    // 175 leaves, two depth-1 nodes, the root.
    assert_eq!(blocks_seen, 175 + 2 + 1);
    assert_eq!(root.size, total as u64);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn any_split_gives_the_same_dag(
        len in 0usize..3000,
        cuts in proptest::collection::vec(0usize..3000, 0..12),
        v0 in any::<bool>(),
    ) {
        // Small chunks so a few KiB exercise multi-level trees.
        let layout = FileLayout { chunk_size: 37, max_links: 5 };
        let mode = if v0 { CidMode::V0DagPbLeaves } else { CidMode::V1RawLeaves };
        let bytes = pattern(len);

        let mut whole = FileBuilder::with_layout(mode, layout).unwrap();
        let mut expected = whole.write(&bytes);
        let (expected_root, rest) = whole.finish();
        expected.extend(rest);

        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(len)).collect();
        cuts.sort_unstable();
        let mut split = FileBuilder::with_layout(mode, layout).unwrap();
        let mut blocks = Vec::new();
        let mut start = 0;
        for cut in cuts.into_iter().chain([len]) {
            blocks.extend(split.write(&bytes[start..cut]));
            start = cut;
        }
        let (root, rest) = split.finish();
        blocks.extend(rest);

        prop_assert_eq!(root, expected_root);
        prop_assert_eq!(&blocks, &expected);
        // Every child comes before its parent, every block verifies, the root is last.
        let mut seen = std::collections::HashSet::new();
        for block in &blocks {
            verify(&block.cid, &block.data).unwrap();
            if block.cid.codec() == DAG_PB {
                for link in PbNode::decode(&block.data).unwrap().links {
                    prop_assert!(seen.contains(&link.hash));
                }
            }
            seen.insert(block.cid);
        }
        prop_assert_eq!(blocks.last().unwrap().cid, root.cid);
        let map = store(&blocks);
        prop_assert_eq!(read_file(&root.cid, |c| map.get(c).cloned()).unwrap(), bytes);
    }
}
