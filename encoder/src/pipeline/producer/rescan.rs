//! Library rescans: periodic in realtime mode or on request, run on their
//! own thread (probing a bulk import can take minutes) and swapped in when
//! done.

use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{bounded, Receiver, TryRecvError};

use super::Producer;
use crate::control::RescanSummary;
use crate::library::Library;
use crate::Mode;

/// A library rescan running in the background.
pub(super) struct Rescan {
    thread: JoinHandle<()>,
    result: Receiver<RescanResult>,
}

/// Both libraries after a rescan, with what changed.
struct RescanResult {
    music: Library,
    jingles: Library,
    added: usize,
    removed: usize,
}

impl Producer {
    /// Realtime mode picks up added and removed files every
    /// `rescan_interval`. The rescan runs on its own thread (probing a bulk
    /// import can take minutes) and is swapped in when done.
    pub(super) fn maybe_rescan(&mut self) {
        if let Some(rescan) = &self.rescan {
            match rescan.result.try_recv() {
                Ok(result) => {
                    self.library = result.music;
                    self.jingles = result.jingles;
                    self.rotation.sync(&self.library);
                    self.publish_library();
                    let skipped = self.library.skipped().len() + self.jingles.skipped().len();
                    let summary = RescanSummary::now(result.added, result.removed, skipped);
                    if let Ok(mut shared) = self.shared.lock() {
                        shared.last_rescan = Some(summary);
                    }
                    self.finish_rescan();
                    self.last_rescan = Instant::now();
                }
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => {
                    self.finish_rescan();
                    self.last_rescan = Instant::now();
                }
            }
            return;
        }
        let due = self.mode == Mode::Realtime
            && self.last_rescan.elapsed() >= self.config.rescan_interval;
        if !due && !std::mem::take(&mut self.rescan_requested) {
            return;
        }
        self.rescan_requested = false;
        let (mut music, mut jingles) = (self.library.clone(), self.jingles.clone());
        let cancel = self.stop_flag.clone();
        let (tx, rx) = bounded(1);
        let spawned = std::thread::Builder::new()
            .name("ipfm-rescan".into())
            .spawn(move || {
                let (mut added, mut removed) = (0, 0);
                for library in [&mut music, &mut jingles] {
                    match library.rescan_until(&cancel) {
                        Ok(report) => {
                            if !report.added.is_empty() || !report.removed.is_empty() {
                                tracing::info!(
                                    root = %library.root().display(),
                                    added = report.added.len(),
                                    removed = report.removed.len(),
                                    "library changed"
                                );
                            }
                            added += report.added.len();
                            removed += report.removed.len();
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "rescan failed");
                            return;
                        }
                    }
                }
                if !cancel.load(Ordering::Relaxed) {
                    let _ = tx.send(RescanResult {
                        music,
                        jingles,
                        added,
                        removed,
                    });
                }
            });
        match spawned {
            Ok(thread) => {
                self.rescan = Some(Rescan { thread, result: rx });
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot start a rescan");
                self.last_rescan = Instant::now();
            }
        }
    }

    pub(super) fn finish_rescan(&mut self) {
        if let Some(rescan) = self.rescan.take() {
            let _ = rescan.thread.join();
        }
    }
}
