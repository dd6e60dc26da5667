//! The producer thread: picks sources, has each decoded once ahead of its
//! turn, mixes, cuts aligned segments and paces them in realtime mode.
//!
//! This module holds the segment loop; its concerns live in submodules:
//! [`lookahead`] (picking the next source and decoding it ahead of its
//! turn), [`control`] (skip requests and what the controls see) and
//! [`rescan`] (library rescans in the background).

mod control;
mod lookahead;
mod rescan;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{select, Receiver, Sender};

use super::mix::{Cut, Mixer, Render};
use crate::config::{samples_to_duration, EncoderConfig, AAC_FRAME_SAMPLES, CHANNELS};
use crate::control::{Command, SharedSnapshot};
use crate::events::{EncoderEvent, NowPlaying};
use crate::library::Library;
use crate::playout::{PlayoutPosition, Rotation};
use crate::Mode;
use lookahead::Upcoming;
use rescan::Rescan;

/// One segment's samples and what it is, shared by every rendition thread.
#[derive(Debug)]
pub(crate) struct SegmentJob {
    /// Kept by each rendition until the segment is muxed, after the samples are gone.
    pub info: Arc<SegmentInfo>,
    /// Interleaved stereo (the job itself is shared, so no second `Arc`). The
    /// largest thing in flight (750 KiB for 2 s), freed once every rendition has
    /// encoded it rather than once every rendition has muxed it: the AAC
    /// encoder's delay keeps a segment waiting for its last packets until the
    /// next segment is encoded.
    pub samples: Vec<f32>,
}

/// A segment apart from its samples: what its muxing and its event need.
#[derive(Debug)]
pub(crate) struct SegmentInfo {
    pub sequence: u64,
    pub start: u64,
    /// Samples per channel.
    pub frames: u64,
    pub now_playing: NowPlaying,
    pub changes: Vec<(u64, NowPlaying)>,
    pub discontinuity: bool,
    pub position: PlayoutPosition,
}

impl SegmentInfo {
    /// First sample after the segment.
    pub fn end(&self) -> u64 {
        self.start + self.frames
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
            if self.mode == Mode::Realtime {
                // At most one segment ahead of the wall clock. Waiting before the
                // segment is rendered rather than after keeps no segment's samples
                // (750 KiB for 2 s) in memory through the wait, and a skip asked for
                // meanwhile applies to the very next segment.
                let due = started + samples_to_duration(segment_len as u64) * sent;
                if !self.wait_until(due) {
                    return;
                }
            }
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
            let discontinuity = sent == 0 && self.resumed;
            if discontinuity {
                discontinuity_sequence += 1;
            }
            let job = self.job(cut, sequence, discontinuity, discontinuity_sequence);
            self.publish_playing(&job.info);
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
        let frames = (cut.samples.len() / CHANNELS) as u64;
        position.media_samples = cut.start + frames;
        Arc::new(SegmentJob {
            info: Arc::new(SegmentInfo {
                sequence,
                start: cut.start,
                frames,
                now_playing: cut.now_playing,
                changes: cut.changes,
                discontinuity,
                position,
            }),
            samples: cut.samples,
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
}
