//! Per-source normalisation with libswresample directly: whatever the
//! decoder produces is resampled and remixed (in float) to 48 kHz stereo,
//! lowered by [`STORE_HEADROOM`] and stored as interleaved 16-bit samples:
//! half the spill-file bytes of f32 for a whole decoded track, with room for
//! the overs lossy decoders produce.
//!
//! This is what the former libavfilter graph (`aresample=48000, aformat=flt
//! stereo, volume=0.5, aformat=s16`) did, sample for sample: the same
//! swresample conversion to float, an exact halving, and the same rounding
//! to 16 bits. Not linking libavfilter keeps its dependency tree (dozens of
//! shared libraries) out of the station's memory.

use ffmpeg::software::resampling;
use ffmpeg::{format::sample, format::Sample, frame, ChannelLayout};
use ffmpeg_next as ffmpeg;

use crate::config::SAMPLE_RATE;
use crate::library::SkipReason;

/// Receives decoded audio piece by piece: interleaved stereo samples and
/// the same samples' native-endian bytes (for the spill file, unconverted).
pub(crate) type PcmSink<'a> = dyn FnMut(&[i16], &[u8]) -> Result<(), SkipReason> + 'a;

/// Linear factor applied before 16-bit storage (−6 dB).
pub(crate) const STORE_HEADROOM: f32 = 0.5;

/// Source sample rates accepted. Outside this range a file is bogus, and a
/// tiny declared rate would make one decoded frame resample to an enormous
/// output buffer.
const SOURCE_RATES: std::ops::RangeInclusive<u32> = 1_000..=768_000;

/// Extra output room per conversion beyond libswresample's own estimate
/// (its buffered delay + the resampled input + 3), so a conversion never
/// leaves samples behind in its internal buffer.
const OUTPUT_SLACK: usize = 64;

/// Upper bound on flush rounds at the end of a source: each round drains
/// the whole remaining delay, so one or two suffice.
const MAX_FLUSH_ROUNDS: usize = 8;

/// Interleaved stereo `f32` out of libswresample, at [`SAMPLE_RATE`].
const OUT_FORMAT: Sample = Sample::F32(sample::Type::Packed);
const OUT_CHANNELS: usize = 2;

/// Converts one source's decoded frames to stored samples.
pub(crate) struct Normaliser {
    resampler: resampling::Context,
    /// Reused output frame and the number of samples its buffer holds
    /// (libswresample overwrites the frame's sample count on every call).
    out: frame::Audio,
    capacity: usize,
    samples: Vec<i16>,
    bytes: Vec<u8>,
}

impl Normaliser {
    /// A converter from the source's format, layout and rate (those of its
    /// first decoded frame; later frames must match).
    pub(crate) fn new(rate: u32, format: Sample, layout: ChannelLayout) -> Result<Self, String> {
        if !SOURCE_RATES.contains(&rate) {
            return Err(format!("sample rate {rate} Hz is out of range"));
        }
        let resampler = resampling::Context::get(
            format,
            layout,
            rate,
            OUT_FORMAT,
            ChannelLayout::STEREO,
            SAMPLE_RATE,
        )
        .map_err(|e| format!("no resampler from {format:?} {rate} Hz: {e}"))?;
        Ok(Normaliser {
            resampler,
            out: frame::Audio::empty(),
            capacity: 0,
            samples: Vec::new(),
            bytes: Vec::new(),
        })
    }

