//! Joining sources into one continuous sample stream (gapless or
//! crossfaded) and cutting it into segments at fixed sample positions.

use std::collections::VecDeque;
use std::f32::consts::FRAC_PI_2;
use std::sync::Arc;

use super::loudness::soft_limit;
use crate::config::{AAC_FRAME_SAMPLES, CHANNELS};
use crate::events::NowPlaying;
use crate::playout::PlayoutPosition;

/// A source's start on the stream, with what to announce and where the
/// rotation stood once it was chosen.
#[derive(Debug, Clone)]
pub(crate) struct Mark {
    pub start: u64,
    pub now_playing: NowPlaying,
    pub position: PlayoutPosition,
}

/// A cut segment, before encoding.
#[derive(Debug, Clone)]
pub(crate) struct Cut {
    /// First sample (per channel) on the stream timeline.
    pub start: u64,
    /// Interleaved stereo; a multiple of an AAC frame long.
    pub samples: Arc<[f32]>,
    /// What plays at `start`.
    pub now_playing: NowPlaying,
    /// Sources starting inside the segment: (stream sample, now playing).
    pub changes: Vec<(u64, NowPlaying)>,
    /// Rotation state of the latest source begun by the segment's end.
    pub position: PlayoutPosition,
}

/// Pending audio: a stored source read through its scale, or a crossfade
/// already mixed in float.
enum Chunk {
    Stored { samples: Vec<i16>, scale: f32 },
    Mixed(Vec<f32>),
}

impl Chunk {
    fn len(&self) -> usize {
        match self {
            Chunk::Stored { samples, .. } => samples.len(),
            Chunk::Mixed(samples) => samples.len(),
        }
    }

    /// Appends values `range` as limited float samples.
    fn read_into(&self, range: std::ops::Range<usize>, out: &mut Vec<f32>) {
        match self {
            Chunk::Stored { samples, scale } => out.extend(
                samples[range]
                    .iter()
                    .map(|s| soft_limit(f32::from(*s) * scale)),
            ),
            Chunk::Mixed(samples) => out.extend(samples[range].iter().map(|s| soft_limit(*s))),
        }
    }
}

pub(crate) struct Mixer {
    /// Interleaved audio not yet cut, one chunk per source (moved in
    /// without copying: a decoded track is tens of megabytes).
    chunks: VecDeque<Chunk>,
    /// Values of `chunks[0]` already cut.
    consumed: usize,
    /// Frames held in `chunks`, not counting `consumed`.
    frames: usize,
    /// Stream sample index of the first pending frame.
    pending_start: u64,
    /// Frames at the end kept back to be crossfaded with the next source;
    /// always inside the last chunk, which is then a stored one.
    holdback: usize,
    crossfade: usize,
    marks: VecDeque<Mark>,
}

impl Mixer {
    pub(crate) fn new(start: u64, crossfade_frames: usize) -> Self {
        Mixer {
            chunks: VecDeque::new(),
            consumed: 0,
            frames: 0,
            pending_start: start,
            holdback: 0,
            crossfade: crossfade_frames,
            marks: VecDeque::new(),
        }
    }

    /// Frames that can be cut now (the crossfade tail is not yet final).
    pub(crate) fn ready_frames(&self) -> usize {
        self.frames - self.holdback
    }

