//! Fan-out: an `ipfm station` and 8 `ipfm relay` processes on loopback (run in the loopback
//! namespace: `scripts/in-loopback-netns.sh`), started in this topology:
//!
//! ```text
//! station ◄── r1 ◄── r5        r1–r4 are given the station's multiaddr;
//!         ◄── r2 ◄── r6        r5–r8 only one of them (and follow the station by name),
//!         ◄── r3 ◄── r7        with `--block-peer <station>`: they never connect to the
//!         ◄── r4 ◄── r8        station, so every root reaches them through a relay
//! ```
//!
//! (On one loopback the DHT hands every relay the station's address; without the block the
//! far relays would connect to it directly.) At the end r5–r8 must still not be connected to
//! the station (their `/api/v1/relay` says so).
//!
//! Every relay must hold every root the station announced while all were up, with the
//! station's root for each sequence, each within one segment duration of its publication at
//! p99 (a live-streaming bound: a relay that lags more than a segment falls behind the
//! stream; not a speed claim; the 1-s goal is measured by bench/fanout.py). Times come from
//! the processes' JSON logs, all on this machine's clock: the station's "announced" line and
//! each relay's "root held whole" line (the whole root verified in its store).

use crate::common;
use common::{
    await_relay_status, ffmpeg_tone, json_log_events, relay_command, station_command, IpfmProcess,
    LIVE_SEGMENT_SECONDS,
};

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

/// Bound on every wait (realtime: a segment every 2 s; the machine may be loaded).
const WAIT: Duration = Duration::from_secs(60);
/// Roots measured once every relay follows.
const MEASURED_ROOTS: u64 = 8;
/// Relay `i` (1-based) starts from `UPSTREAM[i - 1]`: 0 is the station, `n` is relay `n`
/// (and then blocks the station).
const UPSTREAM: [usize; 8] = [0, 0, 0, 0, 1, 2, 3, 4];

/// One relay process and where its status is served.
struct RelayNode {
    process: IpfmProcess,
    status: SocketAddr,
}

/// (sequence → (root, when)) from `events` (fields `sequence` and `root`).
fn by_sequence(
    events: Vec<(SystemTime, serde_json::Value)>,
) -> BTreeMap<u64, (String, SystemTime)> {
    events
        .into_iter()
        .filter_map(|(at, fields)| {
            let root = fields["root"].as_str()?.to_owned();
            Some((fields["sequence"].as_u64()?, (root, at)))
        })
        .collect()
}

/// The roots the station announced, by sequence, with their publication times.
fn announced(station: &IpfmProcess) -> BTreeMap<u64, (String, SystemTime)> {
    by_sequence(json_log_events(&station.log_text(), "announced"))
}

/// The roots a relay held whole, by sequence, with the times it had them.
fn held(relay: &IpfmProcess) -> BTreeMap<u64, (String, SystemTime)> {
    by_sequence(json_log_events(&relay.log_text(), "root held whole"))
}

