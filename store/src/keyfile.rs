//! The station key as a file, in the format Kubo's `ipfs key export` writes by default
//! (`libp2p-protobuf-cleartext`) and `ipfs key import` reads.
//!
//! That format is go-libp2p's `crypto.MarshalPrivateKey`: the protobuf
//! `PrivateKey { KeyType Type = 1; bytes Data = 2; }` with `Type = 1` (Ed25519) and
//! `Data` = the 64-byte Ed25519 private key, seed ‖ public key. go-libp2p also accepts a
//! legacy 96-byte form (seed ‖ public ‖ public again); so do we.

use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;

use ed25519_dalek::SigningKey;
use ipfm_protocol::varint;

/// libp2p `KeyType` of Ed25519.
const KEY_TYPE_ED25519: u64 = 1;
const FIELD_TYPE: u64 = 1;
const FIELD_DATA: u64 = 2;
const WIRE_VARINT: u64 = 0;
const WIRE_LEN: u64 = 2;
/// seed ‖ public key.
const KEYPAIR_LEN: usize = 64;
/// seed ‖ public key ‖ public key (old go-libp2p).
const LEGACY_KEYPAIR_LEN: usize = 96;
/// A real key file is 68 bytes; anything much bigger is not a key file and is not read.
const MAX_KEY_FILE_LEN: u64 = 4096;

/// Why bytes or a file are not an Ed25519 libp2p private key.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot read or write it: {0}")]
    Io(#[from] io::Error),
    #[error("too large for a key file ({0} bytes)")]
    TooLarge(u64),
    #[error("malformed protobuf: {0}")]
    Malformed(&'static str),
    #[error("malformed varint: {0}")]
    Varint(#[from] varint::VarintError),
    #[error("unexpected protobuf field {field} (wire type {wire_type})")]
    UnexpectedField { field: u64, wire_type: u64 },
    #[error("missing field {0}")]
    MissingField(&'static str),
    #[error("key type {0} is not Ed25519 (1); only Ed25519 station keys are supported")]
    UnsupportedKeyType(u64),
    #[error("Ed25519 key data is {0} bytes; expected 64 (seed and public key) or 96 (legacy)")]
    BadKeyLength(usize),
    #[error("the public key in the file does not belong to its seed")]
    PublicKeyMismatch,
}

/// The protobuf bytes of `key`, exactly as `ipfs key export` writes them.
pub fn encode_private_key(key: &SigningKey) -> Vec<u8> {
    let keypair = key.to_keypair_bytes();
    let mut out = Vec::with_capacity(4 + KEYPAIR_LEN);
    varint::write(FIELD_TYPE << 3 | WIRE_VARINT, &mut out);
    varint::write(KEY_TYPE_ED25519, &mut out);
    varint::write(FIELD_DATA << 3 | WIRE_LEN, &mut out);
    varint::write(keypair.len() as u64, &mut out);
    out.extend_from_slice(&keypair);
    out
}

/// Parse the protobuf private key written by `ipfs key export` (or [`encode_private_key`]).
pub fn decode_private_key(bytes: &[u8]) -> Result<SigningKey, KeyFileError> {
    let mut rest = bytes;
    let (mut key_type, mut data) = (None, None);
    while !rest.is_empty() {
        let (tag, used) = varint::read(rest)?;
        rest = &rest[used..];
        let (field, wire_type) = (tag >> 3, tag & 7);
        match (field, wire_type) {
            (FIELD_TYPE, WIRE_VARINT) => {
                let (value, used) = varint::read(rest)?;
                rest = &rest[used..];
                key_type = Some(value);
            }
            (FIELD_DATA, WIRE_LEN) => {
                let (len, used) = varint::read(rest)?;
                rest = &rest[used..];
                if len > rest.len() as u64 {
                    return Err(KeyFileError::Malformed("Data length runs past the end"));
                }
                let (value, after) = rest.split_at(len as usize);
                data = Some(value);
                rest = after;
            }
            (field, wire_type) => return Err(KeyFileError::UnexpectedField { field, wire_type }),
        }
    }
    let key_type = key_type.ok_or(KeyFileError::MissingField("Type"))?;
    if key_type != KEY_TYPE_ED25519 {
        return Err(KeyFileError::UnsupportedKeyType(key_type));
    }
    let data = data.ok_or(KeyFileError::MissingField("Data"))?;
    let keypair: &[u8] = match data.len() {
        KEYPAIR_LEN => data,
        LEGACY_KEYPAIR_LEN => {
            let (keypair, redundant_public) = data.split_at(KEYPAIR_LEN);
            if redundant_public != &keypair[32..] {
                return Err(KeyFileError::PublicKeyMismatch);
            }
            keypair
        }
        other => return Err(KeyFileError::BadKeyLength(other)),
    };
    let keypair: &[u8; KEYPAIR_LEN] = keypair
        .try_into()
        .map_err(|_| KeyFileError::BadKeyLength(keypair.len()))?;
    // Checks that the public half is the one derived from the seed: a mismatched pair
    // would sign records nobody can verify under the advertised name.
    SigningKey::from_keypair_bytes(keypair).map_err(|_| KeyFileError::PublicKeyMismatch)
}

/// Write `key` to `path` readable by the owner only (mode 0600).
///
/// Written to a temporary file in the same directory and renamed over `path`, so a crash
/// never leaves a half-written key and an existing file (or a symlink at `path`) is
/// replaced rather than written through with its old permissions.
pub fn write_key_file(path: &Path, key: &SigningKey) -> Result<(), KeyFileError> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let file_name = path
        .file_name()
        .ok_or(KeyFileError::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            "path has no file name",
        )))?
        .to_string_lossy();
    let temp = dir.join(format!(
        ".{file_name}.{}.{:08x}.tmp",
        std::process::id(),
        rand::random::<u32>()
    ));
    let result =
        write_private_file(&temp, &encode_private_key(key)).and_then(|()| fs::rename(&temp, path));
    if result.is_err() {
        // Best effort: the temporary file holds the secret key.
        let _ = fs::remove_file(&temp);
    }
    Ok(result?)
}

