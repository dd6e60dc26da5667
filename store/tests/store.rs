//! One test suite for all backends: every test runs against the in-memory store, the
//! default persistent store (block files + sled metadata) and the sled-only block backend
//! (rstest cases), plus tests of persistence for the two persistent ones.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use ipfm_protocol::cid::{cid_v0, cid_v1, raw_cid, DAG_PB};
use ipfm_protocol::dagpb::{PbLink, PbNode};
use ipfm_store::{BlockBackend, Blockstore, Cid, Store, StoreError};
use rstest::rstest;
use tempfile::TempDir;

#[derive(Debug, Clone, Copy)]
enum Backend {
    Memory,
    /// `Store::open`: block files, metadata in sled.
    Files,
    /// `Store::open_with(.., BlockBackend::Sled)`: block bytes in sled too.
    Sled,
}

impl Backend {
    /// (Re)open the persistent store at `path` with this backend.
    async fn open_at(self, path: &std::path::Path) -> Result<Store, StoreError> {
        match self {
            Backend::Memory => panic!("the memory backend has no path"),
            Backend::Files => Store::open(path).await,
            Backend::Sled => Store::open_with(path, BlockBackend::Sled).await,
        }
    }
}

/// A store plus the directory that holds it (persistent backends), kept alive for the test.
struct Fixture {
    store: Store,
    dir: Option<TempDir>,
}

async fn open(backend: Backend) -> Fixture {
    match backend {
        Backend::Memory => Fixture {
            store: Store::open_in_memory(),
            dir: None,
        },
        Backend::Files | Backend::Sled => {
            let dir = tempfile::tempdir().unwrap();
            let store = backend.open_at(&dir.path().join("db")).await.unwrap();
            assert!(store.is_persistent());
            Fixture {
                store,
                dir: Some(dir),
            }
        }
    }
}

fn raw(bytes: &[u8]) -> (Cid, Vec<u8>) {
    (raw_cid(bytes), bytes.to_vec())
}

/// A dag-pb directory-like node linking to `children` (cid, size).
fn node(children: &[(Cid, usize)]) -> (Cid, Vec<u8>) {
    let links = children
        .iter()
        .enumerate()
        .map(|(i, (cid, size))| PbLink {
            hash: *cid,
            name: Some(format!("child-{i}")),
            tsize: Some(*size as u64),
        })
        .collect();
    let bytes = PbNode {
        links,
        data: Some(vec![8, 1]),
    }
    .encode();
    (cid_v1(DAG_PB, &bytes), bytes)
}

async fn put(store: &Store, (cid, bytes): &(Cid, Vec<u8>)) {
    store.put(cid, bytes.clone()).await.unwrap();
}

/// A moment strictly between everything stored before the call and everything after.
async fn time_boundary() -> SystemTime {
    // Insertion times have millisecond resolution; leave a few ms on each side.
    tokio::time::sleep(Duration::from_millis(3)).await;
    let boundary = SystemTime::now();
    tokio::time::sleep(Duration::from_millis(3)).await;
    boundary
}

// ---------------------------------------------------------------- blockstore

#[rstest]
#[case::memory(Backend::Memory)]
#[case::files(Backend::Files)]
#[case::sled(Backend::Sled)]
#[tokio::test]
async fn put_then_get_returns_the_bytes(#[case] backend: Backend) {
    let fx = open(backend).await;
    let leaf = raw(b"leaf bytes");
    let dir = node(&[(leaf.0, leaf.1.len())]);
    put(&fx.store, &leaf).await;
    put(&fx.store, &dir).await;

    assert_eq!(fx.store.get(&leaf.0).await.unwrap(), Some(leaf.1.clone()));
    assert_eq!(fx.store.get(&dir.0).await.unwrap(), Some(dir.1.clone()));
    assert!(fx.store.has(&leaf.0).await.unwrap());
    let absent = raw_cid(b"never stored");
    assert_eq!(fx.store.get(&absent).await.unwrap(), None);
    assert!(!fx.store.has(&absent).await.unwrap());
    assert_eq!(fx.store.block_info(&absent).await.unwrap(), None);
    let info = fx.store.block_info(&leaf.0).await.unwrap().unwrap();
    assert_eq!((info.cid, info.size), (leaf.0, leaf.1.len() as u64));
}