/// Waits (bounded) until the station has announced `sequence`.
async fn await_announced(station: &IpfmProcess, sequence: u64) {
    let deadline = Instant::now() + WAIT;
    while announced(station).range(sequence..).next().is_none() {
        assert!(
            Instant::now() < deadline,
            "the station never announced sequence {sequence}; log:\n{}",
            station.log_text()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The `q`-quantile (nearest rank) of sorted `values`.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Relay `index`, following `station`; given `upstream` (a relay's multiaddr), it bootstraps
/// from that relay only and blocks `station`'s peer.
fn start_relay(work: &Path, index: usize, station: &str, upstream: Option<&str>) -> RelayNode {
    let bootstrap: Vec<String> = upstream.iter().map(|a| a.to_string()).collect();
    let mut command = relay_command(
        &work.join(format!("relay-{index}")),
        station,
        &bootstrap,
        "warn,ipfm_node::follow=debug",
    );
    if upstream.is_some() {
        command.args(["--block-peer", station]);
    }
    let process = IpfmProcess::spawn_until_printed(
        command,
        &work.join(format!("relay-{index}.log")),
        "status:",
        WAIT,
    );
    let status = process.printed_http_addr("status");
    RelayNode { process, status }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_relays_get_every_root_within_a_segment() {
    let work = tempfile::tempdir().unwrap();
    let music = work.path().join("music");
    std::fs::create_dir(&music).unwrap();
    ffmpeg_tone(&music.join("tone.flac"), 330, 180, "Fan-out Tone");
    let station = tokio::task::block_in_place(|| {
        IpfmProcess::spawn_until_printed(
            station_command(
                &work.path().join("station"),
                &music,
                &[],
                "warn,ipfm_node::station::announce=debug",
            ),
            &work.path().join("station.log"),
            "dashboard:",
            WAIT,
        )
    });
    let name = station.printed_value("IPNS name");
    let station_addr = station.tcp_multiaddr();
    let station_api = station.printed_http_addr("api");

    // r1–r4 start from the station's address; r5–r8 know only their upstream relay, follow
    // the station by name and block it.
    let mut relays: Vec<RelayNode> = Vec::new();
    for (i, upstream) in UPSTREAM.iter().enumerate() {
        let relay = match upstream {
            0 => start_relay(work.path(), i + 1, &station_addr, None),
            n => {
                let addr = relays[n - 1].process.tcp_multiaddr();
                start_relay(work.path(), i + 1, &name, Some(&addr))
            }
        };
        relays.push(relay);
    }

    // Warm-up: gossipsub meshes form on heartbeats; measure once every relay follows.
    for (i, relay) in relays.iter().enumerate() {
        await_relay_status(relay.status, WAIT, &format!("r{} follows", i + 1), |s| {
            s["accepted"].as_u64() >= Some(1)
        })
        .await;
    }
    let start = announced(&station)
        .keys()
        .next_back()
        .copied()
        .expect("announced roots");
    let end = start + MEASURED_ROOTS;
    await_announced(&station, end).await;
    for (i, relay) in relays.iter().enumerate() {
        await_relay_status(relay.status, WAIT, &format!("r{} catches up", i + 1), |s| {
            s["last_sequence"].as_u64() >= Some(end)
        })
        .await;
    }

    // The topology held: r1–r4 reach the station directly, r5–r8 only through relays.
    for (i, (relay, upstream)) in relays.iter().zip(UPSTREAM).enumerate() {
        let status = common::relay_status(relay.status).await;
        assert_eq!(
            status["station_connected"],
            upstream == 0,
            "r{} (started from {}): {status}",
            i + 1,
            if upstream == 0 {
                "the station"
            } else {
                "a relay"
            }
        );
    }
    let status = common::http_get(station_api, "/api/v1/status", Duration::from_secs(20)).await;
    let status: serde_json::Value = serde_json::from_slice(&status.body).expect("status JSON");
    let direct = status["peers_connected"].as_u64().expect("peers_connected");
    // At least r1–r4 (a moment's more while a blocked relay's DHT query tries the station
    // and the relay refuses the connection).
    assert!(direct >= 4, "r1–r4 are connected to the station: {status}");

    let published = announced(&station);
    let mut lags = Vec::new();
    // The same arrivals, of the relays behind a relay only (r5–r8).
    let mut through_a_relay = Vec::new();
    for (i, relay) in relays.iter().enumerate() {
        let got = held(&relay.process);
        for (sequence, (root, at)) in published.range(start + 1..=end) {
            let (held_root, held_at) = got.get(sequence).unwrap_or_else(|| {
                panic!(
                    "r{} never held root {sequence} ({root}); it held {:?}",
                    i + 1,
                    got.keys().collect::<Vec<_>>()
                )
            });
            assert_eq!(held_root, root, "r{} sequence {sequence}", i + 1);
            // Clock steps aside, a log line cannot precede its cause; zero if it appears to.
            let lag = held_at.duration_since(*at).unwrap_or_default();
            lags.push(lag);
            if UPSTREAM[i] != 0 {
                through_a_relay.push(lag);
            }
        }
        let status = common::relay_status(relay.status).await;
        assert_eq!(status["rejected"], 0, "r{}: {status}", i + 1);
        assert_eq!(status["fetch_failures"], 0, "r{}: {status}", i + 1);
    }
    assert_eq!(lags.len(), relays.len() * MEASURED_ROOTS as usize);
    lags.sort();
    through_a_relay.sort();
    let (p50, p99) = (quantile(&lags, 0.5), quantile(&lags, 0.99));
    println!(
        "through a relay (r5–r8): p50 {:?}, p99 {:?}",
        quantile(&through_a_relay, 0.5),
        quantile(&through_a_relay, 0.99)
    );
    let segment = Duration::from_secs(LIVE_SEGMENT_SECONDS);
    println!(
        "fan-out to 8 relays, {} arrivals: p50 {p50:?}, p99 {p99:?}, max {:?} \
         (segment {segment:?})",
        lags.len(),
        lags.last().expect("lags")
    );
    assert!(
        p99 < segment,
        "p99 arrival lag {p99:?} is over one segment ({segment:?}); p50 {p50:?}"
    );
}
