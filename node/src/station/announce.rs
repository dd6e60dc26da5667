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

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use ed25519_dalek::SigningKey;
use ipfm_protocol::announce::{
    self, AnnounceError, Announcement, NowPlaying, MAX_NEW_SEGMENTS, MAX_TEXT_LEN,
};
use ipfm_protocol::cid::{DAG_PB, RAW};
use ipfm_protocol::dagpb::PbNode;
use ipfm_protocol::ipns::{IpnsError, IpnsRecord};
use ipfm_protocol::peer::PeerId;
use ipfm_protocol::Cid;
use ipfm_store::{Blockstore, Store};
use libp2p::gossipsub::MessageAcceptance;
use tokio::sync::mpsc;

use super::publish::{Publisher, RootUpdate};
use crate::gateway::BoxFuture;
use crate::net::swarm::{Client, NetError, ValidatedMessage};

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

/// What a follower does with one message on the station topic.
// One verdict lives per message, briefly, and most are accepts: boxing would only add an
// allocation to the common case.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Authentic and newer than anything accepted before.
    Accept(Announcement),
    /// Authentic but not new (a replay or a duplicate), or a format version this node does
    /// not read: dropped without penalty.
    Ignore(String),
    /// Not an authentic announcement of this station: dropped, sender penalised.
    Reject(Rejection),
}

/// Why a message on the station topic is not an authentic announcement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error(transparent)]
    Announcement(#[from] AnnounceError),
    #[error("the announced IPNS record is invalid: {0}")]
    Record(#[from] IpnsError),
    #[error("the announced IPNS record does not match the announcement: {0}")]
    RecordMismatch(String),
}

/// Judge `data` as an announcement of `station`, given the highest sequence accepted so far.
pub fn judge(data: &[u8], station: &PeerId, highest: Option<u64>) -> Verdict {
    judge_at(data, station, highest, SystemTime::now())
}

/// [`judge`] with the record's validity checked at `now`.
pub fn judge_at(data: &[u8], station: &PeerId, highest: Option<u64>, now: SystemTime) -> Verdict {
    let announcement = match Announcement::verify(data, station) {
        Ok(announcement) => announcement,
        Err(AnnounceError::UnsupportedVersion(version)) => {
            return Verdict::Ignore(format!("announcement version {version}"))
        }
        Err(error) => return Verdict::Reject(error.into()),
    };
    if let Err(rejection) = check_record(&announcement, now) {
        return Verdict::Reject(rejection);
    }
    match highest {
        Some(highest) if announcement.sequence <= highest => Verdict::Ignore(format!(
            "sequence {} is not above {highest}",
            announcement.sequence
        )),
        _ => Verdict::Accept(announcement),
    }
}

/// The announcement's IPNS record: valid for its station at `now` (signature V2, EOL),
/// same sequence, value `/ipfs/<root>`. Only then can a follower serve and re-put it.
pub fn check_record(announcement: &Announcement, now: SystemTime) -> Result<IpnsRecord, Rejection> {
    let record = IpnsRecord::from_bytes(&announcement.record)?;
    record.validate(&announcement.station, now)?;
    if record.sequence() != announcement.sequence {
        return Err(Rejection::RecordMismatch(format!(
            "record sequence {} ≠ announced {}",
            record.sequence(),
            announcement.sequence
        )));
    }
    let points_at = record
        .value_str()
        .and_then(|value| value.strip_prefix("/ipfs/"))
        .and_then(|cid| Cid::try_from(cid).ok());
    if points_at != Some(announcement.root) {
        return Err(Rejection::RecordMismatch(format!(
            "record value {:?} is not /ipfs/{}",
            record.value_str().unwrap_or("<not UTF-8>"),
            announcement.root
        )));
    }
    Ok(record)
}

/// A verified announcement and who handed it to us.
#[derive(Debug, Clone)]
pub struct VerifiedAnnouncement {
    pub announcement: Announcement,
    /// The gossipsub author (the station, or a peer re-publishing its announcement).
    pub author: Option<libp2p::PeerId>,
    /// The peer that sent it to us.
    pub propagation_source: libp2p::PeerId,
}

/// One message on the station topic and what the receiver made of it.
#[derive(Debug, Clone)]
pub struct Judged {
    pub verdict: Verdict,
    /// The gossipsub author (for an accepted one: the station, or a peer re-publishing
    /// its announcement).
    pub author: Option<libp2p::PeerId>,
    /// The peer that sent it to us (the one penalised on a reject).
    pub propagation_source: libp2p::PeerId,
}

/// Messages a receiver has judged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceiverStats {
    pub accepted: u64,
    pub ignored: u64,
    pub rejected: u64,
}

/// Follows one station's topic and yields its verified announcements, newest sequence
/// only ever growing.
pub struct AnnouncementReceiver {
    client: Client,
    station: PeerId,
    topic: String,
    messages: mpsc::Receiver<ValidatedMessage>,
    highest: Option<u64>,
    stats: ReceiverStats,
}

