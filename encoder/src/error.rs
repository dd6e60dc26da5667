//! Error type of the encoder crate.

use std::path::PathBuf;

/// Everything that can stop the encoder (as opposed to a bad file, which is
/// only skipped: see [`crate::SkipReason`]).
#[derive(Debug, thiserror::Error)]
pub enum EncoderError {
    #[error("invalid encoder configuration: {0}")]
    Config(String),
    #[error("ffmpeg failed while {context}: {source}")]
    Ffmpeg {
        context: &'static str,
        #[source]
        source: ffmpeg_next::Error,
    },
    #[error("MPEG-TS muxer failed while {context} (error code {code})")]
    Mux { context: &'static str, code: i32 },
    #[error("cannot read music directory {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("encoder thread {0} panicked")]
    ThreadPanicked(String),
    #[error("the station has stopped")]
    Stopped,
    #[error("too many control commands waiting; try again")]
    ControlBusy,
}

impl EncoderError {
    pub(crate) fn ffmpeg(context: &'static str) -> impl FnOnce(ffmpeg_next::Error) -> Self {
        move |source| EncoderError::Ffmpeg { context, source }
    }
}
