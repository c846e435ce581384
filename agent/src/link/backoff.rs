//! Jittered exponential backoff for reconnecting.

use std::time::Duration;

use rand::Rng;

/// Doubling delays between `min` and `max`, each drawn uniformly from its upper half ("equal jitter").
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    /// A backoff from `min` doubling up to `max`.
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max,
            current: min,
        }
    }

    /// The next delay.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.current;
        self.current = (self.current * 2).min(self.max);
        let half = base / 2;
        half + rand::rng().random_range(Duration::ZERO..=half)
    }

    /// Back to the minimum, after a success.
    pub fn reset(&mut self) {
        self.current = self.min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_with_jitter_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        let first = b.next_delay();
        assert!(first >= Duration::from_millis(250) && first <= Duration::from_millis(500));
        for _ in 0..20 {
            let d = b.next_delay();
            assert!(d <= Duration::from_secs(30));
        }
        let d = b.next_delay();
        assert!(
            d >= Duration::from_secs(15),
            "at the cap the delay is in [15 s, 30 s], got {d:?}"
        );
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(500));
    }
}
