//! The per-source ffmpeg filter graph: whatever the decoder produces is
//! resampled and remixed (in float) to 48 kHz stereo, lowered by
//! [`STORE_HEADROOM`] and stored as interleaved 16-bit samples: half the
//! spill-file bytes of f32 for a whole decoded track, with room for the
//! overs lossy decoders produce.

use ffmpeg::{filter, ChannelLayout};
use ffmpeg_next as ffmpeg;

use crate::config::SAMPLE_RATE;
use crate::library::SkipReason;

/// Receives decoded audio piece by piece: interleaved stereo samples and
/// the same samples' native-endian bytes (for the spill file, unconverted).
pub(crate) type PcmSink<'a> = dyn FnMut(&[i16], &[u8]) -> Result<(), SkipReason> + 'a;

/// Linear factor applied before 16-bit storage (−6 dB).
pub(crate) const STORE_HEADROOM: f32 = 0.5;

/// `abuffer → aresample → aformat → abuffersink`.
pub(crate) struct Normaliser {
    graph: filter::Graph,
}

impl Normaliser {
    pub(crate) fn new(
        rate: u32,
        format: ffmpeg::format::Sample,
        layout: ChannelLayout,
    ) -> Result<Self, ffmpeg::Error> {
        let mut graph = filter::Graph::new();
        let args = format!(
            "time_base=1/{rate}:sample_rate={rate}:sample_fmt={}:channel_layout=0x{:x}",
            format.name(),
            layout.bits()
        );
        let abuffer = filter::find("abuffer").ok_or(ffmpeg::Error::FilterNotFound)?;
        let sink = filter::find("abuffersink").ok_or(ffmpeg::Error::FilterNotFound)?;
        graph.add(&abuffer, "in", &args)?;
        graph.add(&sink, "out", "")?;
        graph.output("in", 0)?.input("out", 0)?.parse(&format!(
            "aresample={SAMPLE_RATE},aformat=sample_fmts=flt:channel_layouts=stereo,\
             volume={STORE_HEADROOM},aformat=sample_fmts=s16"
        ))?;
        graph.validate()?;
        Ok(Normaliser { graph })
    }

    pub(crate) fn push(&mut self, frame: &ffmpeg::frame::Audio) -> Result<(), ffmpeg::Error> {
        self.graph
            .get("in")
            .ok_or(ffmpeg::Error::FilterNotFound)?
            .source()
            .add(frame)
    }

    pub(crate) fn flush(&mut self) -> Result<(), ffmpeg::Error> {
        self.graph
            .get("in")
            .ok_or(ffmpeg::Error::FilterNotFound)?
            .source()
            .flush()
    }

    /// Hands every frame the graph has ready to `sink`, as interleaved
    /// stereo samples (through the reused `scratch`) and as the same
    /// samples' native-endian bytes; returns the frames handed over.
    pub(crate) fn drain_into(
        &mut self,
        scratch: &mut Vec<i16>,
        sink: &mut PcmSink<'_>,
    ) -> Result<u64, SkipReason> {
        let Some(mut out) = self.graph.get("out") else {
            return Ok(0);
        };
        let mut frame = ffmpeg::frame::Audio::empty();
        let mut frames = 0u64;
        while out.sink().frame(&mut frame).is_ok() {
            let samples = frame.samples();
            // Packed s16 stereo: plane 0 holds samples * 2 values.
            let data = frame.data(0);
            let wanted = samples * 2 * std::mem::size_of::<i16>();
            let Some(bytes) = data.get(..wanted) else {
                continue;
            };
            scratch.clear();
            scratch.extend(
                bytes
                    .chunks_exact(2)
                    .map(|b| i16::from_ne_bytes([b[0], b[1]])),
            );
            sink(scratch, bytes)?;
            frames += samples as u64;
        }
        Ok(frames)
    }
}
