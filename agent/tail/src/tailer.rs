//! The async task: runs the engine on the blocking pool, wakes on inotify or the poll timer,
//! sends batches, ends on cancel.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use notify::event::ModifyKind;
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::{ConfigError, LogSource, TailConfig};
use crate::engine::{Engine, Shared};
use crate::identity::{Checkpoint, FileIdentity, dev_ino};
use crate::prune::prune_keys;
use crate::types::{TailBatch, TailStats};

/// Starts tailers. See the crate documentation.
#[derive(Debug, Clone, Copy)]
pub struct Tailer;

impl Tailer {
    /// Validates `config` and spawns the tailing task on the current tokio runtime.
    ///
    /// `start`: resume just after an acknowledged line (see the crate documentation for a
    /// checkpoint whose file is gone); `None` starts per [`TailConfig::start`]. The task ends
    /// when `cancel` is cancelled (promptly: it does not wait for the receiver) or when the
    /// receiver is dropped.
    pub fn spawn(
        config: TailConfig,
        start: Option<Checkpoint>,
        cancel: CancellationToken,
    ) -> Result<(TailHandle, mpsc::Receiver<TailBatch>), ConfigError> {
        config.validate()?;
        let (tx, rx) = mpsc::channel(config.channel_capacity);
        let shared = Arc::new(Shared::default());
        let cfg = Arc::new(config);
        let span = tracing::info_span!("log_tail", source = %SourceName(&cfg.source));
        let task = tokio::spawn(
            run(
                Arc::clone(&cfg),
                start,
                cancel.clone(),
                tx,
                Arc::clone(&shared),
            )
            .instrument(span),
        );
        Ok((
            TailHandle {
                shared,
                cancel,
                task,
                source: cfg.source.clone(),
            },
            rx,
        ))
    }
}

/// Owns a running tailer.
#[derive(Debug)]
pub struct TailHandle {
    shared: Arc<Shared>,
    cancel: CancellationToken,
    task: JoinHandle<()>,
    source: LogSource,
}

impl TailHandle {
    /// The file being followed and its identity.
    pub fn current_file(&self) -> Option<(PathBuf, FileIdentity)> {
        self.shared
            .status
            .lock()
            .ok()
            .and_then(|s| s.current.clone())
    }

    /// Counters since the start.
    pub fn stats(&self) -> TailStats {
        self.shared
            .status
            .lock()
            .map(|s| s.stats)
            .unwrap_or_default()
    }

    /// Stops the task (it ends within one read of at most a batch).
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Whether the task has ended.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Waits for the task to end (after [`TailHandle::cancel`], or once the receiver is gone).
    pub async fn join(self) {
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "log tail task failed");
        }
    }

    /// Deletes old matching files beyond the `keep` newest, never the file being followed nor
    /// files still queued for reading. Blocking (see [`crate::prune_logs`]).
    pub fn prune(&self, keep: usize) -> io::Result<Vec<PathBuf>> {
        let mut protect = HashSet::new();
        if let Ok(st) = self.shared.status.lock() {
            if let Some((_, id)) = &st.current {
                protect.insert((id.dev, id.ino));
            }
            protect.extend(st.queued.iter().copied());
        }
        prune_keys(&self.source, keep, &protect)
    }
}

struct SourceName<'a>(&'a LogSource);

impl std::fmt::Display for SourceName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            LogSource::File(p) => write!(f, "{}", p.display()),
            LogSource::Directory { dir, patterns } => {
                write!(f, "{}/{{{}}}", dir.display(), patterns.join(","))
            }
        }
    }
}

