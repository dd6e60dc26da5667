//! The dashboard's endpoints, all behind the bearer token: skip and rescan (handed to the
//! encoder's control), the queue and the library (its playout snapshot), storage, and
//! the listeners/peers activity of the last hour.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use ipfm_encoder::{
    EncoderError, LibraryEntry, NowPlaying, PlayoutSnapshot, QueuedSource, RescanSummary,
};
use ipfm_store::Blockstore;
use serde::Serialize;

use super::{auth, error, json, json_with_status, ApiContext};
use crate::station::activity::{self, ActivitySample, LastGc};
use crate::station::TrackInfo;

/// What `POST /api/v1/skip` and `POST /api/v1/rescan` answer (202: the encoder acts on
/// it within a segment; the queue and library show the outcome).
#[derive(Debug, Serialize)]
pub struct Accepted {
    pub accepted: &'static str,
}

/// `GET /api/v1/queue`.
#[derive(Debug, Serialize)]
pub struct Queue {
    /// What the encoder renders now (listeners hear it a segment or two later).
    pub now_playing: Option<TrackInfo>,
    /// Next in rotation; `None` before the first source or at the end of a single pass.
    pub up_next: Option<Upcoming>,
}

/// A source the rotation will play.
#[derive(Debug, Serialize)]
pub struct Upcoming {
    /// Path relative to the library root; `None` for the demo program.
    pub id: Option<String>,
    pub title: String,
    pub artist: Option<String>,
    pub album: Option<String>,
    /// `track`, `jingle` or `demo`.
    pub kind: &'static str,
}

/// `GET /api/v1/library`.
#[derive(Debug, Serialize)]
pub struct LibraryView {
    /// Playable music tracks, sorted by id.
    pub tracks: Vec<LibraryEntry>,
    /// Music and jingle files left out.
    pub skipped: Vec<Skipped>,
    pub last_rescan: Option<RescanSummary>,
}

/// A file left out, with the reason in words.
#[derive(Debug, Serialize)]
pub struct Skipped {
    pub path: String,
    pub reason: String,
}

/// `GET /api/v1/storage`.
#[derive(Debug, Serialize)]
pub struct Storage {
    pub blocks: u64,
    pub bytes: u64,
    /// How long unreferenced blocks are kept before GC removes them.
    pub retention_secs: u64,
    pub last_gc: Option<LastGc>,
}

/// `GET /api/v1/activity`.
#[derive(Debug, Serialize)]
pub struct ActivityView {
    pub interval_secs: u64,
    pub capacity: usize,
    /// Oldest first.
    pub samples: Vec<ActivitySample>,
}

pub(super) async fn skip(State(context): State<Arc<ApiContext>>, headers: HeaderMap) -> Response {
    if let Some(refused) = auth::refusal(&headers, &context) {
        return refused;
    }
    command("skip", context.control.skip())
}

pub(super) async fn rescan(State(context): State<Arc<ApiContext>>, headers: HeaderMap) -> Response {
    if let Some(refused) = auth::refusal(&headers, &context) {
        return refused;
    }
    command("rescan", context.control.rescan())
}

/// 202, or why the encoder cannot take the command.
fn command(name: &'static str, sent: Result<(), EncoderError>) -> Response {
    match sent {
        Ok(()) => {
            tracing::info!(command = name, "operator command sent to the encoder");
            json_with_status(StatusCode::ACCEPTED, &Accepted { accepted: name })
        }
        Err(EncoderError::Stopped) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("cannot {name}: the encoder has stopped"),
        ),
        Err(EncoderError::ControlBusy) => error(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("cannot {name} now: too many commands waiting, try again in a moment"),
        ),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("cannot {name}: {e}"),
        ),
    }
}

pub(super) async fn queue(State(context): State<Arc<ApiContext>>, headers: HeaderMap) -> Response {
    if let Some(refused) = auth::refusal(&headers, &context) {
        return refused;
    }
    json(&queue_of(context.control.snapshot()))
}

fn queue_of(snapshot: PlayoutSnapshot) -> Queue {
    Queue {
        now_playing: snapshot.now_playing.as_ref().map(track_of),
        up_next: snapshot.up_next.map(upcoming_of),
    }
}

fn track_of(now: &NowPlaying) -> TrackInfo {
    TrackInfo::from_now_playing(now)
}

fn upcoming_of(next: QueuedSource) -> Upcoming {
    Upcoming {
        id: next.id,
        title: next.title,
        artist: next.artist,
        album: next.album,
        kind: next.kind.as_str(),
    }
}

pub(super) async fn library(
    State(context): State<Arc<ApiContext>>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = auth::refusal(&headers, &context) {
        return refused;
    }
    let snapshot = context.control.snapshot();
    json(&LibraryView {
        tracks: snapshot.tracks,
        skipped: snapshot
            .skipped
            .into_iter()
            .map(|file| Skipped {
                path: file.path,
                reason: file.reason.to_string(),
            })
            .collect(),
        last_rescan: snapshot.last_rescan,
    })
}

pub(super) async fn storage(
    State(context): State<Arc<ApiContext>>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = auth::refusal(&headers, &context) {
        return refused;
    }
    let stats = match context.store.stats().await {
        Ok(stats) => stats,
        Err(e) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("reading the store's size: {e}"),
            )
        }
    };
    let last_gc = match activity::last_gc(&context.store).await {
        Ok(last) => last,
        Err(e) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("reading the last GC run: {e}"),
            )
        }
    };
    json(&Storage {
        blocks: stats.blocks,
        bytes: stats.bytes,
        retention_secs: context.retention.as_secs(),
        last_gc,
    })
}

pub(super) async fn activity(
    State(context): State<Arc<ApiContext>>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = auth::refusal(&headers, &context) {
        return refused;
    }
    json(&ActivityView {
        interval_secs: activity::SAMPLE_INTERVAL.as_secs(),
        capacity: activity::SAMPLE_CAPACITY,
        samples: context.activity.samples(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipfm_encoder::SourceKind;
    use std::time::Duration;

    #[test]
    fn the_queue_names_kinds_in_lower_case_and_times_in_seconds() {
        let snapshot = PlayoutSnapshot {
            now_playing: Some(NowPlaying {
                title: "Now".into(),
                artist: Some("A".into()),
                album: None,
                kind: SourceKind::Track,
                track_start: Duration::from_millis(1500),
            }),
            up_next: Some(QueuedSource {
                id: Some("jingles/id.flac".into()),
                title: "Station ID".into(),
                artist: None,
                album: None,
                kind: SourceKind::Jingle,
            }),
            ..PlayoutSnapshot::default()
        };
        let value = serde_json::to_value(queue_of(snapshot)).unwrap();
        assert_eq!(value["now_playing"]["title"], "Now");
        assert_eq!(value["now_playing"]["kind"], "track");
        assert_eq!(value["now_playing"]["track_start_secs"], 1.5);
        assert_eq!(value["up_next"]["kind"], "jingle");
        assert_eq!(value["up_next"]["id"], "jingles/id.flac");
    }

    #[test]
    fn commands_map_encoder_states_to_http() {
        assert_eq!(command("skip", Ok(())).status(), StatusCode::ACCEPTED);
        assert_eq!(
            command("skip", Err(EncoderError::Stopped)).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            command("rescan", Err(EncoderError::ControlBusy)).status(),
            StatusCode::TOO_MANY_REQUESTS
        );
    }
}
