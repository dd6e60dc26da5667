//! The producer thread: picks sources, decodes each once, normalises its
//! loudness, mixes, cuts aligned segments and paces them in realtime mode.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::sync::Mutex;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, select, Receiver, Sender, TryRecvError};

use super::mix::{Cut, Mixer};
use super::{decode, loudness};
use crate::config::{samples_to_duration, EncoderConfig, CHANNELS};
use crate::demo;
use crate::events::{EncoderEvent, NowPlaying, SourceKind};
use crate::library::{Library, SkippedFile};
use crate::playout::{Pick, PlayoutPosition, Rotation};
use crate::Mode;

/// One segment's samples and metadata, shared by every rendition thread.
#[derive(Debug)]
pub(crate) struct SegmentJob {
    pub sequence: u64,
    pub start: u64,
    pub samples: Arc<[f32]>,
    pub now_playing: NowPlaying,
    pub changes: Vec<(u64, NowPlaying)>,
    pub discontinuity: bool,
    pub position: PlayoutPosition,
}

impl SegmentJob {
    /// First sample after the segment.
    pub fn end(&self) -> u64 {
        self.start + (self.samples.len() / CHANNELS) as u64
    }
}

/// A library rescan running in the background.
struct Rescan {
    thread: JoinHandle<()>,
    result: Receiver<(Library, Library)>,
}

/// A decoded source ready for the mixer, with the read scale that brings
/// it to the loudness target.
struct Source {
    samples: Vec<i16>,
    scale: f32,
    now_playing: NowPlaying,
    position: PlayoutPosition,
}

pub(crate) struct Producer {
    pub config: EncoderConfig,
    pub library: Library,
    pub jingles: Library,
    pub rotation: Rotation,
    pub mode: Mode,
    pub jobs: Vec<Sender<Arc<SegmentJob>>>,
    pub events: Sender<EncoderEvent>,
    pub stop: Receiver<()>,
    pub stop_flag: Arc<AtomicBool>,
    /// Whether the first segment follows an earlier run (timestamps restart).
    pub resumed: bool,
    /// Files left out, shared with the handle (for the dashboard).
    skipped: Arc<Mutex<Vec<SkippedFile>>>,
    rescan: Option<Rescan>,
    /// The rendered demo program (stored form) and its read scale.
    demo: Option<Arc<(Vec<i16>, f32)>>,
    played_any: bool,
    demo_played: bool,
    last_rescan: Instant,
}

