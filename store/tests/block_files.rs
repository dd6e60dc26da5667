//! The persistent store's block files: layout on disk, migration from the sled-only layout
//! of earlier versions, and what happens when files and metadata disagree after a crash.

use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use ipfm_protocol::cid::{cid_v1, raw_cid, DAG_PB};
use ipfm_protocol::dagpb::{PbLink, PbNode};
use ipfm_store::{BlockBackend, Blockstore, Cid, Store, StoreError, BLOCKS_DIR};
use tempfile::TempDir;

/// The file that holds block `cid` (CIDv1) in the store at `db`:
/// `blocks/<next-to-last two characters>/<cid>.data`.
fn block_file(db: &Path, cid: &Cid) -> PathBuf {
    let name = cid.to_string();
    let shard = &name[name.len() - 2..name.len() - 1];
    db.join(BLOCKS_DIR).join(shard).join(format!("{name}.data"))
}

/// Every file under `blocks/`, as paths relative to it.
fn files_under_blocks(db: &Path) -> Vec<PathBuf> {
    let root = db.join(BLOCKS_DIR);
    let mut files = Vec::new();
    for shard in std::fs::read_dir(&root).unwrap() {
        let shard = shard.unwrap().path();
        for file in std::fs::read_dir(&shard).unwrap() {
            files.push(file.unwrap().path().strip_prefix(&root).unwrap().into());
        }
    }
    files.sort();
    files
}

fn random_block(size: usize) -> (Cid, Vec<u8>) {
    let bytes: Vec<u8> = (0..size).map(|_| rand::random()).collect();
    (raw_cid(&bytes), bytes)
}

fn scratch() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    (dir, db)
}

#[tokio::test]
async fn blocks_are_files_named_by_cid_in_shard_directories() {
    let (_dir, db) = scratch();
    let store = Store::open(&db).await.unwrap();
    let shards = std::fs::read_dir(db.join(BLOCKS_DIR)).unwrap().count();
    assert_eq!(shards, 32, "every shard directory is made at open");
    let (cid, bytes) = random_block(300 * 1024);
    store.put(&cid, bytes.clone()).await.unwrap();

    let path = block_file(&db, &cid);
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    assert_eq!(
        files_under_blocks(&db).len(),
        1,
        "no temporary file left behind"
    );

    // A second put only refreshes the time: the file is not rewritten (same inode).
    use std::os::unix::fs::MetadataExt;
    let inode = std::fs::metadata(&path).unwrap().ino();
    let first = store.block_info(&cid).await.unwrap().unwrap().inserted_at;
    tokio::time::sleep(Duration::from_millis(3)).await;
    store.put(&cid, bytes.clone()).await.unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().ino(), inode);
    assert!(store.block_info(&cid).await.unwrap().unwrap().inserted_at > first);

    assert!(store.delete(&cid).await.unwrap());
    assert!(!path.exists(), "delete unlinks the file");
    assert!(!store.delete(&cid).await.unwrap());
}

#[tokio::test]
async fn a_missing_or_truncated_block_file_reads_as_absent_and_is_dropped() {
    let (_dir, db) = scratch();
    let store = Store::open(&db).await.unwrap();
    let blocks: Vec<_> = (0..3).map(|_| random_block(4096)).collect();
    for (cid, bytes) in &blocks {
        store.put(cid, bytes.clone()).await.unwrap();
    }
    let [(truncated, _), (missing, _), (intact, intact_bytes)] = &blocks[..] else {
        unreachable!()
    };
    // What a power loss can do to files the kernel had not written back.
    std::fs::OpenOptions::new()
        .write(true)
        .open(block_file(&db, truncated))
        .unwrap()
        .set_len(100)
        .unwrap();
    std::fs::remove_file(block_file(&db, missing)).unwrap();

    for cid in [truncated, missing] {
        assert_eq!(store.get(cid).await.unwrap(), None, "{cid}");
        assert!(!store.has(cid).await.unwrap(), "{cid}: metadata dropped");
        assert_eq!(store.block_info(cid).await.unwrap(), None);
    }
    assert!(
        !block_file(&db, truncated).exists(),
        "the short file is removed too"
    );
    assert_eq!(
        store.get(intact).await.unwrap().as_ref(),
        Some(intact_bytes)
    );
    assert_eq!(store.len().await.unwrap(), 1);

    // Stored again, the block is whole again.
    let (cid, bytes) = &blocks[0];
    store.put(cid, bytes.clone()).await.unwrap();
    assert_eq!(store.get(cid).await.unwrap().as_ref(), Some(bytes));
}

