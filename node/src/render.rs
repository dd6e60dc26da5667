//! `ipfm render MUSIC_DIR OUT_DIR`: one pass through the library, as fast as the CPU
//! allows, written as a VOD HLS directory (master playlist, one playlist per rendition,
//! segments, the web player and a tracklist); its root CID is what `ipfm add` would print.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipfm_encoder::{
    Encoder, EncoderConfig, EncoderError, EncoderEvent, Library, Mode, NowPlaying, Segment,
};
use ipfm_protocol::builder::CidMode;
use ipfm_protocol::Cid;
use serde::Serialize;

use crate::hls::{self, PlaylistSegment, Variant};
use crate::import::{self, ImportError, ImportOptions, OnlyHash};

/// What to render.
#[derive(Debug, Clone)]
pub struct RenderOptions {
    pub music: PathBuf,
    pub jingles: Option<PathBuf>,
    pub out: PathBuf,
    pub encoder: EncoderConfig,
}

/// Where a render stands, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RenderProgress {
    /// Media time encoded so far.
    pub done: Duration,
    /// Expected total (the library's duration; jingles and rounding may add a little).
    pub total: Duration,
}

/// What a finished render produced.
#[derive(Debug, Clone)]
pub struct RenderReport {
    /// Root CID of the output directory, as `ipfm add -Q` computes it.
    pub root: Cid,
    /// Segments per rendition.
    pub segments: usize,
    pub media_duration: Duration,
    /// Tracks and jingles in play order.
    pub tracklist: Vec<TracklistEntry>,
    /// Files left out (bad or unreadable), with the reason.
    pub skipped: Vec<String>,
}

/// One entry of `tracklist.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TracklistEntry {
    pub title: String,
    pub artist: Option<String>,
    pub album: Option<String>,
    pub kind: &'static str,
    /// Where it starts in the rendered stream, in seconds.
    pub start_secs: f64,
}

impl TracklistEntry {
    fn from_now_playing(now: &NowPlaying) -> Self {
        TracklistEntry {
            title: now.title.clone(),
            artist: now.artist.clone(),
            album: now.album.clone(),
            kind: now.kind.as_str(),
            start_secs: now.track_start.as_secs_f64(),
        }
    }
}

