//! ipfm against the reference JavaScript implementations from npm:
//! - `ipfs-unixfs-importer` with Kubo's `ipfs add` parameters: the builder's default CIDv1
//!   raw-leaves mode (= `ipfs add --cid-version=1`), its CIDv0 mode, and a nested directory;
//! - `ipns`: records signed by ipfm pass npm's `ipnsValidator`, records made by npm (Ed25519
//!   and RSA keys) pass ipfm's parser and validator, and tampered records fail both.
//!
//! Needs the harness from `make deps` (`tests/interop/node_modules`).

use crate::common;

use std::time::{Duration, SystemTime};

use common::{
    build_dir_tree, check_file_dag, flip_in_field, flip_value_in_signed_data, importer_cids,
    lookup, npm_create_record, npm_validate, write_nested_dir, write_sized_files, CidComparison,
    NpmKeyType, NpmVerdict, IPNS_FIELD_SIGNATURE_V2, IPNS_FIELD_VALUE,
};
use ed25519_dalek::SigningKey;
use ipfm_protocol::builder::{build_file, CidMode};
use ipfm_protocol::ipns::IpnsRecord;
use ipfm_protocol::peer::PeerId;

fn file_cids_match_importer(mode: CidMode) {
    let dir = tempfile::tempdir().expect("temp dir");
    let files = write_sized_files(dir.path());
    let paths: Vec<_> = files.iter().map(|(path, _)| path.clone()).collect();
    let reference = importer_cids(&paths, mode == CidMode::V0DagPbLeaves);

    let mut comparison = CidComparison::new("ipfs-unixfs-importer");
    for (path, bytes) in &files {
        let label = format!("{mode:?} {} B", bytes.len());
        let (root, blocks) = build_file(bytes, mode);
        check_file_dag(&label, &root, &blocks, bytes.len());
        comparison.add(label, &root.cid, lookup(&reference, path));
    }
    comparison.assert_all_equal();
}

#[test]
fn file_root_cids_match_importer_in_v1_raw_leaves_mode() {
    file_cids_match_importer(CidMode::V1RawLeaves);
}

#[test]
fn file_root_cids_match_importer_in_v0_dag_pb_leaves_mode() {
    file_cids_match_importer(CidMode::V0DagPbLeaves);
}

#[test]
fn nested_unicode_directory_cid_matches_importer() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("station");
    write_nested_dir(&root);

    let mut comparison = CidComparison::new("ipfs-unixfs-importer");
    for mode in [CidMode::V1RawLeaves, CidMode::V0DagPbLeaves] {
        let reference = importer_cids(std::slice::from_ref(&root), mode == CidMode::V0DagPbLeaves);
        let (ours, _tsize) = build_dir_tree(&root, mode);
        comparison.add(
            format!("{mode:?} directory"),
            &ours,
            lookup(&reference, &root),
        );
    }
    comparison.assert_all_equal();
}

// ------------------------------------------------------------------------------- IPNS

const VALUE: &str = "/ipfs/bafybeifhujowqqwlvry2gch2ym2f7xuduxhxfoj2v7vbyrx3cqdva7anzm";
const LIFETIME: Duration = Duration::from_secs(3600);

/// A fixed key, so failures are reproducible.
fn station_key(seed: u8) -> (SigningKey, PeerId) {
    let key = SigningKey::from_bytes(&[seed; 32]);
    let peer = PeerId::from_ed25519(&key.verifying_key());
    (key, peer)
}

fn ipfm_record(key: &SigningKey, sequence: u64) -> IpnsRecord {
    IpnsRecord::create(
        key,
        VALUE,
        sequence,
        SystemTime::now() + LIFETIME,
        Duration::from_secs(300),
    )
}

/// ipfm's full check of received bytes: parse, then validate for `name` now.
fn ipfm_accepts(bytes: &[u8], name: &PeerId) -> Result<IpnsRecord, String> {
    let record = IpnsRecord::from_bytes(bytes).map_err(|e| format!("parse: {e}"))?;
    record
        .validate(name, SystemTime::now())
        .map_err(|e| format!("validate: {e}"))?;
    Ok(record)
}

#[test]
fn ipfm_signed_records_are_accepted_by_npm_ipns() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let (key, peer) = station_key(7);
    // Sequence 0 (a default protobuf value that must still be written) and one above 2^53
    // (where a JavaScript number would lose precision).
    for sequence in [0, 42, (1 << 60) + 3] {
        let record = ipfm_record(&key, sequence);
        match npm_validate(&record.to_bytes(), &peer.to_ipns_name(), scratch.path()) {
            NpmVerdict::Valid {
                value,
                sequence: npm_sequence,
            } => {
                assert_eq!(
                    value, VALUE,
                    "value as npm ipns reads it (sequence {sequence})"
                );
                assert_eq!(npm_sequence, sequence, "sequence as npm ipns reads it");
            }
            NpmVerdict::Rejected { error } => {
                panic!("npm ipns rejected ipfm's record with sequence {sequence}: {error}")
            }
        }
    }
    // The peer id form of the name (12D3KooW…) names the same key.
    let record = ipfm_record(&key, 1);
    let verdict = npm_validate(&record.to_bytes(), &peer.to_string(), scratch.path());
    assert!(
        matches!(verdict, NpmVerdict::Valid { .. }),
        "npm ipns rejected ipfm's record under the name {peer}: {verdict:?}"
    );
}

#[test]
fn npm_ipns_records_are_parsed_and_validated_by_ipfm() {
    npm_records_are_parsed_and_validated_by_ipfm(NpmKeyType::Ed25519);
}

