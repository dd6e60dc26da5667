//! What the station keeps across restarts besides the encoder's playout position: each
//! rendition's live window (with the segments' CIDs), the segments that left the window
//! but are still retained, and the recent tracks.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ipfm_encoder::NowPlaying;
use ipfm_protocol::Cid;
use serde::{Deserialize, Serialize};

use crate::hls::{LiveWindow, PlaylistSegment};

/// Key of the station state in the store's state tree.
pub const STATE_KEY: &str = "station/state";

/// A segment block: its CID (text, so the state is plain JSON) and size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentBlock {
    pub cid: String,
    pub size: u64,
}

impl SegmentBlock {
    pub fn new(cid: &Cid, size: u64) -> Self {
        SegmentBlock {
            cid: cid.to_string(),
            size,
        }
    }

    pub fn cid(&self) -> Option<Cid> {
        Cid::try_from(self.cid.as_str()).ok()
    }
}

/// A segment that left the live window and stays fetchable until `left_at_ms` plus
/// the retention period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retained {
    pub rendition: String,
    pub sequence: u64,
    pub block: SegmentBlock,
    pub left_at_ms: u64,
}

/// One track in `nowplaying.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackInfo {
    pub title: String,
    pub artist: Option<String>,
    pub album: Option<String>,
    pub kind: String,
    /// Start of the track on the stream timeline, in seconds.
    pub track_start_secs: f64,
}

impl TrackInfo {
    pub fn from_now_playing(now: &NowPlaying) -> Self {
        TrackInfo {
            title: now.title.clone(),
            artist: now.artist.clone(),
            album: now.album.clone(),
            kind: now.kind.as_str().to_owned(),
            track_start_secs: now.track_start.as_secs_f64(),
        }
    }

    fn same_track(&self, other: &TrackInfo) -> bool {
        self.title == other.title && self.track_start_secs == other.track_start_secs
    }
}

/// The station's persistent state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StationState {
    /// Live window per rendition.
    pub windows: BTreeMap<String, LiveWindow>,
    /// Blocks of the windows' segments, by rendition and sequence.
    pub blocks: BTreeMap<String, BTreeMap<u64, SegmentBlock>>,
    pub retained: Vec<Retained>,
    /// Recent distinct tracks, newest first.
    pub history: Vec<TrackInfo>,
}

impl StationState {
    /// Append a segment to its rendition's window; what slides out becomes retained.
    pub fn push_segment(
        &mut self,
        rendition: &str,
        segment: PlaylistSegment,
        block: SegmentBlock,
        capacity: usize,
        now: SystemTime,
    ) {
        let sequence = segment.sequence;
        let window = self
            .windows
            .entry(rendition.to_owned())
            .or_insert_with(|| LiveWindow::new(capacity));
        let removed = window.push(segment);
        let blocks = self.blocks.entry(rendition.to_owned()).or_default();
        blocks.insert(sequence, block);
        self.retire(rendition, removed, now);
    }

    /// Apply a (possibly new) window capacity to every window.
    pub fn set_capacity(&mut self, capacity: usize, now: SystemTime) {
        let renditions: Vec<String> = self.windows.keys().cloned().collect();
        for rendition in renditions {
            let removed = match self.windows.get_mut(&rendition) {
                Some(window) => window.set_capacity(capacity),
                None => continue,
            };
            self.retire(&rendition, removed, now);
        }
    }

    /// Forget the windows of renditions no longer configured (their segments are
    /// retained like any that left a window).
    pub fn keep_renditions(&mut self, keep: &[&str], now: SystemTime) {
        let gone: Vec<String> = self
            .windows
            .keys()
            .filter(|name| !keep.contains(&name.as_str()))
            .cloned()
            .collect();
        for rendition in gone {
            if let Some(window) = self.windows.remove(&rendition) {
                let removed = window.segments().cloned().collect();
                self.retire(&rendition, removed, now);
            }
            self.blocks.remove(&rendition);
        }
    }

    fn retire(&mut self, rendition: &str, removed: Vec<PlaylistSegment>, now: SystemTime) {
        let Some(blocks) = self.blocks.get_mut(rendition) else {
            return;
        };
        for gone in removed {
            if let Some(block) = blocks.remove(&gone.sequence) {
                self.retained.push(Retained {
                    rendition: rendition.to_owned(),
                    sequence: gone.sequence,
                    block,
                    left_at_ms: millis(now),
                });
            }
        }
    }

    /// Forget retained segments whose retention is over; returns whether any was.
    pub fn expire(&mut self, retention: Duration, now: SystemTime) -> bool {
        let before = self.retained.len();
        let now_ms = millis(now);
        let retention_ms = u64::try_from(retention.as_millis()).unwrap_or(u64::MAX);
        self.retained
            .retain(|r| r.left_at_ms.saturating_add(retention_ms) > now_ms);
        self.retained.len() != before
    }

    /// Record the track playing now at the head of the history (distinct tracks only).
    pub fn note_track(&mut self, track: TrackInfo, keep: usize) {
        if self.history.first().is_some_and(|t| t.same_track(&track)) {
            return;
        }
        self.history.insert(0, track);
        self.history.truncate(keep);
    }

    /// Newest sequence in any window.
    pub fn newest_sequence(&self) -> Option<u64> {
        self.windows
            .values()
            .filter_map(|w| w.segments().last().map(|s| s.sequence))
            .max()
    }
}

fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipfm_protocol::cid::raw_cid;

    fn push(state: &mut StationState, sequence: u64, now: SystemTime) {
        let bytes = sequence.to_be_bytes();
        state.push_segment(
            "lofi",
            PlaylistSegment::new(sequence, Duration::from_secs(2), 8, false),
            SegmentBlock::new(&raw_cid(&bytes), 8),
            2,
            now,
        );
    }

    #[test]
    fn segments_leaving_the_window_are_retained_then_expire() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000);
        let mut state = StationState::default();
        for s in 0..3 {
            push(&mut state, s, t0);
        }
        assert_eq!(state.retained.len(), 1);
        assert_eq!(state.retained[0].sequence, 0);
        assert_eq!(state.blocks["lofi"].len(), 2);
        assert!(!state.expire(Duration::from_secs(10), t0 + Duration::from_secs(9)));
        assert!(state.expire(Duration::from_secs(10), t0 + Duration::from_secs(10)));
        assert!(state.retained.is_empty());
    }

    #[test]
    fn dropped_renditions_leave_their_segments_retained() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000);
        let mut state = StationState::default();
        push(&mut state, 0, t0);
        state.keep_renditions(&["hifi"], t0);
        assert!(state.windows.is_empty() && state.blocks.is_empty());
        assert_eq!(state.retained.len(), 1);
    }

    #[test]
    fn history_keeps_distinct_tracks_newest_first() {
        let track = |title: &str, start: f64| TrackInfo {
            title: title.into(),
            artist: None,
            album: None,
            kind: "track".into(),
            track_start_secs: start,
        };
        let mut state = StationState::default();
        state.note_track(track("a", 0.0), 2);
        state.note_track(track("a", 0.0), 2);
        state.note_track(track("b", 30.0), 2);
        state.note_track(track("c", 60.0), 2);
        let titles: Vec<_> = state.history.iter().map(|t| t.title.as_str()).collect();
        assert_eq!(titles, ["c", "b"]);
    }
}
