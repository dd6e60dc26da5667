//! The station loop: one task turns encoder events into stored segments, live windows,
//! a pinned root and a signed IPNS record handed to every publisher.

use super::*;

/// A segment stored and waiting for the other renditions of its sequence.
pub(super) struct Arrived {
    segment: Segment,
    cid: Cid,
    size: u64,
    /// When it came out of the encoder (for the publish latency).
    at: Instant,
}

pub(super) struct Runner {
    pub(super) store: Store,
    pub(super) key: SigningKey,
    pub(super) name: PeerId,
    pub(super) names: Arc<LocalNames>,
    pub(super) publishers: Vec<Arc<dyn Publisher>>,
    pub(super) config: StationConfig,
    pub(super) state: StationState,
    pub(super) root: RootBuilder,
    /// Segments by sequence until every rendition's cut is in.
    pub(super) pending: BTreeMap<u64, Vec<Arrived>>,
    /// Position after the newest published segment.
    pub(super) position: Option<PlayoutPosition>,
    /// Segment blocks not yet announced to the publishers.
    pub(super) new_segments: Vec<Cid>,
    pub(super) published: watch::Sender<Option<Published>>,
    pub(super) metrics: Arc<StationMetrics>,
}

impl Runner {
    pub(super) async fn run(
        mut self,
        mut events: mpsc::Receiver<EncoderEvent>,
        encoder: EncoderHandle,
        bridge: std::thread::JoinHandle<()>,
        mut stop: oneshot::Receiver<()>,
    ) -> Result<(), StationError> {
        let mut gc = tokio::time::interval(self.config.gc_interval);
        gc.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        gc.tick().await; // the first tick is immediate; nothing to collect yet
        let outcome = loop {
            tokio::select! {
                // A stop request, or the handle was dropped.
                _ = &mut stop => break Ok(()),
                event = events.recv() => match event {
                    Some(event) => {
                        if let Err(e) = self.on_event(event).await {
                            break Err(e);
                        }
                    }
                    // Single pass over, or the encoder ended.
                    None => break Ok(()),
                },
                _ = gc.tick() => self.collect_garbage().await,
            }
        };
        // Stop the encoder (in-flight segments are dropped), then take what it finished.
        let stopped = tokio::task::spawn_blocking(move || encoder.stop());
        let drained = async {
            while let Some(event) = events.recv().await {
                if outcome.is_ok() {
                    if let Err(e) = self.on_event(event).await {
                        tracing::warn!(error = %e, "segment after stop not kept");
                    }
                }
            }
        };
        // The encoder stops within a segment; do not hang on a stuck thread.
        if tokio::time::timeout(Duration::from_secs(5), drained)
            .await
            .is_err()
        {
            tracing::warn!("encoder did not stop within 5 s");
        }
        match stopped.await {
            Ok(Err(e)) => tracing::warn!(error = %e, "encoder ended with an error"),
            Err(e) => tracing::warn!(error = %e, "encoder stop task failed"),
            Ok(Ok(())) => {}
        }
        let _ = tokio::task::spawn_blocking(move || bridge.join()).await;
        if outcome.is_ok() && self.has_segments() {
            self.publish().await?;
        }
        self.store.flush().await?;
        outcome
    }

    pub(super) fn has_segments(&self) -> bool {
        self.state.windows.values().any(|w| !w.is_empty())
    }

    async fn on_event(&mut self, event: EncoderEvent) -> Result<(), StationError> {
        match event {
            EncoderEvent::Segment(segment) => self.on_segment(segment).await,
            EncoderEvent::Skipped(file) => {
                tracing::warn!(path = %file.path, reason = %file.reason, "file skipped");
                Ok(())
            }
        }
    }

    async fn on_segment(&mut self, mut segment: Segment) -> Result<(), StationError> {
        let bytes = std::mem::take(&mut segment.bytes);
        let (cid, size) = (raw_cid(&bytes), bytes.len() as u64);
        self.store.put(&cid, bytes).await?;
        self.metrics.segment_encoded(&segment.rendition);
        let sequence = segment.sequence;
        let arrived = self.pending.entry(sequence).or_default();
        arrived.push(Arrived {
            segment,
            cid,
            size,
            at: Instant::now(),
        });
        if arrived.len() >= self.config.encoder.renditions.len() {
            self.commit(sequence).await?;
        }
        Ok(())
    }

