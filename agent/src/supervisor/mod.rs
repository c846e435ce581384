//! Process supervision: a registry of servers keyed by id, each with its spec, its runtime state,
//! a power lock (start, stop and restart are serialised per server; kill bypasses it), and a
//! monitor task per running process that reports every exit.

pub mod adapter;
pub mod process;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use languard_proto::v1 as pb;
use nix::sys::signal::Signal;
use tokio::sync::watch;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::outbox::Outbox;
use crate::state::StateDir;

/// Why a command failed; maps to `CommandErrorKind`.
#[derive(Debug, thiserror::Error)]
pub enum CmdError {
    /// Not allowed in the current state.
    #[error("{0}")]
    FailedPrecondition(String),
    /// Unknown server.
    #[error("{0}")]
    NotFound(String),
    /// Bad spec.
    #[error("{0}")]
    InvalidArgument(String),
    /// Anything else.
    #[error("{0}")]
    Internal(String),
}

impl CmdError {
    /// The wire kind.
    pub fn kind(&self) -> pb::CommandErrorKind {
        match self {
            CmdError::FailedPrecondition(_) => pb::CommandErrorKind::FailedPrecondition,
            CmdError::NotFound(_) => pb::CommandErrorKind::NotFound,
            CmdError::InvalidArgument(_) => pb::CommandErrorKind::InvalidArgument,
            CmdError::Internal(_) => pb::CommandErrorKind::Internal,
        }
    }
}

/// Supervision settings.
#[derive(Debug, Clone)]
pub struct SupervisorConfig {
    /// SIGTERM → SIGKILL delay of a graceful stop.
    pub stop_timeout: Duration,
    /// How long a power action waits for another one on the same server before giving up.
    pub lock_wait: Duration,
}

#[derive(Debug, Clone)]
struct Runtime {
    status: pb::ServerStatus,
    pid: i32,
    started_at: Option<DateTime<Utc>>,
    restart_count: i32,
    /// Who asked the current process to end (stop or kill), if anyone.
    stop_requested_by: Option<String>,
}