impl Producer {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        config: EncoderConfig,
        library: Library,
        jingles: Library,
        rotation: Rotation,
        mode: Mode,
        jobs: Vec<Sender<Arc<SegmentJob>>>,
        events: Sender<EncoderEvent>,
        stop: Receiver<()>,
        stop_flag: Arc<AtomicBool>,
        resumed: bool,
        skipped: Arc<Mutex<Vec<SkippedFile>>>,
    ) -> Self {
        Producer {
            config,
            library,
            jingles,
            rotation,
            mode,
            jobs,
            events,
            stop,
            stop_flag,
            resumed,
            skipped,
            rescan: None,
            demo: None,
            played_any: false,
            demo_played: false,
            last_rescan: Instant::now(),
        }
    }

    pub(crate) fn run(mut self) {
        self.publish_skipped();
        self.play();
        // Joined here so no thread outlives the station.
        self.finish_rescan();
    }

    fn play(&mut self) {
        let segment_len = self.config.segment_samples() as usize;
        let first_sample = self.rotation.position().media_samples;
        let mut sequence = self.rotation.position().media_sequence;
        let mut discontinuity_sequence = self.rotation.position().discontinuity_sequence;
        let mut mixer = Mixer::new(first_sample, self.config.crossfade_samples());
        let started = Instant::now();
        let mut sent = 0u32;
        let mut end_of_stream = false;
        loop {
            while !end_of_stream && mixer.ready_frames() < segment_len {
                if self.stopping() {
                    return;
                }
                match self.next_source() {
                    Some(source) => mixer.add_source(
                        source.samples,
                        source.scale,
                        source.now_playing,
                        source.position,
                    ),
                    None => end_of_stream = true,
                }
            }
            let cut = if end_of_stream {
                mixer.cut_final(segment_len)
            } else {
                mixer.cut(segment_len)
            };
            let Some(cut) = cut else { return };
            if self.mode == Mode::Realtime {
                // At most one segment ahead of the wall clock.
                let due = started + samples_to_duration(segment_len as u64) * sent;
                if !self.wait_until(due) {
                    return;
                }
            }
            let discontinuity = sent == 0 && self.resumed;
            if discontinuity {
                discontinuity_sequence += 1;
            }
            let job = self.job(cut, sequence, discontinuity, discontinuity_sequence);
            if !self.send(job) {
                return;
            }
            sequence += 1;
            sent += 1;
        }
    }

    fn job(
        &self,
        cut: Cut,
        sequence: u64,
        discontinuity: bool,
        discontinuity_sequence: u64,
    ) -> Arc<SegmentJob> {
        let mut position = cut.position;
        position.media_sequence = sequence + 1;
        position.discontinuity_sequence = discontinuity_sequence;
        position.media_samples = cut.start + (cut.samples.len() / CHANNELS) as u64;
        Arc::new(SegmentJob {
            sequence,
            start: cut.start,
            samples: cut.samples,
            now_playing: cut.now_playing,
            changes: cut.changes,
            discontinuity,
            position,
        })
    }

    fn send(&self, job: Arc<SegmentJob>) -> bool {
        for tx in &self.jobs {
            let delivered = select! {
                send(tx, job.clone()) -> r => r.is_ok(),
                recv(self.stop) -> _ => false,
            };
            if !delivered {
                return false;
            }
        }
        true
    }

    fn stopping(&self) -> bool {
        self.stop_flag.load(Ordering::Relaxed)
    }

    /// Sleeps until `due`; false if the station is stopped meanwhile.
    fn wait_until(&self, due: Instant) -> bool {
        let wait = due.saturating_duration_since(Instant::now());
        if wait.is_zero() {
            return !self.stopping();
        }
        select! {
            recv(self.stop) -> _ => false,
            default(wait) => true,
        }
    }

    /// The next source to play: a track or jingle from the rotation, or the
    /// demo program when there is nothing (or nothing decodes). `None` ends a
    /// single pass.
    fn next_source(&mut self) -> Option<Source> {
        self.maybe_rescan();
        // Each failure removes the file from the library, so this ends.
        loop {
            if self.stopping() {
                return None;
            }
            let pick = self.rotation.next(&self.library, &self.jingles);
            let Some(pick) = pick else {
                return self.demo_source();
            };
            let (library, kind, id) = match &pick {
                Pick::Track(id) => (&self.library, SourceKind::Track, id),
                Pick::Jingle(id) => (&self.jingles, SourceKind::Jingle, id),
            };
            let Some(track) = library.get(id).cloned() else {
                continue;
            };
            match decode::decode_file(&track.path, track.duration, self.stop_flag.clone()) {
                Ok(samples) => {
                    let scale = loudness::read_scale(&samples, self.config.target_lufs);
                    self.played_any = true;
                    return Some(Source {
                        samples,
                        scale,
                        now_playing: NowPlaying {
                            title: track.display_title(),
                            artist: track.tags.artist.clone(),
                            album: track.tags.album.clone(),
                            kind,
                            track_start: Duration::ZERO,
                        },
                        position: self.rotation.position().clone(),
                    });
                }
                Err(reason) => {
                    if self.stopping() {
                        return None;
                    }
                    let library = match pick {
                        Pick::Track(_) => &mut self.library,
                        Pick::Jingle(_) => &mut self.jingles,
                    };
                    if let Some(skipped) = library.mark_bad(id, reason) {
                        self.publish_skipped();
                        // Best effort: a full or closed event channel must not stall playout.
                        let _ = self.events.try_send(EncoderEvent::Skipped(skipped));
                    }
                }
            }
        }
    }

    /// Realtime mode picks up added and removed files every
    /// `rescan_interval`. The rescan runs on its own thread (probing a bulk
    /// import can take minutes) and is swapped in when done.
    fn maybe_rescan(&mut self) {
        if let Some(rescan) = &self.rescan {
            match rescan.result.try_recv() {
                Ok((music, jingles)) => {
                    self.library = music;
                    self.jingles = jingles;
                    self.rotation.sync(&self.library);
                    self.publish_skipped();
                    self.finish_rescan();
                    self.last_rescan = Instant::now();
                }
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => {
                    self.finish_rescan();
                    self.last_rescan = Instant::now();
                }
            }
            return;
        }
        if self.mode != Mode::Realtime || self.last_rescan.elapsed() < self.config.rescan_interval {
            return;
        }
        let (mut music, mut jingles) = (self.library.clone(), self.jingles.clone());
        let cancel = self.stop_flag.clone();
        let (tx, rx) = bounded(1);
        let spawned = std::thread::Builder::new()
            .name("ipfm-rescan".into())
            .spawn(move || {
                for library in [&mut music, &mut jingles] {
                    match library.rescan_until(&cancel) {
                        Ok(report) if !report.added.is_empty() || !report.removed.is_empty() => {
                            tracing::info!(
                                root = %library.root().display(),
                                added = report.added.len(),
                                removed = report.removed.len(),
                                "library changed"
                            );
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "rescan failed");
                            return;
                        }
                    }
                }
                if !cancel.load(Ordering::Relaxed) {
                    let _ = tx.send((music, jingles));
                }
            });
        match spawned {
            Ok(thread) => {
                self.rescan = Some(Rescan { thread, result: rx });
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot start a rescan");
                self.last_rescan = Instant::now();
            }
        }
    }

    fn finish_rescan(&mut self) {
        if let Some(rescan) = self.rescan.take() {
            let _ = rescan.thread.join();
        }
    }

    /// Makes the current skip list visible to [`crate::EncoderHandle::skipped_files`].
    fn publish_skipped(&self) {
        let mut all = self.library.skipped();
        all.extend(self.jingles.skipped());
        if let Ok(mut shared) = self.skipped.lock() {
            *shared = all;
        }
    }

    /// The demo program: forever in realtime mode; once in a single pass that
    /// had nothing else to play.
    fn demo_source(&mut self) -> Option<Source> {
        if self.mode == Mode::AsFastAsPossible && (self.played_any || self.demo_played) {
            return None;
        }
        self.demo_played = true;
        let target = self.config.target_lufs;
        let demo = self
            .demo
            .get_or_insert_with(|| {
                let samples = loudness::to_stored(&demo::render());
                let scale = loudness::read_scale(&samples, target);
                Arc::new((samples, scale))
            })
            .clone();
        Some(Source {
            // A copy: the rendered demo (3 MB) is kept for the next loop.
            samples: demo.0.clone(),
            scale: demo.1,
            now_playing: NowPlaying {
                title: demo::DEMO_TITLE.into(),
                artist: Some(demo::DEMO_ARTIST.into()),
                album: None,
                kind: SourceKind::Demo,
                track_start: Duration::ZERO,
            },
            position: self.rotation.position().clone(),
        })
    }
}
