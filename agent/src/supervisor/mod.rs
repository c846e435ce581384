//! Process supervision: a registry of servers keyed by id, each with its spec, its runtime state,
//! a power lock (start, stop and restart are serialised per server; kill bypasses it), a monitor
//! per running process that reports every exit, the crash policy (auto-restart with backoff, a
//! restart limit per window), and re-attachment to servers that outlived an agent restart.

pub mod process;
pub mod tasks;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use languard_adapters::{GameAdapter, Registry, StopStep};
use languard_proto::v1 as pb;
use languard_spool::policy::{CrashHistory, Decision, RestartPolicy};
use languard_spool::procid::{self, ExitObserved, ProcessIdentity};
use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};
use tasks::{Bundle, TaskBackoff};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::outbox::Outbox;
use crate::rcon::{self, RconHandle, RconSettings};

const SIGKILL_WAIT: Duration = Duration::from_secs(10);
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
    /// A dependency (RCon) is down right now.
    #[error("{0}")]
    Unavailable(String),
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
            CmdError::Unavailable(_) => pb::CommandErrorKind::Unavailable,
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
    /// How often the RCon task polls `players`.
    pub rcon_poll_interval: Duration,
    /// Restart backoff of a server's failing tasks.
    pub task_backoff: TaskBackoff,
    /// First delay before an automatic restart after a crash.
    pub restart_backoff_initial: Duration,
    /// Largest delay before an automatic restart.
    pub restart_backoff_max: Duration,
    /// Log lines attached to a crash event.
    pub crash_log_lines: usize,
    /// The servers' time zone, for log timestamps.
    pub log_time_zone: languard_rpt::LogTimeZone,
    /// Flood guard: log lines per second per server above which lines are dropped and counted.
    pub log_max_lines_per_sec: u32,
    /// Old `.rpt` files kept per server (0 = never prune).
    pub log_keep_files: usize,
    /// The game adapters (built in, plus definitions shipped in specs).
    pub adapters: Arc<Registry>,
}

/// What the agent remembers about a running server across its own restarts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunRecord {
    /// Who the process is (pid + start time + executable).
    pub identity: ProcessIdentity,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Automatic restarts in the current window.
    pub restart_count: i32,
    /// The file its output goes to.
    pub log_path: Option<PathBuf>,
}

#[derive(Debug)]
struct Runtime {
    status: pb::ServerStatus,
    pid: i32,
    started_at: Option<DateTime<Utc>>,
    started_instant: Option<Instant>,
    restart_count: i32,
    identity: Option<ProcessIdentity>,
    log_path: Option<PathBuf>,
    /// Who asked the current process to end (stop or kill), if anyone.
    stop_requested_by: Option<String>,
    crashes: CrashHistory,
    /// A scheduled automatic restart, cancellable by a person's action.
    pending_restart: Option<CancellationToken>,
}

struct Slot {
    id: i64,
    spec: Mutex<pb::ServerSpec>,
    rt: Mutex<Runtime>,
    power: tokio::sync::Mutex<()>,
    /// Bumped on every process exit.
    exits: watch::Sender<u64>,
    /// The server's RCon client, while connected.
    rcon: RconHandle,
    /// The tasks running while the process runs.
    bundle: Mutex<Option<Bundle>>,
    /// The log task: started at the first start (or re-attach) and kept until the server is
    /// removed, so the end of a log is read after the process exits and a new file at the next
    /// start is followed as a rotation.
    logs: Mutex<Option<(String, Bundle)>>,
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
    last_log_lines: Vec<String>,
}

/// How a process ended.
struct Exit {
    code: Option<i32>,
    signal: Option<i32>,
    /// Human description ("exit code 3", "signal SIGSEGV", "exit status unknown").
    how: String,
}

/// The registry of supervised servers.
#[derive(Clone)]
pub struct Supervisor {
    slots: Arc<Mutex<HashMap<i64, Arc<Slot>>>>,
    outbox: Arc<Outbox>,
    state: StateDir,
    cfg: SupervisorConfig,
    tasks: TaskTracker,
    root: CancellationToken,
}

