//! HLS playlists (RFC 8216), written with `m3u8-rs`: the master playlist, VOD media
//! playlists (`ipfm render`) and sliding live windows (`ipfm station`).
//!
//! Every URI is relative (`lofi.m3u8`, `lofi/42.ts`) so that the station directory plays
//! from any gateway, path or subdomain style.

use std::collections::VecDeque;
use std::time::Duration;

use m3u8_rs::{MasterPlaylist, MediaPlaylist, MediaPlaylistType, MediaSegment, VariantStream};
use serde::{Deserialize, Serialize};

/// Codec of every rendition: AAC-LC.
pub const AUDIO_CODECS: &str = "mp4a.40.2";

/// Live window length by default: gateways cache IPNS for the TTL, so a listener through
/// a public gateway lags a few segments behind; 20 segments keep them inside the window.
pub const DEFAULT_WINDOW: usize = 20;

/// HLS protocol version: 3 allows decimal `EXTINF` durations.
const VERSION: usize = 3;

/// Headroom over the measured peak for `BANDWIDTH`, in percent (MPEG-TS overhead varies
/// by segment).
const BANDWIDTH_PADDING_PERCENT: u64 = 10;

/// The playlist name of a rendition, relative to the station root.
pub fn playlist_name(rendition: &str) -> String {
    format!("{rendition}.m3u8")
}

/// The URI of a segment relative to the station root.
pub fn segment_uri(rendition: &str, sequence: u64) -> String {
    format!("{rendition}/{}", segment_file_name(sequence))
}

/// The file name of a segment inside its rendition's folder.
pub fn segment_file_name(sequence: u64) -> String {
    format!("{sequence}.ts")
}

/// One segment as a playlist lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaylistSegment {
    pub sequence: u64,
    /// Duration in seconds.
    pub duration: f64,
    /// Size of the MPEG-TS file in bytes (for the peak bit rate).
    pub size: u64,
    /// Timestamps do not follow the previous segment.
    pub discontinuity: bool,
}

impl PlaylistSegment {
    pub fn new(sequence: u64, duration: Duration, size: u64, discontinuity: bool) -> Self {
        PlaylistSegment {
            sequence,
            duration: duration.as_secs_f64(),
            size,
            discontinuity,
        }
    }

    /// Bits per second of this segment.
    pub fn bit_rate(&self) -> f64 {
        if self.duration > 0.0 {
            self.size as f64 * 8.0 / self.duration
        } else {
            0.0
        }
    }
}

/// A rendition as the master playlist lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    pub name: String,
    /// Nominal encoder bit rate (bits/s).
    pub bitrate: u32,
    /// Highest measured segment bit rate so far (bits/s), if any segment was seen.
    pub measured_peak: Option<f64>,
}

impl Variant {
    /// `BANDWIDTH`: the peak bit rate (the measured one if known, else the nominal one
    /// plus container overhead), padded.
    pub fn bandwidth(&self) -> u64 {
        let peak = self
            .measured_peak
            .unwrap_or(f64::from(self.bitrate))
            .max(f64::from(self.bitrate));
        // Integer padding: exact, whatever the float rounding of the peak.
        let peak = peak.ceil() as u64;
        peak.saturating_mul(100 + BANDWIDTH_PADDING_PERCENT)
            .div_ceil(100)
    }
}

/// The master playlist: one variant per rendition, lowest bandwidth first.
pub fn master_playlist(variants: &[Variant]) -> String {
    let mut variants: Vec<&Variant> = variants.iter().collect();
    variants.sort_by_key(|v| v.bandwidth());
    let playlist = MasterPlaylist {
        version: Some(VERSION),
        variants: variants
            .into_iter()
            .map(|v| VariantStream {
                uri: playlist_name(&v.name),
                bandwidth: v.bandwidth(),
                codecs: Some(AUDIO_CODECS.to_owned()),
                ..VariantStream::default()
            })
            .collect(),
        ..MasterPlaylist::default()
    };
    write(|w| playlist.write_to(w))
}

/// A complete VOD media playlist (`#EXT-X-PLAYLIST-TYPE:VOD`, `#EXT-X-ENDLIST`).
pub fn vod_playlist(rendition: &str, segments: &[PlaylistSegment]) -> String {
    let mut playlist = media_playlist(rendition, segments.iter(), 0);
    playlist.playlist_type = Some(MediaPlaylistType::Vod);
    playlist.end_list = true;
    write(|w| playlist.write_to(w))
}

