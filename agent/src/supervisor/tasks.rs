//! The per-server task bundle: the work that runs while a server runs (RCon, log tail, ...), started
//! together when the server starts or is re-attached, cancelled and awaited together when it stops.
//! Each task is supervised: an error or a panic is logged and counted, and the task restarts with
//! exponential backoff (5 s doubling to 30 s); it never takes the agent or another server's tasks
//! down.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::FutureExt;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// Backoff of a failing task: first delay, cap, and how long a run must last to reset it.
#[derive(Debug, Clone, Copy)]
pub struct TaskBackoff {
    /// First delay.
    pub initial: Duration,
    /// Largest delay.
    pub max: Duration,
    /// A run at least this long resets the delay.
    pub reset_after: Duration,
}

impl Default for TaskBackoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(5),
            max: Duration::from_secs(30),
            reset_after: Duration::from_secs(60),
        }
    }
}

/// The tasks of one running server.
pub struct Bundle {
    cancel: CancellationToken,
    tracker: TaskTracker,
    /// Task failures since the bundle started.
    pub failures: Arc<AtomicU64>,
    backoff: TaskBackoff,
}

impl Bundle {
    /// An empty bundle; its tasks end when `parent` is cancelled too.
    pub fn new(parent: &CancellationToken, backoff: TaskBackoff) -> Self {
        Self {
            cancel: parent.child_token(),
            tracker: TaskTracker::new(),
            failures: Arc::default(),
            backoff,
        }
    }

    /// The bundle's stop signal, for tasks to watch.
    pub fn token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Adds a supervised task: `make` builds one run; an `Err` or a panic restarts it after the
    /// backoff.
    pub fn spawn<F, Fut>(&self, name: &'static str, server_id: i64, mut make: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        let cancel = self.cancel.clone();
        let failures = self.failures.clone();
        let b = self.backoff;
        self.tracker.spawn(
            async move {
                let mut delay = b.initial;
                loop {
                    let began = Instant::now();
                    // A panic in one run is caught here and treated like an error: the run's state
                    // is dropped whole and the next run starts from `make` again.
                    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(&mut make))
                        .map(|fut| std::panic::AssertUnwindSafe(fut).catch_unwind());
                    let result = match run {
                        Ok(run) => tokio::select! {
                            _ = cancel.cancelled() => return,
                            r = run => r.unwrap_or_else(|panic| Err(panic_message(panic.as_ref()))),
                        },
                        Err(panic) => Err(panic_message(panic.as_ref())),
                    };
                    match result {
                        Ok(()) => return,
                        Err(e) => {
                            failures.fetch_add(1, Ordering::Relaxed);
                            if began.elapsed() >= b.reset_after {
                                delay = b.initial;
                            }
                            tracing::warn!(error = %e, retry_in_s = delay.as_secs_f32(), "task failed; restarting");
                        }
                    }
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(b.max);
                }
            }
            .instrument(tracing::info_span!("task", name, server_id)),
        );
    }

    /// Stops every task and waits for them, at most `limit`.
    pub async fn stop(self, limit: Duration) {
        self.cancel.cancel();
        self.tracker.close();
        if tokio::time::timeout(limit, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("server tasks did not stop within {limit:?}");
        }
    }
}

/// The text of a panic payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-text payload".to_owned());
    format!("panicked: {text}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_panicking_task_is_counted_and_restarted_and_its_neighbour_keeps_running() {
        let parent = CancellationToken::new();
        let b = Bundle::new(&parent, TaskBackoff::default());
        let runs = Arc::new(AtomicU64::new(0));
        let r = runs.clone();
        b.spawn("panicky", 1, move || {
            let r = r.clone();
            async move {
                let n = r.fetch_add(1, Ordering::Relaxed);
                if n < 2 {
                    panic!("run {n} broke");
                }
                std::future::pending::<()>().await;
                Ok(())
            }
        });
        let ticks = Arc::new(AtomicU64::new(0));
        let t = ticks.clone();
        b.spawn("steady", 1, move || {
            let t = t.clone();
            async move {
                loop {
                    t.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        });
        // Runs at t=0 (panics), 5 (panics), 15 (stays up).
        tokio::time::sleep(Duration::from_secs(20)).await;
        assert_eq!(runs.load(Ordering::Relaxed), 3);
        assert_eq!(b.failures.load(Ordering::Relaxed), 2);
        assert!(ticks.load(Ordering::Relaxed) >= 19, "the other task ran on");
        b.stop(Duration::from_secs(5)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_task_restarts_with_backoff_and_stops_promptly() {
        let parent = CancellationToken::new();
        let b = Bundle::new(&parent, TaskBackoff::default());
        let runs = Arc::new(AtomicU64::new(0));
        let r = runs.clone();
        b.spawn("flaky", 1, move || {
            let r = r.clone();
            async move {
                r.fetch_add(1, Ordering::Relaxed);
                Err::<(), _>("boom".to_owned())
            }
        });
        // Runs at t=0, 5, 15 (5+10), 35 (+20), 65 (+30), 95 (+30).
        tokio::time::sleep(Duration::from_secs(100)).await;
        assert_eq!(runs.load(Ordering::Relaxed), 6);
        assert_eq!(b.failures.load(Ordering::Relaxed), 6);
        let t = tokio::time::Instant::now();
        b.stop(Duration::from_secs(5)).await;
        assert!(
            t.elapsed() < Duration::from_millis(10),
            "ends promptly when stopped"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn one_tasks_failure_does_not_stop_another() {
        let parent = CancellationToken::new();
        let b = Bundle::new(&parent, TaskBackoff::default());
        let healthy = Arc::new(AtomicU64::new(0));
        let h = healthy.clone();
        b.spawn("panicky", 1, || async { Err::<(), _>("x".to_owned()) });
        b.spawn("healthy", 1, move || {
            let h = h.clone();
            async move {
                loop {
                    h.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        });
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(healthy.load(Ordering::Relaxed) >= 10);
        parent.cancel();
        b.stop(Duration::from_secs(1)).await;
    }
}
