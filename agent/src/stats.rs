//! What the agent knows about itself, shared by the tasks that learn it and read by the agent's
//! `/metrics` endpoint: the link's state, the latest resource sample, schedule outcomes.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use languard_proto::v1 as pb;

/// The agent's own counters and latest readings. Cheap to share (`Arc`).
#[derive(Debug, Default)]
pub struct AgentStats {
    connected: AtomicBool,
    sessions: AtomicU64,
    schedule_ok: AtomicU64,
    schedule_failed: AtomicU64,
    latest: Mutex<Option<pb::MetricsSample>>,
}

impl AgentStats {
    /// A session was accepted (`true`) or ended (`false`).
    pub fn set_connected(&self, up: bool) {
        if up {
            self.sessions.fetch_add(1, Ordering::Relaxed);
        }
        self.connected.store(up, Ordering::Relaxed);
    }

    /// Whether a session with the controller is up.
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Sessions accepted since start.
    pub fn sessions(&self) -> u64 {
        self.sessions.load(Ordering::Relaxed)
    }

    /// A schedule step ran.
    pub fn schedule_step(&self, ok: bool) {
        if ok {
            &self.schedule_ok
        } else {
            &self.schedule_failed
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    /// Schedule steps (ok, failed) since start.
    pub fn schedule_steps(&self) -> (u64, u64) {
        (
            self.schedule_ok.load(Ordering::Relaxed),
            self.schedule_failed.load(Ordering::Relaxed),
        )
    }

    /// Keeps the newest resource sample.
    pub fn set_sample(&self, s: &pb::MetricsSample) {
        *self
            .latest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(s.clone());
    }

    /// The newest resource sample.
    pub fn sample(&self) -> Option<pb::MetricsSample> {
        self.latest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}
