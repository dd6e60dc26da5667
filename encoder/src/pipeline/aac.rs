//! One AAC-LC encoder (ffmpeg's native `aac`) for one rendition.
//!
//! The encoder runs with `aac_coder=fast` rather than ffmpeg's default
//! `twoloop`: about 40 % less CPU (the station's largest cost) for a
//! waveform SNR within 0.0 / 0.7 / 1.5 dB of twoloop at 64 / 128 / 192 kbit/s
//! on the benchmark's music-like signal (see docs/benchmarks.md).

use ffmpeg::format::{sample::Type, Sample};
use ffmpeg::{codec, encoder, ChannelLayout, Dictionary};
use ffmpeg_next as ffmpeg;

use crate::config::{AAC_FRAME_SAMPLES, SAMPLE_RATE};
use crate::segmenter::ts::AudioPacket;
use crate::EncoderError;

/// The native encoder's quantisation search (see the module docs).
const AAC_CODER: &str = "fast";

pub(crate) struct AacEncoder {
    encoder: encoder::Audio,
    params: codec::Parameters,
    /// Samples the encoder delays its output by (priming); packet timestamps
    /// are shifted back by it so packet N starts at input frame N's time.
    initial_padding: i64,
}

impl AacEncoder {
    pub(crate) fn new(bitrate: u32) -> Result<Self, EncoderError> {
        crate::init_ffmpeg();
        let aac = encoder::find(codec::Id::AAC).ok_or(EncoderError::Ffmpeg {
            context: "finding the AAC encoder",
            source: ffmpeg::Error::EncoderNotFound,
        })?;
        let context = codec::context::Context::new_with_codec(aac);
        let mut audio = context
            .encoder()
            .audio()
            .map_err(EncoderError::ffmpeg("setting up the AAC encoder"))?;
        audio.set_rate(SAMPLE_RATE as i32);
        audio.set_channel_layout(ChannelLayout::STEREO);
        audio.set_channels(2);
        audio.set_format(Sample::F32(Type::Planar));
        audio.set_bit_rate(bitrate as usize);
        audio.set_time_base((1, SAMPLE_RATE as i32));
        let mut options = Dictionary::new();
        options.set("aac_coder", AAC_CODER);
        let encoder = audio
            .open_as_with(aac, options)
            .map_err(EncoderError::ffmpeg("opening the AAC encoder"))?;
        let params = codec::Parameters::from(&encoder);
        // SAFETY: reading a plain integer field of the opened codec context.
        let initial_padding = i64::from(unsafe { (*encoder.as_ptr()).initial_padding });
        Ok(AacEncoder {
            encoder,
            params,
            initial_padding,
        })
    }

    pub(crate) fn params(&self) -> &codec::Parameters {
        &self.params
    }

    /// Encodes one frame of exactly 1024 interleaved stereo samples starting
    /// at sample `pts`; finished packets are appended to `out`.
    pub(crate) fn encode(
        &mut self,
        interleaved: &[f32],
        pts: i64,
        out: &mut Vec<AudioPacket>,
    ) -> Result<(), EncoderError> {
        let n = AAC_FRAME_SAMPLES as usize;
        debug_assert_eq!(interleaved.len(), n * 2);
        // A fresh frame each time: the encoder may still reference the last one.
        let mut frame =
            ffmpeg::frame::Audio::new(Sample::F32(Type::Planar), n, ChannelLayout::STEREO);
        frame.set_rate(SAMPLE_RATE);
        for ch in 0..2 {
            let plane = frame.plane_mut::<f32>(ch);
            for (dst, src) in plane.iter_mut().zip(interleaved.chunks_exact(2)) {
                *dst = src[ch];
            }
        }
        frame.set_pts(Some(pts));
        self.encoder
            .send_frame(&frame)
            .map_err(EncoderError::ffmpeg("sending a frame to AAC"))?;
        self.receive(out)
    }

    /// Drains the encoder at end of stream.
    pub(crate) fn finish(&mut self, out: &mut Vec<AudioPacket>) -> Result<(), EncoderError> {
        self.encoder
            .send_eof()
            .map_err(EncoderError::ffmpeg("flushing AAC"))?;
        self.receive(out)
    }

    fn receive(&mut self, out: &mut Vec<AudioPacket>) -> Result<(), EncoderError> {
        let mut packet = ffmpeg::Packet::empty();
        loop {
            match self.encoder.receive_packet(&mut packet) {
                Ok(()) => {
                    let (Some(pts), Some(data)) = (packet.pts(), packet.data()) else {
                        continue;
                    };
                    out.push(AudioPacket {
                        ts: pts + self.initial_padding,
                        data: data.to_vec(),
                    });
                }
                Err(ffmpeg::Error::Other { errno }) if errno == ffmpeg::error::EAGAIN => {
                    return Ok(())
                }
                Err(ffmpeg::Error::Eof) => return Ok(()),
                Err(e) => return Err(EncoderError::ffmpeg("receiving AAC packets")(e)),
            }
        }
    }
}