struct Slot {
    id: i64,
    spec: Mutex<pb::ServerSpec>,
    rt: Mutex<Runtime>,
    power: tokio::sync::Mutex<()>,
    /// Bumped on every process exit.
    exits: watch::Sender<u64>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Slot {
    fn state(&self) -> pb::ServerState {
        let rt = lock(&self.rt);
        pb::ServerState {
            server_id: self.id,
            status: rt.status as i32,
            pid: rt.pid,
            started_time: rt.started_at.map(ts),
            restart_count: rt.restart_count,
        }
    }

    fn is_active(&self) -> bool {
        matches!(
            lock(&self.rt).status,
            pb::ServerStatus::Starting | pb::ServerStatus::Running | pb::ServerStatus::Stopping
        )
    }
}

fn ts(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// Facts about a status change besides the new status.
#[derive(Default)]
struct Change {
    reason: String,
    actor: String,
    exit_code: Option<i32>,
    signal: Option<i32>,
}

/// The registry of supervised servers.
#[derive(Clone)]
pub struct Supervisor {
    slots: Arc<Mutex<HashMap<i64, Arc<Slot>>>>,
    outbox: Arc<Outbox>,
    state: StateDir,
    cfg: SupervisorConfig,
    tasks: TaskTracker,
}

impl Supervisor {
    /// A supervisor reporting to `outbox`, with its files in `state`.
    pub fn new(
        outbox: Arc<Outbox>,
        state: StateDir,
        cfg: SupervisorConfig,
        tasks: TaskTracker,
    ) -> Self {
        Self {
            slots: Arc::default(),
            outbox,
            state,
            cfg,
            tasks,
        }
    }

    fn slot(&self, id: i64) -> Result<Arc<Slot>, CmdError> {
        lock(&self.slots)
            .get(&id)
            .cloned()
            .ok_or_else(|| CmdError::NotFound(format!("server {id} is not known to this agent")))
    }

    /// Current state of every server.
    pub fn states(&self) -> Vec<pb::ServerState> {
        let mut v: Vec<_> = lock(&self.slots).values().map(|s| s.state()).collect();
        v.sort_by_key(|s| s.server_id);
        v
    }

    /// State of one server.
    pub fn server_state(&self, id: i64) -> Option<pb::ServerState> {
        lock(&self.slots).get(&id).map(|s| s.state())
    }

    fn persist_specs(&self) {
        let specs: Vec<pb::ServerSpec> = lock(&self.slots)
            .values()
            .map(|s| lock(&s.spec).clone())
            .collect();
        if let Err(e) = self.state.save_specs(&specs) {
            tracing::error!(error = %e, "could not cache specs");
        }
    }

    /// Creates or replaces a spec (a running server keeps its process; the spec applies at next start).
    pub fn upsert(&self, spec: pb::ServerSpec) {
        self.upsert_quiet(spec);
        self.persist_specs();
    }

    fn upsert_quiet(&self, spec: pb::ServerSpec) {
        let mut slots = lock(&self.slots);
        match slots.get(&spec.server_id) {
            Some(slot) => *lock(&slot.spec) = spec,
            None => {
                let id = spec.server_id;
                slots.insert(
                    id,
                    Arc::new(Slot {
                        id,
                        spec: Mutex::new(spec),
                        rt: Mutex::new(Runtime {
                            status: pb::ServerStatus::Stopped,
                            pid: 0,
                            started_at: None,
                            restart_count: 0,
                            stop_requested_by: None,
                        }),
                        power: tokio::sync::Mutex::new(()),
                        exits: watch::channel(0).0,
                    }),
                );
            }
        }
    }

    /// Replaces the whole set of specs with the controller's. Servers no longer wanted are forgotten
    /// unless they are running (those stay supervised until stopped).
    pub fn apply_specs(&self, specs: Vec<pb::ServerSpec>) {
        let wanted: std::collections::HashSet<i64> = specs.iter().map(|s| s.server_id).collect();
        for spec in specs {
            self.upsert_quiet(spec);
        }
        lock(&self.slots).retain(|id, slot| wanted.contains(id) || slot.is_active());
        self.persist_specs();
    }

    /// Forgets a server; refused while it runs.
    pub fn remove(&self, id: i64) -> Result<(), CmdError> {
        let slot = self.slot(id)?;
        if slot.is_active() {
            return Err(CmdError::FailedPrecondition(format!(
                "server {id} is running; stop it first"
            )));
        }
        lock(&self.slots).remove(&id);
        self.persist_specs();
        Ok(())
    }

    fn transition(&self, slot: &Slot, rt: &mut Runtime, to: pb::ServerStatus, change: Change) {
        let previous = rt.status;
        rt.status = to;
        tracing::info!(server_id = slot.id, from = ?previous, to = ?to, reason = %change.reason, actor = %change.actor, "status");
        self.outbox.push(
            slot.id,
            pb::agent_event::Body::Status(pb::StatusChanged {
                status: to as i32,
                previous: previous as i32,
                pid: rt.pid,
                started_time: rt.started_at.map(ts),
                restart_count: rt.restart_count,
                reason: change.reason,
                exit_code: change.exit_code,
                signal: change.signal,
                actor: change.actor,
                last_log_lines: Vec::new(),
            }),
        );
    }

    async fn power_lock<'a>(
        &self,
        slot: &'a Slot,
    ) -> Result<tokio::sync::MutexGuard<'a, ()>, CmdError> {
        tokio::time::timeout(self.cfg.lock_wait, slot.power.lock())
            .await
            .map_err(|_| {
                CmdError::FailedPrecondition(format!(
                    "another power action on server {} is still in progress",
                    slot.id
                ))
            })
    }