async fn run(
    cfg: Arc<TailConfig>,
    start: Option<Checkpoint>,
    cancel: CancellationToken,
    tx: mpsc::Sender<TailBatch>,
    shared: Arc<Shared>,
) {
    let (wake_tx, mut wake_rx) = mpsc::channel::<()>(1);
    let dir_changed = Arc::new(AtomicBool::new(false));
    let mut watch = Watch::new(&cfg, wake_tx, Arc::clone(&dir_changed));
    watch.ensure(Instant::now());

    let mut engine = Engine::new(Arc::clone(&cfg), shared);
    engine = match tokio::task::spawn_blocking(move || {
        engine.init(start);
        engine
    })
    .await
    {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "log tail start failed");
            return;
        }
    };
    tracing::debug!("log tail started");

    loop {
        if cancel.is_cancelled() {
            break;
        }
        let now = Instant::now();
        watch.ensure(now);
        engine.set_notify_active(watch.active());
        let changed = dir_changed.swap(false, Ordering::AcqRel);
        let (e, out) = match tokio::task::spawn_blocking(move || {
            let out = engine.step(changed);
            (engine, out)
        })
        .await
        {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(error = %e, "log tail step failed");
                return;
            }
        };
        engine = e;
        if !out.records.is_empty() {
            let batch = TailBatch {
                records: out.records,
                position: out.position,
            };
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                res = tx.send(batch) => if res.is_err() {
                    tracing::debug!("log tail receiver dropped");
                    break;
                },
            }
        }
        if out.more {
            continue;
        }
        let mut deadline = Instant::now() + cfg.poll_interval;
        if let Some(d) = engine.deadline() {
            deadline = deadline.min(d);
        }
        tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            _ = wake_rx.recv() => {},
            _ = tokio::time::sleep_until(deadline.into()) => {},
        }
    }
    tracing::debug!("log tail stopped");
}

/// The inotify watch on the source directory, re-created when the directory itself was
/// replaced or appears later.
struct Watch {
    enabled: bool,
    dir: PathBuf,
    source: LogSource,
    wake: mpsc::Sender<()>,
    dir_changed: Arc<AtomicBool>,
    watcher: Option<RecommendedWatcher>,
    dir_key: Option<(u64, u64)>,
    last_check: Option<Instant>,
    check_every: Duration,
}

impl Watch {
    fn new(cfg: &TailConfig, wake: mpsc::Sender<()>, dir_changed: Arc<AtomicBool>) -> Self {
        Watch {
            enabled: cfg.use_notify,
            dir: cfg.source.watch_dir().to_path_buf(),
            source: cfg.source.clone(),
            wake,
            dir_changed,
            watcher: None,
            dir_key: None,
            last_check: None,
            check_every: (cfg.poll_interval * 4).max(Duration::from_secs(1)),
        }
    }

    fn active(&self) -> bool {
        self.watcher.is_some()
    }

    fn ensure(&mut self, now: Instant) {
        if !self.enabled
            || self
                .last_check
                .is_some_and(|t| now.saturating_duration_since(t) < self.check_every)
        {
            return;
        }
        self.last_check = Some(now);
        let key = std::fs::metadata(&self.dir).ok().map(|m| dev_ino(&m));
        if self.watcher.is_some() && key == self.dir_key {
            return;
        }
        self.watcher = None;
        self.dir_key = key;
        if key.is_none() {
            return;
        }
        match self.create() {
            Ok(w) => {
                tracing::debug!(dir = %self.dir.display(), "watching log directory");
                self.watcher = Some(w);
                // Anything may have changed while there was no watch.
                self.dir_changed.store(true, Ordering::Release);
            }
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot watch log directory; polling");
            }
        }
    }

    fn create(&self) -> notify::Result<RecommendedWatcher> {
        let wake = self.wake.clone();
        let changed = Arc::clone(&self.dir_changed);
        let source = self.source.clone();
        let mut w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            let structural = match &res {
                Ok(ev) => {
                    if matches!(ev.kind, EventKind::Access(_)) || !relevant(&source, &ev.paths) {
                        return;
                    }
                    matches!(
                        ev.kind,
                        EventKind::Create(_)
                            | EventKind::Remove(_)
                            | EventKind::Modify(ModifyKind::Name(_))
                            | EventKind::Any
                            | EventKind::Other
                    )
                }
                Err(_) => true,
            };
            if structural {
                changed.store(true, Ordering::Release);
            }
            let _ = wake.try_send(());
        })?;
        w.watch(&self.dir, RecursiveMode::NonRecursive)?;
        Ok(w)
    }
}

fn relevant(source: &LogSource, paths: &[PathBuf]) -> bool {
    paths.is_empty()
        || paths.iter().any(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| source.matches_name(n))
                || p.as_path() == source.watch_dir()
                || p.as_path() == Path::new(".")
        })
}
