//! The per-source ffmpeg filter graph: whatever the decoder produces is
//! resampled and remixed (in float) to 48 kHz stereo, lowered by
//! [`STORE_HEADROOM`] and stored as interleaved 16-bit samples: half the
//! memory of f32 for a whole decoded track, with room for the overs lossy
//! decoders produce.

use ffmpeg::{filter, ChannelLayout};
use ffmpeg_next as ffmpeg;

use crate::config::SAMPLE_RATE;

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

    /// Appends every frame the graph has ready to `out` (interleaved stereo).
    pub(crate) fn drain_into(&mut self, out: &mut Vec<i16>) {
        let Some(mut sink) = self.graph.get("out") else {
            return;
        };
        let mut frame = ffmpeg::frame::Audio::empty();
        while sink.sink().frame(&mut frame).is_ok() {
            let samples = frame.samples();
            // Packed s16 stereo: plane 0 holds samples * 2 values.
            let data = frame.data(0);
            let wanted = samples * 2 * std::mem::size_of::<i16>();
            let Some(bytes) = data.get(..wanted) else {
                continue;
            };
            out.extend(
                bytes
                    .chunks_exact(2)
                    .map(|b| i16::from_ne_bytes([b[0], b[1]])),
            );
        }
    }
}
