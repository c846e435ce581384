//! Pure crash/restart policy: given the crash history and the clock, decide whether and when to
//! restart a crashed game server. No sleeping, no clock reads: time is passed in.
//!
//! Rules, for a crash observed at `now` (the last element of the history):
//! 1. `auto_restart == false` → [`Decision::NoRestart`].
//! 2. Count the crashes within the window (`now - at < restart_window`, the current one
//!    included). If that count exceeds `max_restarts` → [`Decision::GiveUp`] with the number of
//!    restarts already made in the window (`count - 1`). So `max_restarts = 3` allows three
//!    automatic restarts in any window; the fourth crash inside it stops the loop.
//! 3. Otherwise → [`Decision::RestartAfter`] a backoff of `backoff_initial * 2^(streak - 1)`,
//!    capped at `backoff_max`, where `streak` is the current crash plus the earlier crashes
//!    chained to it by runs shorter than the window. A run of at least `restart_window` is
//!    healthy and resets the backoff: the crash ending it waits `backoff_initial`, the next
//!    quick crash twice that, and so on.
//!
//! Crashes spread wider than the window never reach the give-up threshold, so they keep being
//! restarted (with a growing backoff while the runs stay shorter than the window).
//! `restart_window == 0` means "only the current crash is in the window" (restart always when
//! `max_restarts >= 1`) and every run counts as healthy (backoff stays at `backoff_initial`).
//!
//! The history lives in memory ([`CrashHistory`]); it is not persisted across agent restarts.

use std::time::{Duration, Instant};

/// Default first backoff.
pub const DEFAULT_BACKOFF_INITIAL: Duration = Duration::from_secs(10);
/// Default backoff cap.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(300);
/// Crashes kept by [`CrashHistory`]: enough for any realistic `max_restarts` and for the
/// backoff exponent to saturate.
pub const HISTORY_CAP: usize = 256;

/// Restart settings of one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    pub auto_restart: bool,
    /// Automatic restarts allowed within `restart_window`.
    pub max_restarts: u32,
    pub restart_window: Duration,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            auto_restart: true,
            max_restarts: 5,
            restart_window: Duration::from_secs(600),
            backoff_initial: DEFAULT_BACKOFF_INITIAL,
            backoff_max: DEFAULT_BACKOFF_MAX,
        }
    }
}

/// One observed crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crash {
    /// When the crash was observed.
    pub at: Instant,
    /// How long the server had run since its last start.
    pub ran_for: Duration,
}

/// What to do about a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Restart after this delay.
    RestartAfter(Duration),
    /// Too many crashes in the window: leave the server crashed.
    GiveUp { restarts_in_window: u32 },
    /// Automatic restart is off (or there was no crash).
    NoRestart,
}

impl RestartPolicy {
    /// From the server spec's fields (proto `int32`s); negative values count as 0.
    pub fn from_spec(auto_restart: bool, max_restarts: i32, restart_window_seconds: i32) -> Self {
        RestartPolicy {
            auto_restart,
            max_restarts: u32::try_from(max_restarts).unwrap_or(0),
            restart_window: Duration::from_secs(u64::try_from(restart_window_seconds).unwrap_or(0)),
            ..RestartPolicy::default()
        }
    }

    /// The same policy with another backoff.
    pub fn with_backoff(self, initial: Duration, max: Duration) -> Self {
        RestartPolicy {
            backoff_initial: initial,
            backoff_max: max,
            ..self
        }
    }

    /// Decides about the crash that is the last element of `crashes` (oldest first), observed
    /// at `now`. An empty history means nothing crashed → [`Decision::NoRestart`].
    pub fn decide(&self, crashes: &[Crash], now: Instant) -> Decision {
        if !self.auto_restart || crashes.is_empty() {
            return Decision::NoRestart;
        }
        let in_window = crashes
            .iter()
            .enumerate()
            .filter(|(i, c)| {
                *i + 1 == crashes.len() || now.saturating_duration_since(c.at) < self.restart_window
            })
            .count();
        let in_window = u32::try_from(in_window).unwrap_or(u32::MAX);
        if in_window > self.max_restarts {
            return Decision::GiveUp {
                restarts_in_window: in_window - 1,
            };
        }
        // The current crash, plus each earlier crash chained to it by a run shorter than the window.
        let streak = 1 + crashes
            .iter()
            .skip(1)
            .rev()
            .take_while(|c| c.ran_for < self.restart_window)
            .count();
        Decision::RestartAfter(self.backoff(streak))
    }

