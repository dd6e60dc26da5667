//! Decoding one source, once, into 48 kHz stereo samples in memory.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ffmpeg::{codec, media, ChannelLayout};
use ffmpeg_next as ffmpeg;

use super::filter::Normaliser;
use crate::config::SAMPLE_RATE;
use crate::library::{probe::open_input, SkipReason};

/// A file that decodes to less than this share of its announced duration is
/// taken as truncated and skipped rather than cut off mid-song on air.
const MIN_DECODED_SHARE: f64 = 0.9;

/// Longest source accepted, so a bogus duration cannot make us hold hours of
/// audio in memory.
const MAX_SOURCE: Duration = Duration::from_secs(3 * 3600);

/// At most this much is reserved up front from the announced duration.
const MAX_RESERVE: Duration = Duration::from_secs(20 * 60);

/// Decodes `path` into interleaved stereo 16-bit samples at 48 kHz, stored
/// [`super::filter::STORE_HEADROOM`] below the source level. Packets that fail to
/// decode are skipped; the file is refused when too little of it decodes.
pub(crate) fn decode_file(
    path: &Path,
    announced: Duration,
    stop: Arc<AtomicBool>,
) -> Result<Vec<i16>, SkipReason> {
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

    let max_values = (MAX_SOURCE.as_secs() * u64::from(SAMPLE_RATE) * 2) as usize;
    // Reserve from the probed duration so the buffer does not double past
    // what the track needs; the header is untrusted, so the reservation is
    // capped and anything longer grows as decoded.
    let expected = announced.min(MAX_RESERVE).as_secs_f64() * 1.02;
    let mut out = Vec::with_capacity((expected * f64::from(SAMPLE_RATE)) as usize * 2);
    let mut graph: Option<Normaliser> = None;
    let mut frame = ffmpeg::frame::Audio::empty();
    let mut errors = 0usize;
    let mut feed = |decoder: &mut ffmpeg::decoder::Audio,
                    graph: &mut Option<Normaliser>,
                    out: &mut Vec<i16>|
     -> Result<(), SkipReason> {
        while decoder.receive_frame(&mut frame).is_ok() {
            if frame.samples() == 0 {
                continue;
            }
            // WAV and some others leave the layout unset; derive it from the
            // channel count so the filter graph accepts the frame.
            if frame.channel_layout().is_empty() {
                frame.set_channel_layout(ChannelLayout::default(i32::from(frame.channels())));
            }
            if graph.is_none() {
                let g = Normaliser::new(frame.rate(), frame.format(), frame.channel_layout())
                    .map_err(|e| SkipReason::Undecodable(e.to_string()))?;
                *graph = Some(g);
            }
            let g = graph.as_mut().expect("graph was just created");
            frame.set_pts(None);
            g.push(&frame)
                .map_err(|e| SkipReason::Undecodable(format!("format change mid-file: {e}")))?;
            g.drain_into(out);
            if out.len() > max_values {
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
        feed(&mut decoder, &mut graph, &mut out)?;
    }
    let _ = decoder.send_eof();
    feed(&mut decoder, &mut graph, &mut out)?;
    if let Some(g) = graph.as_mut() {
        if g.flush().is_ok() {
            g.drain_into(&mut out);
        }
    }
    let decoded = Duration::from_secs_f64(out.len() as f64 / 2.0 / f64::from(SAMPLE_RATE));
    if out.is_empty() {
        return Err(SkipReason::Undecodable(format!("{errors} packets failed")));
    }
    if decoded.as_secs_f64() < announced.as_secs_f64() * MIN_DECODED_SHARE {
        return Err(SkipReason::Truncated {
            expected_ms: announced.as_millis() as u64,
            decoded_ms: decoded.as_millis() as u64,
        });
    }
    Ok(out)
}
