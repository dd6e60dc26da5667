//! The web player in a real browser: Debian's headless Chromium, driven by npm
//! `playwright-core` (tests/browser/player_check.mjs), plays a station-like root served by
//! the gateway under the station's IPNS name.
//!
//! The roots are built without the station loop: three renditions of AAC MPEG-TS segments,
//! a master playlist, a `nowplaying.json`, and `player::assets()`, imported as UnixFS into a
//! `MemoryBlockstore` and published under a signed IPNS record. One root has a tone encoded
//! by the ffmpeg CLI into 6-s segments under live-style playlists (no end, media sequence
//! 100, like the station's); the title comes from `nowplaying.json`. The other has the
//! encoder crate's demo program in 2-s segments under on-demand playlists, whose timed ID3
//! frames must win over a `nowplaying.json` that is already a track ahead.
//!
//! Needs `make deps` (Debian `chromium`, `ffmpeg`, and `npm ci` in tests/browser); fails,
//! rather than skips, without them.

use crate::common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ed25519_dalek::SigningKey;
use ipfm_encoder::{
    Encoder, EncoderConfig, EncoderEvent, Library, Mode, Rendition, Segment, DEMO_ARTIST,
    DEMO_TITLE,
};
use ipfm_node::gateway::{serve, Gateway, LocalNames};
use ipfm_node::import::{add_path, ImportOptions};
use ipfm_node::player;
use ipfm_protocol::ipns::IpnsRecord;
use ipfm_protocol::peer::PeerId;
use ipfm_store::MemoryBlockstore;
use serde_json::{json, Value};

const CHROMIUM: &str = "/usr/bin/chromium";
/// Encoding 48 s of a tone takes about a second; generous for a loaded 2-core machine.
const FFMPEG_TIMEOUT: Duration = Duration::from_secs(60);
/// The demo program (16 s) encodes faster than real time in three renditions.
const ENCODER_TIMEOUT: Duration = Duration::from_secs(120);
/// The script bounds itself (100 s for the whole run, 30 s per wait); this only catches a
/// hung Node.js.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(150);
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

const STATION_NAME: &str = "Test Radio";
const TITLE: &str = "Known Title";
const ARTIST: &str = "The Testers";
const EARLIER_TITLE: &str = "Earlier Song";
const EARLIER_ARTIST: &str = "Someone";
/// Three renditions, lowest first, as the station names them: (name, ffmpeg bit rate,
/// BANDWIDTH).
const RENDITIONS: [(&str, &str, u32); 3] = [
    ("lofi", "48k", 64_000),
    ("midfi", "96k", 128_000),
    ("hifi", "160k", 192_000),
];
/// Seconds of tone per rendition, in 6-s segments (the station's default length). A live
/// player starts three target durations (18 s) before the end: 18 s to play, 5 s needed.
const TONE_SECS: u32 = 48;
const TONE_SEGMENT_SECS: u32 = 6;
/// The live-style playlists' first media sequence number (a station never starts at 0
/// after its first window).
const TONE_FIRST_SEQUENCE: u32 = 100;
/// Encoder segments per rendition for the ID3 test (2 s each; the page needs > 5 s).
const DEMO_SEGMENTS: usize = 6;

fn browser_dir() -> PathBuf {
    common::repo_root().join("tests").join("browser")
}

/// Fail (not skip) with the fix when the browser harness is missing.
fn require_browser_harness() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} not found: the player test needs Debian's chromium, run `make deps` in \
         the repository root"
    );
    assert!(
        browser_dir().join("node_modules/playwright-core").exists(),
        "tests/browser/node_modules/playwright-core not found: run `make deps` in the \
         repository root"
    );
}

/// The station's key and IPNS name (`k51…`), fixed per test.
fn station_key(seed: u8) -> (SigningKey, PeerId) {
    let key = SigningKey::from_bytes(&[seed; 32]);
    let name = PeerId::from_ed25519(&key.verifying_key());
    (key, name)
}

fn track(title: &str, artist: &str, kind: &str, sequence: u64) -> Value {
    json!({"title": title, "artist": artist, "album": "Fixtures", "kind": kind,
           "track_start_secs": sequence * 2, "sequence": sequence})
}