fn media_playlist<'a>(
    rendition: &str,
    segments: impl Iterator<Item = &'a PlaylistSegment> + Clone,
    discontinuity_sequence: u64,
) -> MediaPlaylist {
    let media_sequence = segments.clone().next().map_or(0, |s| s.sequence);
    MediaPlaylist {
        version: Some(VERSION),
        target_duration: target_duration(segments.clone()),
        media_sequence,
        discontinuity_sequence,
        segments: segments
            .map(|s| MediaSegment {
                uri: segment_uri(rendition, s.sequence),
                duration: s.duration as f32,
                discontinuity: s.discontinuity,
                ..MediaSegment::empty()
            })
            .collect(),
        ..MediaPlaylist::default()
    }
}

/// `#EXT-X-TARGETDURATION`: at least every segment's duration rounded to the nearest
/// integer (RFC 8216 §4.3.3.1), and at least 1.
fn target_duration<'a>(segments: impl Iterator<Item = &'a PlaylistSegment>) -> u64 {
    segments
        .map(|s| s.duration.round().max(0.0) as u64)
        .max()
        .unwrap_or(0)
        .max(1)
}

/// A live media playlist's sliding window of segments.
///
/// `#EXT-X-MEDIA-SEQUENCE` is the first listed segment's sequence; the discontinuity
/// sequence counts the discontinuities that slid out of the window (RFC 8216 §6.2.2), so
/// both only grow. The window is serialisable so that a restarted station continues it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveWindow {
    capacity: usize,
    segments: VecDeque<PlaylistSegment>,
    discontinuity_sequence: u64,
}

impl LiveWindow {
    /// An empty window of at most `capacity` (≥ 1) segments.
    pub fn new(capacity: usize) -> Self {
        LiveWindow {
            capacity: capacity.max(1),
            segments: VecDeque::new(),
            discontinuity_sequence: 0,
        }
    }

    /// Change the capacity (e.g. after a configuration change across a restart); returns
    /// the segments that no longer fit.
    pub fn set_capacity(&mut self, capacity: usize) -> Vec<PlaylistSegment> {
        self.capacity = capacity.max(1);
        self.trim()
    }

    /// Append the newest segment; returns the segments that slid out of the window.
    /// A segment whose sequence does not follow the newest one is appended too but marked
    /// as a discontinuity (players must not assume continuous timestamps across it).
    pub fn push(&mut self, mut segment: PlaylistSegment) -> Vec<PlaylistSegment> {
        if let Some(last) = self.segments.back() {
            if segment.sequence <= last.sequence {
                // Sequences never go backwards: anything at or below the newest one would
                // make the playlist invalid. Drop the stale window instead.
                let dropped: Vec<_> = self.segments.drain(..).collect();
                self.discontinuity_sequence +=
                    dropped.iter().filter(|s| s.discontinuity).count() as u64;
                segment.discontinuity = true;
                self.segments.push_back(segment);
                return dropped;
            }
            if segment.sequence != last.sequence + 1 {
                segment.discontinuity = true;
            }
        }
        self.segments.push_back(segment);
        self.trim()
    }

    fn trim(&mut self) -> Vec<PlaylistSegment> {
        let mut removed = Vec::new();
        while self.segments.len() > self.capacity {
            if let Some(gone) = self.segments.pop_front() {
                if gone.discontinuity {
                    self.discontinuity_sequence += 1;
                }
                removed.push(gone);
            }
        }
        removed
    }

    pub fn segments(&self) -> impl Iterator<Item = &PlaylistSegment> + Clone {
        self.segments.iter()
    }

    pub fn len(&self) -> usize {
        self.segments.len()
    }

    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// `#EXT-X-MEDIA-SEQUENCE`: the first segment's sequence (0 when empty).
    pub fn media_sequence(&self) -> u64 {
        self.segments.front().map_or(0, |s| s.sequence)
    }

    /// `#EXT-X-DISCONTINUITY-SEQUENCE`.
    pub fn discontinuity_sequence(&self) -> u64 {
        self.discontinuity_sequence
    }

    /// Highest bit rate among the window's segments.
    pub fn peak_bit_rate(&self) -> Option<f64> {
        self.segments
            .iter()
            .map(PlaylistSegment::bit_rate)
            .reduce(f64::max)
    }

    /// The live media playlist of `rendition` (no `ENDLIST`, no playlist type).
    pub fn playlist(&self, rendition: &str) -> String {
        let playlist = media_playlist(rendition, self.segments.iter(), self.discontinuity_sequence);
        write(|w| playlist.write_to(w))
    }
}