#[tokio::test]
async fn reopening_drops_entries_without_files_and_removes_files_without_entries() {
    let (_dir, db) = scratch();
    let kept = random_block(2000);
    let lost = random_block(2000);
    let orphan = random_block(2000);
    {
        let store = Store::open(&db).await.unwrap();
        for (cid, bytes) in [&kept, &lost, &orphan] {
            store.put(cid, bytes.clone()).await.unwrap();
        }
        store.flush().await.unwrap();
    }
    // A crash between a delete's metadata removal and its unlink leaves the file: simulate
    // it by putting the file back after a real delete.
    {
        let store = Store::open(&db).await.unwrap();
        store.delete(&orphan.0).await.unwrap();
        store.flush().await.unwrap();
    }
    std::fs::create_dir_all(block_file(&db, &orphan.0).parent().unwrap()).unwrap();
    std::fs::write(block_file(&db, &orphan.0), &orphan.1).unwrap();
    // A write interrupted before its rename, and a file lost to a power failure.
    let temp = block_file(&db, &kept.0).with_file_name(".interrupted.1-1.tmp");
    std::fs::write(&temp, b"half a blo").unwrap();
    std::fs::remove_file(block_file(&db, &lost.0)).unwrap();
    let stray = db.join(BLOCKS_DIR).join("notes.txt");
    std::fs::write(&stray, b"not ours").unwrap();

    let store = Store::open(&db).await.unwrap();
    assert!(
        !store.has(&lost.0).await.unwrap(),
        "entry without file dropped at open"
    );
    assert!(!store.has(&orphan.0).await.unwrap());
    assert!(!block_file(&db, &orphan.0).exists(), "orphan file removed");
    assert!(!temp.exists(), "temporary file removed");
    assert!(
        stray.exists(),
        "files that are not block files are left alone"
    );
    assert_eq!(store.cids().await.unwrap(), vec![kept.0]);
    assert_eq!(store.get(&kept.0).await.unwrap(), Some(kept.1));
}

/// What the version before block files wrote: block bytes in the `blocks` tree, metadata
/// (insertion time ms ‖ size, both u64 BE) in `block_meta`, pins in `pins`.
fn write_old_layout(db: &Path, blocks: &[(Cid, Vec<u8>)], inserted_at_ms: u64, pin: Cid) {
    let sled = sled::open(db).unwrap();
    let (tree, meta, pins) = (
        sled.open_tree("blocks").unwrap(),
        sled.open_tree("block_meta").unwrap(),
        sled.open_tree("pins").unwrap(),
    );
    for (cid, bytes) in blocks {
        tree.insert(cid.to_bytes(), bytes.as_slice()).unwrap();
        let mut value = inserted_at_ms.to_be_bytes().to_vec();
        value.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
        meta.insert(cid.to_bytes(), value).unwrap();
    }
    pins.insert("station", pin.to_bytes()).unwrap();
    sled.flush().unwrap();
}

