//! The follower side of the station topic: the gossipsub validator that judges every
//! message, reports its verdict and hands out the verified announcements.

use ipfm_protocol::announce::{self, Announcement};
use ipfm_protocol::ipns::IpnsRecord;
use ipfm_protocol::peer::PeerId;
use libp2p::gossipsub::MessageAcceptance;
use tokio::sync::mpsc;

use super::verdict::{judge, Verdict};
use crate::net::swarm::{Client, NetError, ValidatedMessage};

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