#[rstest]
#[case::memory(Backend::Memory)]
#[case::files(Backend::Files)]
#[case::sled(Backend::Sled)]
#[tokio::test]
async fn put_rejects_bytes_that_do_not_hash_to_the_cid(#[case] backend: Backend) {
    let fx = open(backend).await;
    let cid = raw_cid(b"the real bytes");
    let err = fx
        .store
        .put(&cid, b"other bytes".to_vec())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::InvalidBlock { cid: c, .. } if **c == cid),
        "{err}"
    );
    assert!(!fx.store.has(&cid).await.unwrap());
    assert!(fx.store.is_empty().await.unwrap());

    // A hash function we cannot check (blake3, 0x1e) is refused rather than trusted.
    let blake3 = Cid::new_v1(
        0x55,
        cid::multihash::Multihash::wrap(0x1e, &[7; 32]).unwrap(),
    );
    assert!(matches!(
        fx.store.put(&blake3, b"x".to_vec()).await,
        Err(StoreError::InvalidBlock { .. })
    ));
    assert_eq!(fx.store.len().await.unwrap(), 0);
}

#[rstest]
#[case::memory(Backend::Memory)]
#[case::files(Backend::Files)]
#[case::sled(Backend::Sled)]
#[tokio::test]
async fn put_verified_stores_like_put(#[case] backend: Backend) {
    let fx = open(backend).await;
    let leaf = raw(b"bytes the network already hashed");
    fx.store
        .put_verified(&leaf.0, leaf.1.clone())
        .await
        .unwrap();
    assert_eq!(fx.store.get(&leaf.0).await.unwrap(), Some(leaf.1.clone()));
    // Again: one copy, a fresh insertion time.
    let first = fx.store.block_info(&leaf.0).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(3)).await;
    fx.store
        .put_verified(&leaf.0, leaf.1.clone())
        .await
        .unwrap();
    let second = fx.store.block_info(&leaf.0).await.unwrap().unwrap();
    assert!(second.inserted_at > first.inserted_at);
    assert_eq!(fx.store.len().await.unwrap(), 1);
}

/// The promise `put_verified` takes on trust is still checked where tests run (debug
/// builds).
#[cfg(debug_assertions)]
#[rstest]
#[case::memory(Backend::Memory)]
#[case::files(Backend::Files)]
#[case::sled(Backend::Sled)]
#[tokio::test]
async fn put_verified_of_bytes_that_do_not_match_panics_in_debug_builds(#[case] backend: Backend) {
    let fx = open(backend).await;
    let store = fx.store.clone();
    let cid = raw_cid(b"the real bytes");
    let outcome =
        tokio::spawn(async move { store.put_verified(&cid, b"other".to_vec()).await }).await;
    // A panic on the caller's task (memory), or on the blocking pool, which the store
    // reports as an error (files, sled); either way nothing is stored.
    match outcome {
        Err(join) => assert!(join.is_panic()),
        Ok(result) => assert!(result.is_err(), "stored bytes that do not match"),
    }
    assert!(!fx.store.has(&cid).await.unwrap());
}

#[rstest]
#[case::memory(Backend::Memory)]
#[case::files(Backend::Files)]
#[case::sled(Backend::Sled)]
#[tokio::test]
async fn put_is_idempotent_and_refreshes_the_insertion_time(#[case] backend: Backend) {
    let fx = open(backend).await;
    let block = raw(&[42; 1000]);
    put(&fx.store, &block).await;
    let first = fx.store.block_info(&block.0).await.unwrap().unwrap();
    time_boundary().await;
    put(&fx.store, &block).await;
    let second = fx.store.block_info(&block.0).await.unwrap().unwrap();

    assert_eq!(fx.store.len().await.unwrap(), 1);
    assert_eq!(fx.store.total_bytes().await.unwrap(), 1000);
    assert_eq!(fx.store.get(&block.0).await.unwrap(), Some(block.1));
    assert!(second.inserted_at > first.inserted_at);
}

#[rstest]
#[case::memory(Backend::Memory)]
#[case::files(Backend::Files)]
#[case::sled(Backend::Sled)]
#[tokio::test]
async fn delete_removes_only_that_block(#[case] backend: Backend) {
    let fx = open(backend).await;
    let (a, b) = (raw(b"a"), raw(b"b"));
    put(&fx.store, &a).await;
    put(&fx.store, &b).await;

    assert!(fx.store.delete(&a.0).await.unwrap());
    assert!(
        !fx.store.delete(&a.0).await.unwrap(),
        "second delete finds nothing"
    );
    assert_eq!(fx.store.get(&a.0).await.unwrap(), None);
    assert!(fx.store.has(&b.0).await.unwrap());
    assert_eq!(fx.store.cids().await.unwrap(), vec![b.0]);
}

