//! The node crate's integration tests, linked into one binary: one link step and one
//! copy of the dependencies instead of one per file (build time and CI disk space).

mod common;

mod admin_page;
mod api_config;
mod api_http;
mod cli;
mod gateway_http;
mod interop_helia;
mod interop_js;
mod interop_kubo;
mod listen;
mod net_announce;
mod net_bitswap;
mod net_dht;
mod net_flood;
mod net_ipns;
mod net_kubo;
mod net_limits;
mod net_provide;
mod net_relay;
mod net_simulation;
mod player_page;
mod relay;
mod relay_fanout;
mod relay_listen;
mod render_hls;
mod station_live;
mod station_p2p;
