//! The control API of a running station: skip, rescan now, snapshot.

use crate::common;

use std::time::{Duration, Instant};

use common::*;
use ipfm_encoder::{
    Encoder, EncoderError, EncoderEvent, Library, Mode, PlayoutSnapshot, Segment, SourceKind,
};

/// Segments the producer can be ahead of the reader of the event channel:
/// the event channel (3 renditions × 2 + 4), two queued jobs per rendition,
/// one in each encoder and one held back for the AAC priming delay, and the
/// one being cut. A skip must show within that many segments plus one.
const MAX_LOOKAHEAD_SEGMENTS: usize = 10 + 2 + 1 + 1 + 1;

fn title_at_end(segment: &Segment) -> String {
    segment
        .changes_titles()
        .last()
        .cloned()
        .unwrap_or_else(|| segment.now_playing.title.clone())
}

trait Titles {
    fn changes_titles(&self) -> Vec<String>;
}

impl Titles for Segment {
    /// Titles of every ID3 frame after the first (sources starting inside).
    fn changes_titles(&self) -> Vec<String> {
        id3_tags(&self.bytes)
            .iter()
            .skip(1)
            .map(|(_, tag)| id3_text(tag, "TIT2", None).unwrap())
            .collect()
    }
}

#[test]
fn skip_moves_to_the_next_track_within_a_few_segments() {
    let music = tempfile::tempdir().unwrap();
    let seconds = 2.0 * (MAX_LOOKAHEAD_SEGMENTS + 10) as f64;
    for (i, name) in ["a.flac", "b.flac", "c.flac"].iter().enumerate() {
        let title = format!("Track {}", &name[..1]);
        tone(
            music.path(),
            name,
            300 + 150 * i as u32,
            seconds,
            -3.0 * i as f64,
            &title,
            "X",
        );
    }
    let library = Library::scan(music.path()).unwrap();
    let (handle, events) = Encoder::start(
        config(2),
        library.clone(),
        Library::empty(),
        None,
        Mode::AsFastAsPossible,
    )
    .unwrap();
    let control = handle.control();
    let mut segments = Vec::new();
    let mut skipped_at = None;
    loop {
        match events.recv_timeout(WAIT) {
            Ok(EncoderEvent::Segment(s)) => {
                if skipped_at.is_none() && s.rendition == "hifi" {
                    control.skip().unwrap();
                    skipped_at = Some(s.sequence);
                }
                segments.push(s);
            }
            Ok(EncoderEvent::Skipped(s)) => panic!("unexpected skip {s:?}"),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            Err(e) => panic!("encoder stalled: {e}"),
        }
    }
    handle.join().unwrap();
    assert_eq!(
        control.skip().unwrap_err().to_string(),
        "the station has stopped"
    );
    assert!(matches!(control.rescan(), Err(EncoderError::Stopped)));

    let mut hifi: Vec<&Segment> = segments.iter().filter(|s| s.rendition == "hifi").collect();
    hifi.sort_by_key(|s| s.sequence);
    let order: Vec<String> = hifi[0]
        .position
        .rotation
        .iter()
        .map(|id| library.get(id).unwrap().display_title())
        .collect();
    assert_eq!(hifi[0].now_playing.title, order[0]);
    let changed = hifi
        .iter()
        .position(|s| title_at_end(s) != order[0])
        .expect("the first track ended");
    assert!(
        changed <= skipped_at.unwrap() as usize + MAX_LOOKAHEAD_SEGMENTS,
        "skip took effect only at segment {changed}"
    );
    // Its natural end is far later than that.
    let natural_end = (seconds / 2.0) as usize;
    assert!(changed + 5 < natural_end, "{changed} vs {natural_end}");
    assert_eq!(title_at_end(hifi[changed]), order[1]);
    // The rest of the rotation plays whole: one skip skips one track.
    let titles: Vec<String> = hifi.iter().map(|s| title_at_end(s)).collect();
    assert!(titles.contains(&order[2]));
    let total: u64 = hifi.iter().map(|s| s.sample_count).sum();
    let total_secs = total as f64 / 48_000.0;
    assert!(
        total_secs < 3.0 * seconds - 8.0 && total_secs > 2.0 * seconds,
        "{total_secs} s played"
    );

    // Continuous timeline, aligned renditions, every segment decodes.
    for pair in hifi.windows(2) {
        assert_eq!(
            pair[0].start_sample + pair[0].sample_count,
            pair[1].start_sample
        );
    }
    for rendition in ["lofi", "midfi"] {
        let starts: Vec<u64> = segments
            .iter()
            .filter(|s| s.rendition == rendition)
            .map(|s| s.start_sample)
            .collect();
        assert_eq!(starts.len(), hifi.len());
    }
    let work = tempfile::tempdir().unwrap();
    let around = &hifi[changed.saturating_sub(1)..(changed + 2).min(hifi.len())];
    for path in write_segments(work.path(), around) {
        assert_eq!(decode_errors(&path), "");
    }
}

/// Reads events on a thread so a realtime station never blocks on a full
/// channel while the test polls the snapshot.
/// Reads every event on a thread of its own until the channel closes (or stays silent for
/// `WAIT`); `count` says how many so far.
struct Drain {
    count: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    thread: std::thread::JoinHandle<()>,
}

