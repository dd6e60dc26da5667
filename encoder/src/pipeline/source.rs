//! Preparing a source ahead of time and reading it back while it plays.
//!
//! A track's gain is known only once the whole of it has been measured, so
//! each source is decoded once, on its own thread, while the previous one
//! plays: the samples go through the loudness meter and into an unlinked
//! spill file (small buffered writes, no mapping, so the process holds a
//! few hundred kilobytes of a track instead of all of it), and are then
//! streamed back through the gain as the mixer needs them.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver};

use super::{decode, loudness};
use crate::config::CHANNELS;
use crate::library::{SkipReason, Track};

/// Buffer of the spill file's writer and of each reader: large enough for
/// few system calls, small against the 64 MB the whole station may use.
const SPILL_BUFFER: usize = 64 * 1024;

/// Distinguishes spill files of one process.
static SPILL_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Why a source could not be prepared.
#[derive(Debug)]
pub(crate) enum PrepareError {
    /// The file is bad: skip it until it changes.
    Skip(SkipReason),
    /// Writing or reading back the spill file failed (disk full, no
    /// directory): not the file's fault.
    Spill(std::io::Error),
}

/// Decoded stereo samples (stored form) ready to play, with the scale that
/// brings them to the loudness target.
pub(crate) struct PcmSource {
    pcm: Pcm,
    scale: f32,
    /// Frames not read yet.
    left: u64,
    /// Frames in the whole source.
    frames: u64,
}

enum Pcm {
    /// The spill file, and a reused buffer for its bytes.
    Spilled(BufReader<File>, Vec<u8>),
    /// The demo program, rendered in memory once and shared between plays.
    Memory { samples: Arc<Vec<i16>>, at: usize },
}

impl PcmSource {
    pub(crate) fn in_memory(samples: Arc<Vec<i16>>, scale: f32) -> Self {
        let frames = (samples.len() / CHANNELS) as u64;
        PcmSource {
            pcm: Pcm::Memory { samples, at: 0 },
            scale,
            left: frames,
            frames,
        }
    }

    pub(crate) fn scale(&self) -> f32 {
        self.scale
    }

    pub(crate) fn frames(&self) -> u64 {
        self.frames
    }

    pub(crate) fn left(&self) -> u64 {
        self.left
    }

    /// Ends the source after `frames` more frames.
    pub(crate) fn truncate(&mut self, frames: u64) {
        self.left = self.left.min(frames);
    }

    /// Replaces `buf` with the next `frames` frames (fewer if less is left),
    /// interleaved. A read error (the spill file's disk failing) is logged
    /// and played as silence: the stream keeps its timing.
    pub(crate) fn read(&mut self, frames: usize, buf: &mut Vec<i16>) {
        let frames = frames.min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let values = frames * CHANNELS;
        buf.clear();
        match &mut self.pcm {
            Pcm::Memory { samples, at } => {
                let end = (*at + values).min(samples.len());
                buf.extend_from_slice(&samples[*at..end]);
                *at = end;
                buf.resize(values, 0);
            }
            Pcm::Spilled(reader, bytes) => {
                bytes.resize(values * 2, 0);
                if let Err(e) = reader.read_exact(bytes) {
                    tracing::error!(error = %e, "spill file read failed; playing silence");
                    bytes.fill(0);
                    self.left = frames as u64;
                }
                buf.extend(
                    bytes
                        .chunks_exact(2)
                        .map(|b| i16::from_ne_bytes([b[0], b[1]])),
                );
            }
        }
        self.left = self.left.saturating_sub(frames as u64);
    }
}

/// Creates a spill file in `dir` and unlinks it at once: the data lives as
/// long as the open file, and nothing is left behind by a crash.
fn unlinked_file(dir: &Path) -> std::io::Result<File> {
    let name = format!(
        "ipfm-spill-{}-{}.pcm",
        std::process::id(),
        SPILL_COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let path = dir.join(name);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(file)
}

/// Decodes `track` once, measuring its loudness and spilling its samples.
pub(crate) fn prepare(
    track: &Track,
    spill_dir: &Path,
    target_lufs: f64,
    stop: &Arc<AtomicBool>,
) -> Result<PcmSource, PrepareError> {
    let _span = tracing::debug_span!("prepare", file = %track.id).entered();
    let file = unlinked_file(spill_dir).map_err(PrepareError::Spill)?;
    let mut writer = BufWriter::with_capacity(SPILL_BUFFER, file);
    let mut meter = loudness::Meter::new();
    let mut spill_error = None;
    let mut sink = |samples: &[i16], bytes: &[u8]| -> Result<(), SkipReason> {
        meter.add(samples);
        if let Err(e) = writer.write_all(bytes) {
            spill_error = Some(e);
            // Ends the decode; reported as a spill error below.
            return Err(SkipReason::Unreadable("spill file".into()));
        }
        Ok(())
    };
    let decoded = decode::decode_into(&track.path, track.duration, stop, &mut sink);
    if let Some(e) = spill_error {
        return Err(PrepareError::Spill(e));
    }
    let frames = decoded.map_err(PrepareError::Skip)?;
    let mut file = writer
        .into_inner()
        .map_err(|e| PrepareError::Spill(e.into_error()))?;
    file.seek(SeekFrom::Start(0)).map_err(PrepareError::Spill)?;
    let scale = meter.read_scale(target_lufs);
    tracing::debug!(frames, scale, "source prepared");
    Ok(PcmSource {
        pcm: Pcm::Spilled(BufReader::with_capacity(SPILL_BUFFER, file), Vec::new()),
        scale,
        left: frames,
        frames,
    })
}

/// A source being prepared on its own thread.
pub(crate) struct Preparing {
    thread: JoinHandle<()>,
    result: Receiver<Result<PcmSource, PrepareError>>,
}

impl Preparing {
    pub(crate) fn start(
        track: Track,
        spill_dir: PathBuf,
        target_lufs: f64,
        stop: Arc<AtomicBool>,
    ) -> std::io::Result<Self> {
        let (tx, rx) = bounded(1);
        let thread = std::thread::Builder::new()
            .name("ipfm-decode".into())
            .spawn(move || {
                let _ = tx.send(prepare(&track, &spill_dir, target_lufs, &stop));
            })?;
        Ok(Preparing { thread, result: rx })
    }

    pub(crate) fn result(&self) -> &Receiver<Result<PcmSource, PrepareError>> {
        &self.result
    }

    /// Waits for the thread to end (it has sent its result, or the station
    /// is stopping and the decode gives up).
    pub(crate) fn join(self) {
        drop(self.result);
        let _ = self.thread.join();
    }
}
