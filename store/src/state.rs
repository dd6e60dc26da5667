//! Station state kept next to the blocks: the station key, sequence numbers, the playout
//! position and an API token. Every setter returns only once the value is on disk.

use std::path::Path;

use ed25519_dalek::SigningKey;
use rand::RngCore;

use crate::error::{Result, StoreError};
use crate::kv::Kv;
use crate::{blocking, keyfile, Store};

const KEY_SEED: &[u8] = b"identity/ed25519-seed";
const IPNS_SEQUENCE: &[u8] = b"ipns/sequence";
const MEDIA_SEQUENCE: &[u8] = b"hls/media-sequence";
const PLAYOUT_POSITION: &[u8] = b"playout/position";
const API_TOKEN: &[u8] = b"api/token";
/// Keys of [`Store::state_get`]/[`Store::state_set`] live under this prefix, apart from
/// the typed entries above.
const USER_PREFIX: &str = "user/";

fn decode_u64(what: &'static str, bytes: &[u8]) -> Result<u64> {
    let bytes: [u8; 8] = bytes.try_into().map_err(|_| StoreError::Corrupt {
        what,
        detail: format!("{} bytes instead of 8", bytes.len()),
    })?;
    Ok(u64::from_be_bytes(bytes))
}

fn decode_seed(bytes: &[u8]) -> Result<SigningKey> {
    let seed: [u8; 32] = bytes.try_into().map_err(|_| StoreError::Corrupt {
        what: "station key",
        detail: format!("{} bytes instead of a 32-byte Ed25519 seed", bytes.len()),
    })?;
    Ok(SigningKey::from_bytes(&seed))
}

