//! What the behaviour has decided to send, per peer, until the next flush turns it into
//! messages (so one poll's wants, presences and blocks for a peer share messages).

use std::collections::HashMap;

use cid::Cid;
use ipfm_protocol::bitswap::{BlockPresence, Message, Wantlist, WantlistEntry};
use libp2p::PeerId;

/// Block bytes put in one message before starting the next (well under the 4 MiB limit, so
/// one block of up to 2 MiB always fits with the rest).
const TARGET_MESSAGE_BLOCK_BYTES: usize = 1024 * 1024;

#[derive(Default)]
struct Outgoing {
    entries: Vec<WantlistEntry>,
    presences: Vec<BlockPresence>,
    blocks: Vec<(Cid, Vec<u8>)>,
}

#[derive(Default)]
pub struct Outbox {
    peers: HashMap<PeerId, Outgoing>,
}

impl Outbox {
    pub fn want(&mut self, peer: PeerId, entry: WantlistEntry) {
        self.peers.entry(peer).or_default().entries.push(entry);
    }

    pub fn presence(&mut self, peer: PeerId, presence: BlockPresence) {
        self.peers.entry(peer).or_default().presences.push(presence);
    }

    pub fn block(&mut self, peer: PeerId, cid: Cid, data: Vec<u8>) {
        self.peers.entry(peer).or_default().blocks.push((cid, data));
    }

    pub fn forget(&mut self, peer: &PeerId) {
        self.peers.remove(peer);
    }

    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// Everything queued, as messages per peer.
    pub fn drain(&mut self) -> Vec<(PeerId, Message)> {
        let mut out = Vec::new();
        for (peer, outgoing) in self.peers.drain() {
            let mut first = Message::default();
            if !outgoing.entries.is_empty() {
                first.wantlist = Some(Wantlist {
                    entries: outgoing.entries,
                    full: false,
                });
            }
            first.presences = outgoing.presences;
            let mut current = first;
            let mut current_bytes = 0;
            for (cid, data) in outgoing.blocks {
                if current_bytes > 0 && current_bytes + data.len() > TARGET_MESSAGE_BLOCK_BYTES {
                    out.push((peer, std::mem::take(&mut current)));
                    current_bytes = 0;
                }
                current_bytes += data.len();
                current.blocks.push((cid, data));
            }
            if current != Message::default() {
                out.push((peer, current));
            }
        }
        out
    }
}
