//! Playout behaviour: demo program, restart resume, jingles, crossfade,
//! realtime pacing and shutdown.

use crate::common;

use std::time::Duration;

use common::*;
use ipfm_encoder::{
    Encoder, EncoderEvent, Library, Mode, SourceKind, AAC_FRAME_SAMPLES, DEMO_TITLE, SAMPLE_RATE,
};

#[test]
fn empty_library_plays_the_demo_program() {
    let work = tempfile::tempdir().unwrap();
    let render = render(config(4), Library::empty(), Library::empty(), None);
    let hifi = render.of("hifi");
    // 16 s of demo in ~4 s segments.
    assert_eq!(hifi.len(), 4);
    assert!(hifi.iter().all(|s| s.now_playing.kind == SourceKind::Demo));
    assert!(hifi.iter().all(|s| s.now_playing.title == DEMO_TITLE));
    let tags = id3_tags(&hifi[0].bytes);
    assert_eq!(id3_text(&tags[0].1, "TIT2", None).unwrap(), DEMO_TITLE);
    let paths = write_segments(work.path(), &hifi);
    for p in &paths {
        assert_eq!(decode_errors(p), "");
    }
    // Music, not silence: loud at the target.
    let joined = work.path().join("demo.ts");
    std::fs::write(
        &joined,
        hifi.iter()
            .flat_map(|s| s.bytes.clone())
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let lufs = loudness(&joined, 0.0, 15.0);
    assert!((lufs + 16.0).abs() <= 1.0, "demo at {lufs} LUFS");
}

#[test]
fn library_where_nothing_decodes_plays_the_demo_program() {
    let music = tempfile::tempdir().unwrap();
    let cut = tone(music.path(), "cut.mp3", 440, 4.0, 0.0, "Cut", "X");
    truncate(&cut, 0.2);
    let library = Library::scan(music.path()).unwrap();
    assert_eq!(library.len(), 1);
    let render = render(config(4), library, Library::empty(), None);
    assert_eq!(render.skipped.len(), 1);
    let hifi = render.of("hifi");
    assert!(!hifi.is_empty());
    assert!(hifi.iter().all(|s| s.now_playing.kind == SourceKind::Demo));
}

#[test]
fn restart_resumes_with_the_next_track_and_continues_the_sequence() {
    let music = tempfile::tempdir().unwrap();
    for (i, name) in ["a.flac", "b.flac", "c.flac", "d.flac"].iter().enumerate() {
        let title = format!("Track {}", name.trim_end_matches(".flac"));
        tone(
            music.path(),
            name,
            300 + 100 * i as u32,
            4.5,
            0.0,
            &title,
            "X",
        );
    }
    let library = Library::scan(music.path()).unwrap();
    let first = render(config(2), library.clone(), Library::empty(), None);
    let hifi = first.of("hifi");
    let rotation = hifi[0].position.rotation.clone();
    assert_eq!(rotation.len(), 4);
    let titles: Vec<String> = rotation
        .iter()
        .map(|id| library.get(id).unwrap().display_title())
        .collect();
    // Single pass: every track once, in rotation order.
    let mut played: Vec<String> = Vec::new();
    for s in &hifi {
        if played.last() != Some(&s.now_playing.title) {
            played.push(s.now_playing.title.clone());
        }
    }
    assert_eq!(played.len(), 4, "{played:?}");

    // Stop "after" the first segment that plays the second track of the
    // rotation (tracks are longer than two segments: none starts inside it).
    let stop_at = hifi
        .iter()
        .find(|s| s.now_playing.title == titles[1])
        .unwrap();
    let saved = stop_at.position.clone();
    // The position survives serialisation (the node stores it).
    let saved: ipfm_encoder::PlayoutPosition =
        serde_json::from_str(&serde_json::to_string(&saved).unwrap()).unwrap();
    assert_eq!(saved.media_sequence, stop_at.sequence + 1);
    assert_eq!(saved.next_index, 2);

    let second = render(config(2), library, Library::empty(), Some(saved.clone()));
    let resumed = second.of("hifi");
    assert_eq!(resumed[0].sequence, stop_at.sequence + 1);
    assert_eq!(
        resumed[0].now_playing.title, titles[2],
        "resumes with the next track"
    );
    assert!(resumed[0].discontinuity);
    assert!(resumed[1..].iter().all(|s| !s.discontinuity));
    assert_eq!(
        resumed[0].position.discontinuity_sequence,
        saved.discontinuity_sequence + 1
    );
    assert_eq!(resumed[0].start_sample, saved.media_samples);
    for w in resumed.windows(2) {
        assert_eq!(w[1].sequence, w[0].sequence + 1);
    }
    let later: Vec<&str> = resumed
        .iter()
        .map(|s| s.now_playing.title.as_str())
        .collect();
    assert!(later.contains(&titles[3].as_str()));
    assert!(!later.contains(&titles[0].as_str()) && !later.contains(&titles[1].as_str()));
}

#[test]
fn jingles_play_every_n_tracks() {
    let music = tempfile::tempdir().unwrap();
    let jingles = tempfile::tempdir().unwrap();
    for name in ["a.mp3", "b.mp3", "c.mp3", "d.mp3"] {
        tone(
            music.path(),
            name,
            440,
            1.0,
            0.0,
            &format!("Song {name}"),
            "X",
        );
    }
    tone(
        jingles.path(),
        "id.mp3",
        880,
        0.5,
        0.0,
        "Station ID",
        "ipfm",
    );
    let mut cfg = config(2);
    cfg.jingle_every = 2;
    let render = render(
        cfg,
        Library::scan(music.path()).unwrap(),
        Library::scan(jingles.path()).unwrap(),
        None,
    );
    // Sources in play order, from segment starts and mid-segment ID3 frames.
    let mut order: Vec<(String, String)> = Vec::new();
    for s in render.of("midfi") {
        for (_, tag) in id3_tags(&s.bytes) {
            let title = id3_text(&tag, "TIT2", None).unwrap();
            let kind = id3_text(&tag, "TXXX", Some("ipfm:kind")).unwrap();
            if order.last().map(|(t, _)| t != &title).unwrap_or(true) {
                order.push((title, kind));
            }
        }
    }
    let kinds: Vec<&str> = order.iter().map(|(_, k)| k.as_str()).collect();
    assert_eq!(
        kinds,
        ["track", "track", "jingle", "track", "track"],
        "{order:?}"
    );
    assert_eq!(order[2].0, "Station ID");
}

#[test]
fn crossfade_overlaps_consecutive_tracks() {
    let music = tempfile::tempdir().unwrap();
    tone(music.path(), "a.wav", 440, 3.0, 0.0, "A", "X");
    tone(music.path(), "b.wav", 660, 3.0, 0.0, "B", "X");
    let mut cfg = config(2);
    cfg.crossfade = Duration::from_secs(1);
    let render = render(
        cfg,
        Library::scan(music.path()).unwrap(),
        Library::empty(),
        None,
    );
    let hifi = render.of("hifi");
    let total: u64 = hifi.iter().map(|s| s.sample_count).sum();
    // 6 s minus 1 s of overlap, rounded up to whole segments' frames (+1 tail frame).
    let expected = 5 * u64::from(SAMPLE_RATE);
    assert!(
        total >= expected && total <= expected + 2 * AAC_FRAME_SAMPLES,
        "{total}"
    );
    // The second track starts 1 s before the first one ends.
    let mut starts = Vec::new();
    for s in &hifi {
        for (_, tag) in id3_tags(&s.bytes) {
            let start: f64 = id3_text(&tag, "TXXX", Some("ipfm:track_start"))
                .unwrap()
                .parse()
                .unwrap();
            if !starts.contains(&start) {
                starts.push(start);
            }
        }
    }
    assert_eq!(starts.len(), 2, "{starts:?}");
    assert!((starts[1] - 2.0).abs() < 0.001, "{starts:?}");
}

#[test]
fn realtime_mode_streams_until_stopped() {
    let (handle, events) = Encoder::start(
        config(2),
        Library::empty(),
        Library::empty(),
        None,
        Mode::Realtime,
    )
    .unwrap();
    // Segments come as they are complete on the wall clock.
    let mut seen = Vec::new();
    while seen.len() < 3 {
        match events.recv_timeout(WAIT).expect("a segment") {
            EncoderEvent::Segment(s) => {
                assert_eq!(s.sequence, 0);
                seen.push(s.rendition);
            }
            EncoderEvent::Skipped(s) => panic!("unexpected skip {s:?}"),
        }
    }
    seen.sort();
    assert_eq!(seen, ["hifi", "lofi", "midfi"]);
    handle.stop().unwrap();
    // After stop every thread is gone: the channel drains and closes.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        match events.recv_deadline(deadline) {
            Ok(_) => continue,
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            Err(e) => panic!("channel not closed after stop: {e}"),
        }
    }
}