#[tokio::test]
async fn opening_a_store_of_the_sled_layout_moves_every_block_into_files() {
    let (_dir, db) = scratch();
    // More blocks than one migration batch, of mixed sizes, under a pinned directory.
    let mut blocks: Vec<_> = (0..300)
        .map(|i| random_block(if i % 50 == 0 { 256 * 1024 } else { 1 + i * 7 }))
        .collect();
    let links = blocks
        .iter()
        .enumerate()
        .map(|(i, (cid, bytes))| PbLink {
            hash: *cid,
            name: Some(format!("{i}.ts")),
            tsize: Some(bytes.len() as u64),
        })
        .collect();
    let dir_bytes = PbNode {
        links,
        data: Some(vec![8, 1]),
    }
    .encode();
    let root = cid_v1(DAG_PB, &dir_bytes);
    blocks.push((root, dir_bytes));
    let inserted_at_ms = 1_700_000_000_000;
    write_old_layout(&db, &blocks, inserted_at_ms, root);

    let store = Store::open(&db).await.unwrap();
    assert_eq!(store.len().await.unwrap(), blocks.len() as u64);
    for (cid, bytes) in &blocks {
        assert_eq!(store.get(cid).await.unwrap().as_ref(), Some(bytes), "{cid}");
        assert_eq!(std::fs::read(block_file(&db, cid)).unwrap(), *bytes);
        let info = store.block_info(cid).await.unwrap().unwrap();
        assert_eq!(
            info.inserted_at,
            UNIX_EPOCH + Duration::from_millis(inserted_at_ms),
            "insertion time carried over"
        );
    }
    assert_eq!(files_under_blocks(&db).len(), blocks.len());
    // The pin still protects everything (GC with no age limit removes nothing).
    assert_eq!(store.gc(Duration::ZERO).await.unwrap().removed_blocks, 0);
    store.flush().await.unwrap();
    drop(store);

    // The old tree is gone, and a second open has nothing left to move.
    {
        let sled = sled::open(&db).unwrap();
        assert!(!sled
            .tree_names()
            .iter()
            .any(|name| name == b"blocks".as_slice()));
    }
    let store = Store::open(&db).await.unwrap();
    assert_eq!(store.len().await.unwrap(), blocks.len() as u64);
    let (cid, bytes) = &blocks[17];
    assert_eq!(store.get(cid).await.unwrap().as_ref(), Some(bytes));
}

#[tokio::test]
async fn migration_drops_old_blocks_that_do_not_match_their_cid() {
    let (_dir, db) = scratch();
    let good = random_block(1000);
    let (bad_cid, _) = random_block(1000);
    let corrupt = (bad_cid, vec![0; 1000]);
    write_old_layout(&db, &[good.clone(), corrupt], 1, good.0);

    let store = Store::open(&db).await.unwrap();
    assert_eq!(store.cids().await.unwrap(), vec![good.0]);
    assert!(!block_file(&db, &bad_cid).exists());
}

#[tokio::test]
async fn the_sled_block_backend_refuses_a_store_with_block_files() {
    let (_dir, db) = scratch();
    let block = random_block(10);
    {
        let store = Store::open(&db).await.unwrap();
        store.put(&block.0, block.1.clone()).await.unwrap();
    }
    let err = Store::open_with(&db, BlockBackend::Sled).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidSetting { .. }), "{err}");
    // The default backend still opens it, block intact.
    let store = Store::open(&db).await.unwrap();
    assert_eq!(store.get(&block.0).await.unwrap(), Some(block.1));
}

/// sled 0.34 reads `snap.*.generating` files at open, so a process killed while writing a
/// snapshot left a store that would not open ("Read corrupted data"); the store removes
/// such an unfinished snapshot and opens with everything it had.
#[tokio::test]
async fn an_unfinished_sled_snapshot_left_by_a_crash_does_not_stop_the_open() {
    let (_dir, db) = scratch();
    let (cid, bytes) = random_block(1000);
    {
        let store = Store::open(&db).await.unwrap();
        store.put(&cid, bytes.clone()).await.unwrap();
        store.flush().await.unwrap();
    }
    // Sorts after any real snapshot name, so sled picks it; too short to be whole.
    let unfinished = db.join("snap.FFFFFFFFFFFFFFFF.generating");
    std::fs::write(&unfinished, b"partial").unwrap();

    let store = Store::open(&db).await.unwrap();
    assert!(!unfinished.exists(), "the unfinished snapshot is removed");
    assert_eq!(store.get(&cid).await.unwrap(), Some(bytes));
}
