//! ipfm node: wires the protocol formats, the store and (later) the encoder and the
//! network into a station. The `ipfm` binary is a thin CLI over this library.

pub mod api;
pub mod config;
pub mod follow;
pub mod gateway;
pub mod hls;
pub mod import;
pub mod listen;
pub mod metrics;
pub mod net;
pub mod player;
pub mod relay;
pub mod render;
pub mod repo;
pub mod station;
