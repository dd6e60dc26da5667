//! The encoder crate's integration tests, linked into one binary: one link step and one
//! copy of the dependencies instead of one per file (build time and CI disk space).

mod common;

mod control;
mod library;
mod playout;
mod render;