/// Why a render failed.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("encoder: {0}")]
    Encoder(#[from] EncoderError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}: output directory is not empty (refusing to mix with earlier files)")]
    OutputNotEmpty(PathBuf),
    #[error("rendition name {0:?} cannot be a directory name")]
    BadRenditionName(String),
    #[error("the encoder produced no segment (nothing in the library decodes?)")]
    NothingRendered,
    #[error("computing the root CID: {0}")]
    Import(#[from] ImportError),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> RenderError + '_ {
    move |source| RenderError::Io {
        path: path.into(),
        source,
    }
}

/// Render `options.music` into `options.out` and compute the root CID. Blocking work
/// (decoding, encoding, writing) runs on tokio's blocking pool.
pub async fn render(
    options: RenderOptions,
    on_progress: impl Fn(RenderProgress) + Send + 'static,
) -> Result<RenderReport, RenderError> {
    let out = options.out.clone();
    let mut report = tokio::task::spawn_blocking(move || render_files(&options, &on_progress))
        .await
        .map_err(|e| RenderError::Io {
            path: out.clone(),
            source: std::io::Error::other(e.to_string()),
        })??;
    let options = ImportOptions {
        mode: CidMode::V1RawLeaves,
        hidden: false,
    };
    let added = import::add_path(&OnlyHash, &out, options, &|_| {}).await?;
    if let Some(root) = added.last() {
        report.root = root.cid;
    }
    Ok(report)
}

/// The blocking part of [`render`]: encode and write every file. `root` in the report is
/// left as the CID of the empty string until [`render`] computes it.
fn render_files(
    options: &RenderOptions,
    on_progress: &dyn Fn(RenderProgress),
) -> Result<RenderReport, RenderError> {
    prepare_output(&options.out, &options.encoder)?;
    let library = Library::scan(&options.music)?;
    let jingles = match &options.jingles {
        Some(dir) => Library::scan(dir)?,
        None => Library::empty(),
    };
    let total = library.total_duration();
    let mut skipped: Vec<String> = library
        .skipped()
        .iter()
        .chain(jingles.skipped().iter())
        .map(|s| format!("{}: {}", s.path, s.reason))
        .collect();
    let (handle, events) = Encoder::start(
        options.encoder.clone(),
        library,
        jingles,
        None,
        Mode::AsFastAsPossible,
    )?;

    let mut playlists: BTreeMap<String, Vec<PlaylistSegment>> = BTreeMap::new();
    let mut tracklist: Vec<TracklistEntry> = Vec::new();
    let mut done = Duration::ZERO;
    for event in events.iter() {
        match event {
            EncoderEvent::Segment(segment) => {
                write_segment(&options.out, &segment)?;
                note_track(&mut tracklist, &segment.now_playing);
                let end = segment.media_start + segment.duration;
                if end > done {
                    done = end;
                    on_progress(RenderProgress {
                        done,
                        total: total.max(done),
                    });
                }
                playlists
                    .entry(segment.rendition.clone())
                    .or_default()
                    .push(PlaylistSegment::new(
                        segment.sequence,
                        segment.duration,
                        segment.bytes.len() as u64,
                        segment.discontinuity,
                    ));
            }
            EncoderEvent::Skipped(file) => skipped.push(format!("{}: {}", file.path, file.reason)),
        }
    }
    handle.join()?;
    if playlists.values().all(Vec::is_empty) {
        return Err(RenderError::NothingRendered);
    }
    write_playlists(&options.out, &options.encoder, &mut playlists)?;
    write_extras(&options.out, &tracklist)?;
    Ok(RenderReport {
        root: ipfm_protocol::cid::raw_cid(b""),
        segments: playlists.values().map(Vec::len).max().unwrap_or(0),
        media_duration: done,
        tracklist,
        skipped,
    })
}

/// Creates the output directory (and one folder per rendition); it must be empty.
fn prepare_output(out: &Path, config: &EncoderConfig) -> Result<(), RenderError> {
    std::fs::create_dir_all(out).map_err(io_error(out))?;
    if std::fs::read_dir(out)
        .map_err(io_error(out))?
        .next()
        .is_some()
    {
        return Err(RenderError::OutputNotEmpty(out.into()));
    }
    for rendition in &config.renditions {
        let name = &rendition.name;
        // The name becomes a directory and a playlist file name inside a UnixFS
        // directory; `ipfm add` would skip hidden names.
        if name.contains(['/', '\\']) || name.starts_with('.') {
            return Err(RenderError::BadRenditionName(name.clone()));
        }
        let dir = out.join(name);
        std::fs::create_dir(&dir).map_err(io_error(&dir))?;
    }
    Ok(())
}

fn write_segment(out: &Path, segment: &Segment) -> Result<(), RenderError> {
    let path = out.join(hls::segment_uri(&segment.rendition, segment.sequence));
    std::fs::write(&path, &segment.bytes).map_err(io_error(&path))
}

/// Adds the source playing in a segment to the tracklist if it is a new one. Renditions'
/// events interleave, so an entry may come back after a newer one: look at the recent
/// entries, not only the last (a source is identified by its title and start time).
fn note_track(tracklist: &mut Vec<TracklistEntry>, now: &NowPlaying) {
    const RECENT: usize = 4;
    let entry = TracklistEntry::from_now_playing(now);
    if !tracklist.iter().rev().take(RECENT).any(|e| e == &entry) {
        tracklist.push(entry);
        // Play order: by start time (interleaving may deliver a later source first).
        tracklist.sort_by(|a, b| a.start_secs.total_cmp(&b.start_secs));
    }
}

fn write_playlists(
    out: &Path,
    config: &EncoderConfig,
    playlists: &mut BTreeMap<String, Vec<PlaylistSegment>>,
) -> Result<(), RenderError> {
    let mut variants = Vec::new();
    for rendition in &config.renditions {
        let segments = playlists.entry(rendition.name.clone()).or_default();
        // Renditions run on their own threads: their events interleave, but each
        // rendition's own order is by sequence anyway; sort to be sure.
        segments.sort_by_key(|s| s.sequence);
        let path = out.join(hls::playlist_name(&rendition.name));
        std::fs::write(&path, hls::vod_playlist(&rendition.name, segments))
            .map_err(io_error(&path))?;
        variants.push(Variant {
            name: rendition.name.clone(),
            bitrate: rendition.bitrate,
            measured_peak: segments
                .iter()
                .map(PlaylistSegment::bit_rate)
                .reduce(f64::max),
        });
    }
    let path = out.join("master.m3u8");
    std::fs::write(&path, hls::master_playlist(&variants)).map_err(io_error(&path))
}

/// The web player and `tracklist.json`.
fn write_extras(out: &Path, tracklist: &[TracklistEntry]) -> Result<(), RenderError> {
    for (name, bytes) in crate::player::assets() {
        let path = out.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io_error(parent))?;
        }
        std::fs::write(&path, bytes).map_err(io_error(&path))?;
    }
    let path = out.join("tracklist.json");
    let json = serde_json::to_vec_pretty(tracklist)
        .map_err(|e| io_error(&path)(std::io::Error::other(e)))?;
    std::fs::write(&path, json).map_err(io_error(&path))
}