#[rstest]
#[case::memory(Backend::Memory)]
#[case::files(Backend::Files)]
#[case::sled(Backend::Sled)]
#[tokio::test]
async fn cids_and_stats_cover_every_block(#[case] backend: Backend) {
    let fx = open(backend).await;
    let mut expected = HashSet::new();
    let mut bytes = 0;
    for i in 0..50u32 {
        let block = raw(&i.to_be_bytes().repeat(i as usize + 1));
        bytes += block.1.len() as u64;
        expected.insert(block.0);
        put(&fx.store, &block).await;
    }
    let listed: HashSet<Cid> = fx.store.cids().await.unwrap().into_iter().collect();
    assert_eq!(listed, expected);
    let stats = fx.store.stats().await.unwrap();
    assert_eq!((stats.blocks, stats.bytes), (50, bytes));
    assert_eq!(fx.store.blocks().await.unwrap().len(), 50);
}

#[rstest]
#[case::memory(Backend::Memory)]
#[case::files(Backend::Files)]
#[case::sled(Backend::Sled)]
#[tokio::test]
async fn cid_v0_and_v1_name_the_same_dag_pb_block(#[case] backend: Backend) {
    let fx = open(backend).await;
    let bytes = PbNode {
        links: vec![],
        data: Some(vec![8, 1]),
    }
    .encode();
    let (v0, v1) = (cid_v0(&bytes), cid_v1(DAG_PB, &bytes));
    fx.store.put(&v0, bytes.clone()).await.unwrap();

    assert_eq!(fx.store.get(&v1).await.unwrap(), Some(bytes.clone()));
    assert!(fx.store.has(&v0).await.unwrap());
    assert_eq!(fx.store.cids().await.unwrap(), vec![v1]);
    assert!(fx.store.delete(&v1).await.unwrap());
    assert!(!fx.store.has(&v0).await.unwrap());
}

#[rstest]
#[case::memory(Backend::Memory)]
#[case::files(Backend::Files)]
#[case::sled(Backend::Sled)]
#[tokio::test]
async fn delete_if_inserted_before_spares_younger_blocks(#[case] backend: Backend) {
    let fx = open(backend).await;
    let (old, young, reput) = (raw(b"old"), raw(b"young"), raw(b"re-put"));
    put(&fx.store, &old).await;
    put(&fx.store, &reput).await;
    let boundary = time_boundary().await;
    put(&fx.store, &young).await;

    // The race GC has to survive: a block listed as old is put again before the sweep
    // reaches it; the conditional delete must see the new insertion time.
    let listed = fx.store.block_info(&reput.0).await.unwrap().unwrap();
    assert!(listed.inserted_at <= boundary);
    put(&fx.store, &reput).await;
    assert_eq!(
        fx.store
            .delete_if_inserted_before(&reput.0, boundary)
            .await
            .unwrap(),
        None
    );
    assert!(fx.store.has(&reput.0).await.unwrap());
    assert!(fx.store.delete(&reput.0).await.unwrap());

    assert_eq!(
        fx.store
            .delete_if_inserted_before(&young.0, boundary)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        fx.store
            .delete_if_inserted_before(&old.0, boundary)
            .await
            .unwrap(),
        Some(3)
    );
    assert_eq!(
        fx.store
            .delete_if_inserted_before(&old.0, boundary)
            .await
            .unwrap(),
        None,
        "already gone"
    );
    assert_eq!(fx.store.cids().await.unwrap(), vec![young.0]);
}

