//! Recursive walk of a music directory.

use std::path::{Path, PathBuf};

use super::{FileStamp, SkipReason};
use crate::EncoderError;

/// Extensions of the formats the station plays (compared case-insensitively).
const AUDIO_EXTENSIONS: &[&str] = &["mp3", "flac", "ogg", "oga", "opus", "wav", "m4a", "aac"];

/// Directories nested deeper than this are not entered (guards against
/// pathological trees; symlinked directories are never followed).
const MAX_DEPTH: usize = 32;

pub(super) struct FoundFile {
    pub path: PathBuf,
    /// Path relative to the root with `/` separators, lossily UTF-8.
    pub display: String,
    pub stamp: FileStamp,
    /// Set when the name alone rules the file out.
    pub name_problem: Option<SkipReason>,
}

/// Lists audio files under `root`, sorted by relative path. Files with other
/// extensions (cover art, playlists, text) are ignored silently.
pub(super) fn walk(root: &Path) -> Result<Vec<FoundFile>, EncoderError> {
    let mut found = Vec::new();
    // The root itself must be readable; unreadable subdirectories are only warned about.
    std::fs::read_dir(root).map_err(|source| EncoderError::Io {
        path: root.to_path_buf(),
        source,
    })?;
    let mut stack = vec![(root.to_path_buf(), 0usize)];
    while let Some((dir, depth)) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot read directory");
                continue;
            }
        };
        for entry in entries.flatten() {
            let path = entry.path();
            // symlink_metadata: do not follow directory symlinks (loops); a
            // symlinked file is followed below by metadata().
            let Ok(link_meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if link_meta.is_dir() {
                if depth < MAX_DEPTH {
                    stack.push((path, depth + 1));
                }
                continue;
            }
            if !has_audio_extension(&path) {
                continue;
            }
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            let relative = path.strip_prefix(root).unwrap_or(&path);
            let display = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            let name_problem = match name_problem(relative) {
                Some(problem) => Some(problem),
                None if meta.len() == 0 => Some(SkipReason::Empty),
                None => None,
            };
            found.push(FoundFile {
                path,
                display,
                stamp: (meta.len(), meta.modified().ok()),
                name_problem,
            });
        }
    }
    found.sort_by(|a, b| a.display.cmp(&b.display));
    Ok(found)
}

fn has_audio_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| AUDIO_EXTENSIONS.iter().any(|a| a.eq_ignore_ascii_case(e)))
}

/// Spaces, unicode and leading dashes are fine: files are opened in process
/// by absolute path, never through a shell or a command line. What is refused:
/// names that are not UTF-8 (the track id must be a string that survives the
/// position round trip, and ffmpeg takes C strings) and control characters
/// such as newlines (they would corrupt line-based logs, playlists and the
/// now-playing metadata).
fn name_problem(relative: &Path) -> Option<SkipReason> {
    let Some(name) = relative.to_str() else {
        return Some(SkipReason::BadName("is not valid UTF-8"));
    };
    if name.chars().any(char::is_control) {
        return Some(SkipReason::BadName("contains control characters"));
    }
    None
}
