//! Decoding one source, once, into a stream of 48 kHz stereo samples handed
//! to a sink piece by piece (nothing of the whole track is held in memory).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ffmpeg::{codec, media, ChannelLayout};
use ffmpeg_next as ffmpeg;

use super::normalise::{Normaliser, PcmSink};
use crate::config::SAMPLE_RATE;
use crate::library::{probe::open_input, SkipReason};

/// A file that decodes to less than this share of its announced duration is
/// taken as truncated and skipped rather than cut off mid-song on air.
const MIN_DECODED_SHARE: f64 = 0.9;

/// Longest source accepted, so a bogus file cannot fill the spill disk
/// with hours of audio.
const MAX_SOURCE: Duration = Duration::from_secs(3 * 3600);

/// Decodes `path` into interleaved stereo 16-bit samples at 48 kHz, stored
/// [`super::normalise::STORE_HEADROOM`] below the source level, handing each
/// decoded piece to `sink` in order. Packets that fail to decode are
/// skipped; the file is refused when too little of it decodes. Returns the
/// number of frames (samples per channel) decoded.
pub(crate) fn decode_into(
    path: &Path,
    announced: Duration,
    stop: &Arc<AtomicBool>,
    sink: &mut PcmSink<'_>,
) -> Result<u64, SkipReason> {
    crate::init_ffmpeg();
    let interrupt = stop.clone();
    let mut input = open_input(path, move || interrupt.load(Ordering::Relaxed))
        .map_err(SkipReason::NotMedia)?;
    let stream = input
        .streams()
        .best(media::Type::Audio)
        .ok_or(SkipReason::NoAudio)?;
    let index = stream.index();
    let context = codec::context::Context::from_parameters(stream.parameters())
        .map_err(|e| SkipReason::NoDecoder(e.to_string()))?;
    let mut decoder = context
        .decoder()
        .audio()
        .map_err(|e| SkipReason::NoDecoder(e.to_string()))?;

    let max_frames = MAX_SOURCE.as_secs() * u64::from(SAMPLE_RATE);
    let mut normaliser: Option<Normaliser> = None;
    let mut frame = ffmpeg::frame::Audio::empty();
    let mut errors = 0usize;
    let mut frames = 0u64;
    let mut feed = |decoder: &mut ffmpeg::decoder::Audio,
                    normaliser: &mut Option<Normaliser>,
                    frames: &mut u64|
     -> Result<(), SkipReason> {
        while decoder.receive_frame(&mut frame).is_ok() {
            if frame.samples() == 0 {
                continue;
            }
            // WAV and some others leave the layout unset; derive it from the
            // channel count so the resampler knows how to remix the frame.
            if frame.channel_layout().is_empty() {
                frame.set_channel_layout(ChannelLayout::default(i32::from(frame.channels())));
            }
            let n = match normaliser {
                Some(n) => n,
                None => normaliser.insert(
                    Normaliser::new(frame.rate(), frame.format(), frame.channel_layout())
                        .map_err(SkipReason::Undecodable)?,
                ),
            };
            *frames += n.convert(&frame, sink)?;
            if *frames > max_frames {
                return Err(SkipReason::Undecodable("longer than 3 hours".into()));
            }
        }
        Ok(())
    };
    for (s, packet) in input.packets() {
        if stop.load(Ordering::Relaxed) {
            return Err(SkipReason::Undecodable("stopped".into()));
        }
        if s.index() != index {
            continue;
        }
        if decoder.send_packet(&packet).is_err() {
            // A damaged packet: keep going, the truncation check below decides.
            errors += 1;
            continue;
        }
        feed(&mut decoder, &mut normaliser, &mut frames)?;
    }
    let _ = decoder.send_eof();
    feed(&mut decoder, &mut normaliser, &mut frames)?;
    if let Some(n) = normaliser.as_mut() {
        frames += n.finish(sink)?;
    }
    let decoded = Duration::from_secs_f64(frames as f64 / f64::from(SAMPLE_RATE));
    if frames == 0 {
        return Err(SkipReason::Undecodable(format!("{errors} packets failed")));
    }
    if decoded.as_secs_f64() < announced.as_secs_f64() * MIN_DECODED_SHARE {
        return Err(SkipReason::Truncated {
            expected_ms: announced.as_millis() as u64,
            decoded_ms: decoded.as_millis() as u64,
        });
    }
    Ok(frames)
}
