//! One bitswap connection: reads every inbound stream, writes queued frames on one reused
//! outbound stream (opening a new one when it breaks).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::{ready, Ready};
use std::io;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::{BoxStream, SelectAll};
use futures::{FutureExt, StreamExt};
use ipfm_protocol::bitswap::Message;
use libp2p::core::{InboundUpgrade, OutboundUpgrade, UpgradeInfo};
use libp2p::swarm::handler::{
    ConnectionEvent, DialUpgradeError, FullyNegotiatedInbound, FullyNegotiatedOutbound,
};
use libp2p::swarm::{
    ConnectionHandler, ConnectionHandlerEvent, Stream, StreamUpgradeError, SubstreamProtocol,
};
use libp2p::StreamProtocol;

use super::framing::{
    inbound_protocols, outbound_protocols, read_messages, write_frame, InboundError,
};

/// Inbound streams read at once on one connection; more are closed on arrival.
const MAX_INBOUND_STREAMS: usize = 32;
/// A frame that cannot be written within this time is dropped (the peer stopped reading).
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Offers a list of protocol ids and hands the negotiated stream over as is.
#[derive(Debug, Clone)]
pub struct BitswapUpgrade(Vec<StreamProtocol>);

impl UpgradeInfo for BitswapUpgrade {
    type Info = StreamProtocol;
    type InfoIter = std::vec::IntoIter<StreamProtocol>;

    fn protocol_info(&self) -> Self::InfoIter {
        self.0.clone().into_iter()
    }
}

impl InboundUpgrade<Stream> for BitswapUpgrade {
    type Output = Stream;
    type Error = Infallible;
    type Future = Ready<Result<Stream, Infallible>>;

    fn upgrade_inbound(self, stream: Stream, _: StreamProtocol) -> Self::Future {
        ready(Ok(stream))
    }
}

impl OutboundUpgrade<Stream> for BitswapUpgrade {
    type Output = Stream;
    type Error = Infallible;
    type Future = Ready<Result<Stream, Infallible>>;

    fn upgrade_outbound(self, stream: Stream, _: StreamProtocol) -> Self::Future {
        ready(Ok(stream))
    }
}

/// From the behaviour: a framed message to send.
#[derive(Debug)]
pub struct OutboundFrame(pub Vec<u8>);

/// To the behaviour.
#[derive(Debug)]
pub enum HandlerEvent {
    Received(Message),
    /// An inbound stream was closed because of what the peer sent on it.
    InboundClosed(InboundError),
    /// A queued frame left (`sent`) or was dropped; either way its bytes are no longer queued.
    FrameDone {
        bytes: usize,
        sent: bool,
    },
    /// The peer does not speak a bitswap version we send.
    Unsupported,
}

enum Outbound {
    /// No stream yet (or the last one broke).
    Closed,
    Opening,
    Idle(Stream),
    Writing {
        write: BoxFuture<'static, io::Result<Stream>>,
        bytes: usize,
    },
    /// Negotiation failed: the peer has no bitswap we can send with.
    Unsupported,
}

pub struct Handler {
    max_message: usize,
    inbound: SelectAll<BoxStream<'static, Result<Message, InboundError>>>,
    queue: VecDeque<Vec<u8>>,
    outbound: Outbound,
    events: VecDeque<HandlerEvent>,
}

impl Handler {
    pub fn new(max_message: usize) -> Self {
        Handler {
            max_message,
            inbound: SelectAll::new(),
            queue: VecDeque::new(),
            outbound: Outbound::Closed,
            events: VecDeque::new(),
        }
    }

    fn drop_queue(&mut self) {
        for frame in self.queue.drain(..) {
            self.events.push_back(HandlerEvent::FrameDone {
                bytes: frame.len(),
                sent: false,
            });
        }
    }

    fn on_dial_upgrade_error(&mut self, error: StreamUpgradeError<Infallible>) {
        match error {
            StreamUpgradeError::NegotiationFailed => {
                self.outbound = Outbound::Unsupported;
                self.drop_queue();
                self.events.push_back(HandlerEvent::Unsupported);
            }
            other => {
                tracing::debug!(error = %other, "bitswap: opening a stream failed");
                // Drop the frame we meant to send so a peer that keeps failing cannot pin
                // the queue; the next frame tries a fresh stream.
                self.outbound = Outbound::Closed;
                if let Some(frame) = self.queue.pop_front() {
                    self.events.push_back(HandlerEvent::FrameDone {
                        bytes: frame.len(),
                        sent: false,
                    });
                }
            }
        }
    }

