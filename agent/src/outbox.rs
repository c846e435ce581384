//! Events waiting for the controller's acknowledgement, kept in the durable on-disk spool
//! (`languard-spool`) in the state dir.
//!
//! Every event gets its per-node sequence number from the spool and is appended there before it
//! is sent: `push` appends, a flusher task group-commits (fsync) within milliseconds, and only
//! durable events are handed to the link. Events are trimmed when the controller acknowledges
//! them and resent after a reconnect from the controller's high-water mark. The spool is bounded:
//! when full it drops metrics first and records a gap event; log lines and status events are never
//! dropped silently (a push that cannot be stored is refused and counted).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::Utc;
use languard_proto::v1 as pb;
use languard_spool::spool::{Class, Spool, SpoolConfig, SpoolError};
use prost::Message;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::state::StateDir;

/// Bytes read from the spool per batch sent.
const READ_BYTES: usize = 4 << 20;

/// The queue of unacknowledged events.
pub struct Outbox {
    spool: Arc<Mutex<Spool>>,
    /// Wakes the link when new durable events exist.
    sendable: Notify,
    /// Wakes the flusher when events were appended.
    appended: Notify,
    acked: watch::Sender<u64>,
    /// Newest resume token of each server's queued log batches.
    resume: Mutex<HashMap<i64, (u64, String)>>,
    refused: AtomicU64,
    /// Losses not yet recorded as a `Gap` event (the spool may be too full to take it).
    pending_gap: Mutex<PendingGap>,
}

/// What was lost since the last `Gap` event that made it into the spool.
#[derive(Debug, Default)]
struct PendingGap {
    /// Metrics samples evicted.
    metrics: u64,
    /// Events other than log batches refused (status, player, chat): lost.
    other_refused: u64,
    /// Log batches refused: not lost, the log task retries them (reading pauses).
    log_refused: u64,
}

impl PendingGap {
    fn is_empty(&self) -> bool {
        self.metrics == 0 && self.other_refused == 0
    }
}

