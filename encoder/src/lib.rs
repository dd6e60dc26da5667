//! ipfm's encoder: plays a music library out, in process, as aligned AAC-LC
//! MPEG-TS segments for several HLS renditions.
//!
//! ```text
//! Library ─► Rotation ─► [decode thread, one source ahead: ffmpeg decode ─► 48 kHz stereo
//!   ─► EBU R128 meter + spill to an unlinked temp file] ─► mix/crossfade (streamed back
//!   through the gain) ─► cut at shared sample positions
//!   ─► [per rendition thread: AAC ─► TS muxer] ─► EncoderEvent::Segment on a bounded channel
//! ```
//!
//! An [`EncoderControl`] (from [`EncoderHandle::control`]) skips the current
//! source, rescans the library now, and shows what plays and what is next.
//!
//! The encoder persists nothing: the [`PlayoutPosition`] that comes out with
//! every segment is handed back to [`Encoder::start`] to resume.

mod config;
mod control;
mod demo;
mod error;
mod events;
pub mod library;
mod pipeline;
mod playout;
mod segmenter;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver, Sender};
use rand::rngs::StdRng;
use rand::SeedableRng;

pub use config::{
    samples_to_duration, EncoderConfig, Rendition, AAC_FRAME_SAMPLES, CHANNELS, SAMPLE_RATE,
};
pub use control::{EncoderControl, LibraryEntry, PlayoutSnapshot, QueuedSource, RescanSummary};
pub use demo::{DEMO_ARTIST, DEMO_TITLE};
pub use error::EncoderError;
pub use events::{EncoderEvent, NowPlaying, Segment, SourceKind};
pub use library::{Library, RescanReport, SkipReason, SkippedFile, Tags, Track};
pub use playout::PlayoutPosition;
use playout::Rotation;

/// How fast the station runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Paced to the wall clock, at most one segment ahead; runs until stopped.
    Realtime,
    /// As fast as the CPU allows, one pass through the rotation, then the
    /// event channel closes (for `ipfm render`).
    AsFastAsPossible,
}

/// Job channel depth per rendition: enough to keep encoders busy while the
/// producer decodes the next source, small enough to bound memory.
const JOB_QUEUE: usize = 2;

/// Largest timeline position accepted from a stored position (≈ 3 million
/// years at 48 kHz; far from i64 overflow).
const MAX_MEDIA_SAMPLES: u64 = 1 << 62;

static FFMPEG_INIT: Once = Once::new();

/// Initialises ffmpeg once and keeps its logging to errors (the encoder
/// reports problems itself, through `tracing`).
pub(crate) fn init_ffmpeg() {
    FFMPEG_INIT.call_once(|| {
        if let Err(e) = ffmpeg_next::init() {
            tracing::error!(error = %e, "ffmpeg init failed");
        }
        ffmpeg_next::log::set_level(ffmpeg_next::log::Level::Fatal);
    });
}

/// Starts stations.
pub struct Encoder;

impl Encoder {
    /// Starts the producer and one encoder thread per rendition. `jingles` may
    /// be [`Library::empty`]; `position` is the last one received from a
    /// previous run (its next track plays first, its sequences continue).
    pub fn start(
        config: EncoderConfig,
        library: Library,
        jingles: Library,
        position: Option<PlayoutPosition>,
        mode: Mode,
    ) -> Result<(EncoderHandle, Receiver<EncoderEvent>), EncoderError> {
        config.validate()?;
        init_ffmpeg();
        let rng = match config.shuffle_seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_entropy(),
        };
        let mut position = position;
        if let Some(p) = position.as_mut() {
            // Timestamps are i64 in ffmpeg: a corrupt stored position must not
            // overflow them. Start the timeline again (a discontinuity anyway).
            if p.media_samples > MAX_MEDIA_SAMPLES {
                tracing::warn!(
                    samples = p.media_samples,
                    "stored position out of range; timeline restarts"
                );
                p.media_samples = 0;
            }
        }
        let resumed = position.as_ref().is_some_and(|p| p.media_sequence > 0);
        let rotation = Rotation::new(
            position,
            &library,
            config.jingle_every,
            mode == Mode::AsFastAsPossible,
            rng,
        );
        let (stop_tx, stop_rx) = bounded::<()>(0);
        let stop_flag = Arc::new(AtomicBool::new(false));
        let shared: control::SharedSnapshot = Arc::new(Mutex::new(PlayoutSnapshot::default()));
        let (command_tx, command_rx) = bounded(control::COMMAND_QUEUE);
        let (event_tx, event_rx) = bounded(config.renditions.len() * 2 + 4);

