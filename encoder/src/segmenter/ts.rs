//! In-memory MPEG-TS segments: ffmpeg's `mpegts` muxer writing through a
//! custom AVIOContext into a `Vec<u8>`, one muxer per segment.
//!
//! ffmpeg-next has no safe custom-I/O API, so this is the one unsafe part of
//! the crate; every pointer is owned by [`Muxer`] and freed in its `Drop`.

use std::ffi::{c_int, c_void, CString};
use std::marker::PhantomData;
use std::ptr;

use ffmpeg_next::ffi;

use crate::config::SAMPLE_RATE;
use crate::EncoderError;

/// Size of the AVIO staging buffer; the muxer flushes it into the Vec.
const AVIO_BUFFER: usize = 32 * 1024;

/// ffmpeg's CLI default `muxdelay` (0.7 s): the muxer offsets timestamps by
/// twice this so the PCR can lead the first PTS. The offset is the same in
/// every segment, so timestamps stay continuous across segments.
const MAX_DELAY_US: c_int = 700_000;

/// One AAC packet (ADTS is added by the muxer) at a timestamp in 1/48000 s.
#[derive(Debug, Clone)]
pub struct AudioPacket {
    pub ts: i64,
    pub data: Vec<u8>,
}

/// Muxes `packets` (in timestamp order) and ID3 tags (timestamp, tag) into
/// one MPEG-TS file. `params` are the AAC encoder's codec parameters.
pub fn mux_segment(
    params: &ffmpeg_next::codec::Parameters,
    packets: &[AudioPacket],
    id3: &[(i64, Vec<u8>)],
) -> Result<Vec<u8>, EncoderError> {
    let mut out = Vec::<u8>::with_capacity(estimated_size(packets, id3));
    {
        let mut muxer = Muxer::new(params, &mut out)?;
        muxer.write_header()?;
        // Interleave by timestamp; a tag goes before audio at the same time.
        let mut tags = id3.iter().peekable();
        for packet in packets {
            while let Some((ts, tag)) = tags.next_if(|(ts, _)| *ts <= packet.ts) {
                muxer.write(1, *ts, 0, tag)?;
            }
            muxer.write(0, packet.ts, 1024, &packet.data)?;
        }
        for (ts, tag) in tags {
            muxer.write(1, *ts, 0, tag)?;
        }
        muxer.finish()?;
    }
    Ok(out)
}

/// About the size of the muxed segment, slightly above: reserved up front so
/// the output is not grown by doubling (up to twice the segment's size held,
/// and a copy of it per step) while the muxer flushes into it.
fn estimated_size(packets: &[AudioPacket], id3: &[(i64, Vec<u8>)]) -> usize {
    /// ADTS header the muxer puts before each AAC frame.
    const ADTS_HEADER: usize = 7;
    /// PAT, PMT and the first PES's headers, in bytes.
    const TABLES: usize = 16 * 188;
    let payload: usize = packets
        .iter()
        .map(|p| p.data.len() + ADTS_HEADER)
        .chain(id3.iter().map(|(_, tag)| tag.len()))
        .sum();
    // Measured: a 2-s segment is 1.21 × its payload at 64 and at 128 kbit/s
    // (TS and PES headers, PCRs, padding); a quarter covers it.
    payload + payload / 4 + TABLES
}

/// AVIO write callback: appends to the `Vec<u8>` behind `opaque`.
///
/// The signature matches FFmpeg 5.1/6 (`uint8_t *buf`).
unsafe extern "C" fn write_to_vec(opaque: *mut c_void, buf: *mut u8, size: c_int) -> c_int {
    if opaque.is_null() || buf.is_null() || size < 0 {
        return ffi::AVERROR(ffi::EINVAL);
    }
    // SAFETY: opaque is the Vec<u8> handed to avio_alloc_context, mutably
    // borrowed by the Muxer for its whole life; buf holds `size` bytes.
    let out = &mut *(opaque as *mut Vec<u8>);
    out.extend_from_slice(std::slice::from_raw_parts(buf, size as usize));
    size
}

struct Muxer<'out> {
    format: *mut ffi::AVFormatContext,
    avio: *mut ffi::AVIOContext,
    /// The Vec the write callback appends to: borrowed, so it cannot move
    /// or be dropped while ffmpeg holds a pointer to it.
    _out: PhantomData<&'out mut Vec<u8>>,
}

