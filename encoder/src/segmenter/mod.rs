//! Turning encoded packets into HLS segments.

pub mod id3;
pub mod ts;