fn write(write_to: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> String {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail; m3u8-rs only writes UTF-8 from our strings.
    write_to(&mut out).expect("writing to a Vec never fails");
    String::from_utf8(out).expect("m3u8-rs writes the UTF-8 it is given")
}

#[cfg(test)]
mod tests {
    use super::*;
    use m3u8_rs::Playlist;

    fn seg(sequence: u64, duration: f64, discontinuity: bool) -> PlaylistSegment {
        PlaylistSegment {
            sequence,
            duration,
            size: 16_000,
            discontinuity,
        }
    }

    fn parse_media(text: &str) -> MediaPlaylist {
        match m3u8_rs::parse_playlist_res(text.as_bytes()) {
            Ok(Playlist::MediaPlaylist(p)) => p,
            other => panic!("not a media playlist: {other:?}\n{text}"),
        }
    }

    #[test]
    fn master_lists_every_rendition_with_padded_peak_and_codec() {
        let text = master_playlist(&[
            Variant {
                name: "hifi".into(),
                bitrate: 192_000,
                measured_peak: Some(200_000.0),
            },
            Variant {
                name: "lofi".into(),
                bitrate: 64_000,
                measured_peak: None,
            },
        ]);
        let Ok(Playlist::MasterPlaylist(master)) = m3u8_rs::parse_playlist_res(text.as_bytes())
        else {
            panic!("not a master playlist:\n{text}");
        };
        assert_eq!(master.variants.len(), 2);
        assert_eq!(master.variants[0].uri, "lofi.m3u8");
        assert_eq!(master.variants[0].bandwidth, 70_400);
        assert_eq!(master.variants[1].uri, "hifi.m3u8");
        assert_eq!(master.variants[1].bandwidth, 220_000);
        for v in &master.variants {
            assert_eq!(v.codecs.as_deref(), Some("mp4a.40.2"));
        }
    }

    #[test]
    fn vod_playlist_ends_and_covers_every_segment() {
        let segments = [seg(0, 2.005, false), seg(1, 2.4, false), seg(2, 0.7, false)];
        let text = vod_playlist("lofi", &segments);
        assert!(text.contains("#EXT-X-PLAYLIST-TYPE:VOD"), "{text}");
        let p = parse_media(&text);
        assert!(p.end_list);
        assert_eq!(p.playlist_type, Some(MediaPlaylistType::Vod));
        assert_eq!(p.target_duration, 2);
        let uris: Vec<_> = p.segments.iter().map(|s| s.uri.as_str()).collect();
        assert_eq!(uris, ["lofi/0.ts", "lofi/1.ts", "lofi/2.ts"]);
    }

    #[test]
    fn target_duration_covers_rounded_longest_segment() {
        let text = vod_playlist("x", &[seg(0, 5.9, false), seg(1, 6.5, false)]);
        assert_eq!(parse_media(&text).target_duration, 7);
    }

    #[test]
    fn live_window_slides_and_media_sequence_follows_first_segment() {
        let mut window = LiveWindow::new(3);
        for sequence in 10..15 {
            let removed = window.push(seg(sequence, 2.0, false));
            assert_eq!(removed.len(), usize::from(sequence >= 13));
        }
        let p = parse_media(&window.playlist("midfi"));
        assert!(!p.end_list);
        assert_eq!(p.playlist_type, None);
        assert_eq!(p.media_sequence, 12);
        let uris: Vec<_> = p.segments.iter().map(|s| s.uri.as_str()).collect();
        assert_eq!(uris, ["midfi/12.ts", "midfi/13.ts", "midfi/14.ts"]);
    }

    #[test]
    fn discontinuity_sequence_counts_discontinuities_that_left_the_window() {
        let mut window = LiveWindow::new(2);
        window.push(seg(0, 2.0, true));
        window.push(seg(1, 2.0, false));
        window.push(seg(2, 2.0, true));
        // Segment 0 (a discontinuity) has left.
        assert_eq!(window.discontinuity_sequence(), 1);
        let p = parse_media(&window.playlist("lofi"));
        assert_eq!(p.discontinuity_sequence, 1);
        assert!(!p.segments[0].discontinuity);
        assert!(p.segments[1].discontinuity);
        window.push(seg(3, 2.0, false));
        assert_eq!(window.discontinuity_sequence(), 1);
        window.push(seg(4, 2.0, false));
        assert_eq!(window.discontinuity_sequence(), 2);
        assert_eq!(
            parse_media(&window.playlist("lofi")).discontinuity_sequence,
            2
        );
    }

    #[test]
    fn a_gap_in_sequences_is_marked_as_discontinuity() {
        let mut window = LiveWindow::new(5);
        window.push(seg(0, 2.0, false));
        window.push(seg(7, 2.0, false));
        let p = parse_media(&window.playlist("lofi"));
        assert!(p.segments[1].discontinuity);
    }

    #[test]
    fn window_survives_serialisation() {
        let mut window = LiveWindow::new(2);
        for s in 0..4 {
            window.push(seg(s, 2.0, s == 1));
        }
        let json = serde_json::to_vec(&window).unwrap();
        let back: LiveWindow = serde_json::from_slice(&json).unwrap();
        assert_eq!(back, window);
        assert_eq!(back.discontinuity_sequence(), 1);
    }
}