    /// Starts a server.
    pub async fn start(&self, id: i64, actor: &str) -> Result<pb::ServerState, CmdError> {
        let slot = self.slot(id)?;
        let _guard = self.power_lock(&slot).await?;
        self.start_locked(&slot, actor)?;
        Ok(slot.state())
    }

    fn start_locked(&self, slot: &Arc<Slot>, actor: &str) -> Result<(), CmdError> {
        if slot.is_active() {
            let pid = lock(&slot.rt).pid;
            return Err(CmdError::FailedPrecondition(format!(
                "server {} is already running (pid {pid})",
                slot.id
            )));
        }
        let spec = lock(&slot.spec).clone();
        let launch = adapter::arma3(&spec).map_err(|e| CmdError::InvalidArgument(e.0))?;
        {
            let mut rt = lock(&slot.rt);
            rt.pid = 0;
            rt.started_at = None;
            rt.stop_requested_by = None;
            self.transition(
                slot,
                &mut rt,
                pb::ServerStatus::Starting,
                Change {
                    reason: "start requested".into(),
                    actor: actor.into(),
                    ..Change::default()
                },
            );
        }
        let spawned = match process::spawn(&launch, &launch.profiles_dir) {
            Ok(s) => s,
            Err(e) => {
                let mut rt = lock(&slot.rt);
                self.transition(
                    slot,
                    &mut rt,
                    pb::ServerStatus::Error,
                    Change {
                        reason: e.0.clone(),
                        actor: actor.into(),
                        ..Change::default()
                    },
                );
                return Err(CmdError::Internal(e.0));
            }
        };
        {
            let mut rt = lock(&slot.rt);
            rt.pid = spawned.pid;
            rt.started_at = Some(Utc::now());
            self.transition(
                slot,
                &mut rt,
                pb::ServerStatus::Running,
                Change {
                    reason: format!("process started, log {}", spawned.log_path.display()),
                    actor: actor.into(),
                    ..Change::default()
                },
            );
        }
        let me = self.clone();
        let slot2 = slot.clone();
        let mut child = spawned.child;
        self.tasks.spawn(
            async move {
                let status = child.wait().await;
                me.on_exit(&slot2, status);
            }
            .instrument(tracing::info_span!(
                "monitor",
                server_id = slot.id,
                pid = spawned.pid
            )),
        );
        Ok(())
    }

    fn on_exit(&self, slot: &Slot, status: std::io::Result<std::process::ExitStatus>) {
        let (code, signal) = match &status {
            Ok(s) => process::describe(s),
            Err(_) => (None, None),
        };
        let how = match (code, signal) {
            (Some(c), _) => format!("exit code {c}"),
            (_, Some(s)) => format!(
                "signal {}",
                Signal::try_from(s)
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_else(|_| s.to_string())
            ),
            _ => "unknown exit".to_owned(),
        };
        {
            let mut rt = lock(&slot.rt);
            let requested = rt.stop_requested_by.take();
            let (to, reason, actor) = match requested {
                Some(actor) => (pb::ServerStatus::Stopped, format!("stopped ({how})"), actor),
                None => (
                    pb::ServerStatus::Crashed,
                    format!("exited unexpectedly ({how})"),
                    String::new(),
                ),
            };
            rt.pid = 0;
            self.transition(
                slot,
                &mut rt,
                to,
                Change {
                    reason,
                    actor,
                    exit_code: code,
                    signal,
                },
            );
            rt.started_at = None;
        }
        slot.exits.send_modify(|n| *n += 1);
    }

    /// Waits until the process that was running when `seen` was taken has exited, at most `limit`.
    async fn wait_exit(slot: &Slot, mut seen: watch::Receiver<u64>, limit: Duration) -> bool {
        if !slot.is_active() {
            return true;
        }
        tokio::time::timeout(limit, seen.changed()).await.is_ok()
    }

