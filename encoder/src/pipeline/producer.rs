//! The producer thread: picks sources, has each decoded once ahead of its
//! turn, mixes, cuts aligned segments and paces them in realtime mode.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::thread::JoinHandle;

use crossbeam_channel::{bounded, select, Receiver, Sender, TryRecvError};

use super::loudness;
use super::mix::{Cut, Mixer, Queued, Render};
use super::source::{PcmSource, PrepareError, Preparing};
use crate::config::{samples_to_duration, EncoderConfig, AAC_FRAME_SAMPLES, CHANNELS, SAMPLE_RATE};
use crate::control::{self, Command, QueuedSource, RescanSummary, SharedSnapshot};
use crate::demo;
use crate::events::{EncoderEvent, NowPlaying, SourceKind};
use crate::library::{Library, Track};
use crate::playout::{Pick, PlayoutPosition, Rotation};
use crate::Mode;

/// Shortest and longest fade when a source is skipped: the configured
/// crossfade within these bounds (a skip never cuts without a fade, and
/// never lingers).
const SKIP_FADE_MIN: Duration = Duration::from_millis(200);
const SKIP_FADE_MAX: Duration = Duration::from_secs(3);

/// Realtime mode decodes the next source only this long (plus
/// [`PREPARE_LEAD_SHARE`] of its own length) before it is due, so that the
/// decode's CPU is spent close to when it is needed and a station never
/// holds more than the next source on disk; the margin assumes decoding
/// runs at least 20 times faster than realtime, which even a loaded
/// two-core machine does (≈ 100× measured for FLAC).
const PREPARE_LEAD: Duration = Duration::from_secs(30);
const PREPARE_LEAD_SHARE: f64 = 1.0 / 20.0;

/// One segment's samples and metadata, shared by every rendition thread.
#[derive(Debug)]
pub(crate) struct SegmentJob {
    pub sequence: u64,
    pub start: u64,
    /// Interleaved stereo (the job itself is shared, so no second `Arc`).
    pub samples: Vec<f32>,
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
    result: Receiver<RescanResult>,
}

/// Both libraries after a rescan, with what changed.
struct RescanResult {
    music: Library,
    jingles: Library,
    added: usize,
    removed: usize,
}

/// The source the rotation chose to play next, and its preparation once begun.
struct Upcoming {
    /// The library entry; `None` for the demo program.
    track: Option<(Pick, Track)>,
    now_playing: NowPlaying,
    /// Rotation state once this source was picked.
    position: PlayoutPosition,
    preparing: Option<Preparing>,
}

