//! `ipfm render MUSIC_DIR OUT_DIR`: a generated, tagged library becomes a VOD HLS
//! directory whose segments decode, whose playlists parse, and whose printed root CID is
//! the one `ipfm add -n -Q OUT_DIR` computes.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use m3u8_rs::Playlist;

/// Bound on every child process (the encoder renders a few seconds of audio).
const TIMEOUT: Duration = Duration::from_secs(180);

fn run_with_timeout(mut cmd: Command) -> Output {
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawning a child process");
    let id = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(TIMEOUT) {
        Ok(output) => output.expect("waiting for a child process"),
        Err(_) => {
            // Kill only the child we started, by its id.
            let _ = Command::new("kill").arg("-9").arg(id.to_string()).status();
            panic!("{cmd:?} did not finish within {TIMEOUT:?}");
        }
    }
}

fn ffmpeg_tone(dir: &Path, name: &str, freq: u32, seconds: u32, title: &str) {
    let mut cmd = Command::new("ffmpeg");
    cmd.args([
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "lavfi",
    ])
    .arg("-i")
    .arg(format!("sine=frequency={freq}:duration={seconds}"))
    .arg("-metadata")
    .arg(format!("title={title}"))
    .arg("-metadata")
    .arg("artist=Test Artist")
    .arg(dir.join(name));
    let out = run_with_timeout(cmd);
    assert!(
        out.status.success(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ipfm(args: &[&str], repo: &Path) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ipfm"));
    cmd.args(args).env("IPFM_REPO", repo);
    run_with_timeout(cmd)
}

/// Decodes a segment completely; returns ffmpeg's error output (empty when clean).
fn decode_errors(path: &Path) -> String {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"]);
    let out = run_with_timeout(cmd);
    assert!(out.status.success(), "ffmpeg could not decode {path:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
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
    ffmpeg_tone(&music, "a.flac", 440, 3, "Tone A");
    ffmpeg_tone(&music, "b.flac", 660, 3, "Tone B");
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
        String::from_utf8_lossy(&rendered.stderr)
    );
    let printed = String::from_utf8(rendered.stdout).unwrap();
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
    assert_eq!(String::from_utf8(added.stdout).unwrap().trim(), printed_cid);
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
    assert!(String::from_utf8_lossy(&rendered.stderr).contains("not empty"));
    assert_eq!(std::fs::read(out.join("old.txt")).unwrap(), b"keep me");
}