    /// Every rendition of `sequence` is stored: slide the windows and publish.
    async fn commit(&mut self, sequence: u64) -> Result<(), StationError> {
        // Older incomplete sequences can only be leftovers of a dropped segment.
        let stale: Vec<u64> = self.pending.range(..sequence).map(|(s, _)| *s).collect();
        for s in stale {
            tracing::warn!(sequence = s, "incomplete segment set dropped");
            self.pending.remove(&s);
        }
        let Some(arrived) = self.pending.remove(&sequence) else {
            return Ok(());
        };
        let now = SystemTime::now();
        let first_arrival = arrived.iter().map(|a| a.at).min();
        for Arrived {
            segment, cid, size, ..
        } in &arrived
        {
            self.state.push_segment(
                &segment.rendition,
                PlaylistSegment::new(
                    segment.sequence,
                    segment.duration,
                    *size,
                    segment.discontinuity,
                ),
                SegmentBlock::new(cid, *size),
                self.config.window,
                now,
            );
            self.new_segments.push(*cid);
        }
        if let Some(first) = arrived.first() {
            self.state.note_track(
                TrackInfo::from_now_playing(&first.segment.now_playing),
                HISTORY_LEN,
            );
            self.position = Some(first.segment.position.clone());
        }
        let ipns_sequence = self.publish().await?;
        if let Some(first_arrival) = first_arrival {
            self.metrics
                .published(first_arrival.elapsed(), ipns_sequence);
        }
        Ok(())
    }

    /// Builds, pins, signs and publishes the root for the current windows, then persists.
    /// Returns the IPNS sequence published.
    pub(super) async fn publish(&mut self) -> Result<u64, StationError> {
        let now = SystemTime::now();
        self.state.expire(self.config.retention, now);
        self.pin_retained().await?;
        let root = self
            .root
            .build(&self.state, &self.config.encoder.renditions)
            .await?;
        self.store.pin(ROOT_PIN, root).await?;

        // What this root is built from is on disk before anyone can see the root: after a
        // crash the station resumes past every segment it ever published, never reusing a
        // media sequence number for other bytes.
        let media_sequence = self
            .state
            .windows
            .values()
            .map(|w| w.media_sequence())
            .max()
            .unwrap_or(0);
        let position = self
            .position
            .as_ref()
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| StationError::Task(format!("serialising the position: {e}")))?;
        let state = serde_json::to_vec(&self.state)
            .map_err(|e| StationError::Task(format!("serialising the station state: {e}")))?;
        self.store
            .save_progress(media_sequence, position, (STATE_KEY, state))
            .await?;

        // Stored (durably) before use: a crash can never make a later record lose.
        let ipns_sequence = self.store.next_ipns_sequence().await?;
        let eol = now + self.config.ipns_validity;
        let record = IpnsRecord::create(
            &self.key,
            &format!("/ipfs/{root}"),
            ipns_sequence,
            eol,
            self.config.ttl(),
        );
        let update = RootUpdate {
            name: self.name,
            record,
            root,
            new_segments: std::mem::take(&mut self.new_segments),
        };
        self.names.publish(self.name, update.record.clone())?;
        for publisher in &self.publishers {
            if let Err(e) = publisher.publish(&update).await {
                tracing::warn!(error = %e, %root, "publisher failed");
            }
        }

        tracing::debug!(%root, ipns_sequence, media_sequence, "published");
        self.published.send_replace(Some(Published {
            root,
            ipns_sequence,
            media_sequence,
            newest_sequence: self.state.newest_sequence().unwrap_or(0),
            now_playing: self.state.history.first().cloned(),
            at: now,
        }));
        self.metrics.set_ipns_sequence(ipns_sequence);
        Ok(ipns_sequence)
    }

    async fn pin_retained(&mut self) -> Result<(), StationError> {
        match self.root.build_retained(&self.state).await? {
            Some(dir) => {
                self.store.pin(RETAINED_PIN, dir).await?;
            }
            None => {
                self.store.unpin(RETAINED_PIN).await?;
            }
        }
        Ok(())
    }

    async fn collect_garbage(&mut self) {
        // Expire first, so that segments past retention are no longer pinned.
        if self.state.expire(self.config.retention, SystemTime::now()) {
            if let Err(e) = self.pin_retained().await {
                tracing::warn!(error = %e, "updating the retained segments failed");
            }
        }
        match collect_garbage(&self.store, self.config.retention, &self.metrics).await {
            Ok(report) => {
                tracing::debug!(
                    removed = report.removed_blocks,
                    bytes = report.removed_bytes,
                    kept = report.kept_blocks,
                    "retention GC"
                )
            }
            Err(e) => tracing::warn!(error = %e, "retention GC failed"),
        }
    }
}

/// One retention GC pass (blocks no pin reaches and older than `retention`) with its
/// metrics: shared by the station's timer and `POST /api/v1/gc`.
pub async fn collect_garbage(
    store: &Store,
    retention: Duration,
    metrics: &StationMetrics,
) -> Result<ipfm_store::GcReport, ipfm_store::StoreError> {
    use ipfm_store::Blockstore;
    let report = store.gc(retention).await?;
    metrics.gc_ran(report.removed_blocks, report.removed_bytes);
    if let Err(e) = super::activity::record_gc(store, &report).await {
        tracing::warn!(error = %e, "recording the GC run failed");
    }
    match store.stats().await {
        Ok(stats) => metrics.set_stored(stats.blocks, stats.bytes),
        Err(e) => tracing::warn!(error = %e, "reading store stats failed"),
    }
    Ok(report)
}