/// `master.m3u8`, `nowplaying.json` and the player's files; the renditions are the
/// caller's.
fn write_common_files(
    dir: &Path,
    renditions: &[(&str, u32)],
    ipns_name: &str,
    now: Value,
    history: Value,
) {
    let mut master = String::from("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for (name, bandwidth) in renditions {
        master.push_str(&format!(
            "#EXT-X-STREAM-INF:BANDWIDTH={bandwidth},CODECS=\"mp4a.40.2\"\n{name}.m3u8\n"
        ));
    }
    fs::write(dir.join("master.m3u8"), master).expect("writing master.m3u8");
    let nowplaying = json!({
        "station": {"ipns": ipns_name, "peer_id": "12D3KooWtest", "name": STATION_NAME},
        "now": now,
        "history": history,
    });
    fs::write(dir.join("nowplaying.json"), nowplaying.to_string()).expect("nowplaying.json");
    for (name, bytes) in player::assets() {
        fs::write(dir.join(name), bytes).expect("writing a player asset");
    }
}

/// One rendition of a tone: a live-style `<name>.m3u8` (no `#EXT-X-ENDLIST`) listing
/// `<name>/<n>.ts`, relative, like the station's.
fn encode_tone_rendition(dir: &Path, name: &str, bitrate: &str) {
    fs::create_dir_all(dir.join(name)).expect("creating the rendition folder");
    let mut cmd = Command::new("ffmpeg");
    cmd.current_dir(dir)
        .args(["-hide_banner", "-loglevel", "error", "-nostdin"])
        .args(["-f", "lavfi", "-i"])
        .arg(format!(
            "sine=frequency=440:duration={TONE_SECS}:sample_rate=44100"
        ))
        .args(["-c:a", "aac", "-b:a", bitrate, "-f", "hls"])
        .arg("-hls_time")
        .arg(TONE_SEGMENT_SECS.to_string())
        .args(["-hls_list_size", "0", "-hls_flags", "omit_endlist"])
        .arg("-start_number")
        .arg(TONE_FIRST_SEQUENCE.to_string())
        .arg("-hls_segment_filename")
        .arg(format!("{name}/%d.ts"))
        .arg("-hls_base_url")
        .arg(format!("{name}/"))
        .arg(format!("{name}.m3u8"));
    let finished = common::run(cmd, FFMPEG_TIMEOUT);
    assert!(
        finished.status.success(),
        "ffmpeg failed ({}; is it installed? `make deps`):\n{}",
        finished.status,
        finished.stderr
    );
    let playlist = fs::read_to_string(dir.join(format!("{name}.m3u8"))).expect("playlist");
    let segments = playlist.lines().filter(|l| l.ends_with(".ts")).count();
    assert!(
        segments >= 7,
        "ffmpeg wrote {segments} segments:\n{playlist}"
    );
    assert!(
        !playlist.contains("#EXT-X-ENDLIST")
            && playlist.contains(&format!("#EXT-X-MEDIA-SEQUENCE:{TONE_FIRST_SEQUENCE}")),
        "not a live-style playlist:\n{playlist}"
    );
}

fn write_tone_root(dir: &Path, ipns_name: &str) {
    for (name, bitrate, _) in RENDITIONS {
        encode_tone_rendition(dir, name, bitrate);
    }
    let renditions: Vec<(&str, u32)> = RENDITIONS.iter().map(|(n, _, b)| (*n, *b)).collect();
    let history = json!([
        track(TITLE, ARTIST, "track", 7),
        track(EARLIER_TITLE, EARLIER_ARTIST, "track", 3),
        track("Station ID", "", "jingle", 0),
    ]);
    write_common_files(
        dir,
        &renditions,
        ipns_name,
        track(TITLE, ARTIST, "track", 7),
        history,
    );
}

/// The first `DEMO_SEGMENTS` segments of each default rendition of the encoder's demo
/// program (2-s segments, as fast as the CPU allows).
fn encode_demo() -> BTreeMap<String, Vec<Segment>> {
    let config = EncoderConfig {
        segment_target: Duration::from_secs(2),
        shuffle_seed: Some(1),
        ..EncoderConfig::default()
    };
    let names: Vec<String> = config.renditions.iter().map(|r| r.name.clone()).collect();
    let (handle, events) = Encoder::start(
        config,
        Library::empty(),
        Library::empty(),
        None,
        Mode::AsFastAsPossible,
    )
    .expect("starting the encoder");
    let mut segments: BTreeMap<String, Vec<Segment>> =
        names.iter().map(|n| (n.clone(), Vec::new())).collect();
    let deadline = Instant::now() + ENCODER_TIMEOUT;
    while segments.values().any(|s| s.len() < DEMO_SEGMENTS) {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(EncoderEvent::Segment(segment)) => {
                if let Some(list) = segments.get_mut(&segment.rendition) {
                    if list.len() < DEMO_SEGMENTS {
                        list.push(segment);
                    }
                }
            }
            Ok(EncoderEvent::Skipped(file)) => panic!("the demo needs no files: {file:?}"),
            Err(e) => panic!("encoder gave too few segments ({e}): {segments:?}"),
        }
    }
    // The encoder may be blocked sending the next segment: closing the channel ends it.
    drop(events);
    handle.stop().expect("stopping the encoder");
    segments
}