#[rstest]
#[case::memory(Backend::Memory)]
#[case::files(Backend::Files)]
#[case::sled(Backend::Sled)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_puts_from_clones_all_land(#[case] backend: Backend) {
    let fx = open(backend).await;
    let tasks: Vec<_> = (0..8u8)
        .map(|task| {
            let store = fx.store.clone();
            tokio::spawn(async move {
                for i in 0..25u8 {
                    let block = raw(&[task, i, 0xee]);
                    store.put(&block.0, block.1).await.unwrap();
                    // Everyone also re-puts a shared block.
                    let shared = raw(b"shared");
                    store.put(&shared.0, shared.1).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("puts finish")
            .unwrap();
    }
    assert_eq!(fx.store.len().await.unwrap(), 8 * 25 + 1);
}

// ---------------------------------------------------------------- pins and GC

#[rstest]
#[case::memory(Backend::Memory)]
#[case::files(Backend::Files)]
#[case::sled(Backend::Sled)]
#[tokio::test]
async fn pins_are_named_and_replaced(#[case] backend: Backend) {
    let fx = open(backend).await;
    let (a, b) = (raw_cid(b"a"), raw_cid(b"b"));
    assert_eq!(fx.store.pin("station", a).await.unwrap(), None);
    assert_eq!(fx.store.pin("archive", b).await.unwrap(), None);
    assert_eq!(fx.store.pin("station", b).await.unwrap(), Some(a));

    assert_eq!(
        fx.store.pins().await.unwrap(),
        vec![("archive".to_owned(), b), ("station".to_owned(), b)]
    );
    assert_eq!(fx.store.pinned("station").await.unwrap(), Some(b));
    assert_eq!(fx.store.unpin("station").await.unwrap(), Some(b));
    assert_eq!(fx.store.unpin("station").await.unwrap(), None);
    assert_eq!(fx.store.pinned("station").await.unwrap(), None);
    assert_eq!(
        fx.store.pins().await.unwrap(),
        vec![("archive".to_owned(), b)]
    );
}

/// root → (dir → (leaf1, leaf2), leaf3); every block stored.
struct Tree {
    root: (Cid, Vec<u8>),
    dir: (Cid, Vec<u8>),
    leaves: Vec<(Cid, Vec<u8>)>,
}

impl Tree {
    async fn store(store: &Store, salt: &str) -> Tree {
        let leaves: Vec<_> = (1..=3)
            .map(|i| raw(format!("{salt} leaf {i}").as_bytes()))
            .collect();
        let dir = node(&[
            (leaves[0].0, leaves[0].1.len()),
            (leaves[1].0, leaves[1].1.len()),
        ]);
        let root = node(&[(dir.0, dir.1.len()), (leaves[2].0, leaves[2].1.len())]);
        for block in leaves.iter().chain([&dir, &root]) {
            put(store, block).await;
        }
        Tree { root, dir, leaves }
    }

    fn cids(&self) -> HashSet<Cid> {
        self.leaves
            .iter()
            .chain([&self.dir, &self.root])
            .map(|b| b.0)
            .collect()
    }
}

async fn stored(store: &Store) -> HashSet<Cid> {
    store.cids().await.unwrap().into_iter().collect()
}

#[rstest]
#[case::memory(Backend::Memory)]
#[case::files(Backend::Files)]
#[case::sled(Backend::Sled)]
#[tokio::test]
async fn pinned_blocks_and_gc_reports_follow_the_pins(#[case] backend: Backend) {
    let fx = open(backend).await;
    let kept = Tree::store(&fx.store, "kept").await;
    let dropped = Tree::store(&fx.store, "dropped").await;
    fx.store.pin("station", kept.root.0).await.unwrap();
    fx.store.pin("old", dropped.root.0).await.unwrap();
    // A pinned root that is not stored is not listed (nothing to provide).
    fx.store
        .pin("missing", raw_cid(b"not stored"))
        .await
        .unwrap();
    let pinned: HashSet<Cid> = fx
        .store
        .pinned_blocks()
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(
        pinned,
        kept.cids().union(&dropped.cids()).copied().collect()
    );

    let mut reports = fx.store.gc_reports();
    fx.store.unpin("old").await.unwrap();
    let report = fx.store.gc(Duration::ZERO).await.unwrap();
    let followed = reports
        .try_recv()
        .expect("the GC run is reported to followers");
    assert_eq!(*followed, report);
    let removed: HashSet<Cid> = followed.removed_cids.iter().copied().collect();
    assert_eq!(removed, dropped.cids());
    let pinned: HashSet<Cid> = fx
        .store
        .pinned_blocks()
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(pinned, kept.cids());
}

#[rstest]
#[case::memory(Backend::Memory)]
#[case::files(Backend::Files)]
#[case::sled(Backend::Sled)]
#[tokio::test]
async fn gc_removes_only_unpinned_blocks(#[case] backend: Backend) {
    let fx = open(backend).await;
    let tree = Tree::store(&fx.store, "pinned").await;
    fx.store.pin("station", tree.root.0).await.unwrap();
    let loose: Vec<_> = (0..4)
        .map(|i| raw(format!("loose {i}").as_bytes()))
        .collect();
    for block in &loose {
        put(&fx.store, block).await;
    }

    let report = fx.store.gc(Duration::from_secs(3600)).await.unwrap();
    assert_eq!(report.removed_blocks, 0, "young blocks are retained");
    assert_eq!(report.kept_blocks, 9);
    assert_eq!(fx.store.len().await.unwrap(), 9);

    let report = fx.store.gc(Duration::ZERO).await.unwrap();
    assert_eq!(report.removed_blocks, 4);
    assert_eq!(
        report.removed_bytes,
        loose.iter().map(|b| b.1.len() as u64).sum::<u64>()
    );
    assert_eq!(report.kept_blocks, 5);
    assert_eq!(report.reachable_blocks, 5);
    assert!(report.missing_children.is_empty());
    // The report names exactly the removed blocks (the node stops providing them).
    assert_eq!(
        report
            .removed_cids
            .iter()
            .copied()
            .collect::<HashSet<Cid>>(),
        loose.iter().map(|b| b.0).collect::<HashSet<Cid>>()
    );
    assert!(!report.removed_cids_truncated);
    assert_eq!(stored(&fx.store).await, tree.cids());
    for block in tree.leaves.iter().chain([&tree.dir, &tree.root]) {
        assert_eq!(
            fx.store.get(&block.0).await.unwrap().as_ref(),
            Some(&block.1)
        );
    }
}

#[rstest]
#[case::memory(Backend::Memory)]
#[case::files(Backend::Files)]
#[case::sled(Backend::Sled)]
#[tokio::test]
async fn gc_honours_repin_and_unpin(#[case] backend: Backend) {
    let fx = open(backend).await;
    let first = Tree::store(&fx.store, "first").await;
    let second = Tree::store(&fx.store, "second").await;
    fx.store.pin("station", first.root.0).await.unwrap();
    fx.store.pin("archive", second.root.0).await.unwrap();
    assert_eq!(fx.store.gc(Duration::ZERO).await.unwrap().removed_blocks, 0);

    // Repinning "station" to the first tree's subdirectory frees its root and third leaf.
    fx.store.pin("station", first.dir.0).await.unwrap();
    let report = fx.store.gc(Duration::ZERO).await.unwrap();
    assert_eq!(report.removed_blocks, 2);
    let expected: HashSet<Cid> = second
        .cids()
        .into_iter()
        .chain([first.dir.0, first.leaves[0].0, first.leaves[1].0])
        .collect();
    assert_eq!(stored(&fx.store).await, expected);

    fx.store.unpin("archive").await.unwrap();
    fx.store.gc(Duration::ZERO).await.unwrap();
    assert_eq!(
        stored(&fx.store).await,
        HashSet::from([first.dir.0, first.leaves[0].0, first.leaves[1].0])
    );

    fx.store.unpin("station").await.unwrap();
    let report = fx.store.gc(Duration::ZERO).await.unwrap();
    assert_eq!((report.removed_blocks, report.kept_blocks), (3, 0));
    assert!(fx.store.is_empty().await.unwrap());
}

#[rstest]
#[case::memory(Backend::Memory)]
#[case::files(Backend::Files)]
#[case::sled(Backend::Sled)]
#[tokio::test]
async fn blocks_shared_by_two_pins_survive_either_unpin(#[case] backend: Backend) {
    let fx = open(backend).await;
    let shared = raw(b"shared segment");
    let a = node(&[(shared.0, shared.1.len())]);
    let b = node(&[(shared.0, shared.1.len()), (a.0, a.1.len())]);
    for block in [&shared, &a, &b] {
        put(&fx.store, block).await;
    }
    fx.store.pin("a", a.0).await.unwrap();
    fx.store.pin("b", b.0).await.unwrap();
    fx.store.unpin("b").await.unwrap();
    fx.store.gc(Duration::ZERO).await.unwrap();
    assert_eq!(stored(&fx.store).await, HashSet::from([shared.0, a.0]));
}

#[rstest]
#[case::memory(Backend::Memory)]
#[case::files(Backend::Files)]
#[case::sled(Backend::Sled)]
#[tokio::test]
async fn gc_reports_missing_children_without_failing(#[case] backend: Backend) {
    let fx = open(backend).await;
    let present = raw(b"present");
    let absent_leaf = raw_cid(b"not fetched yet");
    let absent_node = node(&[(raw_cid(b"grandchild"), 10)]).0;
    let root = node(&[
        (present.0, present.1.len()),
        (absent_leaf, 15),
        (absent_node, 60),
    ]);
    put(&fx.store, &present).await;
    put(&fx.store, &root).await;
    let absent_root = raw_cid(b"pinned before fetching");
    fx.store.pin("station", root.0).await.unwrap();
    fx.store.pin("pending", absent_root).await.unwrap();

    let report = fx.store.gc(Duration::ZERO).await.unwrap();
    let missing: HashSet<Cid> = report.missing_children.iter().copied().collect();
    assert_eq!(
        missing,
        HashSet::from([absent_leaf, absent_node, absent_root])
    );
    assert_eq!(report.missing_children.len(), 3, "each reported once");
    assert_eq!((report.removed_blocks, report.reachable_blocks), (0, 2));
}

#[rstest]
#[case::memory(Backend::Memory)]
#[case::files(Backend::Files)]
#[case::sled(Backend::Sled)]
#[tokio::test]
async fn gc_keeps_unpinned_blocks_younger_than_the_cutoff(#[case] backend: Backend) {
    let fx = open(backend).await;
    let (old, refreshed, young) = (raw(b"old"), raw(b"refreshed"), raw(b"young"));
    put(&fx.store, &old).await;
    put(&fx.store, &refreshed).await;
    let boundary = time_boundary().await;
    put(&fx.store, &young).await;
    // A second put of an old block makes it young again.
    put(&fx.store, &refreshed).await;

    let report = fx.store.gc_inserted_before(boundary).await.unwrap();
    assert_eq!((report.removed_blocks, report.removed_bytes), (1, 3));
    assert_eq!(
        stored(&fx.store).await,
        HashSet::from([refreshed.0, young.0])
    );
}

#[rstest]
#[case::memory(Backend::Memory)]
#[case::files(Backend::Files)]
#[case::sled(Backend::Sled)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_put_during_gc_are_never_lost(#[case] backend: Backend) {
    let fx = open(backend).await;
    let old: Vec<_> = (0..200u32).map(|i| raw(&i.to_le_bytes())).collect();
    for block in &old {
        put(&fx.store, block).await;
    }
    let boundary = time_boundary().await;

    // While GC sweeps everything older than the boundary, re-put every other old block
    // and add new ones: whatever the interleaving, all of those must survive.
    let writer = {
        let store = fx.store.clone();
        let old = old.clone();
        tokio::spawn(async move {
            let mut must_survive = HashSet::new();
            for (i, block) in old.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
                store.put(&block.0, block.1.clone()).await.unwrap();
                let fresh = raw(format!("fresh {i}").as_bytes());
                store.put(&fresh.0, fresh.1).await.unwrap();
                must_survive.extend([block.0, fresh.0]);
            }
            must_survive
        })
    };
    let report = fx.store.gc_inserted_before(boundary).await.unwrap();
    let must_survive = tokio::time::timeout(Duration::from_secs(30), writer)
        .await
        .expect("writer finishes")
        .unwrap();

    let now_stored = stored(&fx.store).await;
    assert!(must_survive.is_subset(&now_stored));
    // Odd old blocks were never refreshed, so this run or the next removes them. (Even
    // ones may also have been removed before their re-put, which then stored them again.)
    let again = fx.store.gc_inserted_before(boundary).await.unwrap();
    let removed = report.removed_blocks + again.removed_blocks;
    assert!((100..=200).contains(&removed), "removed {removed}");
    assert_eq!(stored(&fx.store).await, must_survive);
}

#[rstest]
#[case::memory(Backend::Memory)]
#[case::files(Backend::Files)]
#[case::sled(Backend::Sled)]
#[tokio::test]
async fn gc_follows_cid_v0_links_to_blocks_stored_as_v1(#[case] backend: Backend) {
    let fx = open(backend).await;
    let child_bytes = PbNode {
        links: vec![],
        data: Some(vec![8, 2, 0x12, 1, b'x', 0x18, 1]),
    }
    .encode();
    let child_v1 = cid_v1(DAG_PB, &child_bytes);
    fx.store.put(&child_v1, child_bytes.clone()).await.unwrap();
    let root = node(&[(cid_v0(&child_bytes), child_bytes.len())]);
    put(&fx.store, &root).await;
    fx.store.pin("kubo-style", root.0).await.unwrap();

    let report = fx.store.gc(Duration::ZERO).await.unwrap();
    assert_eq!(report.removed_blocks, 0);
    assert!(report.missing_children.is_empty());
}

// ---------------------------------------------------------------- station state

#[rstest]
#[case::memory(Backend::Memory)]
#[case::files(Backend::Files)]
#[case::sled(Backend::Sled)]
#[tokio::test]
async fn station_key_is_created_once(#[case] backend: Backend) {
    let fx = open(backend).await;
    assert_eq!(fx.store.station_key().await.unwrap(), None);
    let key = fx.store.load_or_create_key().await.unwrap();
    assert_eq!(fx.store.load_or_create_key().await.unwrap(), key);
    assert_eq!(fx.store.station_key().await.unwrap(), Some(key));
    let other = Store::open_in_memory().load_or_create_key().await.unwrap();
    assert_ne!(other, fx.store.load_or_create_key().await.unwrap());
}

#[rstest]
#[case::memory(Backend::Memory)]
#[case::files(Backend::Files)]
#[case::sled(Backend::Sled)]
#[tokio::test]
async fn key_export_and_import_round_trip(#[case] backend: Backend) {
    let fx = open(backend).await;
    let files = tempfile::tempdir().unwrap();
    let path = files.path().join("station.key");
    assert!(matches!(
        fx.store.export_key(&path).await,
        Err(StoreError::NoKey)
    ));

    let key = fx.store.load_or_create_key().await.unwrap();
    fx.store.export_key(&path).await.unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes.len(), 68);
    assert_eq!(&bytes[..4], &[0x08, 0x01, 0x12, 0x40]);

    let fresh = Store::open_in_memory();
    assert_eq!(fresh.import_key(&path).await.unwrap(), key);
    assert_eq!(fresh.station_key().await.unwrap(), Some(key.clone()));
    assert_eq!(
        fresh.import_key(&path).await.unwrap(),
        key,
        "same key again is fine"
    );

    let other = Store::open_in_memory();
    other.load_or_create_key().await.unwrap();
    assert!(matches!(
        other.import_key(&path).await,
        Err(StoreError::KeyExists)
    ));
    let garbage = files.path().join("garbage.key");
    std::fs::write(&garbage, b"not a key").unwrap();
    let err = Store::open_in_memory()
        .import_key(&garbage)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::KeyFile { path, .. } if path == &garbage),
        "{err}"
    );
}