fn user_key(key: &str) -> Vec<u8> {
    format!("{USER_PREFIX}{key}").into_bytes()
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Store {
    fn state(&self) -> Kv {
        self.inner.state.clone()
    }

    /// The station's Ed25519 key (its peer id and IPNS name), created on first use.
    pub async fn load_or_create_key(&self) -> Result<SigningKey> {
        let state = self.state();
        blocking(move || {
            let fresh = SigningKey::generate(&mut rand::rngs::OsRng);
            state.update(
                KEY_SEED,
                "creating the station key",
                |current| match current {
                    Some(seed) => Ok((None, decode_seed(seed)?)),
                    None => Ok((Some(fresh.to_bytes().to_vec()), fresh.clone())),
                },
            )
        })
        .await
    }

    /// The station key, if one was created or imported.
    pub async fn station_key(&self) -> Result<Option<SigningKey>> {
        let state = self.state();
        blocking(move || {
            state
                .get(KEY_SEED, "reading the station key")?
                .map(|seed| decode_seed(&seed))
                .transpose()
        })
        .await
    }

    /// Write the station key to `path` (mode 0600) in the format of Kubo's
    /// `ipfs key export` (libp2p-protobuf-cleartext), so `ipfs key import` accepts it.
    pub async fn export_key(&self, path: impl AsRef<Path>) -> Result<()> {
        let key = self.station_key().await?.ok_or(StoreError::NoKey)?;
        let path = path.as_ref().to_path_buf();
        blocking(move || {
            keyfile::write_key_file(&path, &key)
                .map_err(|source| StoreError::KeyFile { path, source })
        })
        .await
    }

    /// Make the key in the file `path` (as written by `ipfs key export` or
    /// [`Store::export_key`]) the station key. Fails with [`StoreError::KeyExists`] if a
    /// different key is already stored; importing the same key again is a no-op.
    pub async fn import_key(&self, path: impl AsRef<Path>) -> Result<SigningKey> {
        let (state, path) = (self.state(), path.as_ref().to_path_buf());
        blocking(move || {
            let key = keyfile::read_key_file(&path)
                .map_err(|source| StoreError::KeyFile { path, source })?;
            state.update(
                KEY_SEED,
                "storing the imported key",
                |current| match current {
                    Some(seed) if decode_seed(seed)?.to_bytes() == key.to_bytes() => Ok((None, ())),
                    Some(_) => Err(StoreError::KeyExists),
                    None => Ok((Some(key.to_bytes().to_vec()), ())),
                },
            )?;
            Ok(key)
        })
        .await
    }

    /// The next IPNS record sequence number: one more than the last one handed out (the
    /// first is 1). The new value is on disk (fsynced) before it is returned, so a record
    /// published with it can never be followed, after a crash, by one with a lower number.
    pub async fn next_ipns_sequence(&self) -> Result<u64> {
        let state = self.state();
        blocking(move || {
            state.update(IPNS_SEQUENCE, "advancing the IPNS sequence", |current| {
                let last = current.map_or(Ok(0), |v| decode_u64("IPNS sequence", v))?;
                let next = last.checked_add(1).ok_or(StoreError::SequenceExhausted)?;
                Ok((Some(next.to_be_bytes().to_vec()), next))
            })
        })
        .await
    }

    /// The last IPNS sequence number handed out (0 if none).
    pub async fn ipns_sequence(&self) -> Result<u64> {
        let state = self.state();
        blocking(move || {
            state
                .get(IPNS_SEQUENCE, "reading the IPNS sequence")?
                .map_or(Ok(0), |v| decode_u64("IPNS sequence", &v))
        })
        .await
    }

    /// Make sure the stored IPNS sequence is at least `at_least` (e.g. after finding a
    /// record of ours with that sequence on the network, published by an older copy of the
    /// repo), so the next one handed out beats it. Returns the stored value. Durable.
    pub async fn raise_ipns_sequence(&self, at_least: u64) -> Result<u64> {
        let state = self.state();
        blocking(move || {
            state.update(IPNS_SEQUENCE, "raising the IPNS sequence", |current| {
                let last = current.map_or(Ok(0), |v| decode_u64("IPNS sequence", v))?;
                if last >= at_least {
                    Ok((None, last))
                } else {
                    Ok((Some(at_least.to_be_bytes().to_vec()), at_least))
                }
            })
        })
        .await
    }

    /// The stored HLS `#EXT-X-MEDIA-SEQUENCE`, if the station ever stored one.
    pub async fn media_sequence(&self) -> Result<Option<u64>> {
        let state = self.state();
        blocking(move || {
            state
                .get(MEDIA_SEQUENCE, "reading the media sequence")?
                .map(|v| decode_u64("media sequence", &v))
                .transpose()
        })
        .await
    }

    /// Store the HLS media sequence (durable). The caller keeps it from going backwards.
    pub async fn set_media_sequence(&self, sequence: u64) -> Result<()> {
        let state = self.state();
        blocking(move || {
            state
                .set(
                    MEDIA_SEQUENCE,
                    sequence.to_be_bytes().to_vec(),
                    "storing the media sequence",
                )
                .map(drop)
        })
        .await
    }

    /// Store the station's progress in one atomic, durable step: the HLS media sequence,
    /// the playout position (if any) and a [`Store::state_set`] value. A station saves this
    /// *before* it publishes a root built from it, so a crash can never make a restarted
    /// station hand out a published media sequence again for other segments.
    pub async fn save_progress(
        &self,
        media_sequence: u64,
        position: Option<Vec<u8>>,
        (key, value): (&str, Vec<u8>),
    ) -> Result<()> {
        let state = self.state();
        let mut entries = vec![
            (
                MEDIA_SEQUENCE.to_vec(),
                media_sequence.to_be_bytes().to_vec(),
            ),
            (user_key(key), value),
        ];
        entries.extend(position.map(|p| (PLAYOUT_POSITION.to_vec(), p)));
        blocking(move || state.set_all(entries, "storing the station's progress")).await
    }

    /// The playout position the node last stored (its own serialization).
    pub async fn playout_position(&self) -> Result<Option<Vec<u8>>> {
        let state = self.state();
        blocking(move || state.get(PLAYOUT_POSITION, "reading the playout position")).await
    }

    /// Store the playout position (durable).
    pub async fn set_playout_position(&self, position: Vec<u8>) -> Result<()> {
        let state = self.state();
        blocking(move || {
            state
                .set(PLAYOUT_POSITION, position, "storing the playout position")
                .map(drop)
        })
        .await
    }

    /// The bearer token of the station's HTTP API: 32 random bytes as 64 lower-case hex
    /// digits, created on first use.
    pub async fn load_or_create_api_token(&self) -> Result<String> {
        let state = self.state();
        blocking(move || {
            let mut fresh = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut fresh);
            let token = state.update(
                API_TOKEN,
                "creating the API token",
                |current| match current {
                    Some(token) => Ok((None, token.to_vec())),
                    None => Ok((Some(fresh.to_vec()), fresh.to_vec())),
                },
            )?;
            Ok(to_hex(&token))
        })
        .await
    }

    /// A value stored with [`Store::state_set`].
    pub async fn state_get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let (state, key) = (self.state(), user_key(key));
        blocking(move || state.get(&key, "reading a state value")).await
    }

    /// Store `value` under `key` (durable); returns the previous value. These keys are
    /// separate from the typed state above.
    pub async fn state_set(&self, key: &str, value: Vec<u8>) -> Result<Option<Vec<u8>>> {
        let (state, key) = (self.state(), user_key(key));
        blocking(move || state.set(&key, value, "storing a state value")).await
    }

    /// Remove `key` (durable); returns the previous value.
    pub async fn state_remove(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let (state, key) = (self.state(), user_key(key));
        blocking(move || state.remove(&key, "removing a state value")).await
    }
}
