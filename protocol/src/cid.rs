//! CIDs as ipfm makes them: CIDv1 with sha2-256, codecs raw / dag-pb / libp2p-key,
//! plus CIDv0 (dag-pb, base58btc) for interop with Kubo's default `ipfs add`.

use ::cid::Cid;
use multihash::Multihash;
use sha2::{Digest, Sha256};

/// Multicodec of raw binary blocks (`bafkrei…`).
pub const RAW: u64 = 0x55;
/// Multicodec of dag-pb nodes (`bafybei…`).
pub const DAG_PB: u64 = 0x70;
/// Multicodec of DAG-CBOR (used in CAR headers and IPNS record data).
pub const DAG_CBOR: u64 = 0x71;
/// Multicodec of libp2p public keys (IPNS names, `k51…`).
pub const LIBP2P_KEY: u64 = 0x72;
/// Multihash code of sha2-256.
pub const SHA2_256: u64 = 0x12;
/// Multihash code of the identity "hash" (the bytes themselves).
pub const IDENTITY: u64 = 0x00;

/// Errors of CID checks. CIDs are boxed to keep `Result<_, CidError>` small.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CidError {
    #[error("unsupported multihash code {0:#x} (only sha2-256 and identity are supported)")]
    UnsupportedHash(u64),
    #[error("block does not match its CID {cid}: bytes hash to {actual}")]
    HashMismatch { cid: Box<Cid>, actual: Box<Cid> },
    #[error("identity multihash too long ({0} bytes)")]
    IdentityTooLong(usize),
}

/// The sha2-256 multihash of `bytes`.
pub fn sha256_multihash(bytes: &[u8]) -> Multihash<64> {
    let digest = Sha256::digest(bytes);
    Multihash::wrap(SHA2_256, &digest).expect("32-byte digest fits in 64")
}

/// CIDv1 of `bytes` under `codec`, hashed with sha2-256.
pub fn cid_v1(codec: u64, bytes: &[u8]) -> Cid {
    Cid::new_v1(codec, sha256_multihash(bytes))
}

/// CIDv1 of a raw block.
pub fn raw_cid(bytes: &[u8]) -> Cid {
    cid_v1(RAW, bytes)
}

/// CIDv0 (dag-pb, sha2-256) of an encoded dag-pb node.
pub fn cid_v0(dag_pb_bytes: &[u8]) -> Cid {
    Cid::new_v0(sha256_multihash(dag_pb_bytes)).expect("sha2-256 multihash is a valid CIDv0")
}

/// Recompute the CID of `bytes` with the same version, codec and hash function as `cid`.
pub fn recompute(cid: &Cid, bytes: &[u8]) -> Result<Cid, CidError> {
    let mh = match cid.hash().code() {
        SHA2_256 => sha256_multihash(bytes),
        IDENTITY => {
            Multihash::wrap(IDENTITY, bytes).map_err(|_| CidError::IdentityTooLong(bytes.len()))?
        }
        other => return Err(CidError::UnsupportedHash(other)),
    };
    Ok(match cid.version() {
        ::cid::Version::V0 => Cid::new_v0(mh).expect("sha2-256 multihash is a valid CIDv0"),
        ::cid::Version::V1 => Cid::new_v1(cid.codec(), mh),
    })
}

/// Check that `bytes` hash to `cid`. Every block received or stored goes through this.
pub fn verify(cid: &Cid, bytes: &[u8]) -> Result<(), CidError> {
    let actual = recompute(cid, bytes)?;
    if actual.hash() == cid.hash() {
        Ok(())
    } else {
        Err(CidError::HashMismatch {
            cid: Box::new(*cid),
            actual: Box::new(actual),
        })
    }
}

/// The lower-case base32 text form Kubo prints for CIDv1 (`b…`), or base58btc for CIDv0.
pub fn to_text(cid: &Cid) -> String {
    cid.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_cid_of_known_bytes_matches_kubo() {
        // `echo -n hello | ipfs add --cid-version=1 --raw-leaves -Q`
        assert_eq!(
            raw_cid(b"hello").to_string(),
            "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq"
        );
    }

    #[test]
    fn verify_rejects_other_bytes() {
        let cid = raw_cid(b"a");
        assert!(verify(&cid, b"a").is_ok());
        assert!(matches!(
            verify(&cid, b"b"),
            Err(CidError::HashMismatch { .. })
        ));
    }

    #[test]
    fn verify_works_for_v0() {
        let cid = cid_v0(b"\x0a\x02\x08\x01");
        assert!(cid.to_string().starts_with("Qm"));
        assert!(verify(&cid, b"\x0a\x02\x08\x01").is_ok());
    }
}
