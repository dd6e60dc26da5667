//! The running station: one producer thread (mix → cut) fed by a decode
//! thread that prepares the next source ahead (decode → measure loudness →
//! spill), feeding one encoder thread per rendition through bounded channels.

pub(crate) mod aac;
pub(crate) mod decode;
pub(crate) mod loudness;
pub(crate) mod mix;
pub(crate) mod normalise;
mod producer;
mod rendition;
pub(crate) mod source;

pub(crate) use producer::{Producer, SegmentInfo, SegmentJob};
pub(crate) use rendition::run_rendition;
