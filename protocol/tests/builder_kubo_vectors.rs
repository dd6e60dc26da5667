//! Root CIDs Kubo itself publishes in its CLI tests (kubo `test/cli/add_test.go` and
//! `test/cli/cid_profiles_test.go`, mirrored by js-ipfs-unixfs `ipip-499-profiles.spec.ts`).
//!
//! Their inputs come from Kubo's `DeterministicRandomReader`: the ChaCha20 keystream
//! (RFC 8439, zero nonce, counter from 0) under the key sha256(seed). Directory names map
//! those bytes onto a 39-letter alphabet; every directory entry is a file holding "x".

use ipfm_protocol::builder::{
    build_file, CidMode, DirectoryBuilder, FileBuilder, FileLayout, CHUNK_SIZE, MAX_LINKS,
};
use sha2::{Digest, Sha256};

const MIB: usize = 1_048_576;

/// Kubo's test byte stream: ChaCha20 keystream keyed by sha256(seed).
struct DeterministicRandom {
    state: [u32; 16],
    block: [u8; 64],
    used: usize,
}

impl DeterministicRandom {
    fn new(seed: &str) -> Self {
        Self::with_key(Sha256::digest(seed.as_bytes()).into())
    }

    fn with_key(key: [u8; 32]) -> Self {
        let mut state = [0u32; 16];
        // "expand 32-byte k"
        state[..4].copy_from_slice(&[0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574]);
        for (i, word) in key.chunks_exact(4).enumerate() {
            state[4 + i] = u32::from_le_bytes(word.try_into().unwrap());
        }
        // state[12] = block counter, state[13..16] = the all-zero nonce.
        DeterministicRandom {
            state,
            block: [0; 64],
            used: 64,
        }
    }

    fn next_block(&mut self) {
        let mut x = self.state;
        fn quarter(x: &mut [u32; 16], a: usize, b: usize, c: usize, d: usize) {
            x[a] = x[a].wrapping_add(x[b]);
            x[d] = (x[d] ^ x[a]).rotate_left(16);
            x[c] = x[c].wrapping_add(x[d]);
            x[b] = (x[b] ^ x[c]).rotate_left(12);
            x[a] = x[a].wrapping_add(x[b]);
            x[d] = (x[d] ^ x[a]).rotate_left(8);
            x[c] = x[c].wrapping_add(x[d]);
            x[b] = (x[b] ^ x[c]).rotate_left(7);
        }
        for _ in 0..10 {
            quarter(&mut x, 0, 4, 8, 12);
            quarter(&mut x, 1, 5, 9, 13);
            quarter(&mut x, 2, 6, 10, 14);
            quarter(&mut x, 3, 7, 11, 15);
            quarter(&mut x, 0, 5, 10, 15);
            quarter(&mut x, 1, 6, 11, 12);
            quarter(&mut x, 2, 7, 8, 13);
            quarter(&mut x, 3, 4, 9, 14);
        }
        for (i, out) in self.block.chunks_exact_mut(4).enumerate() {
            out.copy_from_slice(&x[i].wrapping_add(self.state[i]).to_le_bytes());
        }
        self.state[12] += 1;
        self.used = 0;
    }

    fn fill(&mut self, out: &mut [u8]) {
        let mut pos = 0;
        while pos < out.len() {
            if self.used == 64 {
                self.next_block();
            }
            let n = (64 - self.used).min(out.len() - pos);
            out[pos..pos + n].copy_from_slice(&self.block[self.used..self.used + n]);
            self.used += n;
            pos += n;
        }
    }

    fn bytes(seed: &str, len: usize) -> Vec<u8> {
        let mut out = vec![0; len];
        DeterministicRandom::new(seed).fill(&mut out);
        out
    }
}

/// Kubo's `testutils.AlphabetEasy` (with its doubled '0').
const ALPHABET_EASY: &[u8] = b"abcdefghijklmnopqrstuvwxyz01234567890-_";

fn deterministic_names(count: usize, len: usize, last_len: usize, seed: &str) -> Vec<String> {
    let mut random = DeterministicRandom::new(seed);
    (0..count)
        .map(|i| {
            let mut buf = vec![0; if i == count - 1 { last_len } else { len }];
            random.fill(&mut buf);
            buf.iter()
                .map(|b| ALPHABET_EASY[usize::from(*b) % ALPHABET_EASY.len()] as char)
                .collect()
        })
        .collect()
}

/// Stream `sizes.len()` files that are prefixes of one deterministic stream through
/// builders at once (blocks dropped, as `ipfm add` would hand them to the store), and
/// return each root CID as text.
fn prefix_roots(seed: &str, mode: CidMode, layout: FileLayout, sizes: &[usize]) -> Vec<String> {
    let mut builders: Vec<FileBuilder> = sizes
        .iter()
        .map(|_| FileBuilder::with_layout(mode, layout).unwrap())
        .collect();
    let total = *sizes.iter().max().unwrap();
    let mut random = DeterministicRandom::new(seed);
    let mut piece = vec![0u8; 100_000];
    let mut offset = 0;
    while offset < total {
        let n = piece.len().min(total - offset);
        random.fill(&mut piece[..n]);
        for (builder, &size) in builders.iter_mut().zip(sizes) {
            let end = size.saturating_sub(offset).min(n);
            drop(builder.write(&piece[..end]));
        }
        offset += n;
    }
    builders
        .into_iter()
        .map(|b| b.finish().0.cid.to_string())
        .collect()
}

