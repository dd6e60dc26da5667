//! Bitswap streams: uvarint-length-prefixed messages, several per stream.

use std::io;

use futures::stream::BoxStream;
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use ipfm_protocol::bitswap::{decode_frame, BitswapError, Message};
use libp2p::{Stream, StreamProtocol};

/// First size of a stream's read buffer (it doubles as needed, up to the largest message
/// plus this).
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
/// (and dropping the stream closes it).
pub fn read_messages(
    stream: Stream,
    max_message: usize,
) -> BoxStream<'static, Result<Message, InboundError>> {
    struct State {
        stream: Stream,
        buf: FrameBuffer,
        done: bool,
    }
    let state = State {
        stream,
        buf: FrameBuffer::new(max_message),
        done: false,
    };
    futures::stream::unfold(state, move |mut state| async move {
        if state.done {
            return None;
        }
        loop {
            match decode_frame(state.buf.unread(), max_message) {
                Ok(Some((message, consumed))) => {
                    state.buf.consume(consumed);
                    return Some((Ok(message), state));
                }
                Ok(None) => {}
                Err(error) => {
                    state.done = true;
                    return Some((Err(error.into()), state));
                }
            }
            let Some(space) = state.buf.space() else {
                // Unreachable: a frame that passed `decode_frame`'s length check fits.
                state.done = true;
                let error = io::Error::other("frame larger than the read buffer");
                return Some((Err(error.into()), state));
            };
            match state.stream.read(space).await {
                Ok(0) => {
                    state.done = true;
                    if state.buf.unread().is_empty() {
                        return None;
                    }
                    return Some((Err(InboundError::Truncated), state));
                }
                Ok(read) => state.buf.filled(read),
                Err(error) => {
                    state.done = true;
                    return Some((Err(error.into()), state));
                }
            }
        }
    })
    .boxed()
}

/// The bytes read from one stream and not decoded yet.
///
/// Blocks arrive in messages of about a megabyte, so the buffer is reused rather than
/// re-zeroed per read, consumed frames are skipped by an offset rather than shifted out,
/// and reads go straight into the free tail, as large as it is. It grows (doubling) only
/// when bytes that actually arrived fill it, never because of a declared length, and never
/// beyond `max_message + READ_CHUNK`: `decode_frame` rejects a longer length prefix before
/// its body arrives, so a whole frame (at most `max_message` plus a 10-byte prefix) fits.
struct FrameBuffer {
    bytes: Vec<u8>,
    /// Start of the undecoded bytes.
    start: usize,
    /// End of the bytes read.
    end: usize,
    limit: usize,
}

impl FrameBuffer {
    fn new(max_message: usize) -> Self {
        FrameBuffer {
            bytes: Vec::new(),
            start: 0,
            end: 0,
            limit: max_message.saturating_add(READ_CHUNK),
        }
    }

    fn unread(&self) -> &[u8] {
        &self.bytes[self.start..self.end]
    }

    fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Room for the next read: the free tail, after moving undecoded bytes to the front or
    /// growing when it is full; `None` if the buffer is full at its limit.
    fn space(&mut self) -> Option<&mut [u8]> {
        if self.end == self.bytes.len() && self.start > 0 {
            self.bytes.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.bytes.len() {
            if self.bytes.len() >= self.limit {
                return None;
            }
            let grown = (self.bytes.len() * 2).clamp(READ_CHUNK, self.limit);
            self.bytes.resize(grown, 0);
        }
        Some(&mut self.bytes[self.end..])
    }

    fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(self.bytes.len());
    }
}

/// Write one framed message and hand the stream back for the next one.
pub async fn write_frame(mut stream: Stream, frame: Vec<u8>) -> io::Result<Stream> {
    stream.write_all(&frame).await?;
    stream.flush().await?;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipfm_protocol::bitswap::encode_framed;
    use ipfm_protocol::cid::raw_cid;

    /// Feed `input` through a buffer in reads of at most `read_size`, decoding as
    /// `read_messages` does.
    fn decode_all(
        input: &[u8],
        read_size: usize,
        max_message: usize,
    ) -> (Vec<Message>, FrameBuffer) {
        let mut buf = FrameBuffer::new(max_message);
        let mut messages = Vec::new();
        let mut fed = 0;
        loop {
            while let Some((message, consumed)) =
                decode_frame(buf.unread(), max_message).expect("valid frames")
            {
                buf.consume(consumed);
                messages.push(message);
            }
            if fed == input.len() {
                return (messages, buf);
            }
            let space = buf.space().expect("room for a valid frame");
            let n = space.len().min(read_size).min(input.len() - fed);
            space[..n].copy_from_slice(&input[fed..fed + n]);
            buf.filled(n);
            fed += n;
        }
    }

    fn message_with_block(len: usize, seed: u8) -> Message {
        let data: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(seed)).collect();
        Message {
            blocks: vec![(raw_cid(&data), data)],
            ..Message::default()
        }
    }

    #[test]
    fn frames_split_across_reads_of_any_size_decode_in_order() {
        let sent: Vec<Message> = [1, 300_000, 70_000, 5, 1_000_000]
            .iter()
            .enumerate()
            .map(|(i, len)| message_with_block(*len, i as u8 + 3))
            .collect();
        let stream: Vec<u8> = sent.iter().flat_map(encode_framed).collect();
        for read_size in [1, 7, 4096, READ_CHUNK, 10 * READ_CHUNK, usize::MAX] {
            let (got, buf) = decode_all(&stream, read_size, 2 * 1024 * 1024);
            assert_eq!(got, sent, "read size {read_size}");
            assert!(buf.unread().is_empty());
        }
    }

    #[test]
    fn the_buffer_stays_within_the_largest_message_plus_one_chunk() {
        let max_message = 1024 * 1024;
        let one = encode_framed(&message_with_block(max_message - 100, 5));
        assert!(one.len() <= max_message);
        let stream: Vec<u8> = one.iter().chain(&one).chain(&one).copied().collect();
        let (got, buf) = decode_all(&stream, usize::MAX, max_message);
        assert_eq!(got.len(), 3);
        assert!(buf.bytes.len() <= max_message + READ_CHUNK);
    }

    #[test]
    fn a_declared_length_allocates_nothing_before_its_bytes_arrive() {
        // A 4-byte prefix announcing a frame just under the limit: only the bytes that
        // arrived are buffered, in the first chunk.
        let max_message = 4 * 1024 * 1024;
        let mut prefix = Vec::new();
        ipfm_protocol::varint::write(max_message as u64 - 1, &mut prefix);
        let (got, buf) = decode_all(&prefix, usize::MAX, max_message);
        assert!(got.is_empty());
        assert_eq!(buf.unread(), &prefix[..]);
        assert_eq!(buf.bytes.len(), READ_CHUNK);
    }
}