impl AnnouncementReceiver {
    /// Subscribes to `station`'s topic as its validator (replacing any earlier validator of
    /// that topic on this node).
    pub async fn subscribe(
        client: Client,
        station: PeerId,
    ) -> Result<AnnouncementReceiver, NetError> {
        let topic = announce::topic(&station);
        let messages = client.subscribe_validated(&topic).await?;
        Ok(AnnouncementReceiver {
            client,
            station,
            topic,
            messages,
            highest: None,
            stats: ReceiverStats::default(),
        })
    }

    pub fn station(&self) -> &PeerId {
        &self.station
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The highest sequence accepted (or set) so far.
    pub fn highest_sequence(&self) -> Option<u64> {
        self.highest
    }

    /// Accept only sequences above `sequence` from now on, e.g. the sequence of the newest
    /// IPNS record already verified (after a restart, or from a DHT resolve). Never lowers
    /// the bar.
    pub fn raise_highest_sequence(&mut self, sequence: u64) {
        self.highest = Some(self.highest.map_or(sequence, |h| h.max(sequence)));
    }

    pub fn stats(&self) -> ReceiverStats {
        self.stats
    }

    /// The next verified announcement; `None` once the network stopped. Every message
    /// judged on the way gets its verdict reported to gossipsub, so accepted ones are
    /// forwarded and the others are not.
    pub async fn next(&mut self) -> Option<VerifiedAnnouncement> {
        loop {
            let judged = self.next_judged().await?;
            if let Verdict::Accept(announcement) = judged.verdict {
                return Some(VerifiedAnnouncement {
                    announcement,
                    author: judged.author,
                    propagation_source: judged.propagation_source,
                });
            }
        }
    }

    /// The next verified announcement with its gossipsub verdict still open: the caller
    /// fetches the root, then [`PendingAnnouncement::accept`]s (forwarded to our mesh
    /// peers) or [`PendingAnnouncement::ignore`]s it. Refused messages on the way are
    /// reported at once. `None` once the network stopped.
    ///
    /// The verdict must come within gossipsub's message cache lifetime (a few heartbeats,
    /// ~5 s): after that the message is no longer forwarded even if accepted.
    pub async fn next_pending(&mut self) -> Option<PendingAnnouncement> {
        loop {
            let held = self.messages.recv().await?;
            let verdict = judge(&held.message.data, &self.station, self.highest);
            let Verdict::Accept(announcement) = verdict else {
                self.report(&held, &verdict).await?;
                continue;
            };
            // Validated by judge just now: parsing cannot fail.
            let Ok(record) = IpnsRecord::from_bytes(&announcement.record) else {
                continue;
            };
            self.count(&held, &Verdict::Accept(announcement.clone()));
            return Some(PendingAnnouncement {
                client: self.client.clone(),
                record,
                verified: VerifiedAnnouncement {
                    announcement,
                    author: held.message.source,
                    propagation_source: held.propagation_source,
                },
                id: held.id,
            });
        }
    }

    /// The next message on the topic, judged and its verdict reported (for callers that
    /// also want to see what was refused); `None` once the network stopped.
    pub async fn next_judged(&mut self) -> Option<Judged> {
        let held = self.messages.recv().await?;
        let verdict = judge(&held.message.data, &self.station, self.highest);
        self.report(&held, &verdict).await?;
        Some(Judged {
            verdict,
            author: held.message.source,
            propagation_source: held.propagation_source,
        })
    }

    /// Reports `verdict` on `held` to gossipsub and counts it; `None` if the network stopped.
    async fn report(&mut self, held: &ValidatedMessage, verdict: &Verdict) -> Option<()> {
        let acceptance = match verdict {
            Verdict::Accept(_) => MessageAcceptance::Accept,
            Verdict::Ignore(_) => MessageAcceptance::Ignore,
            Verdict::Reject(_) => MessageAcceptance::Reject,
        };
        if let Err(error) = self
            .client
            .report_validation(held.id.clone(), held.propagation_source, acceptance)
            .await
        {
            tracing::debug!(%error, "network stopped while validating");
            return None;
        }
        self.count(held, verdict);
        Some(())
    }

    /// Counts `verdict` (and raises the bar on an accept).
    fn count(&mut self, held: &ValidatedMessage, verdict: &Verdict) {
        let source = held.propagation_source;
        match verdict {
            Verdict::Accept(announcement) => {
                self.stats.accepted += 1;
                self.highest = Some(announcement.sequence);
                tracing::debug!(topic = %self.topic, peer = %source, sequence = announcement.sequence, "announcement accepted");
            }
            Verdict::Ignore(reason) => {
                self.stats.ignored += 1;
                tracing::debug!(topic = %self.topic, peer = %source, %reason, "announcement ignored");
            }
            Verdict::Reject(error) => {
                self.stats.rejected += 1;
                tracing::warn!(topic = %self.topic, peer = %source, %error, "announcement rejected");
            }
        }
    }
}

/// A verified announcement whose gossipsub verdict is still open (see
/// [`AnnouncementReceiver::next_pending`]). Dropping it without a verdict leaves the
/// message unforwarded until gossipsub forgets it.
pub struct PendingAnnouncement {
    client: Client,
    id: libp2p::gossipsub::MessageId,
    /// The station's IPNS record the announcement carried (validated).
    pub record: IpnsRecord,
    pub verified: VerifiedAnnouncement,
}

impl PendingAnnouncement {
    pub fn announcement(&self) -> &Announcement {
        &self.verified.announcement
    }