impl Supervisor {
    /// A supervisor reporting to `outbox`, with its files in `state`. Server task bundles and
    /// monitors of re-attached servers end when `root` is cancelled (agent shutdown); the game
    /// servers themselves keep running.
    pub fn new(
        outbox: Arc<Outbox>,
        state: StateDir,
        cfg: SupervisorConfig,
        tasks: TaskTracker,
        root: CancellationToken,
    ) -> Self {
        Self {
            slots: Arc::default(),
            outbox,
            state,
            cfg,
            tasks,
            root,
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

    /// The running servers: (id, pid, directories they use), for the metrics sampler.
    pub fn running(&self) -> Vec<(i64, i32, Vec<PathBuf>)> {
        lock(&self.slots)
            .values()
            .filter_map(|s| {
                let pid = lock(&s.rt).pid;
                if pid <= 0 {
                    return None;
                }
                let spec = lock(&s.spec).clone();
                let mut dirs = vec![PathBuf::from(&spec.executable_path)];
                if let Ok(files) = self
                    .cfg
                    .adapters
                    .for_spec(&spec)
                    .and_then(|a| a.log_files(&spec))
                {
                    dirs.insert(0, files.dir);
                }
                Some((s.id, pid, dirs))
            })
            .collect()
    }

    /// The schedules of every server, from their specs: (server id, schedule).
    pub fn schedules(&self) -> Vec<(i64, pb::Schedule)> {
        lock(&self.slots)
            .values()
            .flat_map(|s| {
                let spec = lock(&s.spec);
                spec.schedules
                    .iter()
                    .map(|sc| (s.id, sc.clone()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Whether a server's process is running.
    pub fn is_running(&self, id: i64) -> bool {
        lock(&self.slots)
            .get(&id)
            .is_some_and(|s| lock(&s.rt).status == pb::ServerStatus::Running)
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

    /// Writes the run records of every server with a live process.
    fn persist_runs(&self) {
        let runs: BTreeMap<i64, RunRecord> = lock(&self.slots)
            .values()
            .filter_map(|s| {
                let rt = lock(&s.rt);
                Some((
                    s.id,
                    RunRecord {
                        identity: rt.identity.clone()?,
                        started_at: rt.started_at?,
                        restart_count: rt.restart_count,
                        log_path: rt.log_path.clone(),
                    },
                ))
            })
            .collect();
        if let Err(e) = self.state.save_runs(&runs) {
            tracing::error!(error = %e, "could not record running servers");
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
                            started_instant: None,
                            restart_count: 0,
                            identity: None,
                            log_path: None,
                            stop_requested_by: None,
                            crashes: CrashHistory::new(),
                            pending_restart: None,
                        }),
                        power: tokio::sync::Mutex::new(()),
                        exits: watch::channel(0).0,
                        rcon: RconHandle::default(),
                        bundle: Mutex::new(None),
                        logs: Mutex::new(None),
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
        let mut dropped = Vec::new();
        lock(&self.slots).retain(|id, slot| {
            let keep = wanted.contains(id) || slot.is_active();
            if !keep {
                dropped.push(slot.clone());
            }
            keep
        });
        for slot in dropped {
            if let Some((_, logs)) = lock(&slot.logs).take() {
                self.tasks.spawn(logs.stop(Duration::from_secs(10)));
            }
        }
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
        if let Some(t) = lock(&slot.rt).pending_restart.take() {
            t.cancel();
        }
        if let Some((_, logs)) = lock(&slot.logs).take() {
            self.tasks.spawn(logs.stop(Duration::from_secs(10)));
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
                last_log_lines: change.last_log_lines,
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

    /// Re-attaches to the servers that were running when the agent last stopped: a recorded process
    /// that is still alive with the same pid, start time and executable is supervised again (the
    /// agent never starts a second copy); one that is gone (or whose pid now belongs to another
    /// process) died while the agent was down and is handled as a crash.
    pub fn reattach(&self) {
        let runs = self.state.load_runs();
        for (id, run) in runs {
            let Ok(slot) = self.slot(id) else {
                tracing::warn!(
                    server_id = id,
                    pid = run.identity.pid,
                    "a recorded server has no spec; leaving its process alone"
                );
                continue;
            };
            let alive = ProcessIdentity::of(run.identity.pid)
                .map(|now| now.matches(&run.identity))
                .unwrap_or(false)
                && procid::is_alive(run.identity.pid);
            let mut rt = lock(&slot.rt);
            rt.pid = run.identity.pid;
            rt.started_at = Some(run.started_at);
            rt.restart_count = run.restart_count;
            rt.log_path = run.log_path.clone();
            let ran = (Utc::now() - run.started_at).to_std().unwrap_or_default();
            rt.started_instant = Instant::now().checked_sub(ran);
            if alive {
                rt.identity = Some(run.identity.clone());
                rt.status = pb::ServerStatus::Running;
                self.transition(
                    &slot,
                    &mut rt,
                    pb::ServerStatus::Running,
                    Change {
                        reason: format!(
                            "re-attached after agent restart (pid {})",
                            run.identity.pid
                        ),
                        actor: "agent".into(),
                        ..Change::default()
                    },
                );
                drop(rt);
                let spec = lock(&slot.spec).clone();
                self.ensure_log_task(&slot, &spec);
                match self.cfg.adapters.for_spec(&spec) {
                    Ok(a) => self.start_bundle(&slot, &spec, a.as_ref()),
                    Err(e) => {
                        tracing::warn!(server_id = slot.id, error = %e, "no adapter: no RCon task")
                    }
                }
                self.watch_foreign(&slot, run.identity);
            } else {
                rt.status = pb::ServerStatus::Running;
                drop(rt);
                self.on_exit(
                    &slot,
                    Exit {
                        code: None,
                        signal: None,
                        how: "exited while the agent was down; exit status unknown".into(),
                    },
                );
            }
        }
        self.persist_runs();
    }

    /// Monitors a process that is not our child (re-attached) by polling /proc.
    fn watch_foreign(&self, slot: &Arc<Slot>, identity: ProcessIdentity) {
        let me = self.clone();
        let slot2 = slot.clone();
        let cancel = self.root.clone();
        let pid = identity.pid;
        self.tasks.spawn(
            async move {
                if let ExitObserved::Exited(_) = procid::wait_exit(&identity, &cancel).await {
                    me.on_exit(
                        &slot2,
                        Exit {
                            code: None,
                            signal: None,
                            how: "exit status unknown (re-attached process)".into(),
                        },
                    );
                }
            }
            .instrument(tracing::info_span!(
                "monitor",
                server_id = slot.id,
                pid,
                reattached = true
            )),
        );
    }

    /// Starts a server. A person's start clears the crash history and any pending auto-restart.
    pub async fn start(&self, id: i64, actor: &str) -> Result<pb::ServerState, CmdError> {
        let slot = self.slot(id)?;
        let _guard = self.power_lock(&slot).await?;
        {
            let mut rt = lock(&slot.rt);
            if let Some(t) = rt.pending_restart.take() {
                t.cancel();
            }
            if !matches!(
                rt.status,
                pb::ServerStatus::Starting | pb::ServerStatus::Running | pb::ServerStatus::Stopping
            ) {
                rt.crashes.clear();
                rt.restart_count = 0;
            }
        }
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
        let adapter = self
            .cfg
            .adapters
            .for_spec(&spec)
            .map_err(|e| CmdError::InvalidArgument(e.0))?;
        let launch = adapter
            .launch(&spec)
            .map_err(|e| CmdError::InvalidArgument(e.0))?;
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
        let fail = |reason: String| {
            let mut rt = lock(&slot.rt);
            self.transition(
                slot,
                &mut rt,
                pb::ServerStatus::Error,
                Change {
                    reason: reason.clone(),
                    actor: actor.into(),
                    ..Change::default()
                },
            );
            CmdError::Internal(reason)
        };
        adapter.prepare(&spec, &launch).map_err(|e| fail(e.0))?;
        let spawned = process::spawn(&launch).map_err(|e| fail(e.0))?;
        {
            let mut rt = lock(&slot.rt);
            rt.pid = spawned.pid;
            rt.started_at = Some(Utc::now());
            rt.started_instant = Some(Instant::now());
            rt.identity = ProcessIdentity::of(spawned.pid).ok();
            rt.log_path = Some(spawned.log_path.clone());
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
        self.persist_runs();
        self.ensure_log_task(slot, &spec);
        self.start_bundle(slot, &spec, adapter.as_ref());
        let me = self.clone();
        let slot2 = slot.clone();
        let mut child = spawned.child;
        self.tasks.spawn(
            async move {
                let exit = match child.wait().await {
                    Ok(status) => {
                        let (code, signal) = process::describe(&status);
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
                        Exit { code, signal, how }
                    }
                    Err(e) => Exit {
                        code: None,
                        signal: None,
                        how: format!("wait failed: {e}"),
                    },
                };
                me.on_exit(&slot2, exit);
            }
            .instrument(tracing::info_span!(
                "monitor",
                server_id = slot.id,
                pid = spawned.pid
            )),
        );
        Ok(())
    }

    fn on_exit(&self, slot: &Arc<Slot>, exit: Exit) {
        let mut schedule: Option<Duration> = None;
        {
            let mut rt = lock(&slot.rt);
            rt.identity = None;
            let spec = lock(&slot.spec).clone();
            // A stop: asked for by someone, or a clean exit of a server that ends itself on purpose.
            let stop = match rt.stop_requested_by.take() {
                Some(actor) => Some((format!("stopped ({})", exit.how), actor)),
                None if spec.clean_exit_stops && exit.code == Some(0) => Some((
                    format!(
                        "exited on its own ({}); a clean exit is a stop for this server",
                        exit.how
                    ),
                    "server".to_owned(),
                )),
                None => None,
            };
            match stop {
                Some((reason, actor)) => {
                    rt.pid = 0;
                    self.transition(
                        slot,
                        &mut rt,
                        pb::ServerStatus::Stopped,
                        Change {
                            reason,
                            actor,
                            exit_code: exit.code,
                            signal: exit.signal,
                            ..Change::default()
                        },
                    );
                }
                None => {
                    // The log's last lines go with a crash event only.
                    let log_tail = rt
                        .log_path
                        .as_deref()
                        .map(|p| last_lines(p, self.cfg.crash_log_lines))
                        .unwrap_or_default();
                    let ran_for = rt.started_instant.map(|s| s.elapsed()).unwrap_or_default();
                    let policy = RestartPolicy::from_spec(
                        spec.auto_restart,
                        spec.max_restarts,
                        spec.restart_window_seconds,
                    )
                    .with_backoff(
                        self.cfg.restart_backoff_initial,
                        self.cfg.restart_backoff_max,
                    );
                    let decision = rt.crashes.on_crash(&policy, Instant::now(), ran_for);
                    let next = match decision {
                        Decision::RestartAfter(d) => {
                            schedule = Some(d);
                            format!("; restarting in {} s", d.as_secs_f32())
                        }
                        Decision::GiveUp { restarts_in_window } => format!(
                            "; restart limit reached ({restarts_in_window} restarts within {} s): staying crashed until started by a person",
                            policy.restart_window.as_secs()
                        ),
                        Decision::NoRestart => String::new(),
                    };
                    rt.pid = 0;
                    self.transition(
                        slot,
                        &mut rt,
                        pb::ServerStatus::Crashed,
                        Change {
                            reason: format!("exited unexpectedly ({}){next}", exit.how),
                            actor: String::new(),
                            exit_code: exit.code,
                            signal: exit.signal,
                            last_log_lines: log_tail,
                        },
                    );
                }
            }
            rt.started_at = None;
            rt.started_instant = None;
        }
        slot.exits.send_modify(|n| *n += 1);
        self.persist_runs();
        if let Some(bundle) = lock(&slot.bundle).take() {
            self.tasks.spawn(bundle.stop(Duration::from_secs(10)));
        }
        if let Some(delay) = schedule {
            self.schedule_restart(slot, delay);
        }
    }

    fn schedule_restart(&self, slot: &Arc<Slot>, delay: Duration) {
        let cancel = self.root.child_token();
        if let Some(old) = lock(&slot.rt).pending_restart.replace(cancel.clone()) {
            old.cancel();
        }
        let me = self.clone();
        let slot = slot.clone();
        let id = slot.id;
        self.tasks.spawn(
            async move {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
                let Ok(_guard) = me.power_lock(&slot).await else {
                    return;
                };
                {
                    let mut rt = lock(&slot.rt);
                    // A person acted meanwhile (started, stopped or removed it).
                    if cancel.is_cancelled() || rt.status != pb::ServerStatus::Crashed {
                        return;
                    }
                    rt.pending_restart = None;
                    rt.restart_count += 1;
                }
                if let Err(e) = me.start_locked(&slot, "agent (auto-restart)") {
                    tracing::warn!(error = %e, "automatic restart failed");
                }
            }
            .instrument(tracing::info_span!("auto_restart", server_id = id)),
        );
    }

    /// Waits until the process that was running when `seen` was taken has exited, at most `limit`.
    async fn wait_exit(slot: &Slot, mut seen: watch::Receiver<u64>, limit: Duration) -> bool {
        if !slot.is_active() {
            return true;
        }
        tokio::time::timeout(limit, seen.changed()).await.is_ok()
    }

    /// Stops a server gracefully: RCon `#shutdown` when connected, then SIGTERM to its group, then
    /// SIGKILL after the stop timeout. A crashed server waiting for an automatic restart is stopped
    /// by cancelling that restart.
    pub async fn stop(&self, id: i64, actor: &str) -> Result<pb::ServerState, CmdError> {
        let slot = self.slot(id)?;
        let _guard = self.power_lock(&slot).await?;
        {
            let mut rt = lock(&slot.rt);
            if let Some(t) = rt.pending_restart.take() {
                t.cancel();
                if rt.status == pb::ServerStatus::Crashed {
                    self.transition(
                        &slot,
                        &mut rt,
                        pb::ServerStatus::Stopped,
                        Change {
                            reason: "automatic restart cancelled".into(),
                            actor: actor.into(),
                            ..Change::default()
                        },
                    );
                    drop(rt);
                    return Ok(slot.state());
                }
            }
        }
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
        let spec = lock(&slot.spec).clone();
        let (steps, launch) = match self.cfg.adapters.for_spec(&spec) {
            Ok(a) => (a.stop_sequence(&spec), a.launch(&spec).ok()),
            Err(e) => {
                tracing::warn!(server_id = slot.id, error = %e, "no adapter for the stop; sending SIGTERM");
                (vec![StopStep::Signal(Signal::SIGTERM as i32)], None)
            }
        };
        for step in steps {
            if self
                .stop_step(slot, pid, &step, launch.as_ref(), &seen)
                .await?
            {
                return Ok(());
            }
            tracing::warn!(server_id = slot.id, pid, step = %step, "no exit after this stop step within the stop timeout");
        }
        tracing::warn!(server_id = slot.id, pid, "sending SIGKILL");
        process::signal_group(pid, Signal::SIGKILL).map_err(|e| CmdError::Internal(e.0))?;
        if Self::wait_exit(slot, seen, SIGKILL_WAIT).await {
            Ok(())
        } else {
            Err(CmdError::Internal(format!(
                "server {} did not exit after SIGKILL",
                slot.id
            )))
        }
    }

    /// Runs one step of a graceful stop; true when the server exited within the stop timeout.
    async fn stop_step(
        &self,
        slot: &Arc<Slot>,
        pid: i32,
        step: &StopStep,
        launch: Option<&languard_adapters::Launch>,
        seen: &watch::Receiver<u64>,
    ) -> Result<bool, CmdError> {
        match step {
            StopStep::Rcon(command) => {
                let Ok(client) = slot.rcon.client() else {
                    tracing::info!(
                        server_id = slot.id,
                        "RCon not connected; skipping {command}"
                    );
                    return Ok(false);
                };
                match tokio::time::timeout(Duration::from_secs(5), client.command(command)).await {
                    Ok(Ok(_)) => {}
                    _ => {
                        tracing::info!(server_id = slot.id, "RCon {command} not answered");
                        return Ok(false);
                    }
                }
            }
            StopStep::Command(argv) => {
                let Some((program, args)) = argv.split_first() else {
                    return Ok(false);
                };
                let mut cmd = tokio::process::Command::new(program);
                // Like the server itself: its working dir and environment.
                if let Some(l) = launch {
                    cmd.current_dir(&l.cwd)
                        .envs(l.env.iter().map(|(k, v)| (k, v)));
                }
                let run = cmd
                    .args(args)
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .kill_on_drop(true)
                    .status();
                match tokio::time::timeout(self.cfg.stop_timeout, run).await {
                    Ok(Ok(status)) if status.success() => {}
                    Ok(Ok(status)) => {
                        tracing::warn!(server_id = slot.id, %status, "stop command failed")
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(server_id = slot.id, error = %e, "stop command could not run")
                    }
                    Err(_) => tracing::warn!(server_id = slot.id, "stop command timed out"),
                }
            }
            StopStep::Signal(n) => {
                let sig = Signal::try_from(*n).unwrap_or(Signal::SIGTERM);
                process::signal_group(pid, sig).map_err(|e| CmdError::Internal(e.0))?;
            }
        }
        Ok(Self::wait_exit(slot, seen.clone(), self.cfg.stop_timeout).await)
    }

    /// Stops (if running), then starts a server, under one hold of the power lock.
    pub async fn restart(&self, id: i64, actor: &str) -> Result<pb::ServerState, CmdError> {
        let slot = self.slot(id)?;
        let _guard = self.power_lock(&slot).await?;
        {
            let mut rt = lock(&slot.rt);
            if let Some(t) = rt.pending_restart.take() {
                t.cancel();
            }
            rt.crashes.clear();
        }
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
            if let Some(t) = rt.pending_restart.take() {
                t.cancel();
            }
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

    /// Starts the tasks that run while the server runs.
    fn start_bundle(&self, slot: &Arc<Slot>, spec: &pb::ServerSpec, adapter: &dyn GameAdapter) {
        let bundle = Bundle::new(&self.root, self.cfg.task_backoff);
        if adapter.rcon(spec).is_some() {
            let settings = RconSettings {
                addr: std::net::SocketAddr::from((
                    [127, 0, 0, 1],
                    u16::try_from(spec.rcon_port).unwrap_or(0),
                )),
                password: spec.rcon_password.clone(),
                poll_interval: self.cfg.rcon_poll_interval,
            };
            let (outbox, handle, token, id) = (
                self.outbox.clone(),
                slot.rcon.clone(),
                bundle.token(),
                slot.id,
            );
            bundle.spawn("rcon", slot.id, move || {
                rcon::run(
                    id,
                    settings.clone(),
                    outbox.clone(),
                    handle.clone(),
                    token.clone(),
                )
            });
        }
        if let Some(old) = lock(&slot.bundle).replace(bundle) {
            self.tasks.spawn(old.stop(Duration::from_secs(10)));
        }
    }

    /// Starts the server's log task unless it runs already.
    /// A changed log source (directory, patterns, parser or time zone, e.g. after UpdateServer)
    /// replaces the running task at the next start.
    fn ensure_log_task(&self, slot: &Arc<Slot>, spec: &pb::ServerSpec) {
        let settings: std::collections::BTreeMap<_, _> = spec.settings.iter().collect();
        let key = format!(
            "{}|{}|{}|{:?}|{settings:?}|{}",
            spec.game_type,
            spec.executable_path,
            spec.working_dir,
            spec.arma3,
            spec.adapter_definition
        );
        let mut logs_slot = lock(&slot.logs);
        match logs_slot.take() {
            Some((k, bundle)) if k == key => {
                *logs_slot = Some((k, bundle));
                return;
            }
            Some((_, old)) => {
                tracing::info!(
                    server_id = slot.id,
                    "log source changed; following the new one"
                );
                self.tasks.spawn(old.stop(Duration::from_secs(10)));
            }
            None => {}
        }
        let bundle = Bundle::new(&self.root, self.cfg.task_backoff);
        let server_dir = self.state.server_dir(slot.id);
        if let Err(e) = std::fs::create_dir_all(&server_dir) {
            tracing::warn!(error = %e, "cannot create the server's state dir");
        }
        let adapter = match self.cfg.adapters.for_spec(spec) {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(server_id = slot.id, error = %e, "no adapter: not following the log");
                return;
            }
        };
        let files = match adapter.log_files(spec) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(server_id = slot.id, error = %e, "no log files: not following the log");
                return;
            }
        };
        let (spec2, default_tz) = (spec.clone(), self.cfg.log_time_zone);
        let logs = crate::logs::LogSettings {
            files,
            parser: Arc::new(move || adapter.log_parser(&spec2, default_tz)),
            max_lines_per_sec: self.cfg.log_max_lines_per_sec,
            keep_files: self.cfg.log_keep_files,
            checkpoint_path: server_dir.join("log-checkpoint.json"),
            entry_idle: Duration::from_millis(50),
        };
        let (outbox, token, id) = (self.outbox.clone(), bundle.token(), slot.id);
        bundle.spawn("logs", slot.id, move || {
            crate::logs::run(id, logs.clone(), outbox.clone(), token.clone())
        });
        *logs_slot = Some((key, bundle));
    }

    /// Sends an RCon command to a server.
    pub async fn rcon(&self, id: i64, command: &str) -> Result<String, CmdError> {
        let slot = self.slot(id)?;
        let spec = lock(&slot.spec).clone();
        if spec.rcon_port == 0
            || self
                .cfg
                .adapters
                .for_spec(&spec)
                .map_or(true, |a| a.rcon(&spec).is_none())
        {
            return Err(CmdError::FailedPrecondition(format!(
                "server {id} has no RCon configured"
            )));
        }
        if !slot.is_active() {
            return Err(CmdError::Unavailable(format!(
                "server {id} is not running, so RCon is down"
            )));
        }
        slot.rcon
            .command(command)
            .await
            .map_err(CmdError::Unavailable)
    }
}

/// The last `n` lines of a file (reading at most its last 64 KiB), lossily decoded.
fn last_lines(path: &Path, n: usize) -> Vec<String> {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(64 * 1024);
    if f.seek(SeekFrom::Start(start)).is_err() {
        return Vec::new();
    }
    let mut buf = Vec::new();
    if f.read_to_end(&mut buf).is_err() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let skip = lines.len().saturating_sub(n);
    lines[skip..]
        .iter()
        .map(|l| l.trim_end_matches('\r').to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_lines_of_a_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("x.rpt");
        let body: String = (0..100).map(|i| format!("line {i}\r\n")).collect();
        std::fs::write(&p, body).expect("write");
        assert_eq!(last_lines(&p, 3), vec!["line 97", "line 98", "line 99"]);
        assert!(last_lines(&dir.path().join("missing"), 3).is_empty());
    }
}
