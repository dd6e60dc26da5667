//! A single pass over a small library: the segments are valid MPEG-TS, cut
//! at the same sample positions in every rendition, with continuous
//! timestamps, the right durations, now-playing ID3 and normalised loudness.

use crate::common;

use common::*;
use ipfm_encoder::{Library, SkipReason, SourceKind, AAC_FRAME_SAMPLES, SAMPLE_RATE};

/// 90 kHz ticks of one AAC frame at 48 kHz.
const FRAME_TICKS: i64 = 1920;

#[test]
fn single_pass_segments_are_valid_aligned_and_continuous() {
    let music = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    // Three tones far apart in level, a truncated mp3 and a text file posing as one.
    tone(
        music.path(),
        "quiet.flac",
        440,
        3.0,
        -14.0,
        "Quiet One",
        "Artist Q",
    );
    tone(
        music.path(),
        "sub/lóud ünïcode.mp3",
        660,
        3.5,
        0.0,
        "Lóud Twö",
        "Artist L",
    );
    tone(
        music.path(),
        "-dash name.ogg",
        550,
        2.5,
        -10.0,
        "Dash Three",
        "Artist D",
    );
    let cut = tone(
        music.path(),
        "cut short.mp3",
        330,
        6.0,
        -6.0,
        "Cut",
        "Nobody",
    );
    truncate(&cut, 0.3);
    std::fs::write(music.path().join("notes.mp3"), "this is not an mp3\n").unwrap();

    let library = Library::scan(music.path()).unwrap();
    assert_eq!(
        library.len(),
        4,
        "truncated mp3 still probes; text file does not"
    );
    let render = render(config(2), library, Library::empty(), None);

    // The truncated file is found out at play time and skipped.
    assert_eq!(render.skipped.len(), 1, "{:?}", render.skipped);
    assert_eq!(render.skipped[0].path, "cut short.mp3");
    assert!(matches!(
        render.skipped[0].reason,
        SkipReason::Truncated { .. }
    ));

    let lofi = render.of("lofi");
    let midfi = render.of("midfi");
    let hifi = render.of("hifi");
    // 9 s of music in 2-s segments (1.9947 s: 94 AAC frames).
    let segment_samples = 94 * AAC_FRAME_SAMPLES;
    let total = 3.0 + 3.5 + 2.5;
    let expected = (total * f64::from(SAMPLE_RATE) / segment_samples as f64).ceil() as usize;
    assert_eq!(hifi.len(), expected);
    for (i, ((l, m), h)) in lofi.iter().zip(&midfi).zip(&hifi).enumerate() {
        assert_eq!(l.sequence, i as u64);
        assert_eq!((l.sequence, l.start_sample), (m.sequence, m.start_sample));
        assert_eq!((l.sequence, l.start_sample), (h.sequence, h.start_sample));
        assert_eq!(l.sample_count, h.sample_count);
        assert_eq!(m.sample_count, h.sample_count);
        assert_eq!(l.now_playing, h.now_playing);
        assert!(!l.discontinuity);
        if i + 1 < hifi.len() {
            assert_eq!(h.sample_count, segment_samples, "segment {i}");
            // Within one AAC frame of the 2 s target.
            assert!((h.duration.as_secs_f64() - 2.0).abs() <= 1024.0 / 48_000.0);
            assert_eq!(hifi[i + 1].start_sample, h.start_sample + h.sample_count);
        }
        assert!(l.bytes.len() < m.bytes.len() && m.bytes.len() < h.bytes.len());
    }

    let titles: Vec<&str> = hifi.iter().map(|s| s.now_playing.title.as_str()).collect();
    for title in ["Quiet One", "Lóud Twö", "Dash Three"] {
        assert!(
            titles.contains(&title),
            "{title} never announced: {titles:?}"
        );
    }

    for rendition in [&lofi, &midfi, &hifi] {
        let paths = write_segments(work.path(), rendition);
        // Every segment decodes on its own without a single error.
        for path in &paths {
            assert_eq!(decode_errors(path), "", "{path:?}");
        }
        // Timestamps run on across segment and track boundaries: the
        // concatenation (what a player sees) has one packet every 1024 samples.
        let joined = work.path().join(format!("{}.ts", rendition[0].rendition));
        let bytes: Vec<u8> = rendition.iter().flat_map(|s| s.bytes.clone()).collect();
        std::fs::write(&joined, bytes).unwrap();
        let pts: Vec<i64> = ffprobe(
            &joined,
            &["-select_streams", "a:0", "-show_entries", "packet=pts"],
        )
        .lines()
        .map(|l| l.trim().trim_end_matches(','))
        .filter(|l| !l.is_empty())
        .map(|l| l.parse().unwrap())
        .collect();
        assert!(pts.len() as u64 >= expected as u64 * 94 - 94);
        for w in pts.windows(2) {
            assert_eq!(w[1] - w[0], FRAME_TICKS, "gap in {:?}", joined);
        }
    }

    // ffprobe sees an AAC stream and a timed_id3 data stream in a segment.
    let first = work.path().join("hifi-0.ts");
    let streams = ffprobe(&first, &["-show_entries", "stream=codec_name,profile"]);
    assert!(streams.contains("aac,LC"), "{streams}");
    assert!(streams.contains("timed_id3"), "{streams}");

    // Each segment starts with an ID3 frame naming what plays, at its first PTS;
    // a track starting mid-segment gets its own frame at its start.
    for s in &hifi {
        let tags = id3_tags(&s.bytes);
        assert!(!tags.is_empty());
        let audio_first_pts = ffprobe(
            &work.path().join(format!("hifi-{}.ts", s.sequence)),
            &[
                "-select_streams",
                "a:0",
                "-show_entries",
                "packet=pts",
                "-read_intervals",
                "%+#1",
            ],
        );
        let audio_first_pts: u64 = audio_first_pts
            .trim()
            .trim_end_matches(',')
            .parse()
            .unwrap();
        assert_eq!(tags[0].0, audio_first_pts);
        assert_eq!(
            id3_text(&tags[0].1, "TIT2", None).unwrap(),
            s.now_playing.title
        );
        assert_eq!(
            id3_text(&tags[0].1, "TPE1", None),
            s.now_playing.artist.clone()
        );
        let start = id3_text(&tags[0].1, "TXXX", Some("ipfm:track_start")).unwrap();
        let start: f64 = start.parse().unwrap();
        assert!((start - s.now_playing.track_start.as_secs_f64()).abs() < 0.001);
        assert_eq!(s.now_playing.kind, SourceKind::Track);
        for (pts, tag) in &tags[1..] {
            assert!(*pts > tags[0].0);
            let title = id3_text(tag, "TIT2", None).unwrap();
            assert_ne!(title, s.now_playing.title);
        }
    }

    // Loudness: each track's stretch of the hifi output within ±1 LU of −16.
    let joined = work.path().join("hifi.ts");
    let mut starts: Vec<(f64, String)> = Vec::new();
    for s in &hifi {
        let t = s.now_playing.track_start.as_secs_f64();
        if starts
            .last()
            .map(|(_, title)| title != &s.now_playing.title)
            .unwrap_or(true)
        {
            starts.push((t, s.now_playing.title.clone()));
        }
        for (pts, tag) in id3_tags(&s.bytes).iter().skip(1) {
            let _ = pts;
            let title = id3_text(tag, "TIT2", None).unwrap();
            let start: f64 = id3_text(tag, "TXXX", Some("ipfm:track_start"))
                .unwrap()
                .parse()
                .unwrap();
            if starts.last().map(|(_, t)| t != &title).unwrap_or(true) {
                starts.push((start, title));
            }
        }
    }
    assert_eq!(starts.len(), 3, "{starts:?}");
    // The TS timeline starts at the muxer's fixed offset; media time 0 is the first PTS.
    let end = hifi
        .last()
        .map(|s| (s.media_start + s.duration).as_secs_f64())
        .unwrap();
    for (i, (start, title)) in starts.iter().enumerate() {
        let stop = starts.get(i + 1).map(|(s, _)| *s).unwrap_or(end);
        // Leave out 100 ms at each edge (encoder priming, track joins).
        let lufs = loudness(&joined, start + 0.1, stop - start - 0.2);
        assert!((lufs + 16.0).abs() <= 1.0, "{title}: {lufs} LUFS");
    }
}
