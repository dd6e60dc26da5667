//! Library scan: formats, tags, odd names, bad files, rescan.

use crate::common;

use common::*;
use ipfm_encoder::{Library, SkipReason};

#[test]
fn scan_reads_every_format_and_skips_bad_files_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    tone(d, "a.mp3", 440, 1.0, 0.0, "Mp3 Tone", "Artist A");
    tone(d, "b.flac", 440, 1.0, 0.0, "Flac Tone", "Artist B");
    tone(d, "c.ogg", 440, 1.0, 0.0, "Vorbis Tone", "Artist C");
    tone(d, "d.opus", 440, 1.0, 0.0, "Opus Tone", "Artist D");
    tone(d, "e.wav", 440, 1.0, 0.0, "Wav Tone", "Artist E");
    tone(d, "f.m4a", 440, 1.0, 0.0, "M4a Tone", "Artist F");
    tone(d, "deep/er/g.aac", 440, 1.0, 0.0, "ignored", "ignored");
    tone(d, "spaced name ☃.mp3", 440, 1.5, 0.0, "Snowman", "Ünïcödé");
    tone(d, "--leading-dashes.flac", 440, 1.0, 0.0, "Dashes", "X");
    // A colon would be taken for a protocol by ffmpeg if passed bare.
    tone(d, "concat:oops.mp3", 440, 1.0, 0.0, "Colon", "X");
    std::fs::write(d.join("empty.mp3"), b"").unwrap();
    std::fs::write(d.join("text.flac"), "just text, not audio\n".repeat(20)).unwrap();
    std::fs::write(d.join("cover.jpg"), b"\xff\xd8\xff not scanned").unwrap();
    let newline = tone(d, "plain.mp3", 440, 1.0, 0.0, "Newline", "X");
    std::fs::rename(&newline, d.join("new\nline.mp3")).unwrap();

    let library = Library::scan(d).unwrap();
    let ids = library.ids();
    assert_eq!(
        ids,
        [
            "--leading-dashes.flac",
            "a.mp3",
            "b.flac",
            "c.ogg",
            "concat:oops.mp3",
            "d.opus",
            "deep/er/g.aac",
            "e.wav",
            "f.m4a",
            "spaced name ☃.mp3",
        ]
    );
    let snow = library.get("spaced name ☃.mp3").unwrap();
    assert_eq!(snow.tags.title.as_deref(), Some("Snowman"));
    assert_eq!(snow.tags.artist.as_deref(), Some("Ünïcödé"));
    assert!(
        (snow.duration.as_secs_f64() - 1.5).abs() < 0.1,
        "{:?}",
        snow.duration
    );
    for (id, title) in [
        ("a.mp3", "Mp3 Tone"),
        ("b.flac", "Flac Tone"),
        ("c.ogg", "Vorbis Tone"),
        ("d.opus", "Opus Tone"),
        ("f.m4a", "M4a Tone"),
        ("concat:oops.mp3", "Colon"),
    ] {
        let t = library.get(id).unwrap();
        assert_eq!(t.tags.title.as_deref(), Some(title), "{id}");
        assert!(t.tags.artist.is_some(), "{id}");
    }
    // Raw AAC (ADTS) has no tags: the title falls back to the file name.
    assert_eq!(library.get("deep/er/g.aac").unwrap().display_title(), "g");

    let skipped = library.skipped();
    let reason = |path: &str| {
        skipped
            .iter()
            .find(|s| s.path == path)
            .unwrap_or_else(|| panic!("{path:?} not skipped: {skipped:?}"))
            .reason
            .clone()
    };
    assert_eq!(skipped.len(), 3, "{skipped:?}");
    assert_eq!(reason("empty.mp3"), SkipReason::Empty);
    assert!(matches!(reason("new\nline.mp3"), SkipReason::BadName(_)));
    assert!(matches!(
        reason("text.flac"),
        SkipReason::NotMedia(_) | SkipReason::Undecodable(_) | SkipReason::NoAudio
    ));
}

#[test]
fn rescan_picks_up_added_and_removed_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    tone(d, "one.mp3", 440, 1.0, 0.0, "One", "X");
    let two = tone(d, "two.mp3", 440, 1.0, 0.0, "Two", "X");
    let mut library = Library::scan(d).unwrap();
    assert_eq!(library.ids(), ["one.mp3", "two.mp3"]);

    std::fs::remove_file(two).unwrap();
    tone(d, "three.flac", 440, 1.0, 0.0, "Three", "X");
    std::fs::write(d.join("broken.mp3"), b"garbage").unwrap();
    let report = library.rescan().unwrap();
    assert_eq!(report.added, ["three.flac"]);
    assert_eq!(report.removed, ["two.mp3"]);
    assert_eq!(library.ids(), ["one.mp3", "three.flac"]);
    assert_eq!(library.skipped().len(), 1);
    assert_eq!(
        library.get("three.flac").unwrap().tags.title.as_deref(),
        Some("Three")
    );

    // Nothing changed: nothing reported.
    assert_eq!(library.rescan().unwrap(), Default::default());
}

#[test]
fn missing_root_is_an_error_but_an_empty_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    assert!(Library::scan(&dir.path().join("nope")).is_err());
    let library = Library::scan(dir.path()).unwrap();
    assert!(library.is_empty());
    assert!(library.skipped().is_empty());
}