    /// Backoff for the `streak`-th consecutive short run (0 or 1 → initial).
    pub fn backoff(&self, streak: usize) -> Duration {
        let exp = u32::try_from(streak.saturating_sub(1))
            .unwrap_or(u32::MAX)
            .min(31);
        self.backoff_initial
            .saturating_mul(1u32 << exp)
            .min(self.backoff_max)
    }
}

/// A bounded in-memory crash history for one server.
#[derive(Debug, Clone, Default)]
pub struct CrashHistory {
    crashes: Vec<Crash>,
}

impl CrashHistory {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a crash (keeps the newest [`HISTORY_CAP`]).
    pub fn record(&mut self, at: Instant, ran_for: Duration) {
        if self.crashes.len() >= HISTORY_CAP {
            let excess = self.crashes.len() + 1 - HISTORY_CAP;
            self.crashes.drain(..excess);
        }
        self.crashes.push(Crash { at, ran_for });
    }

    /// Records the crash and decides about it.
    pub fn on_crash(&mut self, policy: &RestartPolicy, at: Instant, ran_for: Duration) -> Decision {
        self.record(at, ran_for);
        policy.decide(&self.crashes, at)
    }

    /// Forgets all crashes (e.g. after an operator starts a given-up server by hand).
    pub fn clear(&mut self) {
        self.crashes.clear();
    }

