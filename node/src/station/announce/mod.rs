//! The station topic: signed announcements of each new root on gossipsub
//! (`/ipfm/1/station/<k51…>`, format in [`ipfm_protocol::announce`]).
//!
//! - [`AnnouncePublisher`]: the station side, a [`Publisher`] that signs and publishes one
//!   announcement per root.
//! - [`AnnouncementReceiver`]: the follower side (relays, listeners). It subscribes to the
//!   topic as its gossipsub validator, so nothing it refuses is ever forwarded: forged,
//!   tampered, malformed, oversized or another station's messages are rejected (the peer
//!   that sent them loses score), replays (a sequence not above the highest accepted) are
//!   ignored, and what is left comes out of [`AnnouncementReceiver::next`] verified.
//!   An announcement is authentic only if the IPNS record it carries validates for the
//!   station now and points at the announced root under the announced sequence.
//! - Store-and-forward: [`AnnouncementReceiver::next_pending`] hands out a verified
//!   announcement with its gossipsub verdict still open. A relay fetches the whole root
//!   first and only then [`PendingAnnouncement::accept`]s it, so whoever receives the
//!   announcement from the relay can fetch every block from it, and a root that cannot be
//!   fetched is never forwarded.

mod receiver;
mod verdict;

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use ed25519_dalek::SigningKey;
use ipfm_protocol::announce::{
    self, AnnounceError, Announcement, NowPlaying, MAX_NEW_SEGMENTS, MAX_TEXT_LEN,
};
use ipfm_protocol::cid::{DAG_PB, RAW};
use ipfm_protocol::dagpb::PbNode;
use ipfm_protocol::peer::PeerId;
use ipfm_protocol::Cid;
use ipfm_store::{Blockstore, Store};

use super::publish::{Publisher, RootUpdate};
use crate::gateway::BoxFuture;
use crate::net::swarm::Client;

pub use receiver::{
    AnnouncementReceiver, Judged, PendingAnnouncement, ReceiverStats, VerifiedAnnouncement,
};
pub use verdict::{check_record, judge, judge_at, Rejection, Verdict};

/// `nowplaying.json` larger than this is not read (the station's is a few KiB).
const MAX_NOW_PLAYING_JSON: u64 = 1024 * 1024;
/// Bound on signing and handing one announcement to the swarm, so a stalled swarm task
/// cannot hold up the station loop.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(2);

/// Publishes a signed announcement on the station topic for every new root.
pub struct AnnouncePublisher {
    client: Client,
    key: SigningKey,
    station: PeerId,
    topic: String,
    store: Store,
}

impl AnnouncePublisher {
    /// Announces as `key`'s station; now-playing is read from each root's `nowplaying.json`
    /// in `store`, so the announcement says what the root itself says.
    pub fn new(client: Client, key: SigningKey, store: Store) -> AnnouncePublisher {
        let station = PeerId::from_ed25519(&key.verifying_key());
        AnnouncePublisher {
            client,
            key,
            station,
            topic: announce::topic(&station),
            store,
        }
    }

    /// The topic announcements go to.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The signed announcement of `update`.
    pub async fn announcement(&self, update: &RootUpdate) -> Result<Vec<u8>, AnnounceError> {
        // A root normally adds one segment per rendition; after a stall it may add more.
        // Followers fetch the whole root anyway, so listing the newest ones is enough.
        let skip = update.new_segments.len().saturating_sub(MAX_NEW_SEGMENTS);
        let announcement = Announcement::new(
            self.station,
            update.record.sequence(),
            update.root,
            update.new_segments[skip..].to_vec(),
            now_playing_of(&self.store, &update.root).await,
            SystemTime::now(),
            update.record.as_bytes().to_vec(),
        );
        announcement.sign(&self.key)
    }

    async fn announce(&self, update: &RootUpdate) -> Result<(), String> {
        let bytes = self
            .announcement(update)
            .await
            .map_err(|e| format!("signing the announcement: {e}"))?;
        // Nobody follows yet: nothing to send, not a failure (gossipsub would refuse with
        // "insufficient peers").
        if self
            .client
            .topic_peers(&self.topic)
            .await
            .map_err(|e| e.to_string())?
            .is_empty()
        {
            tracing::trace!(topic = %self.topic, "no followers; announcement not sent");
            return Ok(());
        }
        self.client
            .publish(&self.topic, bytes)
            .await
            .map_err(|e| format!("publishing the announcement: {e}"))?;
        tracing::debug!(root = %update.root, sequence = update.record.sequence(), "announced");
        Ok(())
    }
}

impl Publisher for AnnouncePublisher {
    fn publish<'a>(&'a self, update: &'a RootUpdate) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            tokio::time::timeout(PUBLISH_TIMEOUT, self.announce(update))
                .await
                .map_err(|_| "announcing timed out".to_string())?
        })
    }
}