    /// Stops a server gracefully: SIGTERM to its group, SIGKILL after the stop timeout.
    pub async fn stop(&self, id: i64, actor: &str) -> Result<pb::ServerState, CmdError> {
        let slot = self.slot(id)?;
        let _guard = self.power_lock(&slot).await?;
        self.stop_locked(&slot, actor).await?;
        Ok(slot.state())
    }

    async fn stop_locked(&self, slot: &Arc<Slot>, actor: &str) -> Result<(), CmdError> {
        let seen = slot.exits.subscribe();
        let pid = {
            let mut rt = lock(&slot.rt);
            if !matches!(
                rt.status,
                pb::ServerStatus::Running | pb::ServerStatus::Starting | pb::ServerStatus::Stopping
            ) {
                return Err(CmdError::FailedPrecondition(format!(
                    "server {} is not running",
                    slot.id
                )));
            }
            if rt.pid <= 0 {
                return Err(CmdError::FailedPrecondition(format!(
                    "server {} is still being launched; try again",
                    slot.id
                )));
            }
            rt.stop_requested_by = Some(actor.to_owned());
            if rt.status != pb::ServerStatus::Stopping {
                self.transition(
                    slot,
                    &mut rt,
                    pb::ServerStatus::Stopping,
                    Change {
                        reason: "stop requested".into(),
                        actor: actor.into(),
                        ..Change::default()
                    },
                );
            }
            rt.pid
        };
        process::signal_group(pid, Signal::SIGTERM).map_err(|e| CmdError::Internal(e.0))?;
        if Self::wait_exit(slot, seen.clone(), self.cfg.stop_timeout).await {
            return Ok(());
        }
        tracing::warn!(
            server_id = slot.id,
            pid,
            "no exit after SIGTERM within the stop timeout; sending SIGKILL"
        );
        process::signal_group(pid, Signal::SIGKILL).map_err(|e| CmdError::Internal(e.0))?;
        if Self::wait_exit(slot, seen, Duration::from_secs(10)).await {
            Ok(())
        } else {
            Err(CmdError::Internal(format!(
                "server {} did not exit after SIGKILL",
                slot.id
            )))
        }
    }

    /// Stops (if running), then starts a server, under one hold of the power lock.
    pub async fn restart(&self, id: i64, actor: &str) -> Result<pb::ServerState, CmdError> {
        let slot = self.slot(id)?;
        let _guard = self.power_lock(&slot).await?;
        if slot.is_active() {
            self.stop_locked(&slot, actor).await?;
        }
        self.start_locked(&slot, actor)?;
        Ok(slot.state())
    }

    /// Kills a server's process group at once. Does not wait for the power lock, so it gets through
    /// while a stop is in progress.
    pub async fn kill(&self, id: i64, actor: &str) -> Result<pb::ServerState, CmdError> {
        let slot = self.slot(id)?;
        let seen = slot.exits.subscribe();
        let pid = {
            let mut rt = lock(&slot.rt);
            if !matches!(
                rt.status,
                pb::ServerStatus::Running | pb::ServerStatus::Starting | pb::ServerStatus::Stopping
            ) {
                return Err(CmdError::FailedPrecondition(format!(
                    "server {} is not running",
                    slot.id
                )));
            }
            if rt.pid <= 0 {
                return Err(CmdError::FailedPrecondition(format!(
                    "server {id} is still being launched; try again"
                )));
            }
            rt.stop_requested_by = Some(actor.to_owned());
            rt.pid
        };
        tracing::info!(server_id = id, pid, actor, "kill");
        process::signal_group(pid, Signal::SIGKILL).map_err(|e| CmdError::Internal(e.0))?;
        if Self::wait_exit(&slot, seen, Duration::from_secs(10)).await {
            Ok(slot.state())
        } else {
            Err(CmdError::Internal(format!(
                "server {id} did not exit after SIGKILL"
            )))
        }
    }
}
