//! What the encoder hands out.

use std::time::Duration;

use serde::Serialize;

use crate::library::SkippedFile;
use crate::playout::PlayoutPosition;

/// What kind of source is playing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SourceKind {
    Track,
    Jingle,
    Demo,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Track => "track",
            SourceKind::Jingle => "jingle",
            SourceKind::Demo => "demo",
        }
    }
}

/// The source playing at a segment's start, as written in its ID3 frame.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NowPlaying {
    pub title: String,
    pub artist: Option<String>,
    pub album: Option<String>,
    pub kind: SourceKind,
    /// Where the source began on the stream timeline (same clock as
    /// [`Segment::media_start`]).
    pub track_start: Duration,
}

/// One MPEG-TS segment of one rendition.
#[derive(Debug, Clone)]
pub struct Segment {
    pub rendition: String,
    /// Media sequence number: the same for every rendition's cut of the same
    /// media time, one more for each segment, continued across restarts.
    pub sequence: u64,
    /// Start on the stream timeline, in samples at 48 kHz: equal across
    /// renditions; the next segment starts at `start_sample + sample_count`.
    pub start_sample: u64,
    /// Length in samples at 48 kHz (a multiple of an AAC frame).
    pub sample_count: u64,
    /// `start_sample` as a duration (rounded down to the nanosecond).
    pub media_start: Duration,
    /// `sample_count` as a duration (rounded down to the nanosecond).
    pub duration: Duration,
    /// A complete MPEG-TS file (PAT/PMT, AAC in ADTS, timed ID3).
    pub bytes: Vec<u8>,
    pub now_playing: NowPlaying,
    /// Timestamps do not follow the previous segment (first one after a restart).
    pub discontinuity: bool,
    /// Where to resume if the station restarts after publishing this segment.
    pub position: PlayoutPosition,
}

/// An event on the encoder's output channel. The channel closes after the
/// last segment (end of a single pass, or after a stop).
// Segments are nearly every event: boxing them to shrink the rare Skipped
// variant would cost an allocation per segment for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum EncoderEvent {
    Segment(Segment),
    /// A file failed at play time (decode error, truncation) and was left out.
    Skipped(SkippedFile),
}
