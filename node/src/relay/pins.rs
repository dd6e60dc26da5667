//! The relay's pins for one station: the current root, and each superseded root for the
//! retention period (so segments that left the live window stay fetchable as long as the
//! station itself keeps them).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use ipfm_protocol::peer::PeerId;
use ipfm_protocol::Cid;
use ipfm_store::{Store, StoreError};

/// Pins `relay:<k51…>:current` and `relay:<k51…>:<sequence>`.
pub struct RelayPins {
    store: Store,
    prefix: String,
    current: Option<(u64, Cid)>,
    /// Superseded roots (pin name, since when), oldest first.
    retained: VecDeque<(String, Instant)>,
}

impl RelayPins {
    /// Takes over pins a previous run left (they are kept one more retention period).
    pub async fn load(store: Store, station: &PeerId) -> Result<RelayPins, StoreError> {
        let prefix = format!("relay:{}:", station.to_ipns_name());
        let now = Instant::now();
        let retained = store
            .pins()
            .await?
            .into_iter()
            .filter(|(name, _)| {
                name.strip_prefix(&prefix)
                    .is_some_and(|rest| rest.parse::<u64>().is_ok())
            })
            .map(|(name, _)| (name, now))
            .collect();
        Ok(RelayPins {
            store,
            prefix,
            current: None,
            retained,
        })
    }

    pub fn current_pin(&self) -> String {
        format!("{}current", self.prefix)
    }

    /// Superseded roots still pinned.
    pub fn retained(&self) -> usize {
        self.retained.len()
    }

    /// `root` (under `sequence`) becomes current; the previous current root stays pinned
    /// under its sequence.
    pub async fn advance(&mut self, sequence: u64, root: Cid) -> Result<(), StoreError> {
        if self.current.is_some_and(|(current, _)| current >= sequence) {
            return Ok(());
        }
        self.store.pin(&self.current_pin(), root).await?;
        if let Some((old_sequence, old_root)) = self.current.replace((sequence, root)) {
            if old_root != root {
                let name = format!("{}{old_sequence}", self.prefix);
                self.store.pin(&name, old_root).await?;
                self.retained.push_back((name, Instant::now()));
            }
        }
        Ok(())
    }

    /// Unpins superseded roots older than `retention`; returns how many.
    pub async fn expire(&mut self, retention: Duration) -> Result<usize, StoreError> {
        let mut expired = 0;
        while let Some((name, since)) = self.retained.front() {
            if since.elapsed() < retention {
                break;
            }
            self.store.unpin(name).await?;
            self.retained.pop_front();
            expired += 1;
        }
        Ok(expired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipfm_protocol::cid::raw_cid;

    #[tokio::test]
    async fn current_moves_and_superseded_roots_expire() {
        let store = Store::open_in_memory();
        let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
        let station = PeerId::from_ed25519(&key.verifying_key());
        let mut pins = RelayPins::load(store.clone(), &station).await.unwrap();
        let (a, b, c) = (raw_cid(b"a"), raw_cid(b"b"), raw_cid(b"c"));
        pins.advance(1, a).await.unwrap();
        pins.advance(2, b).await.unwrap();
        pins.advance(1, c).await.unwrap(); // older: ignored
        assert_eq!(store.pinned(&pins.current_pin()).await.unwrap(), Some(b));
        let k51 = station.to_ipns_name();
        assert_eq!(
            store.pinned(&format!("relay:{k51}:1")).await.unwrap(),
            Some(a)
        );
        assert_eq!(pins.expire(Duration::from_secs(60)).await.unwrap(), 0);
        // A restart keeps the retained pin for another period.
        let mut again = RelayPins::load(store.clone(), &station).await.unwrap();
        assert_eq!(again.retained(), 1);
        assert_eq!(again.expire(Duration::ZERO).await.unwrap(), 1);
        assert_eq!(store.pinned(&format!("relay:{k51}:1")).await.unwrap(), None);
    }
}
