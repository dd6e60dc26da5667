//! The look-ahead: the rotation's next source is picked early and decoded
//! on its own thread (decode → loudness → spill) before it is due, so it is
//! ready when the mixer needs it; the demo program stands in when there is
//! nothing else to play.

use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{select, TryRecvError};

use super::Producer;
use crate::config::SAMPLE_RATE;
use crate::control::QueuedSource;
use crate::demo;
use crate::events::{EncoderEvent, NowPlaying, SourceKind};
use crate::library::Track;
use crate::pipeline::loudness;
use crate::pipeline::mix::{Mixer, Queued};
use crate::pipeline::source::{PcmSource, PrepareError, Preparing};
use crate::playout::{Pick, PlayoutPosition};
use crate::Mode;

/// Realtime mode decodes the next source only this long (plus
/// [`PREPARE_LEAD_SHARE`] of its own length) before it is due, so that the
/// decode's CPU is spent close to when it is needed and a station never
/// holds more than the next source on disk; the margin assumes decoding
/// runs at least 20 times faster than realtime, which even a loaded
/// two-core machine does (≈ 100× measured for FLAC).
const PREPARE_LEAD: Duration = Duration::from_secs(30);
const PREPARE_LEAD_SHARE: f64 = 1.0 / 20.0;

/// The source the rotation chose to play next, and its preparation once begun.
pub(super) struct Upcoming {
    /// The library entry; `None` for the demo program.
    track: Option<(Pick, Track)>,
    now_playing: NowPlaying,
    /// Rotation state once this source was picked.
    position: PlayoutPosition,
    pub(super) preparing: Option<Preparing>,
}

impl Upcoming {
    pub(super) fn queued_source(&self) -> QueuedSource {
        QueuedSource {
            id: self.track.as_ref().map(|(_, t)| t.id.clone()),
            title: self.now_playing.title.clone(),
            artist: self.now_playing.artist.clone(),
            album: self.now_playing.album.clone(),
            kind: self.now_playing.kind,
        }
    }
}

impl Producer {
    /// Without blocking: queues a finished preparation, and picks and starts
    /// preparing the next source when it is due (at once as fast as
    /// possible; close to its turn in realtime).
    pub(super) fn prepare_ahead(&mut self, mixer: &mut Mixer) {
        if mixer.has_queued() || self.exhausted {
            return;
        }
        if self.upcoming.is_none() {
            self.pick();
        }
        let Some(upcoming) = &self.upcoming else {
            return;
        };
        match &upcoming.preparing {
            Some(preparing) => match preparing.result().try_recv() {
                Ok(result) => {
                    if let Some(next) = self.prepared(result) {
                        mixer.queue(next);
                    }
                }
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => {
                    let _ = self.prepared(Err(PrepareError::Spill(std::io::Error::other(
                        "decode thread ended without a result",
                    ))));
                }
            },
            None => {
                let due = match (self.mode, mixer.current_left()) {
                    (Mode::AsFastAsPossible, _) | (_, None) => true,
                    (Mode::Realtime, Some(left)) => {
                        let length = upcoming
                            .track
                            .as_ref()
                            .map_or(Duration::ZERO, |(_, t)| t.duration);
                        let lead = PREPARE_LEAD + length.mul_f64(PREPARE_LEAD_SHARE);
                        left <= (lead.as_secs_f64() * f64::from(SAMPLE_RATE)) as u64
                            || self.skip_target.is_some()
                    }
                };
                if due {
                    if let Some(next) = self.start_preparing() {
                        mixer.queue(next);
                    }
                }
            }
        }
    }

    /// Blocks until the next source is ready: `None` ends a single pass.
    pub(super) fn next_source(&mut self) -> Option<Queued> {
        // Each failure removes the file from the library, so this ends.
        loop {
            if self.stopping() {
                return None;
            }
            if self.upcoming.is_none() {
                self.pick();
            }
            let upcoming = self.upcoming.as_ref()?;
            let Some(preparing) = &upcoming.preparing else {
                if let Some(next) = self.start_preparing() {
                    return Some(next);
                }
                continue;
            };
            let result = select! {
                recv(preparing.result()) -> result => result.unwrap_or_else(|_| {
                    Err(PrepareError::Spill(std::io::Error::other(
                        "decode thread ended without a result",
                    )))
                }),
                recv(self.stop) -> _ => return None,
            };
            if let Some(next) = self.prepared(result) {
                return Some(next);
            }
        }
    }

