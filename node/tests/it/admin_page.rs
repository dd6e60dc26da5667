//! The operator dashboard in a real browser: Debian's headless Chromium, driven by npm
//! `playwright-core` (tests/browser/admin_check.mjs), against a real running station (a
//! generated library of three tagged tones and one file that is not audio, one rendition,
//! 2-s segments) on 127.0.0.1.
//!
//! Without the token the page shows only the sign-in prompt and calls no API; a wrong token
//! is refused; with the token every panel fills from the station's own API, the chart has
//! points, and Skip changes what plays.
//!
//! Needs `make deps` (Debian `chromium`, `ffmpeg`, and `npm ci` in tests/browser); fails,
//! rather than skips, without them.

use crate::common;
use common::InProcessStation;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use ipfm_encoder::{EncoderConfig, Rendition};
use ipfm_node::api::ApiToken;
use ipfm_node::station::StationConfig;
use ipfm_store::Store;
use serde_json::Value;

const CHROMIUM: &str = "/usr/bin/chromium";
const TOKEN: &str = "dashboard-test-token-42";
const STATION_NAME: &str = "Dashboard Test FM";
const TRACKS: [&str; 3] = ["First Tone", "Second Tone", "Third Tone"];
const BROKEN: &str = "not-audio.mp3";
/// Long enough that no track ends by itself during the test: only Skip changes what plays.
const TRACK_SECS: u32 = 150;
/// The station is up within seconds; generous for a loaded 2-core machine.
const START_TIMEOUT: Duration = Duration::from_secs(90);
/// The script bounds itself (150 s for the whole run); this only catches a hung Node.js.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(200);

fn browser_dir() -> PathBuf {
    common::repo_root().join("tests").join("browser")
}

/// Fail (not skip) with the fix when the browser harness is missing.
fn require_browser_harness() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} not found: the dashboard test needs Debian's chromium, run `make deps` \
         in the repository root"
    );
    assert!(
        browser_dir().join("node_modules/playwright-core").exists(),
        "tests/browser/node_modules/playwright-core not found: run `make deps` in the \
         repository root"
    );
}

fn write_library(dir: &Path) {
    for (i, title) in TRACKS.iter().enumerate() {
        common::ffmpeg_tone(
            &dir.join(format!("{i}.flac")),
            300 + 150 * i as u32,
            TRACK_SECS,
            title,
        );
    }
    std::fs::write(dir.join(BROKEN), b"no audio in here\n".repeat(100)).expect("broken file");
}

