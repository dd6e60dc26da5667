//! Playing a followed station into a byte sink (stdout piped into `ffplay -` / `mpv -`):
//! every new segment's MPEG-TS bytes, in order, as roots arrive.

use std::io;

use ipfm_store::Blockstore;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tracing::Instrument;

use super::feed::{FeedEvent, SegmentFeed};
use super::now_playing::NowPlayingLog;
use super::ListenError;
use crate::follow::FollowedRoot;

/// Why playing stopped without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlayEnd {
    /// The reader went away (the player quit: EPIPE).
    ReaderClosed,
    /// The follower stopped (no more roots will come).
    FollowerStopped,
}

/// What a play loop did so far (for the final message and for tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlayStats {
    pub segments: u64,
    pub bytes: u64,
    pub discontinuities: u64,
}

/// Writes each new segment of `feed` to `out` as roots come in on `roots`, and each
/// now-playing change as a line to `lines` (stderr in the CLI). Returns when the reader
/// of `out` goes away or `roots`' sender is dropped.
///
/// A root the feed cannot read is logged and skipped: its segments are still in the next
/// root's window, and the feed reports any it could not recover. A missing rendition is
/// an error (the listener asked for something the station does not have).
pub async fn play<S, W>(
    feed: &mut SegmentFeed<S>,
    roots: &mut watch::Receiver<Option<FollowedRoot>>,
    out: &mut W,
    lines: &mut (dyn io::Write + Send),
    stats: &mut PlayStats,
) -> Result<PlayEnd, ListenError>
where
    S: Blockstore + Clone + Send + Sync + 'static,
    W: AsyncWrite + Unpin + Send,
{
    let mut now_playing = NowPlayingLog::new();
    loop {
        // Mark the current value seen before reading it: a root arriving meanwhile wakes
        // the next `changed()` instead of being lost.
        let followed = roots.borrow_and_update().clone();
        if let Some(followed) = followed {
            let span = tracing::info_span!(
                "root",
                root = %followed.root,
                sequence = followed.sequence
            );
            let step = play_root(feed, &followed, &mut now_playing, out, lines, stats)
                .instrument(span)
                .await?;
            if let Some(end) = step {
                return Ok(end);
            }
        }
        if roots.changed().await.is_err() {
            return Ok(PlayEnd::FollowerStopped);
        }
    }
}

/// Writes what `followed` brings; `Some` when playing must end.
async fn play_root<S, W>(
    feed: &mut SegmentFeed<S>,
    followed: &FollowedRoot,
    now_playing: &mut NowPlayingLog,
    out: &mut W,
    lines: &mut (dyn io::Write + Send),
    stats: &mut PlayStats,
) -> Result<Option<PlayEnd>, ListenError>
where
    S: Blockstore + Clone + Send + Sync + 'static,
    W: AsyncWrite + Unpin + Send,
{
    if let Some(line) = now_playing.update(feed.store(), followed).await {
        // stderr going away is no reason to stop the music.
        let _ = writeln!(lines, "{line}");
    }
    let events = match feed.events(&followed.root).await {
        Ok(events) => events,
        Err(error @ ListenError::NoRendition { .. }) => return Err(error),
        Err(error) => {
            tracing::warn!(%error, "root skipped; its segments come with the next one");
            return Ok(None);
        }
    };
    for event in events {
        match event {
            FeedEvent::Segment(segment) => {
                if let Err(error) = write_segment(out, &segment.bytes).await {
                    return match error.kind() {
                        io::ErrorKind::BrokenPipe => Ok(Some(PlayEnd::ReaderClosed)),
                        _ => Err(ListenError::Output(error)),
                    };
                }
                stats.segments += 1;
                stats.bytes += segment.bytes.len() as u64;
                tracing::debug!(sequence = segment.sequence, "segment written");
            }
            FeedEvent::Discontinuity(discontinuity) => {
                stats.discontinuities += 1;
                let _ = writeln!(lines, "discontinuity: {discontinuity}");
            }
        }
    }
    Ok(None)
}

async fn write_segment<W: AsyncWrite + Unpin>(out: &mut W, bytes: &[u8]) -> io::Result<()> {
    out.write_all(bytes).await?;
    // A pipe reader (the player) should get each segment as soon as it is complete.
    out.flush().await
}
