//! Events waiting for the controller's acknowledgement, with per-node sequence numbers.
//!
//! Sequence numbers are reserved in durable blocks in the state dir, so they keep increasing across
//! agent restarts. Events are trimmed only when acknowledged, and resent after a reconnect from the
//! controller's high-water mark. (This queue is in memory; the durable on-disk spool is the seam
//! `push` would write through, see ARCHITECTURE.md.)

use std::collections::VecDeque;
use std::sync::Mutex;

use chrono::Utc;
use languard_proto::v1 as pb;
use tokio::sync::Notify;

use crate::state::StateDir;

const SEQ_BLOCK: u64 = 10_000;

struct Inner {
    next_seq: u64,
    reserved_until: u64,
    pending: VecDeque<pb::AgentEvent>,
}

/// The queue of unacknowledged events.
pub struct Outbox {
    inner: Mutex<Inner>,
    notify: Notify,
    state: StateDir,
}

impl Outbox {
    /// An outbox continuing after the sequence numbers reserved in `state`.
    pub fn new(state: StateDir) -> Self {
        let reserved = state.reserved_seq();
        Self {
            inner: Mutex::new(Inner {
                next_seq: reserved + 1,
                reserved_until: reserved,
                pending: VecDeque::new(),
            }),
            notify: Notify::new(),
            state,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues an event and returns its sequence number.
    pub fn push(&self, server_id: i64, body: pb::agent_event::Body) -> u64 {
        let seq = {
            let mut g = self.lock();
            if g.next_seq > g.reserved_until {
                let until = g.next_seq + SEQ_BLOCK;
                if let Err(e) = self.state.reserve_seq(until) {
                    // Still usable: the numbers only risk reuse after a crash, which the controller
                    // would drop as duplicates. Loud, because that loses events.
                    tracing::error!(error = %e, "could not reserve sequence numbers");
                }
                g.reserved_until = until;
            }
            let seq = g.next_seq;
            g.next_seq += 1;
            g.pending.push_back(pb::AgentEvent {
                seq,
                time: Some(timestamp_now()),
                server_id,
                body: Some(body),
            });
            seq
        };
        self.notify.notify_waiters();
        self.notify.notify_one();
        seq
    }

    /// Drops every event at or below `seq`.
    pub fn ack(&self, seq: u64) {
        let mut g = self.lock();
        while g.pending.front().is_some_and(|e| e.seq <= seq) {
            g.pending.pop_front();
        }
    }

    /// A new session was accepted with the controller's high-water mark `acked`. If the controller
    /// is ahead of our counter (the state dir was lost), pending events are renumbered after it so
    /// they are not mistaken for duplicates.
    pub fn on_accepted(&self, acked: u64) {
        let mut g = self.lock();
        if g.next_seq <= acked {
            tracing::warn!(
                acked,
                next = g.next_seq,
                "controller is ahead of local sequence numbers; renumbering"
            );
            let mut seq = acked + 1;
            for e in g.pending.iter_mut() {
                e.seq = seq;
                seq += 1;
            }
            g.next_seq = seq;
            g.reserved_until = g.reserved_until.max(seq + SEQ_BLOCK);
            if let Err(e) = self.state.reserve_seq(g.reserved_until) {
                tracing::error!(error = %e, "could not reserve sequence numbers");
            }
        } else {
            while g.pending.front().is_some_and(|e| e.seq <= acked) {
                g.pending.pop_front();
            }
        }
    }

    /// Up to `max` pending events with a sequence number above `after`, in order.
    pub fn after(&self, after: u64, max: usize) -> Vec<pb::AgentEvent> {
        self.lock()
            .pending
            .iter()
            .filter(|e| e.seq > after)
            .take(max)
            .cloned()
            .collect()
    }

    /// Number of unacknowledged events.
    pub fn len(&self) -> usize {
        self.lock().pending.len()
    }

    /// Whether nothing waits for acknowledgement.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Completes when an event is pushed (or immediately if one was pushed since the last wait).
    pub async fn changed(&self) {
        self.notify.notified().await;
    }
}

fn timestamp_now() -> prost_types::Timestamp {
    let t = Utc::now();
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body() -> pb::agent_event::Body {
        pb::agent_event::Body::Status(pb::StatusChanged::default())
    }

    #[test]
    fn sequence_continues_after_restart_and_ack_trims() {
        let dir = tempfile::tempdir().expect("tempdir");
        let o = Outbox::new(StateDir::open(dir.path()).expect("state"));
        assert_eq!(o.push(1, body()), 1);
        assert_eq!(o.push(1, body()), 2);
        o.ack(1);
        assert_eq!(o.after(0, 10).len(), 1);
        let o2 = Outbox::new(StateDir::open(dir.path()).expect("state"));
        assert!(
            o2.push(1, body()) > 2,
            "a restarted agent never reuses a sequence number"
        );
    }

    #[test]
    fn controller_ahead_renumbers_pending() {
        let dir = tempfile::tempdir().expect("tempdir");
        let o = Outbox::new(StateDir::open(dir.path()).expect("state"));
        o.push(1, body());
        o.push(1, body());
        o.on_accepted(500);
        let seqs: Vec<u64> = o.after(500, 10).iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![501, 502]);
        assert_eq!(o.push(1, body()), 503);
    }
}
