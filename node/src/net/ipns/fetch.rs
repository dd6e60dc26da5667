//! Serving IPNS records over libp2p fetch (`/libp2p/fetch/0.0.1`; the messages are in
//! `ipfm_protocol::fetch`).
//!
//! A peer that joins a name's pubsub topic, or sees us join it, asks us for the name's
//! current record this way (go-libp2p-pubsub-router in Kubo, `@helia/ipns`): without it a
//! new subscriber waits for the station's next publication. We answer for `/ipns/` keys
//! from the records we hold (our own, the DHT stores', followed names'), `NotFound` when we
//! hold none, and an error for other namespaces. We never fetch ourselves: our own
//! followers get records over gossipsub and the DHT.

use std::io;
use std::time::Duration;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use ipfm_protocol::fetch::{
    decode_request, decode_response, encode_request, encode_response, FetchResponse,
    MAX_REQUEST_SIZE, MAX_RESPONSE_SIZE,
};
use ipfm_protocol::varint::{self, length_prefixed, VarintError};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::StreamProtocol;

/// How long a peer has to send its request and read our answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests served at once per connection; more streams are refused.
const MAX_CONCURRENT_STREAMS: usize = 8;

/// The fetch server as a behaviour (inbound only: we answer, never ask).
pub type Behaviour = request_response::Behaviour<FetchCodec>;
pub type Event = request_response::Event<Vec<u8>, FetchResponse>;

pub fn behaviour() -> Behaviour {
    request_response::Behaviour::with_codec(
        FetchCodec,
        [(
            StreamProtocol::new(ipfm_protocol::fetch::PROTOCOL),
            ProtocolSupport::Inbound,
        )],
        request_response::Config::default()
            .with_request_timeout(REQUEST_TIMEOUT)
            .with_max_concurrent_streams(MAX_CONCURRENT_STREAMS),
    )
}

/// One uvarint-length-prefixed protobuf each way, bounded before anything is allocated.
#[derive(Debug, Clone, Copy, Default)]
pub struct FetchCodec;

impl request_response::Codec for FetchCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = FetchResponse;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        let body = read_frame(io, MAX_REQUEST_SIZE).await?;
        decode_request(&body).map_err(io::Error::other)
    }

    async fn read_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<FetchResponse>
    where
        T: AsyncRead + Unpin + Send,
    {
        let body = read_frame(io, MAX_RESPONSE_SIZE).await?;
        decode_response(&body).map_err(io::Error::other)
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        identifier: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&length_prefixed(&encode_request(&identifier)))
            .await?;
        io.close().await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: FetchResponse,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&length_prefixed(&encode_response(&response)))
            .await?;
        io.close().await
    }
}

/// Read one length-prefixed frame of at most `max` bytes.
async fn read_frame<T>(io: &mut T, max: usize) -> io::Result<Vec<u8>>
where
    T: AsyncRead + Unpin + Send,
{
    // The prefix byte by byte (a uvarint is at most 10), so nothing past it is consumed.
    let mut prefix = Vec::with_capacity(10);
    let len = loop {
        let mut byte = [0u8; 1];
        io.read_exact(&mut byte).await?;
        prefix.push(byte[0]);
        match varint::read(&prefix) {
            Ok((len, _)) => break len,
            Err(VarintError::Truncated) => continue,
            Err(error @ VarintError::Overflow) => {
                return Err(io::Error::new(io::ErrorKind::InvalidData, error));
            }
        }
    };
    if len > max as u64 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("fetch message of {len} bytes exceeds the limit of {max}"),
        ));
    }
    let mut body = vec![0; len as usize];
    io.read_exact(&mut body).await?;
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use request_response::Codec;

    fn protocol() -> StreamProtocol {
        StreamProtocol::new(ipfm_protocol::fetch::PROTOCOL)
    }

    #[tokio::test]
    async fn requests_and_responses_round_trip_through_the_codec() {
        let mut wire = Vec::new();
        let key = b"/ipns/\x00\x24\x08\x01".to_vec();
        FetchCodec
            .write_request(
                &protocol(),
                &mut futures::io::Cursor::new(&mut wire),
                key.clone(),
            )
            .await
            .unwrap();
        let read = FetchCodec
            .read_request(&protocol(), &mut futures::io::Cursor::new(&wire))
            .await
            .unwrap();
        assert_eq!(read, key);

        let mut wire = Vec::new();
        let answer = FetchResponse::Found(vec![9; 300]);
        FetchCodec
            .write_response(
                &protocol(),
                &mut futures::io::Cursor::new(&mut wire),
                answer.clone(),
            )
            .await
            .unwrap();
        // Prefix (2 bytes for 303), field tag and length (3), the data.
        assert_eq!(wire.len(), 2 + 3 + 300);
        let read = FetchCodec
            .read_response(&protocol(), &mut futures::io::Cursor::new(&wire))
            .await
            .unwrap();
        assert_eq!(read, answer);
    }

    #[tokio::test]
    async fn a_declared_length_over_the_limit_is_refused_before_reading_it() {
        // A prefix announcing 1 GiB, and nothing after it.
        let mut wire = Vec::new();
        ipfm_protocol::varint::write(1 << 30, &mut wire);
        let error = FetchCodec
            .read_request(&protocol(), &mut futures::io::Cursor::new(&wire))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        // An endless prefix.
        let error = read_frame(&mut futures::io::Cursor::new(vec![0xff; 64]), 100)
            .await
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        // A truncated body.
        let error = read_frame(&mut futures::io::Cursor::new(vec![5, 1, 2]), 100)
            .await
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
    }
}