fn drain(events: crossbeam_channel::Receiver<EncoderEvent>) -> Drain {
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = count.clone();
    let thread = std::thread::spawn(move || {
        while events.recv_timeout(WAIT).is_ok() {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    Drain { count, thread }
}

impl Drain {
    fn received(&self) -> usize {
        self.count.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits (bounded by `WAIT`) until at least one event arrived.
    fn wait_for_first(&self) {
        let deadline = Instant::now() + WAIT;
        while self.received() == 0 {
            assert!(Instant::now() < deadline, "no event within {WAIT:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn wait_for(
    control: &ipfm_encoder::EncoderControl,
    what: &str,
    done: impl Fn(&PlayoutSnapshot) -> bool,
) -> PlayoutSnapshot {
    let deadline = Instant::now() + WAIT;
    loop {
        let snapshot = control.snapshot();
        if done(&snapshot) {
            return snapshot;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {snapshot:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn snapshot_shows_the_library_and_rescan_picks_up_a_new_file_now() {
    let music = tempfile::tempdir().unwrap();
    tone(music.path(), "one.mp3", 440, 3.0, 0.0, "One", "Artist 1");
    std::fs::write(music.path().join("broken.mp3"), b"not audio").unwrap();
    let mut cfg = config(2);
    // Far longer than the test: only the explicit rescan can find the new file.
    cfg.rescan_interval = Duration::from_secs(3600);
    let library = Library::scan(music.path()).unwrap();
    let (handle, events) =
        Encoder::start(cfg, library, Library::empty(), None, Mode::Realtime).unwrap();
    let control = handle.control();
    let reader = drain(events);

    let snapshot = wait_for(&control, "the first segment", |s| s.now_playing.is_some());
    assert_eq!(snapshot.tracks.len(), 1, "{snapshot:?}");
    assert_eq!(snapshot.tracks[0].id, "one.mp3");
    assert_eq!(snapshot.tracks[0].title, "One");
    assert_eq!(snapshot.tracks[0].artist.as_deref(), Some("Artist 1"));
    assert!((snapshot.tracks[0].duration_secs - 3.0).abs() < 0.1);
    assert_eq!(snapshot.skipped.len(), 1);
    assert_eq!(snapshot.skipped[0].path, "broken.mp3");
    assert_eq!(handle.skipped_files(), snapshot.skipped);
    assert_eq!(snapshot.now_playing.as_ref().unwrap().title, "One");
    // One track: it comes round again.
    let next = snapshot.up_next.clone().expect("something is next");
    assert_eq!((next.title.as_str(), next.kind), ("One", SourceKind::Track));
    assert!(snapshot.last_rescan.is_none());
    // The snapshot serialises for the HTTP API.
    let json = serde_json::to_value(&snapshot).unwrap();
    assert_eq!(json["tracks"][0]["id"], "one.mp3");

    tone(music.path(), "two.flac", 660, 3.0, 0.0, "Two", "Artist 2");
    control.rescan().unwrap();
    let snapshot = wait_for(&control, "the rescan", |s| s.last_rescan.is_some());
    let ids: Vec<&str> = snapshot.tracks.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["one.mp3", "two.flac"]);
    let report = snapshot.last_rescan.unwrap();
    assert_eq!((report.added, report.removed, report.skipped), (1, 0, 1));
    assert!(report.at_unix_ms > 0);
    // The new file comes into the rotation: it is announced and then plays.
    wait_for(&control, "the new track to play", |s| {
        s.now_playing.as_ref().is_some_and(|n| n.title == "Two")
    });
    // The snapshot's "now playing" runs ahead of the segments: a segment is emitted once
    // the AAC encoders' delay has passed (after the next one is encoded). Segments must
    // flow, so wait for one before stopping.
    reader.wait_for_first();

    handle.stop().unwrap();
    assert!(matches!(control.skip(), Err(EncoderError::Stopped)));
    // The last state stays readable after the stop.
    assert_eq!(control.snapshot().tracks.len(), 2);
    let received = reader.received();
    reader.thread.join().unwrap();
    assert!(received > 0);
}

#[test]
fn skip_in_realtime_mode_changes_the_source_being_rendered() {
    let music = tempfile::tempdir().unwrap();
    tone(music.path(), "long-a.flac", 440, 60.0, 0.0, "Long A", "X");
    tone(music.path(), "long-b.flac", 550, 60.0, 0.0, "Long B", "X");
    let library = Library::scan(music.path()).unwrap();
    let (handle, events) =
        Encoder::start(config(2), library, Library::empty(), None, Mode::Realtime).unwrap();
    let control = handle.control();
    let reader = drain(events);
    let first = wait_for(&control, "the first segment", |s| s.now_playing.is_some());
    let first_title = first.now_playing.unwrap().title;
    let queued = first.up_next.expect("the other track is next").title;
    assert_ne!(first_title, queued);
    control.skip().unwrap();
    // Realtime runs at most one segment ahead: the change shows within a
    // few 2-s segments, long before the 60-s track would end.
    let started = Instant::now();
    let after = wait_for(&control, "the skip", |s| {
        s.now_playing
            .as_ref()
            .is_some_and(|n| n.title != first_title)
    });
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(after.now_playing.unwrap().title, queued);
    handle.stop().unwrap();
    reader.thread.join().unwrap();
}