/// Older Kubo identities are RSA: their names hash the key, and their records carry it.
#[test]
fn npm_ipns_records_signed_with_rsa_keys_are_validated_by_ipfm() {
    npm_records_are_parsed_and_validated_by_ipfm(NpmKeyType::Rsa);
}

/// secp256k1 names (`16Uiu2…` peer ids) inline the compressed key.
#[test]
fn npm_ipns_records_signed_with_secp256k1_keys_are_validated_by_ipfm() {
    npm_records_are_parsed_and_validated_by_ipfm(NpmKeyType::Secp256k1);
}

fn npm_records_are_parsed_and_validated_by_ipfm(key_type: NpmKeyType) {
    let scratch = tempfile::tempdir().expect("temp dir");
    for sequence in [7, (1 << 60) + 3] {
        let npm = npm_create_record(sequence, key_type, scratch.path());
        let name = PeerId::parse(&npm.name)
            .unwrap_or_else(|e| panic!("ipfm cannot parse npm's name {}: {e}", npm.name));
        let by_peer_id = PeerId::parse(&npm.peer_id)
            .unwrap_or_else(|e| panic!("ipfm cannot parse npm's peer id {}: {e}", npm.peer_id));
        assert_eq!(name, by_peer_id, "k51 name and peer id of one key");
        assert_eq!(
            name.ed25519_public_key().is_some(),
            key_type == NpmKeyType::Ed25519,
            "only an Ed25519 name holds an Ed25519 key ({key_type:?}: {name})"
        );
        assert_eq!(
            name.to_ipns_name(),
            npm.name,
            "ipfm prints the name as npm does"
        );
        assert_eq!(
            name.to_string(),
            npm.peer_id,
            "ipfm prints the peer id as npm does"
        );

        let record = ipfm_accepts(&npm.bytes, &name)
            .unwrap_or_else(|e| panic!("ipfm rejected npm's record {npm:?}: {e}"));
        assert_eq!(record.value_str(), Some(npm.value.as_str()), "value");
        assert_eq!(record.sequence(), npm.sequence, "sequence");
        assert_eq!(record.sequence(), sequence, "sequence");

        // The EOL is one hour away: two hours from now the record must be refused.
        let later = SystemTime::now() + 2 * LIFETIME;
        assert!(
            record.validate(&name, later).is_err(),
            "ipfm accepted npm's record after its EOL"
        );
        // And it is no other station's record.
        let (_, other) = station_key(9);
        assert!(
            record.validate(&other, SystemTime::now()).is_err(),
            "ipfm accepted npm's record under another key's name"
        );
    }
}

/// One record, tampered with in several ways, must be refused by ipfm and npm ipns alike.
fn assert_tampering_rejected_by_both(origin: &str, original: &[u8], name: &PeerId, value: &str) {
    let scratch = tempfile::tempdir().expect("temp dir");
    // The unmodified record is valid, so the rejections below are caused by the tampering.
    ipfm_accepts(original, name)
        .unwrap_or_else(|e| panic!("ipfm rejected the untampered {origin} record: {e}"));

    let signature_v2_len = common::protobuf_field(original, IPNS_FIELD_SIGNATURE_V2).len();
    let value_len = common::protobuf_field(original, IPNS_FIELD_VALUE).len();
    let tampered = [
        (
            "value in the signed data",
            flip_value_in_signed_data(original, value),
        ),
        (
            "signatureV2",
            flip_in_field(original, IPNS_FIELD_SIGNATURE_V2, signature_v2_len / 2),
        ),
        (
            "protobuf V1 value",
            flip_in_field(original, IPNS_FIELD_VALUE, value_len - 1),
        ),
    ];
    let mut accepted = Vec::new();
    for (what, bytes) in &tampered {
        if let Ok(record) = ipfm_accepts(bytes, name) {
            accepted.push(format!("ipfm accepted it with {what} flipped: {record:?}"));
        }
        if let NpmVerdict::Valid { value, .. } =
            npm_validate(bytes, &name.to_ipns_name(), scratch.path())
        {
            accepted.push(format!(
                "npm ipns accepted it with {what} flipped (value {value})"
            ));
        }
    }
    // Untampered, but presented under another station's name.
    let (_, other) = station_key(9);
    if ipfm_accepts(original, &other).is_ok() {
        accepted.push("ipfm accepted it under another key's name".into());
    }
    if let NpmVerdict::Valid { .. } = npm_validate(original, &other.to_ipns_name(), scratch.path())
    {
        accepted.push("npm ipns accepted it under another key's name".into());
    }
    assert!(
        accepted.is_empty(),
        "tampered {origin} record:\n{}",
        accepted.join("\n")
    );
}

#[test]
fn tampered_ipfm_record_is_rejected_by_both() {
    let (key, peer) = station_key(7);
    let record = ipfm_record(&key, 5);
    assert_tampering_rejected_by_both("ipfm", &record.to_bytes(), &peer, VALUE);
}

#[test]
fn tampered_npm_record_is_rejected_by_both() {
    let scratch = tempfile::tempdir().expect("temp dir");
    for key_type in [NpmKeyType::Ed25519, NpmKeyType::Rsa, NpmKeyType::Secp256k1] {
        let npm = npm_create_record(5, key_type, scratch.path());
        let name = PeerId::parse(&npm.name).expect("npm's name parses");
        let origin = format!("npm ipns ({key_type:?} key)");
        assert_tampering_rejected_by_both(&origin, &npm.bytes, &name, &npm.value);
    }
}