    /// Converts `input` and hands what comes out to `sink`; returns the
    /// frames (samples per channel) handed over.
    pub(crate) fn convert(
        &mut self,
        input: &frame::Audio,
        sink: &mut PcmSink<'_>,
    ) -> Result<u64, SkipReason> {
        let input_def = self.resampler.input();
        if input.rate() != input_def.rate
            || input.format() != input_def.format
            || input.channel_layout() != input_def.channel_layout
        {
            return Err(SkipReason::Undecodable(format!(
                "format change mid-file: {:?} {} Hz {} ch → {:?} {} Hz {} ch",
                input_def.format,
                input_def.rate,
                input_def.channel_layout.channels(),
                input.format(),
                input.rate(),
                input.channel_layout().channels(),
            )));
        }
        // Same estimate libswresample makes when it allocates for itself:
        // what it still buffers plus this input at the output rate. The
        // rate is bounded, so this is at most ~770 × the decoded frame.
        let buffered = self.buffered_output();
        let resampled = input.samples() as u64 * u64::from(SAMPLE_RATE) / u64::from(input_def.rate);
        self.reserve(buffered + resampled as usize);
        self.out.set_samples(self.capacity);
        self.resampler
            .run(input, &mut self.out)
            .map_err(|e| SkipReason::Undecodable(format!("resampling failed: {e}")))?;
        self.emit(sink)
    }

    /// Drains what libswresample still holds at the end of the source (its
    /// filter delay) into `sink`; returns the frames handed over.
    pub(crate) fn finish(&mut self, sink: &mut PcmSink<'_>) -> Result<u64, SkipReason> {
        let mut frames = 0;
        for _ in 0..MAX_FLUSH_ROUNDS {
            let buffered = self.buffered_output();
            if buffered == 0 {
                break;
            }
            self.reserve(buffered);
            self.out.set_samples(self.capacity);
            self.resampler
                .flush(&mut self.out)
                .map_err(|e| SkipReason::Undecodable(format!("resampler flush failed: {e}")))?;
            let handed = self.emit(sink)?;
            if handed == 0 {
                break;
            }
            frames += handed;
        }
        Ok(frames)
    }

    /// Samples (per channel, at the output rate) libswresample holds back.
    fn buffered_output(&self) -> usize {
        // `delay()` is `None` when nothing is held.
        self.resampler
            .delay()
            .map_or(0, |d| usize::try_from(d.output).unwrap_or(0))
    }

    /// Makes the output frame hold at least `needed` samples (+ slack).
    fn reserve(&mut self, needed: usize) {
        let needed = needed + OUTPUT_SLACK;
        if needed > self.capacity {
            self.out = frame::Audio::new(OUT_FORMAT, needed, ChannelLayout::STEREO);
            self.capacity = needed;
        }
    }

    /// Applies the headroom, rounds to 16 bits and hands the output frame's
    /// samples to `sink`.
    fn emit(&mut self, sink: &mut PcmSink<'_>) -> Result<u64, SkipReason> {
        let frames = self.out.samples();
        if frames == 0 {
            return Ok(0);
        }
        let wanted = frames * OUT_CHANNELS * std::mem::size_of::<f32>();
        let Some(data) = self.out.data(0).get(..wanted) else {
            return Err(SkipReason::Undecodable(format!(
                "resampler returned {frames} samples, more than its buffer holds"
            )));
        };
        self.samples.clear();
        self.samples.extend(
            data.chunks_exact(4)
                .map(|b| to_stored(f32::from_ne_bytes([b[0], b[1], b[2], b[3]]))),
        );
        self.bytes.clear();
        self.bytes
            .extend(self.samples.iter().flat_map(|s| s.to_ne_bytes()));
        sink(&self.samples, &self.bytes)?;
        Ok(frames as u64)
    }
}

