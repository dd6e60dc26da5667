//! Building the station root directory (and the retained-segments directory) from the
//! station state, storing every block it needs.

use std::collections::BTreeMap;

use ipfm_encoder::Rendition;
use ipfm_protocol::builder::{build_file, BuilderError, CidMode, DirectoryBuilder};
use ipfm_protocol::peer::PeerId;
use ipfm_protocol::Cid;
use ipfm_store::{Blockstore, Store};
use serde::Serialize;

use super::state::{StationState, TrackInfo};
use super::tree::{build_tree, Linked};
use super::StationError;
use crate::hls::{self, Variant};

/// Everything in a station root is built like `ipfs add --cid-version=1`.
const MODE: CidMode = CidMode::V1RawLeaves;

/// `nowplaying.json`.
#[derive(Debug, Serialize)]
struct NowPlayingDoc<'a> {
    station: StationDoc<'a>,
    now: Option<NowDoc<'a>>,
    history: &'a [TrackInfo],
}

#[derive(Debug, Serialize)]
struct StationDoc<'a> {
    /// The configured `station.name` (the player's heading).
    name: &'a str,
    ipns: String,
    peer_id: String,
}

#[derive(Debug, Serialize)]
struct NowDoc<'a> {
    #[serde(flatten)]
    track: &'a TrackInfo,
    /// Sequence of the newest segment.
    sequence: u64,
}

/// Builds roots; holds the player's files (stored once).
pub struct RootBuilder {
    store: Store,
    name: PeerId,
    station_name: String,
    assets: BTreeMap<String, Linked>,
}

impl RootBuilder {
    /// Roots published under `name`'s IPNS name for the station called `station_name`.
    pub fn new(store: Store, name: PeerId, station_name: String) -> Self {
        RootBuilder {
            store,
            name,
            station_name,
            assets: BTreeMap::new(),
        }
    }

    /// Stores the web player's files; they go into every root.
    pub async fn add_player_assets(&mut self) -> Result<(), StationError> {
        for (path, bytes) in crate::player::assets() {
            let linked = self.put_file(bytes).await?;
            self.assets.insert((*path).to_owned(), linked);
        }
        Ok(())
    }

    /// Stores `bytes` as a UnixFS file.
    async fn put_file(&self, bytes: &[u8]) -> Result<Linked, StationError> {
        let (root, blocks) = build_file(bytes, MODE);
        for block in blocks {
            self.store.put(&block.cid, block.data).await?;
        }
        Ok(Linked {
            cid: root.cid,
            tsize: root.tsize,
        })
    }

    /// Builds and stores the root for `state`: player, `master.m3u8`, one playlist and
    /// one segment folder per rendition, `nowplaying.json`.
    pub async fn build(
        &self,
        state: &StationState,
        renditions: &[Rendition],
    ) -> Result<Cid, StationError> {
        let mut files = self.assets.clone();
        let mut variants = Vec::new();
        for rendition in renditions {
            let Some(window) = state.windows.get(&rendition.name) else {
                continue;
            };
            let playlist = window.playlist(&rendition.name);
            files.insert(
                hls::playlist_name(&rendition.name),
                self.put_file(playlist.as_bytes()).await?,
            );
            let blocks = state.blocks.get(&rendition.name);
            for segment in window.segments() {
                let block = blocks.and_then(|b| b.get(&segment.sequence));
                let Some(cid) = block.and_then(|b| b.cid()) else {
                    // Only a corrupt stored state gets here; the playlist still lists the
                    // segment, which then 404s instead of taking the station down.
                    tracing::warn!(sequence = segment.sequence, "segment block unknown");
                    continue;
                };
                files.insert(
                    hls::segment_uri(&rendition.name, segment.sequence),
                    Linked {
                        cid,
                        tsize: segment.size,
                    },
                );
            }
            variants.push(Variant {
                name: rendition.name.clone(),
                bitrate: rendition.bitrate,
                measured_peak: window.peak_bit_rate(),
            });
        }
        let master = hls::master_playlist(&variants);
        files.insert(
            "master.m3u8".into(),
            self.put_file(master.as_bytes()).await?,
        );
        let now_playing = self.now_playing(state)?;
        files.insert("nowplaying.json".into(), self.put_file(&now_playing).await?);

        let (root, blocks) = build_tree(&files, MODE)?;
        for block in blocks {
            self.store.put(&block.cid, block.data).await?;
        }
        Ok(root.cid)
    }

    fn now_playing(&self, state: &StationState) -> Result<Vec<u8>, StationError> {
        let doc = NowPlayingDoc {
            station: StationDoc {
                name: &self.station_name,
                ipns: self.name.to_ipns_name(),
                peer_id: self.name.to_string(),
            },
            now: state.history.first().map(|track| NowDoc {
                track,
                sequence: state.newest_sequence().unwrap_or(0),
            }),
            history: &state.history,
        };
        serde_json::to_vec_pretty(&doc)
            .map_err(|e| StationError::Task(format!("serialising nowplaying.json: {e}")))
    }

    /// A flat directory of the retained segments (`<rendition>-<sequence>.ts`), stored;
    /// `None` when nothing is retained.
    pub async fn build_retained(&self, state: &StationState) -> Result<Option<Cid>, StationError> {
        if state.retained.is_empty() {
            return Ok(None);
        }
        let mut dir = DirectoryBuilder::new(MODE);
        for retained in &state.retained {
            let Some(cid) = retained.block.cid() else {
                continue;
            };
            let name = format!("{}-{}.ts", retained.rendition, retained.sequence);
            match dir.add(&name, cid, retained.block.size) {
                Ok(()) => {}
                // A duplicate can only come from a corrupt state; keep the first.
                Err(BuilderError::DuplicateName(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let (root, block) = dir.finish();
        self.store.put(&block.cid, block.data).await?;
        Ok(Some(root.cid))
    }
}
