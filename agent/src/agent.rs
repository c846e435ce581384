//! Wiring, in start-up order: config (validated by the caller) → state dir → spool (outbox) →
//! game adapters (built in; declared ones arrive inside specs) → cached specs → supervisor →
//! re-attach to running servers → scheduler → metrics → link to the controller. Shutdown leaves
//! game servers running and flushes the spool.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::config::AgentConfig;
use crate::link::Link;
use crate::outbox::Outbox;
use crate::state::StateDir;
use crate::supervisor::{Supervisor, SupervisorConfig};

/// Start-up failures.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The state dir is unusable.
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    /// The spool cannot be opened (for example another agent uses this state dir).
    #[error(transparent)]
    Spool(#[from] crate::outbox::OutboxError),
    /// The metrics endpoint cannot listen.
    #[error("{0}")]
    Metrics(String),
}

/// Stops every running server gracefully, all at once, within `limit`.
async fn stop_all(supervisor: &Supervisor, limit: Duration) {
    let ids: Vec<i64> = supervisor
        .running()
        .into_iter()
        .map(|(id, _, _)| id)
        .collect();
    tracing::info!(
        servers = ids.len(),
        "agent shutting down; stopping game servers"
    );
    let stops = ids.iter().map(|id| async move {
        if let Err(e) = supervisor.stop(*id, "agent shutdown").await {
            tracing::warn!(server_id = id, error = %e, "stop at shutdown failed");
        }
    });
    if tokio::time::timeout(limit, futures::future::join_all(stops))
        .await
        .is_err()
    {
        tracing::warn!("game servers still stopping when the shutdown limit was reached");
    }
}

/// Runs the agent until `shutdown` is cancelled. Game servers keep running after it returns.
pub async fn run(cfg: AgentConfig, shutdown: CancellationToken) -> Result<(), AgentError> {
    let state = StateDir::open(&cfg.state_dir)?;
    let outbox = Arc::new(Outbox::open(&state, cfg.spool_max_bytes)?);
    let tasks = TaskTracker::new();
    let flusher_stop = CancellationToken::new();
    let flusher = tokio::spawn(
        outbox
            .clone()
            .run_flusher(flusher_stop.clone())
            .instrument(tracing::info_span!("spool_flusher")),
    );
    // The servers' task bundles (log, RCon) outlive `shutdown` until the servers are stopped (when
    // configured), so a graceful stop can still use RCon and the last log lines are read.
    let servers_root = CancellationToken::new();
    let supervisor = Supervisor::new(
        outbox.clone(),
        state.clone(),
        SupervisorConfig {
            stop_timeout: Duration::from_secs(cfg.stop_timeout_seconds),
            lock_wait: Duration::from_secs(cfg.stop_timeout_seconds * 2 + 30),
            rcon_poll_interval: Duration::from_secs(cfg.rcon_poll_interval_seconds),
            task_backoff: crate::supervisor::tasks::TaskBackoff::default(),
            restart_backoff_initial: Duration::from_millis(cfg.restart_backoff_initial_ms),
            restart_backoff_max: Duration::from_millis(cfg.restart_backoff_max_ms),
            crash_log_lines: 20,
            log_time_zone: cfg
                .log_time_zone
                .parse()
                .unwrap_or(languard_rpt::LogTimeZone::Local),
            log_max_lines_per_sec: cfg.log_max_lines_per_sec,
            log_keep_files: cfg.log_keep_files,
            adapters: std::sync::Arc::new(languard_adapters::Registry::builtin()),
        },
        tasks.clone(),
        servers_root.clone(),
    );
    let cached = state.load_specs();
    tracing::info!(servers = cached.len(), state_dir = %state.root().display(), "loaded cached specs");
    for spec in cached {
        supervisor.upsert(spec);
    }
    supervisor.reattach();
    let stats = Arc::new(crate::stats::AgentStats::default());
    if let Some(addr) = cfg.metrics_listen {
        let sources = crate::prometheus::Sources {
            supervisor: supervisor.clone(),
            outbox: outbox.clone(),
            stats: stats.clone(),
        };
        let (bound, serve) = crate::prometheus::bind(addr, sources, shutdown.clone())
            .await
            .map_err(|e| AgentError::Metrics(format!("metrics_listen {addr}: {e}")))?;
        tracing::info!(addr = %bound, "metrics endpoint listening");
        // A machine-readable line for scripts and tests.
        println!("languard-agent metrics on {bound}");
        tasks.spawn(serve.instrument(tracing::info_span!("metrics_http", addr = %bound)));
    }
    tasks.spawn(
        crate::scheduler::run(
            supervisor.clone(),
            outbox.clone(),
            stats.clone(),
            shutdown.clone(),
        )
        .instrument(tracing::info_span!("scheduler")),
    );
    tasks.spawn(
        crate::metrics::run(
            supervisor.clone(),
            outbox.clone(),
            Duration::from_secs(cfg.metrics_interval_seconds),
            state.root().to_owned(),
            stats.clone(),
            shutdown.clone(),
        )
        .instrument(tracing::info_span!("metrics")),
    );
    let link = Link::new(cfg.clone(), supervisor.clone(), outbox.clone()).with_stats(stats);
    tasks.spawn(
        link.run(shutdown.clone())
            .instrument(tracing::info_span!("link", controller = %cfg.controller_url)),
    );
    shutdown.cancelled().await;
    if cfg.stop_servers_on_shutdown {
        // Up to four stop steps (RCon, command, signal, SIGKILL), each bounded by the stop timeout.
        stop_all(
            &supervisor,
            Duration::from_secs(cfg.stop_timeout_seconds * 4 + 25),
        )
        .await;
    } else {
        tracing::info!(
            pending_events = outbox.len(),
            "agent shutting down; game servers keep running"
        );
    }
    servers_root.cancel();
    tasks.close();
    if tokio::time::timeout(Duration::from_secs(5), tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("some agent tasks did not end within 5 s");
    }
    flusher_stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), flusher).await;
    outbox.flush_now();
    Ok(())
}