    /// We hold the whole root: forward the announcement to our mesh peers.
    pub async fn accept(self) -> Result<VerifiedAnnouncement, NetError> {
        self.client
            .report_validation(
                self.id,
                self.verified.propagation_source,
                MessageAcceptance::Accept,
            )
            .await?;
        Ok(self.verified)
    }

    /// We could not get the root (`reason` is logged): drop the announcement without
    /// penalising the sender, who may simply have been faster than the blocks.
    pub async fn ignore(self, reason: &str) -> Result<(), NetError> {
        let a = &self.verified.announcement;
        tracing::info!(station = %a.station, root = %a.root, sequence = a.sequence, %reason, "announcement not forwarded");
        self.client
            .report_validation(
                self.id,
                self.verified.propagation_source,
                MessageAcceptance::Ignore,
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipfm_protocol::cid::raw_cid;

    fn record(key: &SigningKey, value: &str, sequence: u64, eol: SystemTime) -> Vec<u8> {
        IpnsRecord::create(key, value, sequence, eol, Duration::from_secs(1)).to_bytes()
    }

    /// An announcement of `root` carrying `record`, signed by `key`.
    fn announced(key: &SigningKey, sequence: u64, root: Cid, record: Vec<u8>) -> Vec<u8> {
        Announcement::new(
            PeerId::from_ed25519(&key.verifying_key()),
            sequence,
            root,
            vec![raw_cid(b"segment")],
            None,
            SystemTime::now(),
            record,
        )
        .sign(key)
        .unwrap()
    }

    fn signed(key: &SigningKey, sequence: u64) -> Vec<u8> {
        let root = raw_cid(&sequence.to_be_bytes());
        let eol = SystemTime::now() + Duration::from_secs(3600);
        announced(
            key,
            sequence,
            root,
            record(key, &format!("/ipfs/{root}"), sequence, eol),
        )
    }

    #[test]
    fn the_record_must_be_valid_and_match_the_announcement() {
        let key = SigningKey::from_bytes(&[4; 32]);
        let station = PeerId::from_ed25519(&key.verifying_key());
        let root = raw_cid(b"root");
        let value = format!("/ipfs/{root}");
        let later = SystemTime::now() + Duration::from_secs(3600);
        let good = announced(&key, 3, root, record(&key, &value, 3, later));
        assert!(matches!(judge(&good, &station, None), Verdict::Accept(_)));
        let other = SigningKey::from_bytes(&[5; 32]);
        let cases = [
            ("another sequence", record(&key, &value, 4, later)),
            ("another root", record(&key, "/ipfs/bafkqaaa", 3, later)),
            ("not a path", record(&key, "hello", 3, later)),
            ("another key's", record(&other, &value, 3, later)),
            (
                "expired",
                record(&key, &value, 3, SystemTime::now() - Duration::from_secs(1)),
            ),
            ("not a record", b"garbage".to_vec()),
            ("empty", Vec::new()),
        ];
        for (what, bytes) in cases {
            let verdict = judge(&announced(&key, 3, root, bytes), &station, None);
            assert!(
                matches!(
                    verdict,
                    Verdict::Reject(Rejection::Record(_) | Rejection::RecordMismatch(_))
                ),
                "{what}: {verdict:?}"
            );
        }
    }

    #[test]
    fn verdicts_accept_new_ignore_replays_and_reject_the_rest() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let station = PeerId::from_ed25519(&key.verifying_key());
        assert!(matches!(
            judge(&signed(&key, 5), &station, None),
            Verdict::Accept(a) if a.sequence == 5
        ));
        assert!(matches!(
            judge(&signed(&key, 6), &station, Some(5)),
            Verdict::Accept(_)
        ));
        assert!(matches!(
            judge(&signed(&key, 5), &station, Some(5)),
            Verdict::Ignore(_)
        ));
        assert!(matches!(
            judge(&signed(&key, 4), &station, Some(5)),
            Verdict::Ignore(_)
        ));
        let other = SigningKey::from_bytes(&[2; 32]);
        assert!(matches!(
            judge(&signed(&other, 9), &station, None),
            Verdict::Reject(Rejection::Announcement(AnnounceError::WrongStation { .. }))
        ));
        let mut tampered = signed(&key, 7);
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(matches!(
            judge(&tampered, &station, None),
            Verdict::Reject(_)
        ));
        assert!(matches!(
            judge(
                &vec![0; announce::MAX_ANNOUNCEMENT_SIZE + 1],
                &station,
                None
            ),
            Verdict::Reject(Rejection::Announcement(AnnounceError::TooLarge { .. }))
        ));
    }

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