/// One float sample (full scale ±1.0) to its stored 16-bit value: lowered
/// by the headroom (exact in float, as libavfilter's `volume` did) and
/// rounded half to even with saturation, as libswresample's `lrintf` +
/// clip conversion to s16 does.
fn to_stored(sample: f32) -> i16 {
    let scaled = sample * STORE_HEADROOM * 32768.0;
    // `as` saturates out-of-range values (and maps NaN to 0).
    scaled.round_ties_even() as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_value_halves_rounds_half_to_even_and_saturates() {
        assert_eq!(to_stored(0.0), 0);
        assert_eq!(to_stored(1.0), 16384);
        assert_eq!(to_stored(-1.0), -16384);
        // 2.5 and 3.5 steps round to the even neighbour, like lrintf.
        assert_eq!(to_stored(2.5 / 16384.0), 2);
        assert_eq!(to_stored(3.5 / 16384.0), 4);
        assert_eq!(to_stored(-2.5 / 16384.0), -2);
        // Overs up to +6 dB fit; beyond that the value saturates.
        assert_eq!(to_stored(1.999), 32752);
        assert_eq!(to_stored(4.0), i16::MAX);
        assert_eq!(to_stored(-4.0), i16::MIN);
        assert_eq!(to_stored(f32::NAN), 0);
    }

    #[test]
    fn refuses_absurd_sample_rates() {
        crate::init_ffmpeg();
        let stereo = ChannelLayout::STEREO;
        let s16 = Sample::I16(sample::Type::Packed);
        assert!(Normaliser::new(1, s16, stereo).is_err());
        assert!(Normaliser::new(10_000_000, s16, stereo).is_err());
        assert!(Normaliser::new(44_100, s16, stereo).is_ok());
    }

    /// 44.1 kHz mono s16 → 48 kHz stereo: every input sample comes out,
    /// rescaled in time, with the tail flushed at the end.
    #[test]
    fn resamples_a_whole_source_including_the_tail() {
        crate::init_ffmpeg();
        let mono = ChannelLayout::MONO;
        let s16 = Sample::I16(sample::Type::Packed);
        let mut normaliser = Normaliser::new(44_100, s16, mono).expect("resampler");
        let mut got: Vec<i16> = Vec::new();
        let mut byte_count = 0usize;
        let mut sink = |samples: &[i16], bytes: &[u8]| {
            assert_eq!(bytes.len(), samples.len() * 2);
            assert_eq!(&bytes[..2], &samples[0].to_ne_bytes());
            got.extend_from_slice(samples);
            byte_count += bytes.len();
            Ok(())
        };
        let mut frames = 0;
        // One second of full-scale-ish constant input in 1024-sample frames.
        for _ in 0..44_100 / 1024 {
            let mut input = frame::Audio::new(s16, 1024, mono);
            input.set_rate(44_100);
            for b in input.data_mut(0).chunks_exact_mut(2) {
                b.copy_from_slice(&16_000i16.to_ne_bytes());
            }
            frames += normaliser.convert(&input, &mut sink).expect("convert");
        }
        frames += normaliser.finish(&mut sink).expect("flush");
        let input_frames = (44_100 / 1024 * 1024) as u64;
        let expected = input_frames * 48_000 / 44_100;
        assert!(frames.abs_diff(expected) <= 2, "{frames} vs {expected}");
        assert_eq!(got.len() as u64, frames * 2);
        assert_eq!(byte_count, got.len() * 2);
        // Mid-stream, both channels carry the input at half level, less
        // libswresample's −3 dB for a centre channel spread over two.
        let mid = &got[got.len() / 2..got.len() / 2 + 2];
        let expected = 16_000.0 * f64::from(STORE_HEADROOM) * std::f64::consts::FRAC_1_SQRT_2;
        for &s in mid {
            assert!((f64::from(s) - expected).abs() < expected * 0.01, "{s}");
        }
    }

    #[test]
    fn refuses_a_format_change_mid_source() {
        crate::init_ffmpeg();
        let stereo = ChannelLayout::STEREO;
        let s16 = Sample::I16(sample::Type::Packed);
        let mut normaliser = Normaliser::new(48_000, s16, stereo).expect("resampler");
        let mut input = frame::Audio::new(s16, 256, stereo);
        input.set_rate(44_100);
        let mut sink = |_: &[i16], _: &[u8]| Ok(());
        let err = normaliser.convert(&input, &mut sink).unwrap_err();
        assert!(matches!(err, SkipReason::Undecodable(m) if m.contains("format change")));
    }
}