fn write_private_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Read a key file written by `ipfs key export` or [`write_key_file`].
pub fn read_key_file(path: &Path) -> Result<SigningKey, KeyFileError> {
    let file = fs::File::open(path)?;
    let len = file.metadata()?.len();
    if len > MAX_KEY_FILE_LEN {
        return Err(KeyFileError::TooLarge(len));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    // `take` bounds the read even if the file grows after the size check.
    file.take(MAX_KEY_FILE_LEN + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_KEY_FILE_LEN {
        return Err(KeyFileError::TooLarge(bytes.len() as u64));
    }
    decode_private_key(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn encoding_is_libp2p_protobuf_with_seed_and_public_key() {
        let key = key(7);
        let bytes = encode_private_key(&key);
        // Type = 1 (varint), Data = 64 bytes.
        assert_eq!(&bytes[..4], &[0x08, 0x01, 0x12, 0x40]);
        assert_eq!(&bytes[4..36], &[7; 32]);
        assert_eq!(&bytes[36..], key.verifying_key().as_bytes());
        assert_eq!(decode_private_key(&bytes).unwrap(), key);
    }

    #[test]
    fn accepts_legacy_96_byte_form() {
        let key = key(9);
        let mut data = key.to_keypair_bytes().to_vec();
        data.extend_from_slice(key.verifying_key().as_bytes());
        let mut bytes = vec![0x08, 0x01, 0x12, 96];
        bytes.extend(data);
        assert_eq!(decode_private_key(&bytes).unwrap(), key);
    }

    #[test]
    fn accepts_fields_in_either_order() {
        let key = key(3);
        let mut bytes = vec![0x12, 0x40];
        bytes.extend(key.to_keypair_bytes());
        bytes.extend([0x08, 0x01]);
        assert_eq!(decode_private_key(&bytes).unwrap(), key);
    }

    #[test]
    fn rejects_other_key_types_lengths_and_mismatched_halves() {
        let mut rsa = encode_private_key(&key(1));
        rsa[1] = 0;
        assert!(matches!(
            decode_private_key(&rsa),
            Err(KeyFileError::UnsupportedKeyType(0))
        ));

        assert!(matches!(
            decode_private_key(&[0x08, 0x01, 0x12, 0x20, 0x00]),
            Err(KeyFileError::Malformed(_))
        ));
        let mut short = vec![0x08, 0x01, 0x12, 0x20];
        short.extend([0u8; 32]);
        assert!(matches!(
            decode_private_key(&short),
            Err(KeyFileError::BadKeyLength(32))
        ));

        let mut mismatched = encode_private_key(&key(1));
        let other_public = key(2).verifying_key().to_bytes();
        mismatched[36..].copy_from_slice(&other_public);
        assert!(matches!(
            decode_private_key(&mismatched),
            Err(KeyFileError::PublicKeyMismatch)
        ));

        assert!(matches!(
            decode_private_key(&[0x08, 0x01]),
            Err(KeyFileError::MissingField("Data"))
        ));
        assert!(matches!(
            decode_private_key(&[0x1a, 0x00]),
            Err(KeyFileError::UnexpectedField { field: 3, .. })
        ));
        assert!(matches!(
            decode_private_key(&[0x08]),
            Err(KeyFileError::Varint(_))
        ));
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(42);
        let valid = encode_private_key(&key(5));
        for _ in 0..2000 {
            let mut bytes = valid.clone();
            let flips = rng.gen_range(1..4);
            for _ in 0..flips {
                let i = rng.gen_range(0..bytes.len());
                bytes[i] = rng.gen();
            }
            bytes.truncate(rng.gen_range(0..=bytes.len()));
            let _ = decode_private_key(&bytes);
        }
    }

    #[cfg(unix)]
    #[test]
    fn key_file_is_owner_only_and_round_trips() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("station.key");
        fs::write(&path, b"old contents").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();

        write_key_file(&path, &key(4)).unwrap();

        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(read_key_file(&path).unwrap(), key(4));
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn refuses_to_read_huge_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.key");
        fs::write(&path, vec![0u8; 10_000]).unwrap();
        assert!(matches!(
            read_key_file(&path),
            Err(KeyFileError::TooLarge(10_000))
        ));
    }
}