    /// Advance the outbound side; returns a substream request when one is needed.
    fn poll_outbound(&mut self, cx: &mut Context<'_>) -> Option<SubstreamProtocol<BitswapUpgrade>> {
        loop {
            match std::mem::replace(&mut self.outbound, Outbound::Closed) {
                Outbound::Closed if !self.queue.is_empty() => {
                    self.outbound = Outbound::Opening;
                    return Some(SubstreamProtocol::new(
                        BitswapUpgrade(outbound_protocols()),
                        (),
                    ));
                }
                Outbound::Idle(stream) => match self.queue.pop_front() {
                    Some(frame) => {
                        let bytes = frame.len();
                        let write = async move {
                            tokio::time::timeout(WRITE_TIMEOUT, write_frame(stream, frame))
                                .await
                                .unwrap_or_else(|_| {
                                    Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out"))
                                })
                        };
                        self.outbound = Outbound::Writing {
                            write: write.boxed(),
                            bytes,
                        };
                    }
                    None => {
                        self.outbound = Outbound::Idle(stream);
                        return None;
                    }
                },
                Outbound::Writing { mut write, bytes } => match write.poll_unpin(cx) {
                    Poll::Pending => {
                        self.outbound = Outbound::Writing { write, bytes };
                        return None;
                    }
                    Poll::Ready(result) => {
                        let sent = result.is_ok();
                        if let Err(error) = &result {
                            tracing::debug!(%error, "bitswap: write failed");
                        }
                        self.events
                            .push_back(HandlerEvent::FrameDone { bytes, sent });
                        self.outbound = match result {
                            Ok(stream) => Outbound::Idle(stream),
                            Err(_) => Outbound::Closed,
                        };
                    }
                },
                other => {
                    self.outbound = other;
                    return None;
                }
            }
        }
    }
}

impl ConnectionHandler for Handler {
    type FromBehaviour = OutboundFrame;
    type ToBehaviour = HandlerEvent;
    type InboundProtocol = BitswapUpgrade;
    type OutboundProtocol = BitswapUpgrade;
    type InboundOpenInfo = ();
    type OutboundOpenInfo = ();

    fn listen_protocol(&self) -> SubstreamProtocol<Self::InboundProtocol> {
        SubstreamProtocol::new(BitswapUpgrade(inbound_protocols()), ())
    }

    fn on_behaviour_event(&mut self, OutboundFrame(frame): OutboundFrame) {
        if matches!(self.outbound, Outbound::Unsupported) {
            self.events.push_back(HandlerEvent::FrameDone {
                bytes: frame.len(),
                sent: false,
            });
        } else {
            self.queue.push_back(frame);
        }
    }

    fn connection_keep_alive(&self) -> bool {
        !self.queue.is_empty() || matches!(self.outbound, Outbound::Writing { .. })
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ConnectionHandlerEvent<Self::OutboundProtocol, (), Self::ToBehaviour>> {
        if let Some(protocol) = self.poll_outbound(cx) {
            return Poll::Ready(ConnectionHandlerEvent::OutboundSubstreamRequest { protocol });
        }
        if let Some(event) = self.events.pop_front() {
            return Poll::Ready(ConnectionHandlerEvent::NotifyBehaviour(event));
        }
        match self.inbound.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(message))) => Poll::Ready(ConnectionHandlerEvent::NotifyBehaviour(
                HandlerEvent::Received(message),
            )),
            Poll::Ready(Some(Err(error))) => Poll::Ready(ConnectionHandlerEvent::NotifyBehaviour(
                HandlerEvent::InboundClosed(error),
            )),
            Poll::Ready(None) | Poll::Pending => Poll::Pending,
        }
    }

    fn on_connection_event(
        &mut self,
        event: ConnectionEvent<Self::InboundProtocol, Self::OutboundProtocol>,
    ) {
        match event {
            ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound {
                protocol: stream,
                ..
            }) => {
                if self.inbound.len() >= MAX_INBOUND_STREAMS {
                    tracing::debug!("bitswap: too many inbound streams, closing the new one");
                    drop(stream);
                } else {
                    self.inbound.push(read_messages(stream, self.max_message));
                }
            }
            ConnectionEvent::FullyNegotiatedOutbound(FullyNegotiatedOutbound {
                protocol: stream,
                ..
            }) => {
                self.outbound = Outbound::Idle(stream);
            }
            ConnectionEvent::DialUpgradeError(DialUpgradeError { error, .. }) => {
                self.on_dial_upgrade_error(error)
            }
            _ => {}
        }
    }
}