fn check(code: c_int, context: &'static str) -> Result<c_int, EncoderError> {
    if code < 0 {
        Err(EncoderError::Mux { context, code })
    } else {
        Ok(code)
    }
}

impl<'out> Muxer<'out> {
    fn new(
        params: &ffmpeg_next::codec::Parameters,
        out: &'out mut Vec<u8>,
    ) -> Result<Self, EncoderError> {
        let name = CString::new("mpegts").expect("no NUL in literal");
        let mut muxer = Muxer {
            format: ptr::null_mut(),
            avio: ptr::null_mut(),
            _out: PhantomData,
        };
        // SAFETY: plain FFI calls; each result is checked before use and
        // ownership is recorded in `muxer` so Drop frees it on every path.
        unsafe {
            check(
                ffi::avformat_alloc_output_context2(
                    &mut muxer.format,
                    ptr::null_mut(),
                    name.as_ptr(),
                    ptr::null(),
                ),
                "allocating the mpegts context",
            )?;
            let buffer = ffi::av_malloc(AVIO_BUFFER) as *mut u8;
            if buffer.is_null() {
                return Err(EncoderError::Mux {
                    context: "allocating the AVIO buffer",
                    code: ffi::AVERROR(ffi::ENOMEM),
                });
            }
            muxer.avio = ffi::avio_alloc_context(
                buffer,
                AVIO_BUFFER as c_int,
                1,
                out as *mut Vec<u8> as *mut c_void,
                None,
                Some(write_to_vec),
                None,
            );
            if muxer.avio.is_null() {
                ffi::av_free(buffer as *mut c_void);
                return Err(EncoderError::Mux {
                    context: "allocating the AVIO context",
                    code: ffi::AVERROR(ffi::ENOMEM),
                });
            }
            (*muxer.format).pb = muxer.avio;
            (*muxer.format).flags |= ffi::AVFMT_FLAG_CUSTOM_IO as c_int;
            (*muxer.format).max_delay = MAX_DELAY_US;

            let audio = ffi::avformat_new_stream(muxer.format, ptr::null());
            if audio.is_null() {
                return Err(EncoderError::Mux {
                    context: "adding the audio stream",
                    code: ffi::AVERROR(ffi::ENOMEM),
                });
            }
            check(
                ffi::avcodec_parameters_copy((*audio).codecpar, params.as_ptr()),
                "copying AAC parameters",
            )?;
            (*audio).time_base = ffi::AVRational {
                num: 1,
                den: SAMPLE_RATE as c_int,
            };

            let data = ffi::avformat_new_stream(muxer.format, ptr::null());
            if data.is_null() {
                return Err(EncoderError::Mux {
                    context: "adding the ID3 stream",
                    code: ffi::AVERROR(ffi::ENOMEM),
                });
            }
            (*(*data).codecpar).codec_type = ffi::AVMediaType::AVMEDIA_TYPE_DATA;
            (*(*data).codecpar).codec_id = ffi::AVCodecID::AV_CODEC_ID_TIMED_ID3;
            (*data).time_base = ffi::AVRational {
                num: 1,
                den: SAMPLE_RATE as c_int,
            };
        }
        Ok(muxer)
    }

    fn write_header(&mut self) -> Result<(), EncoderError> {
        // SAFETY: format is a fully set-up output context.
        unsafe {
            check(
                ffi::avformat_write_header(self.format, ptr::null_mut()),
                "writing the TS header",
            )?;
        }
        Ok(())
    }

