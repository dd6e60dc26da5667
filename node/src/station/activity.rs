//! Listeners and connected peers over the last hour, for the dashboard's chart, and the
//! latest GC run, for its storage panel.
//!
//! A sampler task reads the two gauges the metrics already keep (distinct segment
//! fetchers in the last 30 s, libp2p peers connected) every [`SAMPLE_INTERVAL`] into a
//! ring of [`SAMPLE_CAPACITY`] points: exactly one hour, bounded whatever the uptime.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ipfm_store::{GcReport, Store, StoreError};
use serde::{Deserialize, Serialize};

use crate::metrics::StationMetrics;

/// Time between two samples.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(10);
/// Samples kept: one hour at [`SAMPLE_INTERVAL`].
pub const SAMPLE_CAPACITY: usize = 360;
/// Key of the latest GC run in the store's state tree.
const LAST_GC_KEY: &str = "station/last-gc";

/// One point of the chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ActivitySample {
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Distinct clients that fetched a segment in the 30 s before `at_ms`.
    pub listeners: u64,
    /// libp2p peers connected at `at_ms`.
    pub peers: u64,
}

/// A bounded ring of samples, oldest first.
#[derive(Debug)]
pub struct Activity {
    capacity: usize,
    samples: Mutex<VecDeque<ActivitySample>>,
}

impl Default for Activity {
    fn default() -> Self {
        Activity::with_capacity(SAMPLE_CAPACITY)
    }
}

impl Activity {
    /// An empty ring keeping at most `capacity` samples (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Activity {
            capacity,
            samples: Mutex::new(VecDeque::with_capacity(capacity)),
        }
    }

    /// Appends `sample`, dropping the oldest once the ring is full.
    pub fn record(&self, sample: ActivitySample) {
        let Ok(mut samples) = self.samples.lock() else {
            return;
        };
        while samples.len() >= self.capacity {
            samples.pop_front();
        }
        samples.push_back(sample);
    }

    /// Every sample kept, oldest first.
    pub fn samples(&self) -> Vec<ActivitySample> {
        self.samples
            .lock()
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }
}

/// Records a sample of `metrics` into `activity` now and then every `interval`, until
/// aborted.
pub async fn sample_activity(
    metrics: Arc<StationMetrics>,
    activity: Arc<Activity>,
    interval: Duration,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // The first tick is immediate: the chart has a point as soon as the station runs.
        tick.tick().await;
        let sample = ActivitySample {
            at_ms: unix_millis(SystemTime::now()),
            listeners: u64::try_from(metrics.listeners(Instant::now())).unwrap_or(u64::MAX),
            peers: metrics.peers_connected(),
        };
        tracing::trace!(
            listeners = sample.listeners,
            peers = sample.peers,
            "activity sample"
        );
        activity.record(sample);
    }
}

/// The latest GC run, as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastGc {
    /// When it finished, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    pub removed_blocks: u64,
    pub removed_bytes: u64,
    pub kept_blocks: u64,
}

/// Stores `report` as the latest GC run (kept across restarts).
pub async fn record_gc(store: &Store, report: &GcReport) -> Result<(), StoreError> {
    let last = LastGc {
        at_ms: unix_millis(SystemTime::now()),
        removed_blocks: report.removed_blocks,
        removed_bytes: report.removed_bytes,
        kept_blocks: report.kept_blocks,
    };
    // Four integers always serialise.
    let json = serde_json::to_vec(&last).unwrap_or_default();
    store.state_set(LAST_GC_KEY, json).await.map(|_previous| ())
}

/// The latest GC run, if any was recorded (an unreadable record counts as none).
pub async fn last_gc(store: &Store) -> Result<Option<LastGc>, StoreError> {
    Ok(store.state_get(LAST_GC_KEY).await?.and_then(|bytes| {
        serde_json::from_slice(&bytes)
            .map_err(|e| tracing::warn!(error = %e, "stored last GC record unreadable"))
            .ok()
    }))
}

/// Milliseconds since the Unix epoch (0 before it).
pub fn unix_millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at_ms: u64) -> ActivitySample {
        ActivitySample {
            at_ms,
            listeners: at_ms % 3,
            peers: at_ms % 5,
        }
    }

    #[test]
    fn the_ring_keeps_the_newest_samples_oldest_first() {
        let activity = Activity::with_capacity(3);
        assert!(activity.samples().is_empty());
        for at in 1..=5 {
            activity.record(sample(at));
        }
        let kept: Vec<u64> = activity.samples().iter().map(|s| s.at_ms).collect();
        assert_eq!(kept, [3, 4, 5]);
    }

    #[test]
    fn an_hour_of_samples_is_the_default_capacity() {
        let activity = Activity::default();
        for at in 0..1000 {
            activity.record(sample(at));
        }
        let kept = activity.samples();
        assert_eq!(kept.len(), SAMPLE_CAPACITY);
        assert_eq!(SAMPLE_CAPACITY as u64 * SAMPLE_INTERVAL.as_secs(), 3600);
        assert_eq!(kept.last().map(|s| s.at_ms), Some(999));
    }

    /// Waits (bounded) until `activity` holds `count` samples; returns them.
    async fn wait_for_samples(activity: &Activity, count: usize) -> Vec<ActivitySample> {
        let poll = async {
            loop {
                let samples = activity.samples();
                if samples.len() >= count {
                    return samples;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), poll)
            .await
            .expect("the sampler records in time")
    }

    #[tokio::test]
    async fn the_sampler_reads_the_gauges_at_once_then_every_interval() {
        let metrics = Arc::new(StationMetrics::new());
        metrics.set_peers_connected(4);
        metrics.note_listener("127.0.0.1".parse().unwrap(), Instant::now());
        let activity = Arc::new(Activity::default());
        // A long interval: only the immediate first sample can arrive.
        let task = tokio::spawn(sample_activity(
            metrics.clone(),
            activity.clone(),
            Duration::from_secs(3600),
        ));
        let first = wait_for_samples(&activity, 1).await;
        assert_eq!((first[0].listeners, first[0].peers), (1, 4));
        task.abort();

        metrics.set_peers_connected(7);
        let task = tokio::spawn(sample_activity(
            metrics.clone(),
            activity.clone(),
            Duration::from_millis(20),
        ));
        let samples = wait_for_samples(&activity, 3).await;
        assert!(samples[1..].iter().all(|s| s.peers == 7), "{samples:?}");
        task.abort();
    }

    #[tokio::test]
    async fn the_last_gc_survives_in_the_store() {
        let store = Store::open_in_memory();
        assert_eq!(last_gc(&store).await.unwrap(), None);
        let report = GcReport {
            removed_blocks: 2,
            removed_bytes: 30,
            kept_blocks: 7,
            ..GcReport::default()
        };
        record_gc(&store, &report).await.unwrap();
        let last = last_gc(&store).await.unwrap().expect("recorded");
        assert_eq!(
            (last.removed_blocks, last.removed_bytes, last.kept_blocks),
            (2, 30, 7)
        );
        assert!(last.at_ms > 0);
    }
}