/// Title and artist from the root's `nowplaying.json` (`{"now": {"title", "artist"}}`);
/// `None` when it is missing or unreadable (logged: the announcement goes out anyway).
pub(crate) async fn now_playing_of(store: &Store, root: &Cid) -> Option<NowPlaying> {
    let json = match read_now_playing_json(store, root).await {
        Ok(json) => json?,
        Err(error) => {
            tracing::warn!(%root, %error, "nowplaying.json unreadable; announced without it");
            return None;
        }
    };
    let doc: serde_json::Value = serde_json::from_slice(&json)
        .map_err(|error| tracing::warn!(%root, %error, "nowplaying.json is not JSON"))
        .ok()?;
    let now = doc.get("now")?;
    let text = |field: &str| {
        let mut text = now.get(field)?.as_str()?.to_string();
        truncate_at_char(&mut text, MAX_TEXT_LEN);
        Some(text)
    };
    Some(NowPlaying {
        title: text("title")?,
        artist: text("artist").unwrap_or_default(),
    })
}

/// Cut `text` to at most `max` bytes without splitting a character.
fn truncate_at_char(text: &mut String, max: usize) {
    if text.len() > max {
        let end = (0..=max)
            .rev()
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        text.truncate(end);
    }
}

async fn read_now_playing_json(store: &Store, root: &Cid) -> Result<Option<Vec<u8>>, String> {
    let Some(dir) = store.get(root).await.map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let dir = PbNode::decode(&dir).map_err(|e| e.to_string())?;
    let Some(link) = dir
        .links
        .iter()
        .find(|l| l.name.as_deref() == Some("nowplaying.json"))
    else {
        return Ok(None);
    };
    let file = link.hash;
    let Some(top) = store.get(&file).await.map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    match file.codec() {
        RAW => Ok(Some(top)),
        DAG_PB => {
            // A file of a few KiB is one block (or one level of leaves): fetch them, then
            // read with the shared UnixFS reader.
            let mut blocks = HashMap::from([(file, top.clone())]);
            for child in ipfm_protocol::dagpb::links(&top).map_err(|e| e.to_string())? {
                if let Some(bytes) = store.get(&child).await.map_err(|e| e.to_string())? {
                    blocks.insert(child, bytes);
                }
            }
            ipfm_protocol::builder::read_file_limited(&file, MAX_NOW_PLAYING_JSON, |c| {
                blocks.get(c).cloned()
            })
            .map(Some)
            .map_err(|e| e.to_string())
        }
        codec => Err(format!("unexpected codec {codec:#x}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipfm_protocol::cid::raw_cid;

    #[test]
    fn long_texts_are_cut_on_a_character_boundary() {
        let mut text = "é".repeat(MAX_TEXT_LEN);
        truncate_at_char(&mut text, MAX_TEXT_LEN + 1);
        assert_eq!(text.len(), MAX_TEXT_LEN);
        assert!(text.chars().all(|c| c == 'é'));
    }

    /// Stores a root directory holding `json` as `nowplaying.json`; returns the root.
    async fn root_with(store: &Store, json: &[u8]) -> Cid {
        use ipfm_protocol::builder::{build_file, CidMode, DirectoryBuilder};
        let mode = CidMode::V1RawLeaves;
        let (file, blocks) = build_file(json, mode);
        for block in blocks {
            store.put(&block.cid, block.data).await.unwrap();
        }
        let mut dir = DirectoryBuilder::new(mode);
        dir.add("nowplaying.json", file.cid, file.tsize).unwrap();
        let (root, block) = dir.finish();
        store.put(&block.cid, block.data).await.unwrap();
        root.cid
    }

    #[tokio::test]
    async fn now_playing_comes_from_the_roots_json() {
        let store = Store::open_in_memory();
        let small = root_with(
            &store,
            br#"{"now": {"title": "Song", "artist": "Band", "sequence": 3}}"#,
        )
        .await;
        assert_eq!(
            now_playing_of(&store, &small).await,
            Some(NowPlaying {
                title: "Song".into(),
                artist: "Band".into()
            })
        );
        // Larger than one chunk: a dag-pb file over raw leaves. No artist: empty.
        let padding = "x".repeat(300 * 1024);
        let big = format!(r#"{{"now": {{"title": "Long"}}, "pad": "{padding}"}}"#);
        let big = root_with(&store, big.as_bytes()).await;
        assert_eq!(
            now_playing_of(&store, &big).await,
            Some(NowPlaying {
                title: "Long".into(),
                artist: String::new()
            })
        );
        let silent = root_with(&store, br#"{"now": null}"#).await;
        assert_eq!(now_playing_of(&store, &silent).await, None);
        let not_a_root = raw_cid(b"not stored");
        assert_eq!(now_playing_of(&store, &not_a_root).await, None);
    }
}