#[test]
fn chacha20_keystream_matches_rfc_8439() {
    // RFC 8439 A.1, test vector #1: zero key, zero nonce, counter 0.
    let mut random = DeterministicRandom::with_key([0; 32]);
    let mut out = [0u8; 32];
    random.fill(&mut out);
    assert_eq!(
        hex::encode(out),
        "76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7"
    );
}

#[test]
fn v0_single_chunk_and_one_byte_over() {
    // cid_profiles unixfs-v0-2015 / ipip-499 "file at chunk size" and "over chunk size".
    let bytes = DeterministicRandom::bytes("chunk-v0-seed", CHUNK_SIZE + 1);
    let (root, blocks) = build_file(&bytes[..CHUNK_SIZE], CidMode::V0DagPbLeaves);
    assert_eq!(
        root.cid.to_string(),
        "QmWmRj3dFDZdb6ABvbmKhEL6TmPbAfBZ1t5BxsEyJrcZhE"
    );
    assert_eq!(blocks.len(), 1);
    let (root, blocks) = build_file(&bytes, CidMode::V0DagPbLeaves);
    assert_eq!(
        root.cid.to_string(),
        "QmYyLxtzZyW22zpoVAtKANLRHpDjZtNeDjQdJrcQNWoRkJ"
    );
    assert_eq!(blocks.len(), 3);
}

#[test]
fn v0_at_and_over_max_links() {
    // 174 × 256 KiB fills one level; one byte or one chunk more forces depth 2.
    let full = MAX_LINKS * CHUNK_SIZE;
    let roots = prefix_roots(
        "v0-seed",
        CidMode::V0DagPbLeaves,
        FileLayout::KUBO,
        &[full, full + 1, full + CHUNK_SIZE],
    );
    assert_eq!(
        roots,
        [
            "QmUbBALi174SnogsUzLpYbD4xPiBSFANF4iztWCsHbMKh2",
            "QmV81WL765sC8DXsRhE5fJv2rwhS4icHRaf3J9Zk5FdRnW",
            "QmepeWtdmS1hHXx1oZXsPUv6bMrfRRKfZcoPPU4eEfjnbf",
        ]
    );
}

#[test]
fn v1_raw_leaves_with_one_mebibyte_chunks() {
    // unixfs-v1-2025 profile: CIDv1, raw leaves, 1 MiB chunks (1024 links, irrelevant for
    // two leaves). Same code path as `ipfs add --cid-version=1`, other chunk size.
    let layout = FileLayout {
        chunk_size: MIB,
        max_links: 1024,
    };
    let roots = prefix_roots(
        "chunk-v1-seed",
        CidMode::V1RawLeaves,
        layout,
        &[MIB, MIB + 1],
    );
    assert_eq!(
        roots,
        [
            "bafkreiacndfy443ter6qr2tmbbdhadvxxheowwf75s6zehscklu6ezxmta",
            "bafybeigmix7t42i6jacydtquhet7srwvgpizfg7gjbq7627d35mjomtu64",
        ]
    );
}

#[test]
fn v1_raw_leaves_at_and_over_max_links() {
    // kubo add_test.go, profile test-cid-v1: CIDv1, raw leaves, 1 MiB chunks, 174 links.
    let layout = FileLayout {
        chunk_size: MIB,
        max_links: MAX_LINKS,
    };
    let roots = prefix_roots(
        "v1-seed",
        CidMode::V1RawLeaves,
        layout,
        &[174 * MIB, 175 * MIB],
    );
    assert_eq!(
        roots,
        [
            "bafybeigwduxcf2aawppv3isnfeshnimkyplvw3hthxjhr2bdeje4tdaicu",
            "bafybeidhd7lo2n2v7lta5yamob3xwhbxcczmmtmhquwhjesi35jntf7mpu",
        ]
    );
}

fn directory_of_x_files(mode: CidMode, names: &[String]) -> DirectoryBuilder {
    let (x, _) = build_file(b"x", mode);
    let mut dir = DirectoryBuilder::new(mode);
    for name in names {
        dir.add(name, x.cid, x.tsize).unwrap();
    }
    dir
}

#[test]
fn v0_directory_at_kubo_hamt_threshold() {
    // 4096 entries × (30-byte name + 34-byte CIDv0) = exactly Kubo's 256 KiB estimate: the
    // largest directory Kubo still writes flat.
    let names = deterministic_names(4096, 30, 30, "hamt-unixfs-v0-2015");
    let dir = directory_of_x_files(CidMode::V0DagPbLeaves, &names);
    assert_eq!(dir.kubo_size_estimate(), 262_144);
    let (root, block) = dir.finish();
    assert_eq!(
        root.cid.to_string(),
        "QmX5GtRk3TSSEHtdrykgqm4eqMEn3n2XhfkFAis5fjyZmN"
    );
    assert_eq!(root.tsize, block.data.len() as u64 + 4096 * 9);
}

#[test]
fn v1_directory_at_kubo_block_threshold() {
    // unixfs-v1-2025: 4765 11-byte names and one 21-byte name make a block of exactly 256 KiB.
    let names = deterministic_names(4766, 11, 21, "hamt-unixfs-v1-2025");
    let dir = directory_of_x_files(CidMode::V1RawLeaves, &names);
    assert_eq!(dir.encoded_len(), 262_144);
    let (root, block) = dir.finish();
    assert_eq!(block.data.len(), 262_144);
    assert_eq!(
        root.cid.to_string(),
        "bafybeic3h7rwruealwxkacabdy45jivq2crwz6bufb5ljwupn36gicplx4"
    );
}
