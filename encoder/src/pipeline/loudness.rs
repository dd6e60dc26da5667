//! Loudness normalisation (EBU R128 integrated loudness) of a whole source,
//! measured piece by piece as it decodes.
//!
//! Sources are stored as 16-bit samples; the gain is not applied to them but
//! folded into the scale the mixer uses when it reads them back as float.

use ebur128::{EbuR128, Mode};

use super::normalise::STORE_HEADROOM;
use crate::config::{CHANNELS, SAMPLE_RATE};

/// Gain is never raised by more than this, so near-silent sources (a fade,
/// room noise) are not blown up into hiss.
const MAX_GAIN_DB: f64 = 24.0;

/// Integrated loudness of interleaved stereo stored samples, fed in pieces.
/// Only the integrated measure is kept (`Mode::I`: no true peak, no
/// loudness range), the cheapest mode that gives it.
pub(crate) struct Meter {
    meter: Option<EbuR128>,
}

impl Meter {
    pub(crate) fn new() -> Self {
        let meter = EbuR128::new(CHANNELS as u32, SAMPLE_RATE, Mode::I);
        if let Err(e) = &meter {
            tracing::warn!(error = %e, "no loudness meter; sources play unnormalised");
        }
        Meter { meter: meter.ok() }
    }

    pub(crate) fn add(&mut self, samples: &[i16]) {
        if let Some(meter) = self.meter.as_mut() {
            if meter.add_frames_i16(samples).is_err() {
                self.meter = None;
            }
        }
    }

    /// In LUFS of the stored level; `None` for silence or sources too short to gate.
    fn integrated_lufs(&self) -> Option<f64> {
        let lufs = self.meter.as_ref()?.loudness_global().ok()?;
        lufs.is_finite().then_some(lufs)
    }

    /// The factor that turns a stored sample into a float sample at
    /// `target_lufs`: undoes the storage headroom and applies the gain.
    pub(crate) fn read_scale(&self, target_lufs: f64) -> f32 {
        let headroom_db = -20.0 * f64::from(STORE_HEADROOM).log10();
        let gain_db = match self.integrated_lufs() {
            Some(stored) => (target_lufs - (stored + headroom_db)).min(MAX_GAIN_DB),
            None => 0.0,
        };
        let gain = 10f64.powf(gain_db / 20.0) / f64::from(STORE_HEADROOM) / 32768.0;
        gain as f32
    }
}

/// [`Meter::read_scale`] of samples all in memory (the demo program).
pub(crate) fn read_scale(samples: &[i16], target_lufs: f64) -> f32 {
    let mut meter = Meter::new();
    meter.add(samples);
    meter.read_scale(target_lufs)
}

/// Converts float samples (the demo program) to the stored form.
pub(crate) fn to_stored(samples: &[f32]) -> Vec<i16> {
    samples
        .iter()
        .map(|s| {
            (s * STORE_HEADROOM * 32767.0)
                .round()
                .clamp(-32768.0, 32767.0) as i16
        })
        .collect()
}

/// Identity up to 0.9 of full scale, then a smooth knee that never passes
/// full scale: peaks that normalisation pushes over full scale are not clipped hard.
pub(crate) fn soft_limit(x: f32) -> f32 {
    const KNEE: f32 = 0.9;
    let a = x.abs();
    if a <= KNEE {
        x
    } else {
        let over = (a - KNEE) / (1.0 - KNEE);
        x.signum() * (KNEE + (1.0 - KNEE) * over.tanh())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_brings_a_tone_to_the_target() {
        // A 1 kHz stereo tone at 0.1 amplitude, stored with headroom.
        let tone: Vec<f32> = (0..SAMPLE_RATE as usize * 3)
            .flat_map(|i| {
                let s = 0.1 * (std::f32::consts::TAU * 1000.0 * i as f32 / 48_000.0).sin();
                [s, s]
            })
            .collect();
        let stored = to_stored(&tone);
        let scale = read_scale(&stored, -16.0);
        let played: Vec<f32> = stored.iter().map(|s| f32::from(*s) * scale).collect();
        let mut meter = EbuR128::new(2, SAMPLE_RATE, Mode::I).unwrap();
        meter.add_frames_f32(&played).unwrap();
        let lufs = meter.loudness_global().unwrap();
        assert!((lufs + 16.0).abs() < 0.1, "{lufs}");
    }

    #[test]
    fn limiter_is_identity_below_the_knee_and_bounded_above() {
        assert_eq!(soft_limit(0.5), 0.5);
        assert_eq!(soft_limit(-0.9), -0.9);
        assert!(soft_limit(5.0) <= 1.0 && soft_limit(5.0) > 0.99);
        assert!(soft_limit(-5.0) >= -1.0);
        assert!(soft_limit(0.95) > 0.9 && soft_limit(0.95) < 0.95);
    }
}
