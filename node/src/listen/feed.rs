//! [`SegmentFeed`]: from a stream of followed station roots to the rendition's segments,
//! each emitted once, in media-sequence order.
//!
//! Each root carries a sliding window (`<rendition>.m3u8`). The feed remembers the next
//! sequence it owes the listener; a new root yields the segments at or past it. If the
//! window has already slid past that sequence (the follower fell behind, or the station
//! was away), the lost segments are reported as a [`Discontinuity`] with the gap size,
//! never skipped silently. A window that went backwards (the station lost its state and
//! restarted its numbering) is reported too, and the feed restarts from the new window.

use ipfm_protocol::Cid;
use ipfm_store::Blockstore;
use m3u8_rs::{MasterPlaylist, MediaPlaylist};

use super::ListenError;
use crate::gateway::{read_file_at, GatewayError};
use crate::hls;

/// A playlist larger than this is refused (the station's are a few KiB).
pub const MAX_PLAYLIST_BYTES: u64 = 1024 * 1024;
/// A segment larger than this is refused (a 10 s segment at 320 kbit/s is ~400 KB).
pub const MAX_SEGMENT_BYTES: u64 = 32 * 1024 * 1024;

/// Where the feed starts in the first root's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// The oldest segment of the window (everything the station still serves).
    WindowStart,
    /// This many segments before the live edge (HLS players start 3 segments back).
    LiveEdge(usize),
}

/// Why the stream is not continuous at this point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discontinuity {
    /// `count` segments from `from` on left the station's window before this node saw them.
    Missed { from: u64, count: u64 },
    /// The station's numbering went back: the feed expected `expected`, the newest root
    /// ends at `newest`. Playback restarts in the new window.
    Reset { expected: u64, newest: u64 },
    /// Segment `sequence` was listed but could not be read from the store.
    Unreadable { sequence: u64, error: String },
}

impl std::fmt::Display for Discontinuity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Discontinuity::Missed { from, count } => write!(
                f,
                "{count} segment(s) from sequence {from} left the station's window before \
                 they reached this node"
            ),
            Discontinuity::Reset { expected, newest } => write!(
                f,
                "the station's media sequence went back (expected {expected}, newest is \
                 {newest}); restarting in its new window"
            ),
            Discontinuity::Unreadable { sequence, error } => {
                write!(f, "segment {sequence} unreadable: {error}")
            }
        }
    }
}

/// What the feed emits, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedEvent {
    /// The next segment's MPEG-TS bytes.
    Segment(FeedSegment),
    /// A break in the stream (the `#EXT-X-DISCONTINUITY` equivalent for byte outputs).
    Discontinuity(Discontinuity),
}

/// One segment of the followed rendition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedSegment {
    /// Its media sequence number.
    pub sequence: u64,
    /// The station marked it `#EXT-X-DISCONTINUITY` (e.g. its first after a restart).
    pub discontinuity: bool,
    pub bytes: Vec<u8>,
}

/// A segment as a root's playlist lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Listed {
    sequence: u64,
    discontinuity: bool,
    /// Path elements under the root (`["midfi", "42.ts"]`).
    path: Vec<String>,
}

/// Turns roots into the new segments of one rendition. See the module docs.
pub struct SegmentFeed<S> {
    store: S,
    rendition: String,
    start: StartAt,
    /// The sequence owed next; `None` before the first root.
    next: Option<u64>,
}

