//! Issue 7's "done when": a listener on a relay keeps hearing the station while the station
//! process is SIGKILLed and restarted (run in the loopback namespace:
//! `scripts/in-loopback-netns.sh`).
//!
//! Real processes throughout: `ipfm station` (2-s segments), `ipfm relay` started from the
//! station's multiaddr, `ipfm listen` whose only peer is the relay (MPEG-TS on a pipe this
//! test reads), and an HLS client polling the relay's gateway. The station is killed
//! mid-segment, stays away until the relay reports it offline, and is restarted on its
//! repository with the relay as its bootstrap peer.

use crate::common;
use common::{
    await_relay_status, ffmpeg_tone, http_get, relay_command, station_command, IpfmProcess,
    LIVE_SEGMENT_SECONDS,
};

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// Bound on every wait (realtime: a segment every 2 s; the machine may be loaded).
const WAIT: Duration = Duration::from_secs(60);
/// The relay calls the station offline after 15 s of silence (the follower's minimum).
const OFFLINE_WAIT: Duration = Duration::from_secs(45);
/// Segments the listener must play before the kill and after the restart.
const SEGMENTS_EACH_SIDE: usize = 3;
const RENDITION: &str = ipfm_node::listen::DEFAULT_RENDITION;
/// MPEG-TS packet size and sync byte.
const TS_PACKET: usize = 188;
const TS_SYNC: u8 = 0x47;

fn relay_logs() -> &'static str {
    "warn,ipfm_node::follow=info"
}

/// `ipfm listen name` whose only peer is `relay` (no public bootstrap), MPEG-TS on stdout
/// (collected into the returned buffer), each written segment logged on stderr to `log`.
fn spawn_listener(name: &str, relay: &str, log: &Path) -> (IpfmProcess, Arc<Mutex<Vec<u8>>>) {
    use std::io::Read;
    let mut cmd = common::ipfm_command("warn,ipfm_node::listen=debug");
    cmd.args([
        "listen",
        name,
        "--no-default-bootstrap",
        "--bootstrap",
        relay,
    ])
    .args(["--p2p-listen", "/ip4/127.0.0.1/tcp/0", "--timeout", "60"])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(std::fs::File::create(log).expect("creating the listener log"));
    let mut child = cmd.spawn().expect("starting `ipfm listen`");
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let heard = Arc::new(Mutex::new(Vec::new()));
    let sink = heard.clone();
    // The player's side of the pipe: read everything for the listener's whole life.
    std::thread::spawn(move || {
        let mut buffer = vec![0u8; 64 * 1024];
        while let Ok(n @ 1..) = stdout.read(&mut buffer) {
            sink.lock().unwrap().extend_from_slice(&buffer[..n]);
        }
    });
    let process = IpfmProcess {
        child,
        printed: Vec::new(),
        log: log.to_path_buf(),
    };
    (process, heard)
}