        let mut threads = Vec::new();
        let mut job_senders = Vec::new();
        for rendition in &config.renditions {
            let (job_tx, job_rx) = bounded(JOB_QUEUE);
            job_senders.push(job_tx);
            let (rendition, out, stop) = (rendition.clone(), event_tx.clone(), stop_rx.clone());
            let name = format!("ipfm-aac-{}", rendition.name);
            let handle = std::thread::Builder::new()
                .name(name.clone())
                .spawn(move || pipeline::run_rendition(rendition, job_rx, out, stop))
                .map_err(|e| EncoderError::Io {
                    path: name.clone().into(),
                    source: e,
                })?;
            threads.push((name, handle));
        }
        let producer = pipeline::Producer::new(
            config,
            library,
            jingles,
            rotation,
            mode,
            job_senders,
            event_tx,
            stop_rx,
            stop_flag.clone(),
            resumed,
            command_rx,
            shared.clone(),
        );
        let handle = std::thread::Builder::new()
            .name("ipfm-playout".into())
            .spawn(move || {
                producer.run();
                Ok(())
            })
            .map_err(|e| EncoderError::Io {
                path: "ipfm-playout".into(),
                source: e,
            })?;
        threads.push(("ipfm-playout".into(), handle));
        Ok((
            EncoderHandle {
                stop_tx: Some(stop_tx),
                stop_flag,
                threads,
                control: EncoderControl {
                    commands: command_tx,
                    shared,
                },
            },
            event_rx,
        ))
    }
}

/// Controls a running station. Dropping it stops the station.
pub struct EncoderHandle {
    stop_tx: Option<Sender<()>>,
    stop_flag: Arc<AtomicBool>,
    threads: Vec<(String, JoinHandle<Result<(), EncoderError>>)>,
    control: EncoderControl,
}

impl EncoderHandle {
    /// Files of the library and jingles left out, with the reason: those
    /// found bad by a scan and those that failed at play time.
    pub fn skipped_files(&self) -> Vec<SkippedFile> {
        self.control.snapshot().skipped
    }

    /// A control for skipping, rescanning and watching the playout; it can
    /// be cloned and outlive the handle.
    pub fn control(&self) -> EncoderControl {
        self.control.clone()
    }

    /// Stops every thread (in-flight segments are dropped) and joins them.
    pub fn stop(mut self) -> Result<(), EncoderError> {
        self.signal_stop();
        self.join_all()
    }

    /// Waits for the threads to end by themselves: after the last segment of
    /// an [`Mode::AsFastAsPossible`] pass. Keep reading the event channel
    /// meanwhile, or this waits forever on a full channel.
    pub fn join(mut self) -> Result<(), EncoderError> {
        self.join_all()
    }

    fn signal_stop(&mut self) {
        self.stop_flag.store(true, Ordering::Relaxed);
        // Disconnecting the stop channel wakes every thread blocked in a select.
        self.stop_tx.take();
    }

    fn join_all(&mut self) -> Result<(), EncoderError> {
        let mut result = Ok(());
        for (name, handle) in self.threads.drain(..) {
            let outcome = handle
                .join()
                .unwrap_or(Err(EncoderError::ThreadPanicked(name)));
            if result.is_ok() {
                result = outcome;
            }
        }
        result
    }
}

impl Drop for EncoderHandle {
    fn drop(&mut self) {
        self.signal_stop();
        let _ = self.join_all();
    }
}
