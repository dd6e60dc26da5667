//! Streaming response bodies: a producer task walks the DAG and pushes chunks into a small
//! bounded channel, so a response never holds more than a few blocks in memory and a slow
//! client slows the walk down instead of piling data up. When the client goes away the
//! channel closes and the producer stops at its next push.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::Bytes;
use http_body::Frame;
use tokio::sync::mpsc;

use super::error::GatewayError;

/// Chunks in flight between the DAG walk and the socket.
const CHANNEL_CHUNKS: usize = 4;

type Chunk = Result<Bytes, io::Error>;

/// Where a DAG walk writes its output.
pub(crate) enum Sink {
    /// A streaming response body.
    Channel(mpsc::Sender<Chunk>),
    /// An in-memory buffer (small reads such as the content-type sniffing prefix).
    Buffer(Vec<u8>),
}

impl Sink {
    /// Write `bytes`; false when the reader has gone away and the walk should stop.
    pub async fn push(&mut self, bytes: Bytes) -> bool {
        if bytes.is_empty() {
            return true;
        }
        match self {
            Sink::Channel(tx) => tx.send(Ok(bytes)).await.is_ok(),
            Sink::Buffer(buffer) => {
                buffer.extend_from_slice(&bytes);
                true
            }
        }
    }
}

/// A body fed by `produce`, run as its own task. If `produce` fails after the response
/// head was sent, the body ends with an error, which makes the server abort the
/// connection: the client sees a truncated response instead of a silently short one.
pub(crate) fn spawn_body<F, Fut>(what: String, produce: F) -> Body
where
    F: FnOnce(Sink) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), GatewayError>> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
    tokio::spawn(async move {
        // The producer gets its own sender; this one stays behind to report a failure, and
        // both are dropped by the end of the task, which ends the body.
        if let Err(error) = produce(Sink::Channel(tx.clone())).await {
            tracing::warn!(%error, "gateway stream for {what} aborted");
            let _ = tx.send(Err(io::Error::other(error.to_string()))).await;
        }
    });
    Body::new(ChannelBody { rx })
}

struct ChannelBody {
    rx: mpsc::Receiver<Chunk>,
}

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.rx
            .poll_recv(cx)
            .map(|chunk| chunk.map(|result| result.map(Frame::data)))
    }
}