    /// Appends a stored source read at `scale`; with a crossfade, its head
    /// overlaps the previous source's tail with equal-power fades.
    pub(crate) fn add_source(
        &mut self,
        mut samples: Vec<i16>,
        scale: f32,
        now_playing: NowPlaying,
        position: PlayoutPosition,
    ) {
        samples.truncate(samples.len() / CHANNELS * CHANNELS);
        let frames = samples.len() / CHANNELS;
        let fade = self.holdback.min(frames / 2);
        let tail_start = self.frames - fade;
        if fade > 0 {
            let only_chunk = self.chunks.len() == 1;
            if let Some(Chunk::Stored {
                samples: previous,
                scale: previous_scale,
            }) = self.chunks.back_mut()
            {
                let tail = previous.split_off(previous.len() - fade * CHANNELS);
                let previous_scale = *previous_scale;
                let emptied = previous.len() == if only_chunk { self.consumed } else { 0 };
                let mut mixed = Vec::with_capacity(tail.len());
                for i in 0..fade {
                    let angle = FRAC_PI_2 * (i as f32 + 0.5) / fade as f32;
                    let (fade_out, fade_in) = (angle.cos(), angle.sin());
                    for ch in 0..CHANNELS {
                        let at = i * CHANNELS + ch;
                        mixed.push(
                            f32::from(tail[at]) * previous_scale * fade_out
                                + f32::from(samples[at]) * scale * fade_in,
                        );
                    }
                }
                if emptied {
                    self.chunks.pop_back();
                    if only_chunk {
                        self.consumed = 0;
                    }
                }
                self.chunks.push_back(Chunk::Mixed(mixed));
                samples.drain(..fade * CHANNELS);
            }
        }
        let start = self.pending_start + tail_start as u64;
        self.frames += frames - fade;
        if !samples.is_empty() {
            self.chunks.push_back(Chunk::Stored { samples, scale });
        }
        self.holdback = self.crossfade.min(frames / 2).min(frames - fade);
        let mut now_playing = now_playing;
        now_playing.track_start = crate::config::samples_to_duration(start);
        self.marks.push_back(Mark {
            start,
            now_playing,
            position,
        });
    }

    /// Cuts one segment of `len` frames if that much is ready.
    pub(crate) fn cut(&mut self, len: usize) -> Option<Cut> {
        (self.ready_frames() >= len).then(|| self.take(len, len))
    }

    /// At end of stream: releases the held-back tail and cuts what is left,
    /// the last piece padded with silence to a whole AAC frame.
    pub(crate) fn cut_final(&mut self, len: usize) -> Option<Cut> {
        self.holdback = 0;
        match self.frames {
            0 => None,
            left if left >= len => Some(self.take(len, len)),
            left => {
                let frame = AAC_FRAME_SAMPLES as usize;
                Some(self.take(left, left.div_ceil(frame) * frame))
            }
        }
    }