fn write_demo_root(dir: &Path, ipns_name: &str) {
    let renditions = Rendition::defaults();
    let segments = encode_demo();
    for rendition in &renditions {
        let name = rendition.name.as_str();
        let list = &segments[name];
        fs::create_dir_all(dir.join(name)).expect("creating the rendition folder");
        let target = list
            .iter()
            .map(|s| s.duration.as_secs_f64().ceil() as u64)
            .max()
            .unwrap_or(2);
        let mut playlist = format!(
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{target}\n\
             #EXT-X-MEDIA-SEQUENCE:{}\n#EXT-X-PLAYLIST-TYPE:VOD\n",
            list[0].sequence
        );
        for segment in list {
            assert_eq!(
                segment.now_playing.title, DEMO_TITLE,
                "the demo's own ID3 title"
            );
            fs::write(
                dir.join(format!("{name}/{}.ts", segment.sequence)),
                &segment.bytes,
            )
            .expect("writing a segment");
            playlist.push_str(&format!(
                "#EXTINF:{:.3},\n{name}/{}.ts\n",
                segment.duration.as_secs_f64(),
                segment.sequence
            ));
        }
        playlist.push_str("#EXT-X-ENDLIST\n");
        fs::write(dir.join(format!("{name}.m3u8")), playlist).expect("writing a playlist");
    }
    // The encoder runs ahead of the listener: nowplaying.json already names the next track,
    // while what is heard (and tagged in the segments) is still the demo.
    let renditions: Vec<(&str, u32)> = renditions
        .iter()
        .map(|r| (r.name.as_str(), r.bitrate))
        .collect();
    let history = json!([
        track(TITLE, ARTIST, "track", 9),
        track(DEMO_TITLE, DEMO_ARTIST, "demo", 0),
        track(EARLIER_TITLE, EARLIER_ARTIST, "track", 0),
    ]);
    write_common_files(
        dir,
        &renditions,
        ipns_name,
        track(TITLE, ARTIST, "track", 9),
        history,
    );
}

/// Run the browser script against `url`; its JSON report.
fn check_page(url: String, screenshot: PathBuf) -> Value {
    let mut cmd = Command::new("node");
    cmd.current_dir(browser_dir())
        .arg("player_check.mjs")
        .arg(&url)
        .arg(&screenshot);
    let finished = common::run(cmd, BROWSER_TIMEOUT).expect_success();
    eprintln!("player_check.mjs stderr:\n{}", finished.stderr);
    finished.json()
}

/// Builds a root with `write_root` (blocking), imports it, publishes it under the IPNS
/// name of `seed`, serves it on 127.0.0.1:0 and runs the browser check on
/// `/ipns/<name>/`. Returns the report and the IPNS name.
async fn play_in_chromium(
    seed: u8,
    write_root: fn(&Path, &str),
    screenshot_name: &str,
) -> (Value, String) {
    require_browser_harness();
    let (key, name) = station_key(seed);
    let ipns_name = name.to_ipns_name();

    let scratch = tempfile::tempdir().expect("temp dir");
    let root_dir = scratch.path().join("station");
    fs::create_dir(&root_dir).expect("station dir");
    let (build_dir, name_for_json) = (root_dir.clone(), ipns_name.clone());
    tokio::task::spawn_blocking(move || write_root(&build_dir, &name_for_json))
        .await
        .expect("building the station root");

    let store = MemoryBlockstore::new();
    let added = add_path(&store, &root_dir, ImportOptions::default(), &|_| {})
        .await
        .expect("importing the station root");
    let root = added.last().expect("the root is reported last").cid;

    let names = Arc::new(LocalNames::new());
    let record = IpnsRecord::create(
        &key,
        &format!("/ipfs/{root}"),
        1,
        SystemTime::now() + Duration::from_secs(3600),
        Duration::from_secs(60),
    );
    assert!(names.publish(name, record).expect("publishing the record"));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding the gateway");
    let addr = listener.local_addr().expect("gateway address");
    let router = Gateway::new(store).with_name_resolver(names).router();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, router, async {
        let _ = stopped.await;
    }));

    let url = format!("http://{addr}/ipns/{ipns_name}/");
    // Kept after the run (in cargo's scratch dir under target/) to look at.
    let screenshot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(screenshot_name);
    let _ = fs::remove_file(&screenshot);
    let shot = screenshot.clone();
    let report = tokio::task::spawn_blocking(move || check_page(url, shot))
        .await
        .expect("running the browser check");

    let _ = stop.send(());
    tokio::time::timeout(SHUTDOWN_TIMEOUT, server)
        .await
        .expect("gateway shut down in time")
        .expect("gateway task")
        .expect("gateway served without I/O errors");

    eprintln!("report: {report:#}\nscreenshot: {}", screenshot.display());
    let png = fs::read(&screenshot).expect("the screenshot was written");
    assert!(png.starts_with(b"\x89PNG"), "screenshot is not a PNG");
    (report, ipns_name)
}

