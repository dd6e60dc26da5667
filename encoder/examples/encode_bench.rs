//! Drives the encoder for `bench/encoder.py`: plays a music directory out with
//! the default station settings (three renditions, 6-s segments, −16 LUFS),
//! drops the segments and prints what was produced as one JSON line:
//! `{"media_seconds": …, "segments": …, "skipped": …}` (segments of all renditions).
//!
//! ```text
//! encode_bench --mode fast MUSIC_DIR                 one pass, as fast as possible
//! encode_bench --mode realtime --seconds 60 MUSIC_DIR  paced to the clock for 60 s
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crossbeam_channel::RecvTimeoutError;
use ipfm_encoder::{Encoder, EncoderConfig, EncoderEvent, Library, Mode};

/// A fixed seed: every run plays the same rotation.
const SHUFFLE_SEED: u64 = 4;
/// Longest wait for one event before the run is declared stuck (a realtime
/// station emits a segment every 6 s; a fast pass decodes a whole track first).
const EVENT_TIMEOUT: Duration = Duration::from_secs(120);

struct Args {
    mode: Mode,
    seconds: u64,
    music: PathBuf,
}

fn usage() -> String {
    "usage: encode_bench [--mode fast|realtime] [--seconds N] MUSIC_DIR".to_string()
}

fn parse_args() -> Result<Args, String> {
    let mut mode = Mode::AsFastAsPossible;
    let mut seconds = 60;
    let mut music = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--mode" => {
                mode = match args.next().as_deref() {
                    Some("fast") => Mode::AsFastAsPossible,
                    Some("realtime") => Mode::Realtime,
                    other => return Err(format!("unknown mode {other:?}; {}", usage())),
                }
            }
            "--seconds" => {
                seconds = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .filter(|&s| s > 0)
                    .ok_or_else(|| format!("--seconds needs a positive integer; {}", usage()))?;
            }
            _ if music.is_none() && !arg.starts_with("--") => music = Some(PathBuf::from(arg)),
            _ => return Err(format!("unexpected argument {arg:?}; {}", usage())),
        }
    }
    let music = music.ok_or_else(usage)?;
    Ok(Args {
        mode,
        seconds,
        music,
    })
}

#[derive(Default)]
struct Totals {
    /// Media time of the segments of the first rendition (the others cut the
    /// same samples).
    media: Duration,
    segments: u64,
    skipped: u64,
}

impl Totals {
    fn count(&mut self, event: EncoderEvent, first_rendition: &str) {
        match event {
            EncoderEvent::Segment(segment) => {
                if segment.rendition == first_rendition {
                    self.media += segment.duration;
                }
                self.segments += 1;
            }
            EncoderEvent::Skipped(_) => self.skipped += 1,
        }
    }
}

fn run(args: Args) -> Result<Totals, String> {
    let library = Library::scan(&args.music).map_err(|e| e.to_string())?;
    let config = EncoderConfig {
        shuffle_seed: Some(SHUFFLE_SEED),
        ..EncoderConfig::default()
    };
    let first_rendition = config.renditions[0].name.clone();
    let (handle, events) = Encoder::start(config, library, Library::empty(), None, args.mode)
        .map_err(|e| e.to_string())?;
    let mut totals = Totals::default();
    match args.mode {
        Mode::AsFastAsPossible => {
            // The channel closes after the last segment of the pass.
            loop {
                match events.recv_timeout(EVENT_TIMEOUT) {
                    Ok(event) => totals.count(event, &first_rendition),
                    Err(RecvTimeoutError::Disconnected) => break,
                    Err(RecvTimeoutError::Timeout) => return Err("encoder stalled".into()),
                }
            }
            handle.join().map_err(|e| e.to_string())?;
        }
        Mode::Realtime => {
            let end = Instant::now() + Duration::from_secs(args.seconds);
            while let Some(left) = end.checked_duration_since(Instant::now()) {
                match events.recv_timeout(left.min(EVENT_TIMEOUT)) {
                    Ok(event) => totals.count(event, &first_rendition),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => {
                        return Err("realtime station stopped by itself".into())
                    }
                }
            }
            handle.stop().map_err(|e| e.to_string())?;
        }
    }
    Ok(totals)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(totals) => {
            let report = serde_json::json!({
                "media_seconds": totals.media.as_secs_f64(),
                "segments": totals.segments,
                "skipped": totals.skipped,
            });
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("encode_bench: {message}");
            ExitCode::FAILURE
        }
    }
}
