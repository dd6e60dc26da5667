//! Helpers for the encoder's integration tests: media generated with the
//! ffmpeg CLI (tests only; the product never runs it), collection of a
//! render's events, and checks with ffprobe / ffmpeg.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ipfm_encoder::{
    Encoder, EncoderConfig, EncoderEvent, Library, Mode, PlayoutPosition, Segment, SkippedFile,
};

/// Generous bound on any wait for the encoder in tests.
pub const WAIT: Duration = Duration::from_secs(120);

/// Runs the ffmpeg CLI quietly, panicking with its stderr on failure.
pub fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg CLI is installed for tests");
    assert!(
        out.status.success(),
        "ffmpeg {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A sine tone with title/artist tags, at `volume_db` relative to ffmpeg's
/// default sine amplitude (so tracks differ in loudness).
pub fn tone(
    dir: &Path,
    name: &str,
    freq: u32,
    seconds: f64,
    volume_db: f64,
    title: &str,
    artist: &str,
) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    let source = format!("sine=frequency={freq}:duration={seconds}:sample_rate=44100");
    let filter = format!("volume={volume_db}dB");
    let title = format!("title={title}");
    let artist = format!("artist={artist}");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &source,
        "-af",
        &filter,
        "-metadata",
        &title,
        "-metadata",
        &artist,
        path.to_str().unwrap(),
    ]);
    path
}

/// Truncates a file to `keep` of its length (a download cut short).
pub fn truncate(path: &Path, keep: f64) {
    let len = std::fs::metadata(path).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.set_len((len as f64 * keep) as u64).unwrap();
}

pub fn config(segment_secs: u64) -> EncoderConfig {
    EncoderConfig {
        segment_target: Duration::from_secs(segment_secs),
        shuffle_seed: Some(7),
        jingle_every: 0,
        ..EncoderConfig::default()
    }
}

/// What a render produced.
#[derive(Debug, Default)]
pub struct Render {
    pub segments: Vec<Segment>,
    pub skipped: Vec<SkippedFile>,
}

impl Render {
    pub fn of(&self, rendition: &str) -> Vec<&Segment> {
        let mut v: Vec<&Segment> = self
            .segments
            .iter()
            .filter(|s| s.rendition == rendition)
            .collect();
        v.sort_by_key(|s| s.sequence);
        v
    }
}

/// Renders a library once through (as fast as possible) and collects everything.
pub fn render(
    config: EncoderConfig,
    library: Library,
    jingles: Library,
    position: Option<PlayoutPosition>,
) -> Render {
    let (handle, events) =
        Encoder::start(config, library, jingles, position, Mode::AsFastAsPossible).unwrap();
    let mut render = Render::default();
    loop {
        match events.recv_timeout(WAIT) {
            Ok(EncoderEvent::Segment(s)) => render.segments.push(s),
            Ok(EncoderEvent::Skipped(s)) => render.skipped.push(s),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            Err(e) => panic!("encoder stalled: {e}"),
        }
    }
    handle.join().unwrap();
    render
}

/// Writes segments into `dir` and returns their paths.
pub fn write_segments(dir: &Path, segments: &[&Segment]) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    segments
        .iter()
        .map(|s| {
            let p = dir.join(format!("{}-{}.ts", s.rendition, s.sequence));
            std::fs::write(&p, &s.bytes).unwrap();
            p
        })
        .collect()
}

