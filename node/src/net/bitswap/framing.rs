//! Bitswap streams: uvarint-length-prefixed messages, several per stream.

use std::io;

use futures::stream::BoxStream;
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use ipfm_protocol::bitswap::{decode_frame, BitswapError, Message};
use libp2p::{Stream, StreamProtocol};

/// Bytes read from a stream per `read` call.
const READ_CHUNK: usize = 64 * 1024;

/// Why an inbound stream was closed before its end.
#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    #[error("bad message: {0}")]
    Malformed(#[from] BitswapError),
    #[error("stream ended inside a message")]
    Truncated,
    #[error("read failed: {0}")]
    Io(#[from] io::Error),
}

/// The protocol ids we accept on inbound streams (every bitswap version; 1.0.0 senders put
/// blocks in the old `blocks` field, which the decoder reads too).
pub fn inbound_protocols() -> Vec<StreamProtocol> {
    ipfm_protocol::bitswap::PROTOCOLS
        .iter()
        .map(|p| StreamProtocol::new(p))
        .collect()
}

/// The protocol ids we offer on outbound streams, preferred first. We only write the 1.1+
/// `payload` form, so peers that speak nothing newer than 1.0.0 are not offered a stream.
pub fn outbound_protocols() -> Vec<StreamProtocol> {
    ipfm_protocol::bitswap::PROTOCOLS[..2]
        .iter()
        .map(|p| StreamProtocol::new(p))
        .collect()
}

/// Every message on `stream`, in order. The first bad frame ends the stream with an error
/// (and dropping the stream closes it); memory stays bounded by `max_message` plus one read
/// chunk because `decode_frame` rejects a too-large length before its body arrives.
pub fn read_messages(
    stream: Stream,
    max_message: usize,
) -> BoxStream<'static, Result<Message, InboundError>> {
    struct State {
        stream: Stream,
        buf: Vec<u8>,
        done: bool,
    }
    let state = State {
        stream,
        buf: Vec::new(),
        done: false,
    };
    futures::stream::unfold(state, move |mut state| async move {
        if state.done {
            return None;
        }
        loop {
            match decode_frame(&state.buf, max_message) {
                Ok(Some((message, consumed))) => {
                    state.buf.drain(..consumed);
                    return Some((Ok(message), state));
                }
                Ok(None) => {}
                Err(error) => {
                    state.done = true;
                    return Some((Err(error.into()), state));
                }
            }
            let filled = state.buf.len();
            state.buf.resize(filled + READ_CHUNK, 0);
            match state.stream.read(&mut state.buf[filled..]).await {
                Ok(0) => {
                    state.buf.truncate(filled);
                    state.done = true;
                    if state.buf.is_empty() {
                        return None;
                    }
                    return Some((Err(InboundError::Truncated), state));
                }
                Ok(read) => state.buf.truncate(filled + read),
                Err(error) => {
                    state.done = true;
                    return Some((Err(error.into()), state));
                }
            }
        }
    })
    .boxed()
}

/// Write one framed message and hand the stream back for the next one.
pub async fn write_frame(mut stream: Stream, frame: Vec<u8>) -> io::Result<Stream> {
    stream.write_all(&frame).await?;
    stream.flush().await?;
    Ok(stream)
}
