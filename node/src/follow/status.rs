//! Whether the followed station is on the air, and what the follower has seen.

use std::time::{Duration, Instant, SystemTime};

/// What a follower reports about its station.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FollowStatus {
    /// An announcement came within the offline threshold.
    pub online: bool,
    /// When the last announcement came, if the station has gone quiet since (our clock).
    pub offline_since: Option<SystemTime>,
    /// When the last accepted announcement came (our clock).
    pub last_announcement: Option<SystemTime>,
    /// Sequence, root and station publish time of the newest root held.
    pub last_sequence: Option<u64>,
    pub last_root: Option<ipfm_protocol::Cid>,
    pub last_published_at: Option<SystemTime>,
    /// Announcements whose root was fetched whole and forwarded.
    pub accepted: u64,
    /// Replays and duplicates (not penalised).
    pub ignored: u64,
    /// Forged, malformed or mismatching announcements (sender penalised).
    pub rejected: u64,
    /// Authentic announcements whose root could not be fetched whole in time.
    pub fetch_failures: u64,
    /// Reconnect rounds started while offline.
    pub reconnect_attempts: u64,
}

/// Online/offline bookkeeping from the times announcements were accepted.
#[derive(Debug, Clone)]
pub struct Liveness {
    min_offline_after: Duration,
    /// Smoothed gap between announcements while online.
    interval: Option<Duration>,
    last: Option<(Instant, SystemTime)>,
    online: bool,
}

/// What one accepted announcement changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// The first announcement ever heard.
    First,
    /// The station was online already.
    StillOnline,
    /// The station was offline: it is back.
    BackOnline,
}

impl Liveness {
    pub fn new(min_offline_after: Duration) -> Liveness {
        Liveness {
            min_offline_after,
            interval: None,
            last: None,
            online: false,
        }
    }

    /// Silence longer than this means offline: max(3 × the announcement interval, minimum).
    pub fn threshold(&self) -> Duration {
        self.interval.map_or(self.min_offline_after, |i| {
            (i * 3).max(self.min_offline_after)
        })
    }

    /// An announcement was accepted at `now` (`wall`: the same instant on the clock).
    pub fn heard(&mut self, now: Instant, wall: SystemTime) -> Heard {
        let heard = match (self.last, self.online) {
            (None, _) => Heard::First,
            (Some(_), false) => Heard::BackOnline,
            (Some((last, _)), true) => {
                // Gaps across an outage would inflate the interval: only online gaps count.
                let gap = now.saturating_duration_since(last);
                self.interval = Some(match self.interval {
                    Some(interval) => interval.mul_f64(0.75) + gap.mul_f64(0.25),
                    None => gap,
                });
                Heard::StillOnline
            }
        };
        self.last = Some((now, wall));
        self.online = true;
        heard
    }

    /// Re-evaluates at `now`; returns the time of the last announcement when the station
    /// has just gone offline.
    pub fn check(&mut self, now: Instant) -> Option<SystemTime> {
        let (last, wall) = self.last?;
        if self.online && now.saturating_duration_since(last) > self.threshold() {
            self.online = false;
            return Some(wall);
        }
        None
    }

    pub fn online(&self) -> bool {
        self.online
    }

    /// The time of the last announcement, while the station is offline.
    pub fn offline_since(&self) -> Option<SystemTime> {
        match (self.online, self.last) {
            (false, Some((_, wall))) => Some(wall),
            _ => None,
        }
    }

    pub fn last_heard(&self) -> Option<SystemTime> {
        self.last.map(|(_, wall)| wall)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_after_three_intervals_or_the_minimum_and_back_on_the_next() {
        let start = Instant::now();
        let wall = SystemTime::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let mut live = Liveness::new(Duration::from_secs(15));
        assert_eq!(live.check(at(100)), None, "never heard: not offline");
        assert!(!live.online());
        assert_eq!(live.heard(at(0), wall), Heard::First);
        for s in (10..=100).step_by(10) {
            assert_eq!(live.heard(at(s), wall), Heard::StillOnline);
        }
        // 10 s announcements: offline after 30 s of silence, not before.
        assert_eq!(live.threshold(), Duration::from_secs(30));
        assert_eq!(live.check(at(130)), None);
        assert!(live.online());
        assert_eq!(live.check(at(131)), Some(wall));
        assert_eq!(live.offline_since(), Some(wall));
        assert_eq!(live.check(at(200)), None, "reported once");
        assert_eq!(live.heard(at(500), wall), Heard::BackOnline);
        assert_eq!(live.offline_since(), None);
        // The outage did not stretch the interval.
        assert_eq!(live.threshold(), Duration::from_secs(30));

        let mut fast = Liveness::new(Duration::from_secs(15));
        fast.heard(at(0), wall);
        fast.heard(at(1), wall);
        assert_eq!(
            fast.threshold(),
            Duration::from_secs(15),
            "the minimum holds"
        );
    }
}