/// Decodes a file completely; returns ffmpeg's error output (empty = clean).
pub fn decode_errors(path: &Path) -> String {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    assert!(out.status.success(), "ffmpeg could not decode {path:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `ffprobe` output for the given entries, CSV without headers.
pub fn ffprobe(path: &Path, args: &[&str]) -> String {
    let out = Command::new("ffprobe")
        .args(["-hide_banner", "-v", "error"])
        .args(args)
        .args(["-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ffprobe failed on {path:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Integrated loudness (LUFS) of `seconds` of `path` from `start`, measured
/// by ffmpeg's ebur128 filter.
pub fn loudness(path: &Path, start: f64, seconds: f64) -> f64 {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-nostats"])
        .args([
            "-ss",
            &format!("{start:.3}"),
            "-t",
            &format!("{seconds:.3}"),
        ])
        .arg("-i")
        .arg(path)
        .args(["-af", "ebur128", "-f", "null", "-"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    // The summary at the end: "Integrated loudness:\n    I:         -16.0 LUFS".
    let summary = text
        .rsplit("Integrated loudness:")
        .next()
        .expect("ebur128 summary");
    let line = summary
        .lines()
        .find(|l| l.trim_start().starts_with("I:"))
        .expect("I: line");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Payloads of the timed-ID3 PES stream of an MPEG-TS file, found through the
/// PMT (stream type 0x15), each with its PTS (90 kHz).
pub fn id3_tags(ts: &[u8]) -> Vec<(u64, Vec<u8>)> {
    let packets: Vec<&[u8]> = ts.chunks_exact(188).collect();
    let pid = |p: &[u8]| (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2]);
    let body = |p: &[u8]| -> Vec<u8> {
        let afc = (p[3] >> 4) & 3;
        let start = if afc == 3 { 5 + usize::from(p[4]) } else { 4 };
        if afc == 2 || start >= 188 {
            Vec::new()
        } else {
            p[start..].to_vec()
        }
    };
    // PAT → PMT PID.
    let pat = packets.iter().find(|p| pid(p) == 0).expect("PAT");
    let b = body(pat);
    let s = &b[1 + usize::from(b[0])..];
    let pmt_pid = (u16::from(s[10] & 0x1f) << 8) | u16::from(s[11]);
    // PMT → PID of stream type 0x15.
    let pmt = packets.iter().find(|p| pid(p) == pmt_pid).expect("PMT");
    let b = body(pmt);
    let s = &b[1 + usize::from(b[0])..];
    let section_len = (usize::from(s[1] & 0x0f) << 8) | usize::from(s[2]);
    let info_len = (usize::from(s[10] & 0x0f) << 8) | usize::from(s[11]);
    let mut i = 12 + info_len;
    let end = 3 + section_len - 4;
    let mut id3_pid = None;
    while i + 5 <= end {
        let stream_type = s[i];
        let es_pid = (u16::from(s[i + 1] & 0x1f) << 8) | u16::from(s[i + 2]);
        let es_info = (usize::from(s[i + 3] & 0x0f) << 8) | usize::from(s[i + 4]);
        if stream_type == 0x15 {
            id3_pid = Some(es_pid);
        }
        i += 5 + es_info;
    }
    let id3_pid = id3_pid.expect("a metadata stream (type 0x15) in the PMT");
    // Reassemble PES packets on that PID.
    let mut pes: Vec<Vec<u8>> = Vec::new();
    for p in packets.iter().filter(|p| pid(p) == id3_pid) {
        if p[1] & 0x40 != 0 {
            pes.push(body(p));
        } else if let Some(last) = pes.last_mut() {
            last.extend(body(p));
        }
    }
    pes.into_iter()
        .map(|pes| {
            assert_eq!(&pes[..3], &[0, 0, 1], "PES start code");
            let flags = pes[7];
            let header_len = usize::from(pes[8]);
            assert!(flags & 0x80 != 0, "ID3 PES carries a PTS");
            let b = &pes[9..14];
            let pts = (u64::from(b[0] & 0x0e) << 29)
                | (u64::from(b[1]) << 22)
                | (u64::from(b[2] & 0xfe) << 14)
                | (u64::from(b[3]) << 7)
                | (u64::from(b[4]) >> 1);
            let data = &pes[9 + header_len..];
            // Bound the tag by its own header size (TS padding follows).
            let size = data[6..10]
                .iter()
                .fold(0usize, |acc, b| (acc << 7) | usize::from(*b));
            (pts, data[..10 + size].to_vec())
        })
        .collect()
}

/// Text of an ID3v2.4 text frame (`TIT2`, `TPE1`) or of a `TXXX` frame
/// with the given description.
pub fn id3_text(tag: &[u8], id: &str, txxx: Option<&str>) -> Option<String> {
    assert_eq!(&tag[..3], b"ID3");
    let mut i = 10;
    while i + 10 <= tag.len() {
        let fid = &tag[i..i + 4];
        let size = tag[i + 4..i + 8]
            .iter()
            .fold(0usize, |acc, b| (acc << 7) | usize::from(*b));
        let body = &tag[i + 10..i + 10 + size];
        if fid == id.as_bytes() {
            assert_eq!(body[0], 3, "UTF-8 encoding byte");
            let text = String::from_utf8(body[1..].to_vec()).unwrap();
            match txxx {
                None => return Some(text),
                Some(desc) => {
                    if let Some((d, v)) = text.split_once('\0') {
                        if d == desc {
                            return Some(v.to_string());
                        }
                    }
                }
            }
        }
        i += 10 + size;
    }
    None
}
