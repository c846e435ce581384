//! The flood guard: at most `limit` lines per one-second window, the rest dropped and counted.

use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub(crate) struct FloodGuard {
    limit: u32,
    window_start: Option<Instant>,
    admitted: u32,
    /// Dropped since the last notice.
    dropped: u64,
}

impl FloodGuard {
    /// `limit` 0 disables the guard.
    pub(crate) fn new(limit: u32) -> Self {
        FloodGuard {
            limit,
            window_start: None,
            admitted: 0,
            dropped: 0,
        }
    }

    pub(crate) fn limit(&self) -> u32 {
        self.limit
    }

    /// Whether one more line may pass at `now`.
    pub(crate) fn admit(&mut self, now: Instant) -> bool {
        if self.limit == 0 {
            return true;
        }
        match self.window_start {
            Some(start) if now.saturating_duration_since(start) < WINDOW => {}
            _ => {
                self.window_start = Some(now);
                self.admitted = 0;
            }
        }
        if self.admitted < self.limit {
            self.admitted += 1;
            true
        } else {
            self.dropped += 1;
            false
        }
    }

    /// The number of lines to report as dropped, once the window they were dropped in is over.
    pub(crate) fn notice_due(&mut self, now: Instant) -> Option<u64> {
        let due = self.deadline().is_some_and(|d| now >= d);
        if due {
            let n = self.dropped;
            self.dropped = 0;
            Some(n)
        } else {
            None
        }
    }

    /// When the next notice is due, if lines were dropped.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        if self.dropped == 0 {
            return None;
        }
        self.window_start.map(|s| s + WINDOW)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_above_limit_and_reports_per_window() {
        let t0 = Instant::now();
        let mut g = FloodGuard::new(3);
        let passed = (0..10).filter(|_| g.admit(t0)).count();
        assert_eq!(passed, 3);
        assert_eq!(g.notice_due(t0), None);
        assert_eq!(g.deadline(), Some(t0 + WINDOW));
        let t1 = t0 + WINDOW;
        assert_eq!(g.notice_due(t1), Some(7));
        assert_eq!(g.notice_due(t1), None);
        assert!(g.admit(t1));
        let mut off = FloodGuard::new(0);
        assert!((0..100_000).all(|_| off.admit(t0)));
    }
}