    /// Writes one packet on `stream` at `ts` (1/48000 s).
    fn write(
        &mut self,
        stream: usize,
        ts: i64,
        duration: i64,
        data: &[u8],
    ) -> Result<(), EncoderError> {
        let len = c_int::try_from(data.len()).map_err(|_| EncoderError::Mux {
            context: "packet larger than 2 GiB",
            code: ffi::AVERROR(ffi::EINVAL),
        })?;
        // SAFETY: the packet is allocated, filled within its size and freed here.
        unsafe {
            let mut packet = ffi::av_packet_alloc();
            if packet.is_null() {
                return Err(EncoderError::Mux {
                    context: "allocating a packet",
                    code: ffi::AVERROR(ffi::ENOMEM),
                });
            }
            let result = (|| {
                check(ffi::av_new_packet(packet, len), "allocating packet data")?;
                ptr::copy_nonoverlapping(data.as_ptr(), (*packet).data, data.len());
                (*packet).pts = ts;
                (*packet).dts = ts;
                (*packet).duration = duration;
                (*packet).stream_index = stream as c_int;
                if stream == 0 {
                    (*packet).flags |= ffi::AV_PKT_FLAG_KEY as c_int;
                }
                let st = *(*self.format).streams.add(stream);
                ffi::av_packet_rescale_ts(
                    packet,
                    ffi::AVRational {
                        num: 1,
                        den: SAMPLE_RATE as c_int,
                    },
                    (*st).time_base,
                );
                check(ffi::av_write_frame(self.format, packet), "writing a packet")
            })();
            ffi::av_packet_free(&mut packet);
            result.map(|_| ())
        }
    }

    fn finish(&mut self) -> Result<(), EncoderError> {
        // SAFETY: header was written; trailer flushes the muxer, then AVIO.
        unsafe {
            check(ffi::av_write_trailer(self.format), "writing the TS trailer")?;
            ffi::avio_flush(self.avio);
        }
        Ok(())
    }
}

impl Drop for Muxer<'_> {
    fn drop(&mut self) {
        // SAFETY: both pointers are owned by this Muxer (or null). The AVIO
        // buffer may have been reallocated by ffmpeg, so free it via the context.
        unsafe {
            if !self.avio.is_null() {
                ffi::av_freep(&mut (*self.avio).buffer as *mut *mut u8 as *mut c_void);
                ffi::avio_context_free(&mut self.avio);
            }
            if !self.format.is_null() {
                (*self.format).pb = ptr::null_mut();
                ffi::avformat_free_context(self.format);
                self.format = ptr::null_mut();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::{AAC_FRAME_SAMPLES, CHANNELS};
    use crate::events::{NowPlaying, SourceKind};
    use crate::pipeline::aac::AacEncoder;
    use crate::segmenter::id3;

    /// Two seconds (a station segment) of a chord through a fresh encoder.
    fn encoded(bitrate: u32) -> (AacEncoder, Vec<AudioPacket>) {
        let mut aac = AacEncoder::new(bitrate).expect("AAC encoder");
        let frame = AAC_FRAME_SAMPLES as usize;
        let mut packets = Vec::new();
        for f in 0..(2 * SAMPLE_RATE as usize / frame) {
            let samples: Vec<f32> = (0..frame * CHANNELS)
                .map(|i| {
                    let t = (f * frame + i / CHANNELS) as f32 / SAMPLE_RATE as f32;
                    0.3 * (t * 440.0 * std::f32::consts::TAU).sin()
                        + 0.2 * (t * 1_234.0 * std::f32::consts::TAU).sin()
                })
                .collect();
            aac.encode(&samples, (f * frame) as i64, &mut packets)
                .expect("encode");
        }
        aac.finish(&mut packets).expect("flush");
        (aac, packets)
    }

    #[test]
    fn the_reserved_output_holds_a_whole_segment_with_little_to_spare() {
        crate::init_ffmpeg();
        let now = NowPlaying {
            title: "A rather long title, as some tracks have".into(),
            artist: Some("Someone".into()),
            album: Some("Something".into()),
            kind: SourceKind::Track,
            track_start: Duration::ZERO,
        };
        for bitrate in [64_000, 128_000, 192_000] {
            let (aac, packets) = encoded(bitrate);
            let tags = vec![
                (0, id3::now_playing_tag(&now)),
                (48_000, id3::now_playing_tag(&now)),
            ];
            let reserved = estimated_size(&packets, &tags);
            let bytes = mux_segment(aac.params(), &packets, &tags).expect("mux");
            // Equal capacity: the Vec was never grown (a reallocation doubles it).
            assert_eq!(
                bytes.capacity(),
                reserved,
                "{bitrate} b/s: output was regrown"
            );
            assert!(
                reserved <= bytes.len() + bytes.len() / 4 + TABLE_SLACK,
                "{bitrate} b/s: reserved {reserved} for {} bytes",
                bytes.len()
            );
        }
    }

    /// What the estimate may exceed the output by apart from its 25 %.
    const TABLE_SLACK: usize = 16 * 188;
}