/// The media sequences the listener logged as written to its stdout, in order.
fn written_segments(listener: &IpfmProcess) -> Vec<u64> {
    const MARK: &str = "segment written sequence=";
    listener
        .log_text()
        .lines()
        .filter_map(|line| line.split_once(MARK))
        .filter_map(|(_, rest)| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect()
}

/// Waits (bounded) until the listener has written a segment past `after` and `count` in
/// all past it; returns every sequence written so far.
async fn await_written(listener: &IpfmProcess, after: Option<u64>, count: usize) -> Vec<u64> {
    let deadline = Instant::now() + WAIT;
    loop {
        let written = written_segments(listener);
        let past = written.iter().filter(|s| after.is_none_or(|a| **s > a));
        if past.count() >= count {
            return written;
        }
        assert!(
            Instant::now() < deadline,
            "the listener wrote {written:?}, not {count} segments past {after:?}; log:\n{}",
            listener.log_text()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Every 188th byte of the whole packets received is the MPEG-TS sync byte.
fn assert_mpeg_ts(bytes: &[u8], when: &str) {
    let whole = bytes.len() / TS_PACKET * TS_PACKET;
    assert!(whole > 0, "{when}: no MPEG-TS received");
    if let Some(packet) = (0..whole)
        .step_by(TS_PACKET)
        .find(|&at| bytes[at] != TS_SYNC)
    {
        panic!(
            "{when}: byte {packet} is {:#04x}, not the sync byte",
            bytes[packet]
        );
    }
}

/// What an HLS client polling the relay's gateway saw.
#[derive(Debug, Default)]
struct PlaylistWatch {
    polls: u64,
    /// Polls not answered 200 with a media playlist (each described).
    failures: Vec<String>,
    /// `EXT-X-MEDIA-SEQUENCE` of each playlist, in poll order.
    media_sequences: Vec<u64>,
    /// Every segment sequence listed in any playlist.
    segments: BTreeSet<u64>,
    discontinuities: u64,
}

/// Polls `/ipns/<name>/<rendition>.m3u8` on `gateway` every 300 ms until `stop` fires.
async fn watch_playlist(
    gateway: SocketAddr,
    name: String,
    mut stop: oneshot::Receiver<()>,
) -> PlaylistWatch {
    let path = format!("/ipns/{name}/{RENDITION}.m3u8");
    let mut seen = PlaylistWatch::default();
    loop {
        let response = http_get(gateway, &path, Duration::from_secs(20)).await;
        seen.polls += 1;
        match m3u8_rs::parse_media_playlist_res(&response.body) {
            Ok(playlist) if response.status == 200 => {
                let first = playlist.media_sequence;
                seen.media_sequences.push(first);
                for (i, segment) in playlist.segments.iter().enumerate() {
                    seen.segments.insert(first + i as u64);
                    seen.discontinuities += u64::from(segment.discontinuity);
                }
            }
            other => seen.failures.push(format!(
                "{}: {:?}",
                response.status,
                other.map(|_| "a playlist").map_err(|e| e.to_string())
            )),
        }
        tokio::select! {
            _ = &mut stop => return seen,
            _ = tokio::time::sleep(Duration::from_millis(300)) => {}
        }
    }
}

/// Kills the station about 40 % into a segment: just after the relay took a new root, well
/// before the next, so the relay holds everything the killed process published.
async fn kill_mid_segment(station: &mut IpfmProcess, relay: SocketAddr) -> u64 {
    let before = common::relay_status(relay).await["last_sequence"].as_u64();
    let fresh = await_relay_status(relay, WAIT, "a new root before the kill", |s| {
        s["last_sequence"].as_u64() > before
    })
    .await;
    tokio::time::sleep(Duration::from_millis(LIVE_SEGMENT_SECONDS * 400)).await;
    tokio::task::block_in_place(|| station.sigkill());
    fresh["last_sequence"].as_u64().expect("a sequence")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_on_a_relay_keeps_hearing_the_station_across_a_kill_and_restart() {
    let work = tempfile::tempdir().unwrap();
    let music = work.path().join("music");
    std::fs::create_dir(&music).unwrap();
    ffmpeg_tone(&music.join("tone.flac"), 440, 180, "Relay Test Tone");
    let station_repo = work.path().join("station");
    let log = |file: &str| work.path().join(file);
    let station_logs = "warn";

    let mut station = tokio::task::block_in_place(|| {
        IpfmProcess::spawn_until_printed(
            station_command(&station_repo, &music, &[], station_logs),
            &log("station-1.log"),
            "dashboard:",
            WAIT,
        )
    });
    let name = station.printed_value("IPNS name");
    let relay = tokio::task::block_in_place(|| {
        IpfmProcess::spawn_until_printed(
            relay_command(
                &work.path().join("relay"),
                &station.tcp_multiaddr(),
                &[],
                relay_logs(),
            ),
            &log("relay.log"),
            "status:",
            WAIT,
        )
    });
    let relay_addr = relay.tcp_multiaddr();
    let gateway = relay.printed_http_addr("status");
    await_relay_status(gateway, WAIT, "the relay follows the station", |s| {
        s["accepted"].as_u64() >= Some(1)
    })
    .await;

    // The two listeners: `ipfm listen` through the relay, and HLS on the relay's gateway.
    let (mut listener, heard) = spawn_listener(&name, &relay_addr, &log("listener.log"));
    let (stop_watch, stopped) = oneshot::channel();
    let watcher = tokio::spawn(watch_playlist(gateway, name.clone(), stopped));
    let before = await_written(&listener, None, SEGMENTS_EACH_SIDE).await;
    assert_mpeg_ts(&heard.lock().unwrap(), "before the kill");

    // SIGKILL the station; the relay says offline and keeps serving its window.
    let killed_sequence = kill_mid_segment(&mut station, gateway).await;
    let offline = await_relay_status(gateway, OFFLINE_WAIT, "the relay says offline", |s| {
        s["online"] == false && s["offline_since"].is_string()
    })
    .await;
    let last_sequence = offline["last_sequence"].as_u64().expect("a sequence");
    assert!(last_sequence >= killed_sequence, "{offline}");
    let window = http_get(
        gateway,
        &format!("/ipns/{name}/{RENDITION}.m3u8"),
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(window.status, 200, "the playlist during the outage");
    let playlist = m3u8_rs::parse_media_playlist_res(&window.body).expect("a media playlist");
    assert!(!playlist.segments.is_empty());
    for segment in &playlist.segments {
        let response = http_get(
            gateway,
            &format!("/ipns/{name}/{}", segment.uri),
            Duration::from_secs(20),
        )
        .await;
        assert_eq!(response.status, 200, "{} during the outage", segment.uri);
        assert_mpeg_ts(&response.body, &segment.uri);
    }
    let player = http_get(gateway, &format!("/ipns/{name}/"), Duration::from_secs(20)).await;
    assert_eq!(player.status, 200, "the player page during the outage");
    let written_in_outage = written_segments(&listener);
    let heard_in_outage = heard.lock().unwrap().len();
    assert!(listener.is_running(), "the listener quit during the outage");

    // The station comes back on its repository, bootstrapping from the relay.
    let _station = tokio::task::block_in_place(|| {
        IpfmProcess::spawn_until_printed(
            station_command(
                &station_repo,
                &music,
                std::slice::from_ref(&relay_addr),
                station_logs,
            ),
            &log("station-2.log"),
            "dashboard:",
            WAIT,
        )
    });
    let resumed = await_relay_status(gateway, WAIT, "the relay resumes", |s| {
        s["online"] == true && s["last_sequence"].as_u64() > Some(last_sequence)
    })
    .await;
    assert!(resumed["offline_since"].is_null(), "{resumed}");
    let newest_before = written_in_outage.iter().max().copied();
    let written = await_written(&listener, newest_before, SEGMENTS_EACH_SIDE).await;
    let _ = stop_watch.send(());
    let watched = watcher.await.expect("playlist watcher");

    assert!(listener.is_running(), "the listener quit after the restart");
    let heard = heard.lock().unwrap().clone();
    assert!(
        heard.len() > heard_in_outage,
        "no new audio after the restart"
    );
    assert_mpeg_ts(&heard, "after the restart");
    // Each segment once, in order, none skipped, across the kill and the restart.
    assert!(
        written.windows(2).all(|w| w[1] == w[0] + 1),
        "the listener's segments are not consecutive: {written:?} (before the kill: {before:?})"
    );
    assert!(
        !listener.log_text().contains("left the station's window"),
        "the listener missed segments:\n{}",
        listener.log_text()
    );

    // The HLS client on the relay: always answered, never backwards, nothing missing.
    assert!(watched.failures.is_empty(), "{:?}", watched.failures);
    assert!(
        watched.media_sequences.windows(2).all(|w| w[0] <= w[1]),
        "media sequence went back: {:?}",
        watched.media_sequences
    );
    let (first, last) = (
        *watched.segments.first().expect("segments listed"),
        *watched.segments.last().expect("segments listed"),
    );
    let missing: Vec<u64> = (first..=last)
        .filter(|s| !watched.segments.contains(s))
        .collect();
    assert!(missing.is_empty(), "segments never listed: {missing:?}");
    assert!(
        newest_before.is_some_and(|n| last > n),
        "the relay's playlist never went past {newest_before:?}"
    );
    println!(
        "listener: segments {written:?} ({} bytes), {written_in_outage:?} before the restart; \
         HLS client: {} polls, segments {first}..={last}, media sequences {:?}",
        heard.len(),
        watched.polls,
        watched.media_sequences
    );
    drop(relay);
}
