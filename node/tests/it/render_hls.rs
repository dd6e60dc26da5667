//! `ipfm render MUSIC_DIR OUT_DIR`: a generated, tagged library becomes a VOD HLS
//! directory whose segments decode, whose playlists parse, and whose printed root CID is
//! the one `ipfm add -n -Q OUT_DIR` computes.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use m3u8_rs::Playlist;

use crate::common;

use common::{ffmpeg_tone, run, Finished};

/// Bound on every child process (the encoder renders a few seconds of audio).
const TIMEOUT: Duration = Duration::from_secs(180);

fn ipfm(args: &[&str], repo: &Path) -> Finished {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ipfm"));
    cmd.args(args).env("IPFM_REPO", repo);
    run(cmd, TIMEOUT)
}

/// Decodes a segment completely; returns ffmpeg's error output (empty when clean).
fn decode_errors(path: &Path) -> String {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"]);
    let out = run(cmd, TIMEOUT);
    assert!(out.status.success(), "ffmpeg could not decode {path:?}");
    out.stderr
}

fn parse(path: &Path) -> Playlist {
    let text = std::fs::read(path).unwrap();
    m3u8_rs::parse_playlist_res(&text).unwrap_or_else(|e| panic!("{path:?} does not parse: {e:?}"))
}

#[test]
fn render_writes_playable_vod_hls_and_prints_the_add_cid() {
    let work = tempfile::tempdir().unwrap();
    let music = work.path().join("music");
    std::fs::create_dir(&music).unwrap();
    ffmpeg_tone(&music.join("a.flac"), 440, 3, "Tone A");
    ffmpeg_tone(&music.join("b.flac"), 660, 3, "Tone B");
    let out = work.path().join("out");
    let repo = work.path().join("repo");

    let rendered = ipfm(
        &[
            "render",
            music.to_str().unwrap(),
            out.to_str().unwrap(),
            "--segment-seconds",
            "2",
            "--no-progress",
        ],
        &repo,
    );
    assert!(
        rendered.status.success(),
        "render failed: {}",
        rendered.stderr
    );
    let printed = rendered.stdout;
    let printed_cid = printed.trim();
    assert!(printed_cid.starts_with("bafy"), "printed {printed:?}");

    let Playlist::MasterPlaylist(master) = parse(&out.join("master.m3u8")) else {
        panic!("master.m3u8 is not a master playlist");
    };
    let uris: Vec<_> = master.variants.iter().map(|v| v.uri.as_str()).collect();
    assert_eq!(uris, ["lofi.m3u8", "midfi.m3u8", "hifi.m3u8"]);
    assert!(master
        .variants
        .iter()
        .all(|v| v.codecs.as_deref() == Some("mp4a.40.2") && v.bandwidth > 0));

    let mut counts = Vec::new();
    for variant in &master.variants {
        let Playlist::MediaPlaylist(media) = parse(&out.join(&variant.uri)) else {
            panic!("{} is not a media playlist", variant.uri);
        };
        assert!(media.end_list);
        assert_eq!(media.playlist_type, Some(m3u8_rs::MediaPlaylistType::Vod));
        // 6 s of music in ~2 s segments.
        assert!(
            media.segments.len() >= 3,
            "{} segments",
            media.segments.len()
        );
        let total: f32 = media.segments.iter().map(|s| s.duration).sum();
        assert!((5.5..=7.0).contains(&total), "{total} s of media");
        for segment in &media.segments {
            assert!(segment.duration.round() as u64 <= media.target_duration);
            let path = out.join(&segment.uri);
            assert_eq!(decode_errors(&path), "", "{path:?} decodes with errors");
        }
        counts.push(media.segments.len());
    }
    assert!(
        counts.windows(2).all(|w| w[0] == w[1]),
        "renditions differ: {counts:?}"
    );

    let tracklist: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("tracklist.json")).unwrap()).unwrap();
    let mut titles: Vec<_> = tracklist
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap().to_owned())
        .collect();
    titles.sort();
    assert_eq!(titles, ["Tone A", "Tone B"]);
    assert!(out.join("index.html").is_file());

    let added = ipfm(&["add", "-n", "-Q", out.to_str().unwrap()], &repo);
    assert!(added.status.success());
    assert_eq!(added.stdout.trim(), printed_cid);
}

#[test]
fn render_refuses_a_non_empty_output_directory() {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("old.txt"), b"keep me").unwrap();
    let rendered = ipfm(
        &[
            "render",
            work.path().to_str().unwrap(),
            out.to_str().unwrap(),
            "--no-progress",
        ],
        &work.path().join("repo"),
    );
    assert!(!rendered.status.success());
    assert!(rendered.stderr.contains("not empty"));
    assert_eq!(std::fs::read(out.join("old.txt")).unwrap(), b"keep me");
}
