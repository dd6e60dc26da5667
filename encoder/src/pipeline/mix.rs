//! Joining sources into one continuous sample stream (gapless or
//! crossfaded) and cutting it into segments at fixed sample positions.
//!
//! Sources are streamed: the mixer reads each one (its spill file) a
//! segment at a time through its gain, and during a crossfade reads the
//! tail of the outgoing source and the head of the incoming one side by
//! side. Nothing of a source is held beyond the piece being mixed.

use std::collections::VecDeque;
use std::f32::consts::FRAC_PI_2;

use super::loudness::soft_limit;
use super::source::PcmSource;
use crate::config::{samples_to_duration, CHANNELS};
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
    pub samples: Vec<f32>,
    /// What plays at `start`.
    pub now_playing: NowPlaying,
    /// Sources starting inside the segment: (stream sample, now playing).
    pub changes: Vec<(u64, NowPlaying)>,
    /// Rotation state of the latest source begun by the segment's end.
    pub position: PlayoutPosition,
}

/// Frames read from a source at a time: keeps the read buffers small
/// (32 KiB) whatever the segment length.
const READ_FRAMES: usize = 8192;

/// A prepared source waiting for its turn.
pub(crate) struct Queued {
    pub source: PcmSource,
    pub now_playing: NowPlaying,
    pub position: PlayoutPosition,
}

/// The source playing now.
struct Playing {
    source: PcmSource,
    /// Frames at its end kept for the crossfade into the next source.
    holdback: u64,
    /// Counts sources begun: tells a skip which source it was meant for.
    serial: u64,
}

/// The previous source fading out under the head of the current one.
struct Fading {
    source: PcmSource,
    len: u64,
    done: u64,
}

/// Why [`Mixer::render`] returned.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Render {
    /// The buffer holds the frames asked for.
    Full,
    /// The next source must be queued (or, at the end, the tail released)
    /// before more can be rendered.
    NeedSource,
}

pub(crate) struct Mixer {
    /// Stream sample of the next frame rendered.
    position: u64,
    current: Option<Playing>,
    fading: Option<Fading>,
    queued: Option<Queued>,
    crossfade: u64,
    serial: u64,
    marks: VecDeque<Mark>,
    /// Reused read buffers (outgoing, incoming).
    a: Vec<i16>,
    b: Vec<i16>,
}

impl Mixer {
    pub(crate) fn new(start: u64, crossfade_frames: usize) -> Self {
        Mixer {
            position: start,
            current: None,
            fading: None,
            queued: None,
            crossfade: crossfade_frames as u64,
            serial: 0,
            marks: VecDeque::new(),
            a: Vec::new(),
            b: Vec::new(),
        }
    }

    /// Stream sample of the next frame to render.
    pub(crate) fn position(&self) -> u64 {
        self.position
    }

    pub(crate) fn has_queued(&self) -> bool {
        self.queued.is_some()
    }

    /// Frames of the current source not rendered yet.
    pub(crate) fn current_left(&self) -> Option<u64> {
        self.current.as_ref().map(|c| c.source.left())
    }

    pub(crate) fn current_serial(&self) -> Option<u64> {
        self.current.as_ref().map(|c| c.serial)
    }

    /// Queues the source that follows the current one; with a crossfade,
    /// its head will overlap the current source's tail.
    pub(crate) fn queue(&mut self, next: Queued) {
        debug_assert!(self.queued.is_none(), "one source queued at a time");
        if let Some(current) = self.current.as_mut() {
            // A short next source shortens the fade (at most half of it overlaps).
            current.holdback = current
                .holdback
                .min(next.source.frames() / 2)
                .min(current.source.left());
        }
        self.queued = Some(next);
    }

    /// At the end of the stream (nothing will be queued): lets the held-back
    /// tail play out. False when nothing is left to render.
    pub(crate) fn release(&mut self) -> bool {
        match self.current.as_mut() {
            Some(current) => {
                current.holdback = 0;
                current.source.left() > 0
            }
            None => false,
        }
    }

    /// Ends the current source early: it fades out over `fade` frames (fewer
    /// if less is left or the next source is short) under the head of the
    /// queued source. False (nothing done) when no source is queued yet or
    /// the current one is still fading in: try again at the next segment.
    pub(crate) fn skip(&mut self, fade: u64) -> bool {
        if self.fading.is_some() {
            return false;
        }
        let (Some(current), Some(next)) = (self.current.as_mut(), self.queued.as_ref()) else {
            return false;
        };
        let fade = fade
            .min(next.source.frames() / 2)
            .min(current.source.left());
        current.source.truncate(fade);
        current.holdback = fade;
        true
    }