    /// The crashes, oldest first.
    pub fn crashes(&self) -> &[Crash] {
        &self.crashes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn policy(max_restarts: u32, window_s: u64) -> RestartPolicy {
        RestartPolicy {
            max_restarts,
            restart_window: Duration::from_secs(window_s),
            ..RestartPolicy::default()
        }
    }

    /// Simulates a server that crashes `ran_for` after each (re)start; returns the decisions.
    fn simulate(p: &RestartPolicy, ran_for: Duration, crashes: usize) -> Vec<Decision> {
        let mut h = CrashHistory::new();
        let mut now = Instant::now();
        let mut out = Vec::new();
        for _ in 0..crashes {
            now += ran_for;
            let d = h.on_crash(p, now, ran_for);
            out.push(d);
            match d {
                Decision::RestartAfter(delay) => now += delay,
                _ => break,
            }
        }
        out
    }

    #[test]
    fn crash_loop_stops_at_max_restarts_within_window() {
        let p = policy(3, 600);
        let d = simulate(&p, 2 * S, 10);
        assert_eq!(
            d,
            vec![
                Decision::RestartAfter(10 * S),
                Decision::RestartAfter(20 * S),
                Decision::RestartAfter(40 * S),
                Decision::GiveUp {
                    restarts_in_window: 3
                },
            ]
        );
    }

    #[test]
    fn max_restarts_zero_gives_up_at_once_and_auto_restart_off_never_restarts() {
        let now = Instant::now();
        let c = [Crash {
            at: now,
            ran_for: S,
        }];
        assert_eq!(
            policy(0, 600).decide(&c, now),
            Decision::GiveUp {
                restarts_in_window: 0
            }
        );
        let off = RestartPolicy {
            auto_restart: false,
            ..policy(5, 600)
        };
        assert_eq!(off.decide(&c, now), Decision::NoRestart);
        assert_eq!(policy(5, 600).decide(&[], now), Decision::NoRestart);
    }

    #[test]
    fn crashes_spread_beyond_the_window_keep_restarting() {
        // Window 60 s, max 2 restarts; the server runs 50 s each time (short of a healthy
        // window) and the backoff keeps the crashes more than a window apart once it grows.
        let p = policy(2, 60);
        let d = simulate(&p, 50 * S, 40);
        assert_eq!(d.len(), 40, "never gave up: {d:?}");
        assert!(d.iter().all(|d| matches!(d, Decision::RestartAfter(_))));
        // Runs shorter than the window: the backoff grew to the cap and stays there.
        assert_eq!(d[39], Decision::RestartAfter(300 * S));

        // Crashes two windows apart with healthy runs: always the initial backoff.
        let d = simulate(&p, 120 * S, 30);
        assert_eq!(d.len(), 30);
        assert!(
            d.iter().all(|d| *d == Decision::RestartAfter(10 * S)),
            "{d:?}"
        );
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let p = policy(100, 3600);
        let d = simulate(&p, S, 8);
        let secs: Vec<u64> = d
            .iter()
            .map(|d| match d {
                Decision::RestartAfter(x) => x.as_secs(),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(secs, vec![10, 20, 40, 80, 160, 300, 300, 300]);

        let custom = p.with_backoff(Duration::from_millis(500), 3 * S);
        let d = simulate(&custom, S, 5);
        assert_eq!(
            d,
            [500, 1000, 2000, 3000, 3000]
                .map(|ms| Decision::RestartAfter(Duration::from_millis(ms)))
                .to_vec()
        );
        // Huge streaks and initials saturate instead of overflowing.
        assert_eq!(custom.backoff(10_000), 3 * S);
        let big = p.with_backoff(Duration::MAX, Duration::MAX);
        assert_eq!(big.backoff(40), Duration::MAX);
    }

    #[test]
    fn backoff_resets_after_a_healthy_run() {
        let p = policy(100, 600);
        let mut h = CrashHistory::new();
        let mut now = Instant::now();
        for expect in [10, 20, 40, 80] {
            now += 5 * S;
            assert_eq!(
                h.on_crash(&p, now, 5 * S),
                Decision::RestartAfter(Duration::from_secs(expect))
            );
        }
        // Ran a full window: back to the initial backoff ...
        now += 600 * S;
        assert_eq!(h.on_crash(&p, now, 600 * S), Decision::RestartAfter(10 * S));
        // ... and the next short run doubles from there again.
        now += 5 * S;
        assert_eq!(h.on_crash(&p, now, 5 * S), Decision::RestartAfter(20 * S));
    }

    #[test]
    fn give_up_counts_only_crashes_inside_the_window() {
        let p = policy(2, 100);
        let t0 = Instant::now();
        let c = |s: u64| Crash {
            at: t0 + Duration::from_secs(s),
            ran_for: S,
        };
        // Two old crashes outside the window + 2 inside: still allowed.
        let hist = [c(0), c(10), c(200), c(250)];
        assert!(matches!(
            p.decide(&hist, t0 + 250 * S),
            Decision::RestartAfter(_)
        ));
        // A third inside the window: give up, reporting the 2 restarts made in it.
        let hist = [c(0), c(10), c(200), c(250), c(290)];
        assert_eq!(
            p.decide(&hist, t0 + 290 * S),
            Decision::GiveUp {
                restarts_in_window: 2
            }
        );
        // Window boundary: a crash exactly one window old is outside.
        let hist = [c(190), c(250), c(290)];
        assert!(matches!(
            p.decide(&hist, t0 + 290 * S),
            Decision::RestartAfter(_)
        ));
    }

    #[test]
    fn zero_window_restarts_always_with_initial_backoff() {
        let p = policy(1, 0);
        let d = simulate(&p, S, 10);
        assert_eq!(d, vec![Decision::RestartAfter(10 * S); 10]);
    }

    #[test]
    fn from_spec_clamps_negatives_and_history_is_bounded() {
        let p = RestartPolicy::from_spec(true, -1, -5);
        assert_eq!((p.max_restarts, p.restart_window), (0, Duration::ZERO));
        let p = RestartPolicy::from_spec(true, 3, 300);
        assert_eq!((p.max_restarts, p.restart_window), (3, 300 * S));
        assert_eq!(p.backoff_initial, DEFAULT_BACKOFF_INITIAL);

        let mut h = CrashHistory::new();
        let t0 = Instant::now();
        for i in 0..1000u64 {
            h.record(t0 + Duration::from_secs(i * 1000), S);
        }
        assert_eq!(h.crashes().len(), HISTORY_CAP);
        assert_eq!(
            h.crashes()[HISTORY_CAP - 1].at,
            t0 + Duration::from_secs(999_000)
        );
        h.clear();
        assert!(h.crashes().is_empty());
    }
}