impl Upcoming {
    fn queued_source(&self) -> QueuedSource {
        QueuedSource {
            id: self.track.as_ref().map(|(_, t)| t.id.clone()),
            title: self.now_playing.title.clone(),
            artist: self.now_playing.artist.clone(),
            album: self.now_playing.album.clone(),
            kind: self.now_playing.kind,
        }
    }
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
    /// Skip and rescan requests from [`crate::EncoderControl`].
    commands: Receiver<Command>,
    /// What the controls see: now playing, up next, the library.
    shared: SharedSnapshot,
    skip_requested: bool,
    /// The source (by mixer serial) a skip was asked for while it played.
    skip_target: Option<u64>,
    rescan_requested: bool,
    rescan: Option<Rescan>,
    /// The next source, picked and possibly being decoded.
    upcoming: Option<Upcoming>,
    /// A single pass has nothing more to pick.
    exhausted: bool,
    /// Where decoded sources are spilled.
    spill_dir: PathBuf,
    /// The rendered demo program (stored form) and its read scale.
    demo: Option<(Arc<Vec<i16>>, f32)>,
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
        commands: Receiver<Command>,
        shared: SharedSnapshot,
    ) -> Self {
        let spill_dir = config.spill_dir.clone().unwrap_or_else(std::env::temp_dir);
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
            commands,
            shared,
            skip_requested: false,
            skip_target: None,
            rescan_requested: false,
            rescan: None,
            upcoming: None,
            exhausted: false,
            spill_dir,
            demo: None,
            played_any: false,
            demo_played: false,
            last_rescan: Instant::now(),
        }
    }

    pub(crate) fn run(mut self) {
        self.publish_library();
        self.play();
        // Joined here so no thread outlives the station.
        self.finish_rescan();
        if let Some(preparing) = self.upcoming.take().and_then(|u| u.preparing) {
            preparing.join();
        }
    }

    fn play(&mut self) {
        let segment_len = self.config.segment_samples() as usize;
        let first_sample = self.rotation.position().media_samples;
        let mut sequence = self.rotation.position().media_sequence;
        let mut discontinuity_sequence = self.rotation.position().discontinuity_sequence;
        let mut mixer = Mixer::new(first_sample, self.config.crossfade_samples());
        let started = Instant::now();
        let mut sent = 0u32;
        loop {
            self.poll_commands();
            self.maybe_rescan();
            self.prepare_ahead(&mut mixer);
            self.apply_skip(&mut mixer);
            let start = mixer.position();
            let mut samples = Vec::with_capacity(segment_len * CHANNELS);
            loop {
                if mixer.render(&mut samples, segment_len) == Render::Full {
                    break;
                }
                if self.stopping() {
                    return;
                }
                if self.exhausted {
                    if mixer.release() {
                        continue;
                    }
                    break;
                }
                match self.next_source() {
                    Some(next) => mixer.queue(next),
                    None => self.exhausted = true,
                }
            }
            if samples.is_empty() {
                return;
            }
            // The last piece of a single pass is padded with silence to a whole AAC frame.
            let frames = samples.len() / CHANNELS;
            let frame = AAC_FRAME_SAMPLES as usize;
            samples.resize(frames.div_ceil(frame) * frame * CHANNELS, 0.0);
            let Some(cut) = mixer.cut(start, samples) else {
                return;
            };
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
            self.publish_playing(&job);
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

    /// Sleeps until `due`, taking control commands meanwhile; false if the
    /// station is stopped.
    fn wait_until(&mut self, due: Instant) -> bool {
        loop {
            let wait = due.saturating_duration_since(Instant::now());
            if wait.is_zero() {
                return !self.stopping();
            }
            let commands = self.commands.clone();
            select! {
                recv(self.stop) -> _ => return false,
                recv(commands) -> command => match command {
                    Ok(command) => self.take_command(command),
                    // Cannot happen while the producer holds a control; wait out the rest.
                    Err(_) => return self.wait_plain(due),
                },
                default(wait) => return true,
            }
            if self.rescan_requested {
                self.maybe_rescan();
            }
        }
    }

    fn wait_plain(&self, due: Instant) -> bool {
        select! {
            recv(self.stop) -> _ => false,
            default(due.saturating_duration_since(Instant::now())) => true,
        }
    }

    /// Takes every waiting control command without blocking.
    fn poll_commands(&mut self) {
        while let Ok(command) = self.commands.try_recv() {
            self.take_command(command);
        }
    }

    fn take_command(&mut self, command: Command) {
        tracing::debug!(?command, "control command");
        match command {
            Command::Skip => self.skip_requested = true,
            Command::Rescan => self.rescan_requested = true,
        }
    }

    /// Carries out a requested skip once the next source is ready (its
    /// decode is started at once if it was not due yet).
    fn apply_skip(&mut self, mixer: &mut Mixer) {
        if std::mem::take(&mut self.skip_requested) {
            self.skip_target = mixer.current_serial();
        }
        let Some(target) = self.skip_target else {
            return;
        };
        if mixer.current_serial() != Some(target) {
            // That source has ended by itself meanwhile.
            self.skip_target = None;
            return;
        }
        if !mixer.has_queued() {
            self.prepare_ahead(mixer);
        }
        if mixer.skip(self.skip_fade()) {
            tracing::info!("skipping to the next source");
            self.skip_target = None;
        }
    }

    /// Frames of the fade that ends a skipped source.
    fn skip_fade(&self) -> u64 {
        let fade = self.config.crossfade.clamp(SKIP_FADE_MIN, SKIP_FADE_MAX);
        (fade.as_secs_f64() * f64::from(SAMPLE_RATE)).round() as u64
    }

    /// Shows the segment's latest source as now playing, and what comes next.
    fn publish_playing(&self, job: &SegmentJob) {
        let now = job
            .changes
            .last()
            .map(|(_, n)| n)
            .unwrap_or(&job.now_playing)
            .clone();
        let up_next = match &self.upcoming {
            Some(upcoming) => Some(upcoming.queued_source()),
            None => self.peek_next(),
        };
        if let Ok(mut shared) = self.shared.lock() {
            shared.now_playing = Some(now);
            shared.up_next = up_next;
        }
    }

    /// What the rotation would pick now, without picking it.
    fn peek_next(&self) -> Option<QueuedSource> {
        let pick = self.rotation.clone().next(&self.library, &self.jingles);
        let Some(pick) = pick else {
            return self.demo_allowed().then(|| QueuedSource {
                id: None,
                title: demo::DEMO_TITLE.into(),
                artist: Some(demo::DEMO_ARTIST.into()),
                album: None,
                kind: SourceKind::Demo,
            });
        };
        let (track, kind) = match &pick {
            Pick::Track(id) => (self.library.get(id)?, SourceKind::Track),
            Pick::Jingle(id) => (self.jingles.get(id)?, SourceKind::Jingle),
        };
        Some(QueuedSource {
            id: Some(track.id.clone()),
            title: track.display_title(),
            artist: track.tags.artist.clone(),
            album: track.tags.album.clone(),
            kind,
        })
    }

    /// Without blocking: queues a finished preparation, and picks and starts
    /// preparing the next source when it is due (at once as fast as
    /// possible; close to its turn in realtime).
    fn prepare_ahead(&mut self, mixer: &mut Mixer) {
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
    fn next_source(&mut self) -> Option<Queued> {
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
    fn pick(&mut self) {
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

    /// Realtime mode picks up added and removed files every
    /// `rescan_interval`. The rescan runs on its own thread (probing a bulk
    /// import can take minutes) and is swapped in when done.
    fn maybe_rescan(&mut self) {
        if let Some(rescan) = &self.rescan {
            match rescan.result.try_recv() {
                Ok(result) => {
                    self.library = result.music;
                    self.jingles = result.jingles;
                    self.rotation.sync(&self.library);
                    self.publish_library();
                    let skipped = self.library.skipped().len() + self.jingles.skipped().len();
                    let summary = RescanSummary::now(result.added, result.removed, skipped);
                    if let Ok(mut shared) = self.shared.lock() {
                        shared.last_rescan = Some(summary);
                    }
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
        let due = self.mode == Mode::Realtime
            && self.last_rescan.elapsed() >= self.config.rescan_interval;
        if !due && !std::mem::take(&mut self.rescan_requested) {
            return;
        }
        self.rescan_requested = false;
        let (mut music, mut jingles) = (self.library.clone(), self.jingles.clone());
        let cancel = self.stop_flag.clone();
        let (tx, rx) = bounded(1);
        let spawned = std::thread::Builder::new()
            .name("ipfm-rescan".into())
            .spawn(move || {
                let (mut added, mut removed) = (0, 0);
                for library in [&mut music, &mut jingles] {
                    match library.rescan_until(&cancel) {
                        Ok(report) => {
                            if !report.added.is_empty() || !report.removed.is_empty() {
                                tracing::info!(
                                    root = %library.root().display(),
                                    added = report.added.len(),
                                    removed = report.removed.len(),
                                    "library changed"
                                );
                            }
                            added += report.added.len();
                            removed += report.removed.len();
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "rescan failed");
                            return;
                        }
                    }
                }
                if !cancel.load(Ordering::Relaxed) {
                    let _ = tx.send(RescanResult {
                        music,
                        jingles,
                        added,
                        removed,
                    });
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

    /// Makes the library and skip list visible to the controls and
    /// [`crate::EncoderHandle::skipped_files`].
    fn publish_library(&self) {
        control::publish_library(&self.shared, &self.library, &self.jingles);
    }

    /// The demo program: forever in realtime mode; once in a single pass
    /// that had nothing else to play.
    fn demo_allowed(&self) -> bool {
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