    /// Takes `len` frames, zero-padded to `padded` frames.
    fn take(&mut self, len: usize, padded: usize) -> Cut {
        let start = self.pending_start;
        let end = start + padded as u64;
        let mut out = Vec::with_capacity(padded * CHANNELS);
        let mut wanted = len * CHANNELS;
        while wanted > 0 {
            let Some(chunk) = self.chunks.front() else {
                break;
            };
            let n = (chunk.len() - self.consumed).min(wanted);
            chunk.read_into(self.consumed..self.consumed + n, &mut out);
            wanted -= n;
            self.consumed += n;
            if self.consumed == chunk.len() {
                self.chunks.pop_front();
                self.consumed = 0;
            }
        }
        out.resize(padded * CHANNELS, 0.0);
        self.frames -= len;
        self.pending_start = end;
        // Drop marks superseded before this segment's start, keeping the one in force.
        while self.marks.len() > 1 && self.marks[1].start <= start {
            self.marks.pop_front();
        }
        let current = self
            .marks
            .front()
            .expect("a segment always follows a source");
        let changes = self
            .marks
            .iter()
            .filter(|m| m.start > start && m.start < end)
            .map(|m| (m.start, m.now_playing.clone()))
            .collect();
        let position = self
            .marks
            .iter()
            .rev()
            .find(|m| m.start < end)
            .unwrap_or(current)
            .position
            .clone();
        Cut {
            start,
            samples: out.into(),
            now_playing: current.now_playing.clone(),
            changes,
            position,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::SourceKind;
    use std::time::Duration;

    /// Stored value 16384 read at this scale plays at `level`.
    fn scale(level: f32) -> f32 {
        level / 16384.0
    }

    fn np(title: &str) -> NowPlaying {
        NowPlaying {
            title: title.into(),
            artist: None,
            album: None,
            kind: SourceKind::Track,
            track_start: Duration::ZERO,
        }
    }

    fn source(frames: usize) -> Vec<i16> {
        vec![16384; frames * 2]
    }

    #[test]
    fn gapless_concatenates_and_marks_changes() {
        let mut m = Mixer::new(0, 0);
        let pos = PlayoutPosition::default;
        m.add_source(source(3000), scale(0.5), np("a"), pos());
        m.add_source(source(3000), scale(0.25), np("b"), pos());
        let c = m.cut(2048).unwrap();
        assert_eq!(c.start, 0);
        assert_eq!(c.now_playing.title, "a");
        assert!(c.changes.is_empty());
        let c = m.cut(2048).unwrap();
        assert_eq!(c.start, 2048);
        assert_eq!(c.changes.len(), 1);
        assert_eq!(c.changes[0].0, 3000);
        assert_eq!(c.samples[(3000 - 2048) * 2], 0.25);
        assert_eq!(c.samples[(2999 - 2048) * 2], 0.5);
        assert!(m.cut(2048).is_none());
        let last = m.cut_final(2048).unwrap();
        assert_eq!(last.samples.len(), 2048 * 2); // 1904 left, padded to 2048
        assert_eq!(last.samples[1903 * 2], 0.25);
        assert_eq!(last.samples[1904 * 2], 0.0);
        assert_eq!(last.now_playing.title, "b");
        assert_eq!(
            last.now_playing.track_start,
            crate::config::samples_to_duration(3000)
        );
        assert!(m.cut_final(2048).is_none());
    }

    #[test]
    fn crossfade_overlaps_and_keeps_power() {
        let mut m = Mixer::new(0, 1000);
        let pos = PlayoutPosition::default;
        m.add_source(source(4000), scale(0.5), np("a"), pos());
        assert_eq!(m.ready_frames(), 3000);
        m.add_source(source(4000), scale(0.5), np("b"), pos());
        // 4000 + 4000 - 1000 overlap = 7000 frames, 1000 held back again.
        assert_eq!(m.ready_frames(), 6000);
        let c = m.cut(6000).unwrap();
        assert_eq!(c.changes[0].0, 3000);
        // Mid-fade, equal power sums two equal signals to about sqrt(2) × 0.5.
        let mid = c.samples[3500 * 2];
        assert!((mid - 0.5 * 2f32.sqrt()).abs() < 0.01, "{mid}");
        assert!((c.samples[2999 * 2] - 0.5).abs() < 1e-6);
        assert!((c.samples[4000 * 2] - 0.5).abs() < 1e-6);
    }

    #[test]
    fn crossfade_after_the_previous_source_was_mostly_cut() {
        let mut m = Mixer::new(0, 1024);
        let pos = PlayoutPosition::default;
        m.add_source(source(3072), scale(0.5), np("a"), pos());
        // Cut everything but the held-back tail: the tail is all that is left.
        assert!(m.cut(2048).is_some());
        assert_eq!(m.ready_frames(), 0);
        m.add_source(source(4096), scale(0.5), np("b"), pos());
        assert_eq!(m.ready_frames(), 4096 - 1024);
        let c = m.cut(3072).unwrap();
        // "b" starts exactly where this segment starts (at a's held-back tail).
        assert_eq!(c.start, 2048);
        assert_eq!(c.now_playing.title, "b");
        assert!(c.changes.is_empty());
        assert!((c.samples[512 * 2] - 0.5 * 2f32.sqrt()).abs() < 0.01);
        let last = m.cut_final(4096).unwrap();
        assert_eq!(last.start, 2048 + 3072);
        assert_eq!(last.samples.len(), 1024 * 2);
    }
}