impl<S> SegmentFeed<S>
where
    S: Blockstore + Clone + Send + Sync + 'static,
{
    /// A feed of `rendition`'s segments, read from `store` (which holds each root whole).
    pub fn new(store: S, rendition: impl Into<String>, start: StartAt) -> Self {
        SegmentFeed {
            store,
            rendition: rendition.into(),
            start,
            next: None,
        }
    }

    /// The store segments are read from.
    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn rendition(&self) -> &str {
        &self.rendition
    }

    /// The sequence the feed will emit next (`None` before the first root).
    pub fn next_sequence(&self) -> Option<u64> {
        self.next
    }

    /// The events `root` brings, in order: its segments not emitted before, preceded by a
    /// [`Discontinuity`] when segments were lost.
    #[tracing::instrument(skip(self), fields(rendition = %self.rendition))]
    pub async fn events(&mut self, root: &Cid) -> Result<Vec<FeedEvent>, ListenError> {
        let listed = self.listed(root).await?;
        let (Some(first), Some(last)) = (listed.first(), listed.last()) else {
            return Ok(Vec::new());
        };
        let (first, last) = (first.sequence, last.sequence);
        let mut events = Vec::new();
        let from = match self.next {
            None => {
                let skip = match self.start {
                    StartAt::WindowStart => 0,
                    StartAt::LiveEdge(n) => listed.len().saturating_sub(n.max(1)),
                };
                listed[skip].sequence
            }
            // The same window again, or one the station re-published after a restart.
            Some(next) if last.checked_add(1) == Some(next) => return Ok(Vec::new()),
            Some(next) if last < next => {
                let reset = Discontinuity::Reset {
                    expected: next,
                    newest: last,
                };
                tracing::warn!(%reset, "stream discontinuity");
                events.push(FeedEvent::Discontinuity(reset));
                first
            }
            Some(next) if first > next => {
                let missed = Discontinuity::Missed {
                    from: next,
                    count: first - next,
                };
                tracing::warn!(gap = first - next, %missed, "stream discontinuity");
                events.push(FeedEvent::Discontinuity(missed));
                first
            }
            Some(next) => next,
        };
        for segment in listed.into_iter().filter(|s| s.sequence >= from) {
            match read_file_at(self.store.clone(), *root, &segment.path, MAX_SEGMENT_BYTES).await {
                Ok(bytes) => events.push(FeedEvent::Segment(FeedSegment {
                    sequence: segment.sequence,
                    discontinuity: segment.discontinuity,
                    bytes,
                })),
                Err(error) => {
                    let unreadable = Discontinuity::Unreadable {
                        sequence: segment.sequence,
                        error: error.to_string(),
                    };
                    tracing::warn!(%unreadable, "stream discontinuity");
                    events.push(FeedEvent::Discontinuity(unreadable));
                }
            }
        }
        self.next = Some(last.saturating_add(1));
        Ok(events)
    }

    /// The segments `root`'s playlist of this rendition lists, sequences increasing.
    async fn listed(&self, root: &Cid) -> Result<Vec<Listed>, ListenError> {
        let name = hls::playlist_name(&self.rendition);
        let text = match self.read(root, &name).await {
            Err(ListenError::Read(error)) if matches!(*error, GatewayError::NoSuchLink { .. }) => {
                return Err(ListenError::NoRendition {
                    rendition: self.rendition.clone(),
                    available: self.renditions(root).await,
                })
            }
            other => other?,
        };
        let playlist =
            m3u8_rs::parse_media_playlist_res(&text).map_err(|e| ListenError::BadPlaylist {
                name: name.clone(),
                detail: format!("not an HLS media playlist: {e:?}"),
            })?;
        listed_segments(&name, &playlist)
    }

    /// The rendition names `root`'s `master.m3u8` lists (for the error message only).
    async fn renditions(&self, root: &Cid) -> Vec<String> {
        let Ok(text) = self.read(root, "master.m3u8").await else {
            return Vec::new();
        };
        match m3u8_rs::parse_master_playlist_res(&text) {
            Ok(master) => rendition_names(&master),
            Err(_) => Vec::new(),
        }
    }

    async fn read(&self, root: &Cid, name: &str) -> Result<Vec<u8>, ListenError> {
        Ok(read_file_at(
            self.store.clone(),
            *root,
            &[name.to_owned()],
            MAX_PLAYLIST_BYTES,
        )
        .await?)
    }
}

/// The renditions of a master playlist: its variant URIs without `.m3u8`.
fn rendition_names(master: &MasterPlaylist) -> Vec<String> {
    master
        .variants
        .iter()
        .map(|v| v.uri.strip_suffix(".m3u8").unwrap_or(&v.uri).to_owned())
        .collect()
}