#[test]
fn invalid_configuration_is_refused() {
    let mut cfg = config(2);
    cfg.segment_target = Duration::from_secs(11);
    assert!(Encoder::start(
        cfg,
        Library::empty(),
        Library::empty(),
        None,
        Mode::Realtime
    )
    .is_err());
    let mut cfg = config(2);
    cfg.renditions.push(cfg.renditions[0].clone());
    assert!(Encoder::start(
        cfg,
        Library::empty(),
        Library::empty(),
        None,
        Mode::Realtime
    )
    .is_err());
}

#[test]
fn realtime_mode_picks_up_files_added_while_running() {
    let music = tempfile::tempdir().unwrap();
    tone(music.path(), "one.mp3", 440, 1.0, 0.0, "One", "X");
    std::fs::write(music.path().join("broken.mp3"), b"not audio").unwrap();
    let mut cfg = config(2);
    cfg.rescan_interval = Duration::ZERO;
    let library = Library::scan(music.path()).unwrap();
    let (handle, events) =
        Encoder::start(cfg, library, Library::empty(), None, Mode::Realtime).unwrap();
    let first = events.recv_timeout(WAIT).unwrap();
    assert!(matches!(first, EncoderEvent::Segment(_)));
    // The dashboard's view of skipped files.
    let skipped = handle.skipped_files();
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert_eq!(skipped[0].path, "broken.mp3");
    tone(music.path(), "two.flac", 660, 1.0, 0.0, "Two", "X");
    let deadline = std::time::Instant::now() + WAIT;
    let heard_two = loop {
        let Ok(event) = events.recv_deadline(deadline) else {
            break false;
        };
        let EncoderEvent::Segment(s) = event else {
            continue;
        };
        let titles: Vec<String> = id3_tags(&s.bytes)
            .iter()
            .map(|(_, tag)| id3_text(tag, "TIT2", None).unwrap())
            .collect();
        if titles.iter().any(|t| t == "Two") {
            break true;
        }
    };
    handle.stop().unwrap();
    assert!(heard_two, "the added file never played");
}
