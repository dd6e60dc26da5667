//! The music library: which files play, what they are called, and which were
//! skipped and why.

pub(crate) mod probe;
mod scan;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;

pub use probe::{probe, Probed, PROBE_TIMEOUT};

/// Title, artist and album as found in the file's tags.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tags {
    pub title: Option<String>,
    pub artist: Option<String>,
    pub album: Option<String>,
}

/// A playable file of the library.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Track {
    /// Path relative to the library root, `/`-separated: the identity used in
    /// the rotation order, so it survives a restart.
    pub id: String,
    pub path: PathBuf,
    pub duration: Duration,
    pub tags: Tags,
}

impl Track {
    /// The title to show: the tag, or the file name without extension.
    pub fn display_title(&self) -> String {
        self.tags.title.clone().unwrap_or_else(|| {
            Path::new(&self.id)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| self.id.clone())
        })
    }
}

/// Why a file does not play.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
pub enum SkipReason {
    #[error("the file is empty")]
    Empty,
    #[error("the file name {0}")]
    BadName(&'static str),
    #[error("cannot read the file: {0}")]
    Unreadable(String),
    #[error("not an audio file ffmpeg can open: {0}")]
    NotMedia(String),
    #[error("the file has no audio stream")]
    NoAudio,
    #[error("no decoder for the audio codec: {0}")]
    NoDecoder(String),
    #[error("the duration is unknown or zero")]
    NoDuration,
    #[error("no audio frame decodes: {0}")]
    Undecodable(String),
    #[error("probing took longer than the timeout")]
    Timeout,
    #[error("truncated: {decoded_ms} ms decode of {expected_ms} ms announced")]
    Truncated { expected_ms: u64, decoded_ms: u64 },
}

/// A file that was left out, for the dashboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedFile {
    /// Lossy UTF-8 rendering of the path (names may not be UTF-8).
    pub path: String,
    pub reason: SkipReason,
}

/// What a rescan changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RescanReport {
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

/// File size and modification time: a file is probed again only when they change.
type FileStamp = (u64, Option<SystemTime>);

/// A scanned music (or jingles) directory.
#[derive(Debug, Clone, Default)]
pub struct Library {
    root: PathBuf,
    tracks: BTreeMap<String, (Track, FileStamp)>,
    skipped: BTreeMap<String, (SkippedFile, FileStamp)>,
}

impl Library {
    /// A library with no files and no directory: the station plays the demo.
    pub fn empty() -> Self {
        Library::default()
    }

    /// Scans `root` recursively. Bad files are skipped with a warning; only an
    /// unreadable root is an error.
    pub fn scan(root: &Path) -> Result<Library, crate::EncoderError> {
        let mut library = Library {
            root: root.to_path_buf(),
            ..Library::default()
        };
        library.rescan()?;
        Ok(library)
    }

    /// Looks at the directory again: probes new or changed files, forgets
    /// removed ones. Unchanged files are not probed again.
    pub fn rescan(&mut self) -> Result<RescanReport, crate::EncoderError> {
        self.rescan_until(&Arc::new(AtomicBool::new(false)))
    }

    /// [`Library::rescan`] that gives up as soon as `cancel` is set, leaving
    /// the library as it was (used by the running station when stopping).
    pub(crate) fn rescan_until(
        &mut self,
        cancel: &Arc<AtomicBool>,
    ) -> Result<RescanReport, crate::EncoderError> {
        if self.root.as_os_str().is_empty() {
            return Ok(RescanReport::default());
        }
        let found = scan::walk(&self.root)?;
        let mut report = RescanReport::default();
        let mut tracks = BTreeMap::new();
        let mut skipped = BTreeMap::new();
        for file in found {
            if cancel.load(Ordering::Relaxed) {
                return Ok(RescanReport::default());
            }
            let key = file.display.clone();
            if let Some(reason) = file.name_problem {
                skip_once(&mut skipped, &self.skipped, key, file.stamp, reason);
                continue;
            }
            let id = key;
            if let Some((track, stamp)) = self.tracks.get(&id) {
                if *stamp == file.stamp {
                    tracks.insert(id, (track.clone(), file.stamp));
                    continue;
                }
            }
            if let Some((_, stamp)) = self.skipped.get(&id) {
                if *stamp == file.stamp {
                    skipped.insert(id.clone(), self.skipped[&id].clone());
                    continue;
                }
            }
            match probe::probe_until(&file.path, PROBE_TIMEOUT, cancel.clone()) {
                Ok(probed) => {
                    if !self.tracks.contains_key(&id) {
                        report.added.push(id.clone());
                    }
                    let track = Track {
                        id: id.clone(),
                        path: file.path,
                        duration: probed.duration,
                        tags: probed.tags,
                    };
                    tracks.insert(id, (track, file.stamp));
                }
                Err(reason) => skip_once(&mut skipped, &self.skipped, id, file.stamp, reason),
            }
        }
        report.removed = self
            .tracks
            .keys()
            .filter(|id| !tracks.contains_key(*id))
            .cloned()
            .collect();
        self.tracks = tracks;
        self.skipped = skipped;
        Ok(report)
    }

    /// Records that a track failed at play time (e.g. truncated); it stays out
    /// until the file changes.
    pub fn mark_bad(&mut self, id: &str, reason: SkipReason) -> Option<SkippedFile> {
        let (_, stamp) = self.tracks.remove(id)?;
        tracing::warn!(file = %id, %reason, "skipping file");
        let skipped = SkippedFile {
            path: id.to_string(),
            reason,
        };
        self.skipped
            .insert(id.to_string(), (skipped.clone(), stamp));
        Some(skipped)
    }

    /// A library of the given ids without files behind them (rotation tests).
    #[cfg(test)]
    pub(crate) fn from_ids(ids: &[&str]) -> Library {
        let mut library = Library::default();
        for id in ids {
            let track = Track {
                id: id.to_string(),
                path: PathBuf::from(id),
                duration: Duration::from_secs(1),
                tags: Tags::default(),
            };
            library.tracks.insert(id.to_string(), (track, (1, None)));
        }
        library
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn get(&self, id: &str) -> Option<&Track> {
        self.tracks.get(id).map(|(t, _)| t)
    }

    /// Playable tracks, sorted by id.
    pub fn tracks(&self) -> impl Iterator<Item = &Track> {
        self.tracks.values().map(|(t, _)| t)
    }

    pub fn ids(&self) -> Vec<String> {
        self.tracks.keys().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.tracks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }

    /// Files left out, with the reason, sorted by path.
    pub fn skipped(&self) -> Vec<SkippedFile> {
        self.skipped.values().map(|(s, _)| s.clone()).collect()
    }

    /// Sum of the probed durations of the playable tracks.
    pub fn total_duration(&self) -> Duration {
        self.tracks().map(|t| t.duration).sum()
    }
}

/// Records a skip, warning only the first time a file (at this size and
/// mtime) is seen to be bad, so rescans do not repeat the warning.
fn skip_once(
    skipped: &mut BTreeMap<String, (SkippedFile, FileStamp)>,
    previous: &BTreeMap<String, (SkippedFile, FileStamp)>,
    key: String,
    stamp: FileStamp,
    reason: SkipReason,
) {
    let known = previous
        .get(&key)
        .is_some_and(|(s, st)| *st == stamp && s.reason == reason);
    if !known {
        tracing::warn!(file = %key, %reason, "skipping file");
    }
    let entry = SkippedFile {
        path: key.clone(),
        reason,
    };
    skipped.insert(key, (entry, stamp));
}
