//! Live agent sessions, keyed by node id, and command routing with request ids and timeouts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use languard_proto::v1 as pb;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tonic::Status;

/// Messages to one agent.
pub type AgentTx = mpsc::Sender<Result<pb::ControllerMessage, Status>>;

/// Why a command got no answer.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The node has no session, or it ended before answering.
    #[error("{0}")]
    Offline(String),
    /// The agent did not answer in time.
    #[error("{0}")]
    Timeout(String),
}

struct Session {
    id: u64,
    tx: AgentTx,
    pending: HashMap<String, oneshot::Sender<pb::CommandResult>>,
    last_seen: Instant,
    cancel: CancellationToken,
    /// Bytes in the agent's spool, from its latest heartbeat.
    spool_bytes: u64,
}

#[derive(Default)]
struct Inner {
    sessions: Mutex<HashMap<i64, Session>>,
    next_session: AtomicU64,
    next_request: AtomicU64,
}

/// Cheap-to-clone handle of the session table.
#[derive(Clone)]
pub struct AgentRegistry {
    inner: Arc<Inner>,
    timeout: Duration,
}

impl AgentRegistry {
    /// A registry whose commands wait at most `timeout` for an answer.
    pub fn new(timeout: Duration) -> Self {
        Self {
            inner: Arc::new(Inner::default()),
            timeout,
        }
    }

    fn sessions(&self) -> MutexGuard<'_, HashMap<i64, Session>> {
        // A panic while holding this lock cannot leave the map inconsistent (single inserts/removes).
        self.inner
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a session for `node_id`, replacing (and cancelling) any previous one.
    /// Returns the session id and its cancellation token.
    pub fn register(
        &self,
        node_id: i64,
        tx: AgentTx,
        parent: &CancellationToken,
    ) -> (u64, CancellationToken) {
        let id = self.inner.next_session.fetch_add(1, Ordering::Relaxed) + 1;
        let cancel = parent.child_token();
        let old = self.sessions().insert(
            node_id,
            Session {
                id,
                tx,
                pending: HashMap::new(),
                last_seen: Instant::now(),
                cancel: cancel.clone(),
                spool_bytes: 0,
            },
        );
        if let Some(old) = old {
            tracing::info!(
                node_id,
                old_session = old.id,
                new_session = id,
                "session replaced by a new one"
            );
            old.cancel.cancel();
        }
        (id, cancel)
    }

    /// Removes the session if it is still the current one; returns whether it was.
    pub fn unregister(&self, node_id: i64, session_id: u64) -> bool {
        let mut map = self.sessions();
        if map.get(&node_id).is_some_and(|s| s.id == session_id) {
            if let Some(s) = map.remove(&node_id) {
                s.cancel.cancel();
            }
            true
        } else {
            false
        }
    }

    /// Records that the session was heard from.
    pub fn touch(&self, node_id: i64, session_id: u64) {
        if let Some(s) = self
            .sessions()
            .get_mut(&node_id)
            .filter(|s| s.id == session_id)
        {
            s.last_seen = Instant::now();
        }
    }

    /// Records the spool size the session's agent reported in a heartbeat.
    pub fn set_spool_bytes(&self, node_id: i64, session_id: u64, bytes: u64) {
        if let Some(s) = self
            .sessions()
            .get_mut(&node_id)
            .filter(|s| s.id == session_id)
        {
            s.spool_bytes = bytes;
        }
    }

    /// The latest spool size of every connected node, by node id.
    pub fn spool_bytes(&self) -> Vec<(i64, u64)> {
        let mut v: Vec<(i64, u64)> = self
            .sessions()
            .iter()
            .map(|(n, s)| (*n, s.spool_bytes))
            .collect();
        v.sort_unstable();
        v
    }

    /// Whether the node has a live session.
    pub fn is_online(&self, node_id: i64) -> bool {
        self.sessions().contains_key(&node_id)
    }

    /// Number of live sessions.
    pub fn online_count(&self) -> usize {
        self.sessions().len()
    }

    /// Ends the node's session, if any.
    pub fn disconnect(&self, node_id: i64, reason: &str) {
        if let Some(s) = self.sessions().get(&node_id) {
            tracing::info!(node_id, reason, "disconnecting agent");
            s.cancel.cancel();
        }
    }

    /// Sessions not heard from for longer than `after`.
    pub fn stale(&self, after: Duration) -> Vec<i64> {
        let now = Instant::now();
        self.sessions()
            .iter()
            .filter(|(_, s)| now.duration_since(s.last_seen) > after)
            .map(|(n, _)| *n)
            .collect()
    }

    /// Delivers a command result to the RPC waiting for it.
    pub fn resolve(&self, node_id: i64, session_id: u64, result: pb::CommandResult) {
        let waiter = self
            .sessions()
            .get_mut(&node_id)
            .filter(|s| s.id == session_id)
            .and_then(|s| s.pending.remove(&result.request_id));
        match waiter {
            Some(w) => {
                let _ = w.send(result);
            }
            None => {
                tracing::debug!(node_id, request_id = %result.request_id, "result for no waiting request")
            }
        }
    }

    /// Sends a command to the node's agent and waits for its result.
    pub async fn send(
        &self,
        node_id: i64,
        actor: &str,
        action: pb::agent_command::Action,
    ) -> Result<pb::CommandResult, CommandError> {
        let n = self.inner.next_request.fetch_add(1, Ordering::Relaxed);
        let request_id = format!("{:016x}-{n}", rand::random::<u64>());
        let (done_tx, done_rx) = oneshot::channel();
        let tx = {
            let mut map = self.sessions();
            let s = map
                .get_mut(&node_id)
                .ok_or_else(|| CommandError::Offline(format!("node {node_id} is offline")))?;
            s.pending.insert(request_id.clone(), done_tx);
            s.tx.clone()
        };
        let msg = pb::ControllerMessage {
            body: Some(pb::controller_message::Body::Command(pb::AgentCommand {
                request_id: request_id.clone(),
                actor: actor.to_owned(),
                action: Some(action),
            })),
        };
        let wait = async {
            tx.send(Ok(msg))
                .await
                .map_err(|_| CommandError::Offline(format!("node {node_id} disconnected")))?;
            done_rx.await.map_err(|_| {
                CommandError::Offline(format!("node {node_id} disconnected before answering"))
            })
        };
        match tokio::time::timeout(self.timeout, wait).await {
            Ok(r) => r,
            Err(_) => {
                if let Some(s) = self.sessions().get_mut(&node_id) {
                    s.pending.remove(&request_id);
                }
                Err(CommandError::Timeout(format!(
                    "node {node_id} did not answer within {} s (request {request_id})",
                    self.timeout.as_secs()
                )))
            }
        }
    }

    /// Sends a message to the node's agent without waiting; false when it has no session.
    pub fn try_notify(&self, node_id: i64, msg: pb::ControllerMessage) -> bool {
        let tx = self.sessions().get(&node_id).map(|s| s.tx.clone());
        tx.is_some_and(|tx| tx.try_send(Ok(msg)).is_ok())
    }
}