/// Why the outbox could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("spool: {0}")]
pub struct OutboxError(#[from] SpoolError);

fn class_of(body: &pb::agent_event::Body) -> Class {
    match body {
        pb::agent_event::Body::Status(_)
        | pb::agent_event::Body::Gap(_)
        | pb::agent_event::Body::ScheduleRun(_) => Class::Status,
        pb::agent_event::Body::Logs(_) => Class::Log,
        pb::agent_event::Body::Metrics(_) => Class::Metrics,
        pb::agent_event::Body::Player(_)
        | pb::agent_event::Body::Players(_)
        | pb::agent_event::Body::Chat(_) => Class::Other,
    }
}

impl Outbox {
    /// Opens the spool in `<state>/spool`, recovering what a previous run left there.
    pub fn open(state: &StateDir, max_bytes: u64) -> Result<Self, OutboxError> {
        let defaults = SpoolConfig::default();
        // Small spools get smaller segments, so eviction (whole segments of metrics) has room to
        // work; a segment still holds the largest record.
        let segment_bytes = if max_bytes >= 4 * defaults.segment_bytes {
            defaults.segment_bytes
        } else {
            (max_bytes / 4).max(u64::from(defaults.max_record_bytes) + (64 << 10))
        };
        let cfg = SpoolConfig {
            max_bytes,
            segment_bytes,
            ..defaults
        };
        let spool = Spool::open(state.root().join("spool"), cfg)?;
        let report = spool.recovery_report().clone();
        let stats = spool.stats();
        tracing::info!(
            records = stats.records,
            bytes = stats.bytes,
            next_seq = stats.next_seq,
            ?report,
            "spool opened"
        );
        let outbox = Self {
            spool: Arc::new(Mutex::new(spool)),
            sendable: Notify::new(),
            appended: Notify::new(),
            acked: watch::channel(stats.acked_seq).0,
            resume: Mutex::default(),
            refused: AtomicU64::new(0),
            pending_gap: Mutex::default(),
        };
        outbox.rebuild_resume_tokens();
        Ok(outbox)
    }

    fn lock(&self) -> MutexGuard<'_, Spool> {
        self.spool.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn rebuild_resume_tokens(&self) {
        let mut after = 0;
        loop {
            let recs = match self.lock().read_from(after, 10_000, READ_BYTES) {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "reading the spool");
                    return;
                }
            };
            let Some(last) = recs.last().map(|r| r.seq) else {
                return;
            };
            for r in recs {
                if let Ok(ev) = pb::AgentEvent::decode(r.payload.as_slice())
                    && let Some(pb::agent_event::Body::Logs(b)) = ev.body
                    && !b.resume_token.is_empty()
                {
                    self.resume
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(ev.server_id, (r.seq, b.resume_token));
                }
            }
            after = last;
        }
    }

    /// Appends an event; `None` when the spool refused it (full of undroppable records), which is
    /// logged and counted.
    pub fn push(&self, server_id: i64, body: pb::agent_event::Body) -> Option<u64> {
        let class = class_of(&body);
        let token = match &body {
            pb::agent_event::Body::Logs(b) if !b.resume_token.is_empty() => {
                Some(b.resume_token.clone())
            }
            _ => None,
        };
        let now = Utc::now();
        let ev = pb::AgentEvent {
            seq: 0,
            time: Some(prost_types::Timestamp {
                seconds: now.timestamp(),
                nanos: i32::try_from(now.timestamp_subsec_nanos()).unwrap_or(0),
            }),
            server_id,
            body: Some(body),
        };
        let result = self.lock().append(class, &ev.encode_to_vec());
        match result {
            Ok(seq) => {
                if let Some(t) = token {
                    self.resume
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(server_id, (seq, t));
                }
                self.appended.notify_one();
                Some(seq)
            }
            Err(e) => {
                let n = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::error!(error = %e, refused_total = n, server_id, "event not spooled");
                None
            }
        }
    }

    /// Group commit: flushes appended events (fsync) shortly after they arrive, reports gaps,
    /// and wakes the link. Runs until `cancel`, then flushes once more.
    pub async fn run_flusher(self: Arc<Self>, cancel: CancellationToken) {
        loop {
            let stop = tokio::select! {
                _ = cancel.cancelled() => true,
                _ = self.appended.notified() => false,
            };
            // Let a burst accumulate into one fsync.
            tokio::time::sleep(Duration::from_millis(2)).await;
            let spool = self.spool.clone();
            let flushed = tokio::task::spawn_blocking(move || {
                let mut s = spool.lock().unwrap_or_else(|p| p.into_inner());
                let r = s.flush();
                (r, s.take_gap())
            })
            .await;
            match flushed {
                Ok((Ok(()), gap)) => {
                    if let Some(gap) = gap {
                        tracing::warn!(?gap, "spool dropped events");
                        let mut p = self.pending_gap.lock().unwrap_or_else(|p| p.into_inner());
                        p.metrics += gap.evicted.get(Class::Metrics);
                        p.log_refused += gap.rejected.get(Class::Log);
                        p.other_refused += gap.rejected.total() - gap.rejected.get(Class::Log);
                    }
                    self.record_gap();
                    self.sendable.notify_waiters();
                    self.sendable.notify_one();
                }
                Ok((Err(e), _)) => tracing::error!(error = %e, "spool flush failed"),
                Err(e) => tracing::error!(error = %e, "spool flush task failed"),
            }
            if stop {
                return;
            }
        }
    }

    /// Records pending losses as a `Gap` event; when the spool cannot take it either, they stay
    /// pending (and keep adding up) until it can, so the history always shows the hole.
    fn record_gap(&self) {
        let mut p = self.pending_gap.lock().unwrap_or_else(|p| p.into_inner());
        if p.is_empty() {
            return;
        }
        let g = pb::Gap {
            dropped_metrics: p.metrics,
            // Refused log batches are retried by the log task (the file is the buffer): late, not lost.
            dropped_log_lines: 0,
            reason: format!(
                "spool full: {} metrics samples evicted, {} other events refused; log reading paused {} times",
                p.metrics, p.other_refused, p.log_refused
            ),
        };
        let ev = pb::AgentEvent {
            seq: 0,
            time: Some(prost_types::Timestamp {
                seconds: Utc::now().timestamp(),
                nanos: 0,
            }),
            server_id: 0,
            body: Some(pb::agent_event::Body::Gap(g)),
        };
        let mut spool = self.lock();
        if spool.append(Class::Status, &ev.encode_to_vec()).is_ok() {
            *p = PendingGap::default();
            drop(spool);
            self.appended.notify_one();
        } else if let Some(gap) = spool.take_gap() {
            // The refusal of this very record is not a loss of its own.
            p.metrics += gap.evicted.get(Class::Metrics);
            p.log_refused += gap.rejected.get(Class::Log);
            p.other_refused +=
                (gap.rejected.total() - gap.rejected.get(Class::Log)).saturating_sub(1);
        }
    }

    /// Everything at or below `seq` is stored by the controller.
    pub fn ack(&self, seq: u64) {
        if let Err(e) = self.lock().ack(seq) {
            tracing::error!(error = %e, seq, "spool ack failed");
        }
        // Acknowledged records free space: a gap waiting for room can be recorded now.
        self.record_gap();
        self.resume
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, (s, _)| *s > seq);
        self.acked.send_if_modified(|a| {
            let changed = seq > *a;
            *a = (*a).max(seq);
            changed
        });
    }

    /// A new session was accepted with the controller's high-water mark `acked`. If the controller
    /// is ahead of the spool (the state dir was lost), new events continue after its mark.
    pub fn on_accepted(&self, acked: u64) {
        {
            let mut s = self.lock();
            if s.next_seq() <= acked {
                tracing::warn!(
                    acked,
                    next = s.next_seq(),
                    "controller is ahead of the local spool; continuing after its mark"
                );
                if let Err(e) = s.bump_to(acked + 1) {
                    tracing::error!(error = %e, "spool bump failed");
                }
            }
        }
        self.ack(acked);
    }

    /// Up to `max` durable events with a sequence number above `after`, in order.
    pub fn after(&self, after: u64, max: usize) -> Vec<pb::AgentEvent> {
        let recs = match self.lock().read_from(after, max, READ_BYTES) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "reading the spool");
                return Vec::new();
            }
        };
        recs.into_iter()
            .filter_map(|r| match pb::AgentEvent::decode(r.payload.as_slice()) {
                Ok(mut ev) => {
                    ev.seq = r.seq;
                    Some(ev)
                }
                Err(e) => {
                    tracing::error!(seq = r.seq, error = %e, "undecodable spool record skipped");
                    None
                }
            })
            .collect()
    }

    /// Number of unacknowledged events.
    pub fn len(&self) -> u64 {
        self.lock().stats().records
    }

    /// Whether nothing waits for acknowledgement.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held in the spool.
    pub fn bytes(&self) -> u64 {
        self.lock().stats().bytes
    }

    /// Completes when new durable events may be available.
    pub async fn changed(&self) {
        self.sendable.notified().await;
    }

    /// The controller's acknowledgement mark, as it moves.
    pub fn subscribe_acks(&self) -> watch::Receiver<u64> {
        self.acked.subscribe()
    }

    /// The resume token of the newest queued log batch of `server_id`, if one is still queued.
    pub fn log_resume_token(&self, server_id: i64) -> Option<String> {
        self.resume
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&server_id)
            .map(|(_, t)| t.clone())
    }

    /// Events refused because the spool was full.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Flushes everything appended so far (used at shutdown).
    pub fn flush_now(&self) {
        if let Err(e) = self.lock().flush() {
            tracing::error!(error = %e, "spool flush failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body() -> pb::agent_event::Body {
        pb::agent_event::Body::Status(pb::StatusChanged::default())
    }

    #[tokio::test]
    async fn events_survive_a_restart_until_acknowledged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = StateDir::open(dir.path()).expect("state");
        let o = Arc::new(Outbox::open(&state, 32 << 20).expect("open"));
        let cancel = CancellationToken::new();
        let flusher = tokio::spawn(o.clone().run_flusher(cancel.clone()));
        let a = o.push(1, body()).expect("a");
        let b = o.push(1, body()).expect("b");
        tokio::time::timeout(Duration::from_secs(5), async {
            while o.after(0, 10).len() < 2 {
                o.changed().await;
            }
        })
        .await
        .expect("durable");
        o.ack(a);
        cancel.cancel();
        flusher.await.expect("flusher");
        drop(o);
        let o = Outbox::open(&state, 32 << 20).expect("reopen");
        let left: Vec<u64> = o.after(0, 10).iter().map(|e| e.seq).collect();
        assert_eq!(
            left,
            vec![b],
            "the acknowledged event is gone, the other survives"
        );
        assert!(
            o.push(1, body()).expect("c") > b,
            "sequence numbers never go backwards"
        );
    }

    #[tokio::test]
    async fn a_log_resume_token_is_found_after_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = StateDir::open(dir.path()).expect("state");
        {
            let o = Outbox::open(&state, 32 << 20).expect("open");
            o.push(
                7,
                pb::agent_event::Body::Logs(pb::LogBatch {
                    entries: vec![],
                    resume_token: "t1".into(),
                }),
            );
            o.push(
                7,
                pb::agent_event::Body::Logs(pb::LogBatch {
                    entries: vec![],
                    resume_token: "t2".into(),
                }),
            );
            o.flush_now();
        }
        let o = Outbox::open(&state, 32 << 20).expect("reopen");
        assert_eq!(o.log_resume_token(7).as_deref(), Some("t2"));
        assert_eq!(o.log_resume_token(8), None);
    }
}
