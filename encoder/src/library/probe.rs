//! Probing one file: is it audio, how long is it, what is it called.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ffmpeg::{codec, format, media};
use ffmpeg_next as ffmpeg;

use super::{SkipReason, Tags};

/// Longest a probe may take before the file is skipped (a file on a hung
/// network mount must not stall the station).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// How many packets a probe reads looking for one decodable frame.
const PROBE_PACKETS: usize = 64;

/// Result of a successful probe.
#[derive(Debug, Clone, PartialEq)]
pub struct Probed {
    pub duration: Duration,
    pub tags: Tags,
}

/// Opens `path` with ffmpeg. The `file:` prefix makes sure a name containing
/// a colon is never taken for a protocol; `interrupt` aborts blocking I/O.
pub(crate) fn open_input<F>(path: &Path, interrupt: F) -> Result<format::context::Input, String>
where
    F: FnMut() -> bool + Send + 'static,
{
    let absolute = std::path::absolute(path).map_err(|e| e.to_string())?;
    let Some(text) = absolute.to_str() else {
        return Err("path is not UTF-8".into());
    };
    format::input_with_interrupt(&format!("file:{text}"), interrupt).map_err(|e| e.to_string())
}

/// Probes a file: opens it, finds the audio stream, reads its duration and
/// tags, and decodes a first frame so a text file named `.mp3` is caught here.
pub fn probe(path: &Path, timeout: Duration) -> Result<Probed, SkipReason> {
    probe_until(path, timeout, Arc::new(AtomicBool::new(false)))
}

/// [`probe`] that also gives up as soon as `cancel` is set (station stopping).
pub(crate) fn probe_until(
    path: &Path,
    timeout: Duration,
    cancel: Arc<AtomicBool>,
) -> Result<Probed, SkipReason> {
    crate::init_ffmpeg();
    let deadline = Instant::now() + timeout;
    let interrupt = cancel.clone();
    let give_up = move || Instant::now() > deadline || interrupt.load(Ordering::Relaxed);
    let mut input = open_input(path, give_up).map_err(|e| {
        if Instant::now() > deadline || cancel.load(Ordering::Relaxed) {
            SkipReason::Timeout
        } else {
            SkipReason::NotMedia(e)
        }
    })?;
    let stream = input
        .streams()
        .best(media::Type::Audio)
        .ok_or(SkipReason::NoAudio)?;
    let index = stream.index();
    let duration = duration_of(&input, &stream).ok_or(SkipReason::NoDuration)?;
    let mut tags = tags_from(input.metadata().iter());
    let stream_tags = tags_from(stream.metadata().iter());
    tags.title = tags.title.or(stream_tags.title);
    tags.artist = tags.artist.or(stream_tags.artist);
    tags.album = tags.album.or(stream_tags.album);

    let context = codec::context::Context::from_parameters(stream.parameters())
        .map_err(|e| SkipReason::NoDecoder(e.to_string()))?;
    let mut decoder = context
        .decoder()
        .audio()
        .map_err(|e| SkipReason::NoDecoder(e.to_string()))?;
    let mut frame = ffmpeg::frame::Audio::empty();
    let mut last_error = String::from("no audio packets");
    for (stream, packet) in input.packets().take(PROBE_PACKETS) {
        if Instant::now() > deadline || cancel.load(Ordering::Relaxed) {
            return Err(SkipReason::Timeout);
        }
        if stream.index() != index {
            continue;
        }
        if let Err(e) = decoder.send_packet(&packet) {
            last_error = e.to_string();
            continue;
        }
        if decoder.receive_frame(&mut frame).is_ok() && frame.samples() > 0 {
            return Ok(Probed { duration, tags });
        }
    }
    Err(SkipReason::Undecodable(last_error))
}

fn duration_of(
    input: &format::context::Input,
    stream: &format::stream::Stream,
) -> Option<Duration> {
    let container = input.duration();
    let seconds = if container > 0 {
        container as f64 / f64::from(ffmpeg::ffi::AV_TIME_BASE)
    } else if stream.duration() > 0 {
        stream.duration() as f64 * f64::from(stream.time_base())
    } else {
        return None;
    };
    (seconds.is_finite() && seconds > 0.0).then(|| Duration::from_secs_f64(seconds))
}

/// Tag keys differ in case between containers (ID3 "title", Vorbis "TITLE").
fn tags_from<'a>(entries: impl Iterator<Item = (&'a str, &'a str)>) -> Tags {
    let mut tags = Tags::default();
    for (key, value) in entries {
        let value = clean_tag(value);
        if value.is_none() {
            continue;
        }
        match key.to_ascii_lowercase().as_str() {
            "title" if tags.title.is_none() => tags.title = value,
            "artist" if tags.artist.is_none() => tags.artist = value,
            "album" if tags.album.is_none() => tags.album = value,
            _ => {}
        }
    }
    tags
}

/// Tags are attacker-controlled text: drop control characters (they would
/// break line-based output) and bound the length.
fn clean_tag(value: &str) -> Option<String> {
    const MAX_CHARS: usize = 200;
    let cleaned: String = value
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_CHARS)
        .collect();
    let trimmed = cleaned.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}