#[rstest]
#[case::memory(Backend::Memory)]
#[case::files(Backend::Files)]
#[case::sled(Backend::Sled)]
#[tokio::test]
async fn ipns_sequence_only_grows(#[case] backend: Backend) {
    let fx = open(backend).await;
    assert_eq!(fx.store.ipns_sequence().await.unwrap(), 0);
    assert_eq!(fx.store.next_ipns_sequence().await.unwrap(), 1);
    assert_eq!(fx.store.next_ipns_sequence().await.unwrap(), 2);
    assert_eq!(fx.store.ipns_sequence().await.unwrap(), 2);
    assert_eq!(fx.store.raise_ipns_sequence(100).await.unwrap(), 100);
    assert_eq!(
        fx.store.raise_ipns_sequence(50).await.unwrap(),
        100,
        "never lowered"
    );
    assert_eq!(fx.store.next_ipns_sequence().await.unwrap(), 101);
    assert_eq!(
        fx.store.raise_ipns_sequence(u64::MAX).await.unwrap(),
        u64::MAX
    );
    assert!(matches!(
        fx.store.next_ipns_sequence().await,
        Err(StoreError::SequenceExhausted)
    ));
    assert_eq!(fx.store.ipns_sequence().await.unwrap(), u64::MAX);
}