    /// Asks the rotation for the next source (the demo program when there
    /// is nothing to play); sets `exhausted` at the end of a single pass.
    pub(super) fn pick(&mut self) {
        self.maybe_rescan();
        loop {
            let Some(pick) = self.rotation.next(&self.library, &self.jingles) else {
                if self.demo_allowed() {
                    self.upcoming = Some(Upcoming {
                        track: None,
                        now_playing: demo_now_playing(),
                        position: self.rotation.position().clone(),
                        preparing: None,
                    });
                } else {
                    self.exhausted = true;
                }
                return;
            };
            let (library, kind) = match &pick {
                Pick::Track(_) => (&self.library, SourceKind::Track),
                Pick::Jingle(_) => (&self.jingles, SourceKind::Jingle),
            };
            let id = match &pick {
                Pick::Track(id) | Pick::Jingle(id) => id,
            };
            let Some(track) = library.get(id).cloned() else {
                continue;
            };
            self.upcoming = Some(Upcoming {
                now_playing: NowPlaying {
                    title: track.display_title(),
                    artist: track.tags.artist.clone(),
                    album: track.tags.album.clone(),
                    kind,
                    track_start: Duration::ZERO,
                },
                track: Some((pick, track)),
                position: self.rotation.position().clone(),
                preparing: None,
            });
            return;
        }
    }

    /// Starts decoding the upcoming source on its own thread; the demo
    /// program (in memory) is ready at once and returned.
    fn start_preparing(&mut self) -> Option<Queued> {
        let upcoming = self.upcoming.as_mut()?;
        let Some((_, track)) = &upcoming.track else {
            let upcoming = self.upcoming.take()?;
            return Some(self.demo_source(upcoming.now_playing, upcoming.position));
        };
        match Preparing::start(
            track.clone(),
            self.spill_dir.clone(),
            self.config.target_lufs,
            self.stop_flag.clone(),
        ) {
            Ok(preparing) => {
                upcoming.preparing = Some(preparing);
                None
            }
            Err(e) => {
                let upcoming = self.upcoming.take()?;
                tracing::error!(error = %e, "cannot start a decode thread; playing the demo");
                Some(self.demo_source(upcoming.now_playing, upcoming.position))
            }
        }
    }

    /// Takes the result of the upcoming source's preparation: the source to
    /// queue, or `None` after a failure (the next pick follows).
    fn prepared(&mut self, result: Result<PcmSource, PrepareError>) -> Option<Queued> {
        let upcoming = self.upcoming.take()?;
        if let Some(preparing) = upcoming.preparing {
            preparing.join();
        }
        match result {
            Ok(source) => {
                self.played_any = true;
                Some(Queued {
                    source,
                    now_playing: upcoming.now_playing,
                    position: upcoming.position,
                })
            }
            Err(_) if self.stopping() => None,
            Err(PrepareError::Skip(reason)) => {
                let (pick, _) = upcoming.track?;
                let (library, id) = match &pick {
                    Pick::Track(id) => (&mut self.library, id),
                    Pick::Jingle(id) => (&mut self.jingles, id),
                };
                if let Some(skipped) = library.mark_bad(id, reason) {
                    self.publish_library();
                    // Best effort: a full or closed event channel must not stall playout.
                    let _ = self.events.try_send(EncoderEvent::Skipped(skipped));
                }
                None
            }
            Err(PrepareError::Spill(e)) => {
                // Not the file's fault: keep it, and keep the station on air.
                tracing::error!(
                    error = %e,
                    dir = %self.spill_dir.display(),
                    "cannot spill a decoded source; playing the demo instead"
                );
                Some(self.demo_source(demo_now_playing(), upcoming.position))
            }
        }
    }

    /// The demo program: forever in realtime mode; once in a single pass
    /// that had nothing else to play.
    pub(super) fn demo_allowed(&self) -> bool {
        self.mode == Mode::Realtime || !(self.played_any || self.demo_played)
    }

    fn demo_source(&mut self, now_playing: NowPlaying, position: PlayoutPosition) -> Queued {
        self.demo_played = true;
        let target = self.config.target_lufs;
        let (samples, scale) = self
            .demo
            .get_or_insert_with(|| {
                let samples = loudness::to_stored(&demo::render());
                let scale = loudness::read_scale(&samples, target);
                (Arc::new(samples), scale)
            })
            .clone();
        Queued {
            source: PcmSource::in_memory(samples, scale),
            now_playing,
            position,
        }
    }
}

fn demo_now_playing() -> NowPlaying {
    NowPlaying {
        title: demo::DEMO_TITLE.into(),
        artist: Some(demo::DEMO_ARTIST.into()),
        album: None,
        kind: SourceKind::Demo,
        track_start: Duration::ZERO,
    }
}
