//! Control commands (skip, rescan) taken between segments and while the
//! producer waits, and what the controls see: now playing, up next and the
//! library.

use std::time::Duration;

use super::{Producer, SegmentInfo};
use crate::config::SAMPLE_RATE;
use crate::control::{self, Command, QueuedSource};
use crate::demo;
use crate::events::SourceKind;
use crate::pipeline::mix::Mixer;
use crate::playout::Pick;

/// Shortest and longest fade when a source is skipped: the configured
/// crossfade within these bounds (a skip never cuts without a fade, and
/// never lingers).
const SKIP_FADE_MIN: Duration = Duration::from_millis(200);
const SKIP_FADE_MAX: Duration = Duration::from_secs(3);

impl Producer {
    /// Takes every waiting control command without blocking.
    pub(super) fn poll_commands(&mut self) {
        while let Ok(command) = self.commands.try_recv() {
            self.take_command(command);
        }
    }

    pub(super) fn take_command(&mut self, command: Command) {
        tracing::debug!(?command, "control command");
        match command {
            Command::Skip => self.skip_requested = true,
            Command::Rescan => self.rescan_requested = true,
        }
    }

    /// Carries out a requested skip once the next source is ready (its
    /// decode is started at once if it was not due yet).
    pub(super) fn apply_skip(&mut self, mixer: &mut Mixer) {
        if std::mem::take(&mut self.skip_requested) {
            self.skip_target = mixer.current_serial();
        }
        let Some(target) = self.skip_target else {
            return;
        };
        if mixer.current_serial() != Some(target) {
            // That source has ended by itself meanwhile.
            self.skip_target = None;
            return;
        }
        if !mixer.has_queued() {
            self.prepare_ahead(mixer);
        }
        if mixer.skip(self.skip_fade()) {
            tracing::info!("skipping to the next source");
            self.skip_target = None;
        }
    }

    /// Frames of the fade that ends a skipped source.
    fn skip_fade(&self) -> u64 {
        let fade = self.config.crossfade.clamp(SKIP_FADE_MIN, SKIP_FADE_MAX);
        (fade.as_secs_f64() * f64::from(SAMPLE_RATE)).round() as u64
    }

    /// Shows the segment's latest source as now playing, and what comes next.
    pub(super) fn publish_playing(&self, job: &SegmentInfo) {
        let now = job
            .changes
            .last()
            .map(|(_, n)| n)
            .unwrap_or(&job.now_playing)
            .clone();
        let up_next = match &self.upcoming {
            Some(upcoming) => Some(upcoming.queued_source()),
            None => self.peek_next(),
        };
        if let Ok(mut shared) = self.shared.lock() {
            shared.now_playing = Some(now);
            shared.up_next = up_next;
        }
    }

    /// What the rotation would pick now, without picking it.
    fn peek_next(&self) -> Option<QueuedSource> {
        let pick = self.rotation.clone().next(&self.library, &self.jingles);
        let Some(pick) = pick else {
            return self.demo_allowed().then(|| QueuedSource {
                id: None,
                title: demo::DEMO_TITLE.into(),
                artist: Some(demo::DEMO_ARTIST.into()),
                album: None,
                kind: SourceKind::Demo,
            });
        };
        let (track, kind) = match &pick {
            Pick::Track(id) => (self.library.get(id)?, SourceKind::Track),
            Pick::Jingle(id) => (self.jingles.get(id)?, SourceKind::Jingle),
        };
        Some(QueuedSource {
            id: Some(track.id.clone()),
            title: track.display_title(),
            artist: track.tags.artist.clone(),
            album: track.tags.album.clone(),
            kind,
        })
    }

    /// Makes the library and skip list visible to the controls and
    /// [`crate::EncoderHandle::skipped_files`].
    pub(super) fn publish_library(&self) {
        control::publish_library(&self.shared, &self.library, &self.jingles);
    }
}
