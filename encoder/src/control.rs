//! Controlling a running station from outside: skip the current source,
//! rescan the library now, and look at what plays and what comes next.
//!
//! Commands travel on a small bounded channel into the producer thread,
//! which checks it wherever it already checks for a stop. What the producer
//! knows (now playing, up next, the library) is published into a shared
//! snapshot that readers clone.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crossbeam_channel::{Sender, TrySendError};
use serde::Serialize;

use crate::events::{NowPlaying, SourceKind};
use crate::library::{Library, SkippedFile, Track};
use crate::EncoderError;

/// Commands waiting for the producer; more are refused with
/// [`EncoderError::ControlBusy`] rather than queued without bound.
pub(crate) const COMMAND_QUEUE: usize = 8;

/// A request to the producer thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Command {
    Skip,
    Rescan,
}

/// A playable file of the library, as shown to listeners and operators.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LibraryEntry {
    /// Path relative to the library root (the rotation's identity).
    pub id: String,
    pub title: String,
    pub artist: Option<String>,
    pub album: Option<String>,
    pub duration_secs: f64,
}

impl LibraryEntry {
    pub(crate) fn of(track: &Track) -> Self {
        LibraryEntry {
            id: track.id.clone(),
            title: track.display_title(),
            artist: track.tags.artist.clone(),
            album: track.tags.album.clone(),
            duration_secs: track.duration.as_secs_f64(),
        }
    }
}

/// The source the rotation has chosen to play after the current one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueuedSource {
    /// Library id (path relative to its root); `None` for the demo program.
    pub id: Option<String>,
    pub title: String,
    pub artist: Option<String>,
    pub album: Option<String>,
    pub kind: SourceKind,
}

/// What the latest completed rescan changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RescanSummary {
    /// When it finished, in milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
    /// Files added to the music library and the jingles.
    pub added: usize,
    /// Files gone from them.
    pub removed: usize,
    /// Files left out after the rescan (bad names, corrupt, …).
    pub skipped: usize,
}

impl RescanSummary {
    pub(crate) fn now(added: usize, removed: usize, skipped: usize) -> Self {
        let at_unix_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        RescanSummary {
            at_unix_ms,
            added,
            removed,
            skipped,
        }
    }
}

/// What is playing and what comes next, and the library as last scanned.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PlayoutSnapshot {
    /// The source the producer is rendering now (it reaches listeners a
    /// segment or two later).
    pub now_playing: Option<NowPlaying>,
    /// Next in rotation (a jingle if one is due); `None` at the end of a
    /// single pass or before the station has started.
    pub up_next: Option<QueuedSource>,
    /// Playable music tracks, sorted by id.
    pub tracks: Vec<LibraryEntry>,
    /// Music and jingle files left out, with the reason.
    pub skipped: Vec<SkippedFile>,
    pub last_rescan: Option<RescanSummary>,
}

/// State shared between the producer (writer) and the controls (readers).
pub(crate) type SharedSnapshot = Arc<Mutex<PlayoutSnapshot>>;

/// Replaces the library part of the snapshot.
pub(crate) fn publish_library(shared: &SharedSnapshot, music: &Library, jingles: &Library) {
    let tracks = music.tracks().map(LibraryEntry::of).collect();
    let mut skipped = music.skipped();
    skipped.extend(jingles.skipped());
    if let Ok(mut s) = shared.lock() {
        s.tracks = tracks;
        s.skipped = skipped;
    }
}

/// Controls a running station. Cheap to clone, `Send + Sync`; obtained from
/// [`crate::EncoderHandle::control`]. It stays usable after the station ends:
/// commands then fail with [`EncoderError::Stopped`] and the snapshot shows
/// the last state.
#[derive(Debug, Clone)]
pub struct EncoderControl {
    pub(crate) commands: Sender<Command>,
    pub(crate) shared: SharedSnapshot,
}

impl EncoderControl {
    /// Ends the current source early — a short fade (the configured
    /// crossfade, at least 200 ms, at most 3 s) at the next possible point,
    /// which is the next segment the producer cuts once the following source
    /// is decoded — and plays the next source in rotation.
    pub fn skip(&self) -> Result<(), EncoderError> {
        self.send(Command::Skip)
    }

    /// Rescans the music and jingle directories now instead of waiting for
    /// the periodic rescan; the result shows in [`Self::snapshot`]
    /// (`last_rescan`, `tracks`, `skipped`) once done.
    pub fn rescan(&self) -> Result<(), EncoderError> {
        self.send(Command::Rescan)
    }

    /// What is playing and what comes next, and the library as last scanned.
    pub fn snapshot(&self) -> PlayoutSnapshot {
        self.shared.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn send(&self, command: Command) -> Result<(), EncoderError> {
        match self.commands.try_send(command) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(EncoderError::ControlBusy),
            Err(TrySendError::Disconnected(_)) => Err(EncoderError::Stopped),
        }
    }
}
