//! Encoder configuration: renditions, segment length, crossfade, loudness.

use std::path::PathBuf;
use std::time::Duration;

use crate::EncoderError;

/// Every source is resampled to this rate before mixing and encoding.
pub const SAMPLE_RATE: u32 = 48_000;
/// Every source is mixed down or up to stereo.
pub const CHANNELS: usize = 2;
/// Samples per channel in one AAC-LC frame; segments are cut on multiples of it
/// so that every rendition cuts at the same sample.
pub const AAC_FRAME_SAMPLES: u64 = 1024;

/// One AAC-LC output of the station.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendition {
    /// Name used in events and, later, playlist paths (e.g. "midfi").
    pub name: String,
    /// Target bit rate in bits per second.
    pub bitrate: u32,
}

impl Rendition {
    pub fn new(name: impl Into<String>, bitrate: u32) -> Self {
        Rendition {
            name: name.into(),
            bitrate,
        }
    }

    /// lofi 64k, midfi 128k, hifi 192k.
    pub fn defaults() -> Vec<Rendition> {
        vec![
            Rendition::new("lofi", 64_000),
            Rendition::new("midfi", 128_000),
            Rendition::new("hifi", 192_000),
        ]
    }
}

/// How the station sounds and how it is cut.
#[derive(Debug, Clone)]
pub struct EncoderConfig {
    pub renditions: Vec<Rendition>,
    /// Target segment duration (2–10 s); the real one is the nearest multiple of
    /// an AAC frame.
    pub segment_target: Duration,
    /// Overlap between consecutive tracks; zero plays them gapless.
    pub crossfade: Duration,
    /// Integrated loudness (EBU R128, LUFS) every track is brought to.
    pub target_lufs: f64,
    /// Play one jingle after every this many tracks; 0 disables jingles.
    pub jingle_every: u32,
    /// How often the music directory is rescanned while running (realtime mode).
    pub rescan_interval: Duration,
    /// Seed for the shuffle; `None` takes one from the OS.
    pub shuffle_seed: Option<u64>,
    /// Where each source is spilled (as 48 kHz stereo 16-bit, ≈ 11.5 MB a
    /// minute, in an unlinked file) between its decode and its playout;
    /// `None` uses [`std::env::temp_dir`]. At most two sources are there at
    /// a time (the one playing and the next).
    pub spill_dir: Option<PathBuf>,
}

impl Default for EncoderConfig {
    fn default() -> Self {
        EncoderConfig {
            renditions: Rendition::defaults(),
            segment_target: Duration::from_secs(6),
            crossfade: Duration::ZERO,
            target_lufs: -16.0,
            jingle_every: 4,
            rescan_interval: Duration::from_secs(60),
            shuffle_seed: None,
            spill_dir: None,
        }
    }
}

impl EncoderConfig {
    pub fn validate(&self) -> Result<(), EncoderError> {
        let secs = self.segment_target.as_secs_f64();
        if !(2.0..=10.0).contains(&secs) {
            return Err(EncoderError::Config(format!(
                "segment duration {secs} s is outside 2–10 s"
            )));
        }
        if self.renditions.is_empty() {
            return Err(EncoderError::Config("no renditions".into()));
        }
        let mut names: Vec<&str> = self.renditions.iter().map(|r| r.name.as_str()).collect();
        names.sort_unstable();
        if names.windows(2).any(|w| w[0] == w[1]) {
            return Err(EncoderError::Config("duplicate rendition name".into()));
        }
        if let Some(r) = self
            .renditions
            .iter()
            .find(|r| !(8_000..=512_000).contains(&r.bitrate) || r.name.is_empty())
        {
            return Err(EncoderError::Config(format!(
                "rendition {:?}: bit rate {} outside 8k–512k or empty name",
                r.name, r.bitrate
            )));
        }
        if self.crossfade > Duration::from_secs(30) {
            return Err(EncoderError::Config("crossfade longer than 30 s".into()));
        }
        if !(-70.0..=0.0).contains(&self.target_lufs) {
            return Err(EncoderError::Config(format!(
                "loudness target {} LUFS outside -70..0",
                self.target_lufs
            )));
        }
        Ok(())
    }

    /// Samples per channel in one segment: the multiple of an AAC frame
    /// nearest to the target duration.
    pub fn segment_samples(&self) -> u64 {
        let frames = (self.segment_target.as_secs_f64() * f64::from(SAMPLE_RATE)
            / AAC_FRAME_SAMPLES as f64)
            .round()
            .max(1.0) as u64;
        frames * AAC_FRAME_SAMPLES
    }

    /// Crossfade length in samples per channel.
    pub fn crossfade_samples(&self) -> usize {
        (self.crossfade.as_secs_f64() * f64::from(SAMPLE_RATE)).round() as usize
    }
}

/// Converts a count of samples per channel to a duration, rounded down to
/// the nanosecond (integer arithmetic, so equal counts give equal durations).
pub fn samples_to_duration(samples: u64) -> Duration {
    let nanos = u128::from(samples) * 1_000_000_000 / u128::from(SAMPLE_RATE);
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}