fn strings(report: &Value, key: &str) -> Vec<String> {
    report[key]
        .as_array()
        .unwrap_or_else(|| panic!("report has no array {key:?}: {report}"))
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_owned())
        .collect()
}

/// What every run must show: hls.js playing ≥ 5 s without errors, the station's name, the
/// quality menu (Auto, then each rendition), and after choosing the first rendition only
/// its segments fetched.
fn assert_played(report: &Value, ipns_name: &str, renditions: &[&str]) {
    assert_eq!(report["error"], Value::Null, "the page shows an error");
    assert_eq!(report["engine"], "hls.js", "Chromium has MSE: hls.js plays");
    assert_eq!(report["played"], true, "playback stalled before 5 s");
    let advanced = report["advanced"].as_f64().expect("advanced");
    assert!(advanced >= 5.0, "currentTime advanced {advanced} s < 5 s");
    assert_eq!(report["paused"], false);
    assert_eq!(report["stationName"], STATION_NAME);

    let options = strings(report, "qualityOptions");
    assert_eq!(options.len(), 1 + renditions.len(), "options {options:?}");
    assert_eq!(options[0], "Auto");
    for (name, option) in renditions.iter().zip(&options[1..]) {
        assert!(option.starts_with(name), "option {option:?} for {name}");
    }
    // Requests hls.js had already queued for the old level when the menu changed may still
    // be reported after it (on a loaded machine, more than one): once the chosen rendition's
    // first segment is fetched, every later fetch must be from it.
    let segments = strings(report, "segmentsAfterSwitch");
    let first = format!("/ipns/{ipns_name}/{}/", renditions[0]);
    let switched_at = segments.iter().position(|s| s.starts_with(&first));
    assert!(
        switched_at.is_some_and(|at| segments[at..].iter().all(|s| s.starts_with(&first))),
        "segments after choosing {}: {segments:?}",
        renditions[0]
    );

    assert!(
        strings(report, "failedRequests").is_empty(),
        "failed requests: {report}"
    );
    assert!(
        strings(report, "consoleErrors").is_empty(),
        "console errors: {report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn player_plays_the_station_in_headless_chromium() {
    let (report, ipns_name) = play_in_chromium(42, write_tone_root, "player_page.png").await;
    let renditions: Vec<&str> = RENDITIONS.iter().map(|(n, _, _)| *n).collect();
    assert_played(&report, &ipns_name, &renditions);
    // Live: joined near the live edge, not at the start of the window.
    let start = report["startTime"].as_f64().expect("startTime");
    assert!(
        start >= f64::from(TONE_SEGMENT_SECS * 2),
        "a live stream started at {start} s of {TONE_SECS} s"
    );
    assert_eq!(report["title"], format!("{TITLE} — {ARTIST}"));
    assert_eq!(
        report["next"],
        Value::Null,
        "no ID3, so nothing is ahead of the audio"
    );
    // History: newest first, without the track playing now.
    let history = strings(&report, "history");
    assert_eq!(
        history,
        [
            format!("{EARLIER_TITLE} — {EARLIER_ARTIST}"),
            "Station ID jingle".to_owned()
        ],
        "history"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn player_shows_the_title_from_the_streams_id3_frames() {
    let (report, ipns_name) = play_in_chromium(43, write_demo_root, "player_page_id3.png").await;
    let names: Vec<String> = Rendition::defaults().into_iter().map(|r| r.name).collect();
    let renditions: Vec<&str> = names.iter().map(String::as_str).collect();
    assert_played(&report, &ipns_name, &renditions);
    let start = report["startTime"].as_f64().expect("startTime");
    assert!(start < 1.0, "an on-demand stream started at {start} s");
    // Heard (ID3), not announced (nowplaying.json is a track ahead).
    assert_eq!(report["title"], format!("{DEMO_TITLE} — {DEMO_ARTIST}"));
    assert_eq!(report["next"], format!("Coming up: {TITLE} — {ARTIST}"));
    // Neither the track heard nor the one announced is listed as played before.
    let history = strings(&report, "history");
    assert_eq!(
        history,
        [format!("{EARLIER_TITLE} — {EARLIER_ARTIST}")],
        "history"
    );
}