/// Each segment of `playlist` with its sequence and its path under the root.
///
/// The sequence is read from the station's URI form (`<rendition>/<sequence>.ts`), which
/// stays right even where the station's window skips numbers; any other URI gets the
/// playlist's position (`EXT-X-MEDIA-SEQUENCE` + index, RFC 8216 §6.3.5). URIs must stay
/// inside the root, and sequences must increase.
fn listed_segments(name: &str, playlist: &MediaPlaylist) -> Result<Vec<Listed>, ListenError> {
    let bad = |detail: String| ListenError::BadPlaylist {
        name: name.to_owned(),
        detail,
    };
    let mut listed: Vec<Listed> = Vec::with_capacity(playlist.segments.len());
    for (index, segment) in playlist.segments.iter().enumerate() {
        let path: Vec<String> = segment.uri.split('/').map(str::to_owned).collect();
        if segment.uri.contains("://")
            || path
                .iter()
                .any(|p| p.is_empty() || p == "." || p == ".." || p.contains('?'))
        {
            return Err(bad(format!(
                "segment URI {:?} is not a path inside the station root",
                segment.uri
            )));
        }
        let sequence = match sequence_in_uri(&path) {
            Some(sequence) => sequence,
            None => playlist
                .media_sequence
                .checked_add(index as u64)
                .ok_or_else(|| bad("media sequence overflows".to_owned()))?,
        };
        if let Some(previous) = listed.last() {
            if sequence <= previous.sequence {
                return Err(bad(format!(
                    "segment sequences do not increase ({} then {sequence})",
                    previous.sequence
                )));
            }
        }
        listed.push(Listed {
            sequence,
            discontinuity: segment.discontinuity,
            path,
        });
    }
    Ok(listed)
}

/// `42` from `[…, "42.ts"]`, the station's segment file name.
fn sequence_in_uri(path: &[String]) -> Option<u64> {
    let file = path.last()?;
    let number = file.strip_suffix(".ts")?;
    let sequence: u64 = number.parse().ok()?;
    // Only the canonical spelling (no `+`, no leading zeros) is the station's own.
    (hls::segment_file_name(sequence) == *file).then_some(sequence)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hls::{LiveWindow, PlaylistSegment};
    use std::time::Duration;

    fn parse(text: &str) -> MediaPlaylist {
        m3u8_rs::parse_media_playlist_res(text.as_bytes()).expect("media playlist")
    }

    fn window(sequences: impl IntoIterator<Item = u64>) -> String {
        let mut window = LiveWindow::new(100);
        for s in sequences {
            window.push(PlaylistSegment::new(s, Duration::from_secs(2), 100, false));
        }
        window.playlist("midfi")
    }

    #[test]
    fn sequences_come_from_the_station_uris() {
        let listed = listed_segments("midfi.m3u8", &parse(&window([4, 5, 9]))).unwrap();
        let sequences: Vec<u64> = listed.iter().map(|l| l.sequence).collect();
        assert_eq!(sequences, [4, 5, 9]);
        assert_eq!(listed[0].path, ["midfi", "4.ts"]);
        assert!(listed[2].discontinuity);
    }

    #[test]
    fn other_uris_get_the_playlist_position() {
        let text = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:30\n\
                    #EXTINF:2,\na.ts\n#EXTINF:2,\nx/007.ts\n";
        let listed = listed_segments("p.m3u8", &parse(text)).unwrap();
        let sequences: Vec<u64> = listed.iter().map(|l| l.sequence).collect();
        assert_eq!(sequences, [30, 31]);
    }

    #[test]
    fn uris_leaving_the_root_are_refused() {
        for uri in [
            "../x.ts",
            "/abs.ts",
            "http://evil/1.ts",
            "a//b.ts",
            "a/./1.ts",
        ] {
            let text = format!(
                "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:2,\n{uri}\n"
            );
            let error = listed_segments("p.m3u8", &parse(&text)).unwrap_err();
            assert!(
                matches!(error, ListenError::BadPlaylist { .. }),
                "{uri}: {error}"
            );
        }
    }

    #[test]
    fn decreasing_sequences_are_refused() {
        let text = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n\
                    #EXTINF:2,\nm/5.ts\n#EXTINF:2,\nm/4.ts\n";
        assert!(listed_segments("p.m3u8", &parse(text)).is_err());
    }

    #[test]
    fn only_canonical_file_names_carry_a_sequence() {
        let path = |f: &str| vec!["m".to_owned(), f.to_owned()];
        assert_eq!(sequence_in_uri(&path("12.ts")), Some(12));
        assert_eq!(sequence_in_uri(&path("012.ts")), None);
        assert_eq!(sequence_in_uri(&path("+1.ts")), None);
        assert_eq!(sequence_in_uri(&path("1.aac")), None);
    }
}