    /// Appends frames to `out` (interleaved stereo float, limited) until it
    /// holds `frames` frames or the next source is needed.
    pub(crate) fn render(&mut self, out: &mut Vec<f32>, frames: usize) -> Render {
        loop {
            let room = frames.saturating_sub(out.len() / CHANNELS);
            if room == 0 {
                return Render::Full;
            }
            if self.fading.is_some() {
                self.render_fade(out, room);
                continue;
            }
            let Some(current) = self.current.as_mut() else {
                match self.queued.take() {
                    Some(next) => {
                        self.begin(next);
                        continue;
                    }
                    None => return Render::NeedSource,
                }
            };
            let plain = current.source.left() - current.holdback;
            if plain == 0 {
                match self.queued.take() {
                    Some(next) => self.begin(next),
                    None => {
                        if current.source.left() == 0 {
                            self.current = None;
                        }
                        return Render::NeedSource;
                    }
                }
                continue;
            }
            let n = room
                .min(READ_FRAMES)
                .min(usize::try_from(plain).unwrap_or(usize::MAX));
            current.source.read(n, &mut self.a);
            let scale = current.source.scale();
            out.extend(self.a.iter().map(|s| soft_limit(f32::from(*s) * scale)));
            self.position += n as u64;
        }
    }

    /// Mixes up to `room` frames of the running crossfade (equal power).
    fn render_fade(&mut self, out: &mut Vec<f32>, room: usize) {
        let (Some(fading), Some(current)) = (self.fading.as_mut(), self.current.as_mut()) else {
            self.fading = None;
            return;
        };
        let n = room
            .min(READ_FRAMES)
            .min(usize::try_from(fading.len - fading.done).unwrap_or(usize::MAX));
        fading.source.read(n, &mut self.a);
        current.source.read(n, &mut self.b);
        let (out_scale, in_scale) = (fading.source.scale(), current.source.scale());
        for i in 0..n {
            let angle = FRAC_PI_2 * ((fading.done + i as u64) as f32 + 0.5) / fading.len as f32;
            let (fade_out, fade_in) = (angle.cos() * out_scale, angle.sin() * in_scale);
            for ch in 0..CHANNELS {
                let at = i * CHANNELS + ch;
                let a = self.a.get(at).map_or(0.0, |s| f32::from(*s));
                let b = self.b.get(at).map_or(0.0, |s| f32::from(*s));
                out.push(soft_limit(a * fade_out + b * fade_in));
            }
        }
        fading.done += n as u64;
        self.position += n as u64;
        if fading.done >= fading.len {
            self.fading = None;
        }
    }

    /// Makes `next` the current source; what is left of the previous one
    /// (its held-back tail) fades out under it.
    fn begin(&mut self, next: Queued) {
        if let Some(previous) = self.current.take() {
            let len = previous.source.left();
            if len > 0 {
                self.fading = Some(Fading {
                    source: previous.source,
                    len,
                    done: 0,
                });
            }
        }
        let mut now_playing = next.now_playing;
        now_playing.track_start = samples_to_duration(self.position);
        self.marks.push_back(Mark {
            start: self.position,
            now_playing,
            position: next.position,
        });
        self.serial += 1;
        let holdback = self.crossfade.min(next.source.frames() / 2);
        self.current = Some(Playing {
            source: next.source,
            holdback,
            serial: self.serial,
        });
    }

