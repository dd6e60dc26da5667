//! Reconnect pacing while the station is offline: exponential, jittered, capped.

use std::time::Duration;

/// Delays that double from `min` up to `max`, each jittered by ±20 % so that many relays
/// that lost the same station do not all dial at the same instant.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Backoff {
        let min = min.max(Duration::from_millis(1));
        let max = max.max(min);
        Backoff {
            min,
            max,
            next: min,
        }
    }

    /// The delay before the next attempt (then doubled for the one after).
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        let jitter = unit_random() * 0.4 - 0.2;
        base.mul_f64(1.0 + jitter).min(self.max)
    }

    /// Back to the shortest delay (the station answered).
    pub fn reset(&mut self) {
        self.next = self.min;
    }
}

/// A number in [0, 1): std's per-instance random hash keys are plenty for jitter, and
/// spare the node a dependency on a random number crate.
fn unit_random() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let bits = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_within_jitter_and_stop_at_the_cap() {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let mut base = 1.0;
        for _ in 0..12 {
            let delay = backoff.next_delay().as_secs_f64();
            assert!(delay >= base * 0.8 - 1e-9, "{delay} < 0.8 × {base}");
            assert!(
                delay <= (base * 1.2).min(60.0) + 1e-9,
                "{delay} > 1.2 × {base}"
            );
            base = (base * 2.0_f64).min(60.0);
        }
        assert!(backoff.next_delay() <= Duration::from_secs(60));
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(1200));
    }
}