/// Run the browser script against `url`; its JSON report.
fn check_page(url: String, screenshot: PathBuf) -> Value {
    let mut cmd = Command::new("node");
    cmd.current_dir(browser_dir())
        .arg("admin_check.mjs")
        .arg(&url)
        .arg(TOKEN)
        .arg(&screenshot);
    let finished = common::run(cmd, BROWSER_TIMEOUT).expect_success();
    eprintln!("admin_check.mjs stderr:\n{}", finished.stderr);
    finished.json()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_needs_the_token_then_shows_the_station_and_skips() {
    require_browser_harness();
    let music = tempfile::tempdir().expect("temp dir");
    let dir = music.path().to_path_buf();
    tokio::task::spawn_blocking(move || write_library(&dir))
        .await
        .expect("writing the library");

    let config = StationConfig {
        name: STATION_NAME.into(),
        music: Some(music.path().to_path_buf()),
        encoder: EncoderConfig {
            renditions: vec![Rendition::new("lofi", 64_000)],
            segment_target: Duration::from_secs(2),
            shuffle_seed: Some(5),
            ..EncoderConfig::default()
        },
        window: 3,
        api_token: Some(ApiToken::new(TOKEN)),
        ..StationConfig::default()
    };
    let station = InProcessStation::start(
        Store::open_in_memory(),
        SigningKey::from_bytes(&[21; 32]),
        config,
        START_TIMEOUT,
    )
    .await;
    let info = station.info.clone();

    let url = format!("http://{}/admin", info.api);
    let screenshot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("admin_page.png");
    let _ = std::fs::remove_file(&screenshot);
    let shot = screenshot.clone();
    let report = tokio::task::spawn_blocking(move || check_page(url, shot))
        .await
        .expect("running the browser check");

    station.stop().await;
    eprintln!("report: {report:#}\nscreenshot: {}", screenshot.display());

    // Without a token: the prompt, no data, no API call at all.
    let without = &report["withoutToken"];
    assert_eq!(without["loginVisible"], true, "{without}");
    assert_eq!(without["dashboardVisible"], false, "{without}");
    assert!(
        ["", "—"].contains(&without["peerId"].as_str().unwrap()),
        "{without}"
    );
    assert_eq!(without["tracks"], 0, "{without}");
    assert!(strings(&without["apiRequests"]).is_empty(), "{without}");

    // A wrong token: refused with a message, still no data.
    let wrong = &report["wrongToken"];
    assert!(
        wrong["error"].as_str().unwrap().contains("refused"),
        "{wrong}"
    );
    assert_eq!(wrong["loginVisible"], true, "{wrong}");
    assert_eq!(wrong["dashboardVisible"], false, "{wrong}");
    assert!(["", "—"].contains(&wrong["peerId"].as_str().unwrap()));
    assert!(
        strings(&report["wrongTokenFailures"])
            .iter()
            .all(|f| f.ends_with("HTTP 401")),
        "{report}"
    );

    // Signed in: the station as the API knows it.
    let shown = &report["signedIn"];
    assert_eq!(shown["stationName"], STATION_NAME);
    assert_eq!(shown["peerId"], info.peer_id.as_str());
    assert_eq!(shown["ipnsName"], info.ipns_name.as_str());
    assert_eq!(shown["version"], env!("CARGO_PKG_VERSION"));
    assert!(
        shown["rootCid"].as_str().unwrap().starts_with("baf"),
        "{shown}"
    );
    assert_eq!(
        shown["publicLink"],
        format!("https://ipfs.io/ipns/{}/", info.ipns_name)
    );
    assert_eq!(
        shown["playerLink"],
        format!("http://{}/ipns/{}/", info.listen, info.ipns_name)
    );
    let mut tracks = strings(&shown["tracks"]);
    tracks.sort();
    let expected: Vec<String> = TRACKS
        .iter()
        .map(|t| format!("{t} — Test Artist"))
        .collect();
    assert_eq!(tracks, expected, "{shown}");
    let skipped = shown["skipped"].as_array().expect("skipped");
    assert_eq!(skipped.len(), 1, "{shown}");
    assert!(skipped[0]["path"].as_str().unwrap().ends_with(BROKEN));
    assert!(skipped[0]["reason"].as_str().unwrap().len() > 5, "{shown}");
    assert!(shown["chartPoints"].as_u64().unwrap() >= 1, "{shown}");
    assert_eq!(
        shown["chartPoints"], shown["chartPolylinePoints"],
        "every sample is drawn"
    );
    assert_eq!(report["tokenSentWithEveryCall"], true);

    // Skip changed what plays: the track announced as next is on.
    assert_eq!(report["skipChanged"], true, "{report}");
    assert_eq!(
        report["afterSkip"]["nowPlaying"], shown["upNext"],
        "{report}"
    );
    assert_eq!(report["keptAfterReload"], true, "{report}");

    assert!(
        strings(&report["failedRequests"]).is_empty(),
        "failed requests: {report}"
    );
    assert!(
        strings(&report["consoleErrors"]).is_empty(),
        "console errors: {report}"
    );
    let png = std::fs::read(&screenshot).expect("the screenshot was written");
    assert!(png.starts_with(b"\x89PNG"), "screenshot is not a PNG");
}