    /// Wraps rendered samples that start at stream sample `start` (already
    /// padded to whole AAC frames) into a segment with its metadata.
    pub(crate) fn cut(&mut self, start: u64, samples: Vec<f32>) -> Option<Cut> {
        let end = start + (samples.len() / CHANNELS) as u64;
        // Drop marks superseded before this segment's start, keeping the one in force.
        while self.marks.len() > 1 && self.marks[1].start <= start {
            self.marks.pop_front();
        }
        let current = self.marks.front()?;
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
        Some(Cut {
            start,
            samples,
            now_playing: current.now_playing.clone(),
            changes,
            position,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::SourceKind;
    use std::sync::Arc;
    use std::time::Duration;

    /// Stored value 16384 read at this scale plays at `level`.
    fn scale(level: f32) -> f32 {
        level / 16384.0
    }

    fn source(title: &str, frames: usize, level: f32) -> Queued {
        Queued {
            source: PcmSource::in_memory(Arc::new(vec![16384; frames * 2]), scale(level)),
            now_playing: NowPlaying {
                title: title.into(),
                artist: None,
                album: None,
                kind: SourceKind::Track,
                track_start: Duration::ZERO,
            },
            position: PlayoutPosition::default(),
        }
    }

    /// Renders `frames` frames, queueing the given sources whenever asked.
    fn render(m: &mut Mixer, frames: usize, sources: &mut Vec<Queued>) -> (Vec<f32>, Render) {
        let mut out = Vec::new();
        loop {
            match m.render(&mut out, frames) {
                Render::Full => return (out, Render::Full),
                Render::NeedSource if !sources.is_empty() => m.queue(sources.remove(0)),
                Render::NeedSource => {
                    if !m.release() {
                        return (out, Render::NeedSource);
                    }
                }
            }
        }
    }

    #[test]
    fn gapless_concatenates_and_marks_changes() {
        let mut m = Mixer::new(0, 0);
        let mut sources = vec![source("a", 3000, 0.5), source("b", 3000, 0.25)];
        let (out, r) = render(&mut m, 2048, &mut sources);
        assert_eq!(r, Render::Full);
        let c = m.cut(0, out).unwrap();
        assert_eq!(c.now_playing.title, "a");
        assert!(c.changes.is_empty());
        let (out, _) = render(&mut m, 2048, &mut sources);
        let c = m.cut(2048, out).unwrap();
        assert_eq!(c.changes.len(), 1);
        assert_eq!(c.changes[0].0, 3000);
        assert_eq!(c.samples[(3000 - 2048) * 2], 0.25);
        assert_eq!(c.samples[(2999 - 2048) * 2], 0.5);
        let (out, r) = render(&mut m, 2048, &mut sources);
        assert_eq!(r, Render::NeedSource);
        assert_eq!(out.len(), 1904 * 2);
        let c = m.cut(4096, out).unwrap();
        assert_eq!(c.now_playing.title, "b");
        assert_eq!(c.now_playing.track_start, samples_to_duration(3000));
        assert_eq!(m.position(), 6000);
    }

    #[test]
    fn crossfade_overlaps_and_keeps_power() {
        let mut m = Mixer::new(0, 1000);
        let mut sources = vec![source("a", 4000, 0.5), source("b", 4000, 0.5)];
        let (out, _) = render(&mut m, 6000, &mut sources);
        let c = m.cut(0, out).unwrap();
        // 4000 + 4000 - 1000 overlap = 7000 frames; "b" starts at the fade.
        assert_eq!(c.changes[0].0, 3000);
        // Mid-fade, equal power sums two equal signals to about sqrt(2) × 0.5.
        let mid = c.samples[3500 * 2];
        assert!((mid - 0.5 * 2f32.sqrt()).abs() < 0.01, "{mid}");
        assert!((c.samples[2999 * 2] - 0.5).abs() < 1e-6);
        assert!((c.samples[4000 * 2] - 0.5).abs() < 1e-6);
        let (out, r) = render(&mut m, 6000, &mut sources);
        assert_eq!((out.len(), r), (1000 * 2, Render::NeedSource));
    }

    #[test]
    fn short_next_source_shortens_the_fade() {
        let mut m = Mixer::new(0, 1000);
        let mut sources = vec![source("a", 4000, 0.5), source("b", 600, 0.5)];
        let (out, _) = render(&mut m, 8000, &mut sources);
        // Half of "b" (300 frames) overlaps: 4000 + 600 - 300.
        assert_eq!(out.len(), 4300 * 2);
        let c = m.cut(0, out).unwrap();
        assert_eq!(c.changes[0].0, 3700);
    }

    #[test]
    fn skip_fades_the_current_source_into_the_queued_one() {
        let mut m = Mixer::new(0, 0);
        m.queue(source("a", 48_000, 0.5));
        let mut out = Vec::new();
        assert_eq!(m.render(&mut out, 1024), Render::Full);
        let first = m.current_serial();
        // Nothing queued yet: the skip waits.
        assert!(!m.skip(480));
        m.queue(source("b", 48_000, 0.25));
        assert!(m.skip(480));
        out.clear();
        assert_eq!(m.render(&mut out, 2048), Render::Full);
        assert_ne!(m.current_serial(), first);
        let c = m.cut(1024, out).unwrap();
        // "b" begins right away (at this segment's start), under a 480-frame fade of "a".
        assert_eq!(c.now_playing.title, "b");
        assert_eq!(c.now_playing.track_start, samples_to_duration(1024));
        assert!(c.changes.is_empty());
        assert!((c.samples[0] - 0.5 * (FRAC_PI_2 * 0.5 / 480.0).cos()).abs() < 0.01);
        assert!((c.samples[600 * 2] - 0.25).abs() < 1e-6);
    }
}