#[rstest]
#[case::memory(Backend::Memory)]
#[case::files(Backend::Files)]
#[case::sled(Backend::Sled)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_ipns_sequences_are_distinct(#[case] backend: Backend) {
    let fx = open(backend).await;
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let store = fx.store.clone();
            tokio::spawn(async move { store.next_ipns_sequence().await.unwrap() })
        })
        .collect();
    let mut got = HashSet::new();
    for task in tasks {
        let sequence = tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("sequence handed out")
            .unwrap();
        assert!(got.insert(sequence), "sequence {sequence} handed out twice");
    }
    assert_eq!(got, (1..=16).collect());
}

#[rstest]
#[case::memory(Backend::Memory)]
#[case::files(Backend::Files)]
#[case::sled(Backend::Sled)]
#[tokio::test]
async fn media_sequence_playout_token_and_generic_state(#[case] backend: Backend) {
    let fx = open(backend).await;
    assert_eq!(fx.store.media_sequence().await.unwrap(), None);
    fx.store.set_media_sequence(0).await.unwrap();
    assert_eq!(fx.store.media_sequence().await.unwrap(), Some(0));
    fx.store.set_media_sequence(4711).await.unwrap();
    assert_eq!(fx.store.media_sequence().await.unwrap(), Some(4711));

    assert_eq!(fx.store.playout_position().await.unwrap(), None);
    fx.store
        .set_playout_position(b"track 3 @ 12.5s".to_vec())
        .await
        .unwrap();
    assert_eq!(
        fx.store.playout_position().await.unwrap().as_deref(),
        Some(&b"track 3 @ 12.5s"[..])
    );

    let token = fx.store.load_or_create_api_token().await.unwrap();
    assert_eq!(token.len(), 64);
    assert!(token
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    assert_eq!(fx.store.load_or_create_api_token().await.unwrap(), token);

    // Generic keys cannot clobber the typed entries, even with the same name.
    assert_eq!(fx.store.state_get("ipns/sequence").await.unwrap(), None);
    fx.store
        .state_set("ipns/sequence", b"x".to_vec())
        .await
        .unwrap();
    assert_eq!(fx.store.ipns_sequence().await.unwrap(), 0);
    assert_eq!(
        fx.store
            .state_set("ipns/sequence", b"y".to_vec())
            .await
            .unwrap(),
        Some(b"x".to_vec())
    );
    assert_eq!(
        fx.store.state_remove("ipns/sequence").await.unwrap(),
        Some(b"y".to_vec())
    );
    assert_eq!(fx.store.state_get("ipns/sequence").await.unwrap(), None);
}

#[rstest]
#[case::memory(Backend::Memory)]
#[case::files(Backend::Files)]
#[case::sled(Backend::Sled)]
#[tokio::test]
async fn progress_is_saved_as_one_unit(#[case] backend: Backend) {
    let fx = open(backend).await;
    // (media sequence, playout position, the "station" state value) as stored now.
    let stored = || async {
        (
            fx.store.media_sequence().await.unwrap(),
            fx.store.playout_position().await.unwrap(),
            fx.store.state_get("station").await.unwrap(),
        )
    };
    fx.store
        .save_progress(
            12,
            Some(b"at track 4".to_vec()),
            ("station", b"{}".to_vec()),
        )
        .await
        .unwrap();
    assert_eq!(
        stored().await,
        (Some(12), Some(b"at track 4".to_vec()), Some(b"{}".to_vec()))
    );
    // Without a position, the stored one stays.
    fx.store
        .save_progress(13, None, ("station", b"{\"n\":13}".to_vec()))
        .await
        .unwrap();
    assert_eq!(
        stored().await,
        (
            Some(13),
            Some(b"at track 4".to_vec()),
            Some(b"{\"n\":13}".to_vec())
        )
    );
}

// ---------------------------------------------------------------- persistent only

#[rstest]
#[case::files(Backend::Files)]
#[case::sled(Backend::Sled)]
#[tokio::test]
async fn persistent_store_keeps_everything_across_reopen(#[case] backend: Backend) {
    let fx = open(backend).await;
    let path = fx.dir.as_ref().unwrap().path().join("db");
    let tree = Tree::store(&fx.store, "persisted").await;
    let loose = raw(b"loose");
    put(&fx.store, &loose).await;
    fx.store.pin("station", tree.root.0).await.unwrap();
    let key = fx.store.load_or_create_key().await.unwrap();
    let token = fx.store.load_or_create_api_token().await.unwrap();
    for _ in 0..3 {
        fx.store.next_ipns_sequence().await.unwrap();
    }
    fx.store.set_media_sequence(77).await.unwrap();
    fx.store.set_playout_position(vec![1, 2, 3]).await.unwrap();
    fx.store.state_set("custom", vec![9]).await.unwrap();
    let loose_info = fx.store.block_info(&loose.0).await.unwrap().unwrap();
    fx.store.flush().await.unwrap();
    drop(fx.store);

    let store = backend.open_at(&path).await.unwrap();
    let mut expected = tree.cids();
    expected.insert(loose.0);
    assert_eq!(stored(&store).await, expected);
    for block in tree.leaves.iter().chain([&tree.dir, &tree.root, &loose]) {
        assert_eq!(store.get(&block.0).await.unwrap().as_ref(), Some(&block.1));
    }
    assert_eq!(store.block_info(&loose.0).await.unwrap(), Some(loose_info));
    assert_eq!(
        store.pins().await.unwrap(),
        vec![("station".into(), tree.root.0)]
    );
    assert_eq!(store.load_or_create_key().await.unwrap(), key);
    assert_eq!(store.load_or_create_api_token().await.unwrap(), token);
    assert_eq!(store.ipns_sequence().await.unwrap(), 3);
    assert_eq!(store.next_ipns_sequence().await.unwrap(), 4);
    assert_eq!(store.media_sequence().await.unwrap(), Some(77));
    assert_eq!(store.playout_position().await.unwrap(), Some(vec![1, 2, 3]));
    assert_eq!(store.state_get("custom").await.unwrap(), Some(vec![9]));

    // The pin still protects its tree after the reopen.
    let report = store.gc(Duration::ZERO).await.unwrap();
    assert_eq!(report.removed_blocks, 1);
    assert_eq!(stored(&store).await, tree.cids());
}

#[rstest]
#[case::files(Backend::Files)]
#[case::sled(Backend::Sled)]
#[tokio::test]
async fn persistent_store_refuses_a_second_concurrent_open(#[case] backend: Backend) {
    let fx = open(backend).await;
    let path = fx.dir.as_ref().unwrap().path().join("db");
    let err = match backend.open_at(&path).await {
        Ok(_) => panic!("a second open of a locked database succeeded"),
        Err(err) => err,
    };
    assert!(
        matches!(&err, StoreError::Open { path: p, .. } if p == &path),
        "{err}"
    );
}

#[tokio::test]
async fn memory_store_is_not_persistent() {
    assert!(!Store::open_in_memory().is_persistent());
    // Flushing a memory store is a no-op, not an error.
    Store::open_in_memory().flush().await.unwrap();
}
