//! `ipfm listen STATION`: follow a station peer to peer and play it locally.
//!
//! ```text
//! follower (announcements + bitswap → store) ─► watch<FollowedRoot>
//!     ├─► SegmentFeed (one rendition's new segments, in order) ─► stdout (ffplay -, mpv -)
//!     ├─► or LocalHls: the gateway on --serve ADDR, /ipns/<station>/ → newest record
//!     ├─► now-playing lines on stderr
//!     └─► retention: newest root pinned, older blocks collected
//! ```

mod feed;
mod now_playing;
mod play;
mod retention;
mod run;
mod serve;
mod target;

pub use feed::{
    Discontinuity, FeedEvent, FeedSegment, SegmentFeed, StartAt, MAX_PLAYLIST_BYTES,
    MAX_SEGMENT_BYTES,
};
pub use now_playing::{now_playing_in_root, now_playing_line, NowPlayingLog};
pub use play::{play, PlayEnd, PlayStats};
pub use retention::{keep_window, DEFAULT_GC_INTERVAL, DEFAULT_GC_MIN_AGE, LISTEN_ROOT_PIN};
pub use run::{run, ListenConfig, ListenEnd, ListenOutput, DEFAULT_TIMEOUT};
pub use serve::LocalHls;
pub use target::StationTarget;

use std::net::SocketAddr;

use crate::gateway::GatewayError;

/// The rendition played unless `--rendition` says otherwise.
pub const DEFAULT_RENDITION: &str = "midfi";

/// Why listening failed.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error(
        "not an IPNS name: {text} ({reason}); expected k51…, 12D3KooW…/Qm… or a multiaddr \
         ending in /p2p/<peer id>"
    )]
    NotAName { text: String, reason: String },
    #[error("station {name} not reachable: no record within {} s", .waited.as_secs())]
    Unreachable {
        name: String,
        waited: std::time::Duration,
    },
    #[error("station {name} sent a bad record: {detail}")]
    BadRecord { name: String, detail: String },
    #[error("the station has no rendition {rendition:?} (it has: {})", .available.join(", "))]
    NoRendition {
        rendition: String,
        available: Vec<String>,
    },
    #[error("{name}: {detail}")]
    BadPlaylist { name: String, detail: String },
    // Boxed: a gateway error carries CIDs and would make every listener `Result` large.
    #[error("reading from the station root: {0}")]
    Read(Box<GatewayError>),
    #[error("listening on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("writing the stream: {0}")]
    Output(std::io::Error),
    #[error("network: {0}")]
    Network(String),
}

impl From<GatewayError> for ListenError {
    fn from(error: GatewayError) -> Self {
        ListenError::Read(Box::new(error))
    }
}
