//! The controller's start-up and shutdown, in order:
//! config (validated by the caller) → data dir → database and migrations → secrets → game adapters →
//! event hub → services → recovery of node state → initial admin → writer, liveness and retention
//! tasks (logs, metrics, events) → listen.
//! Shutdown: stop accepting, end streams, flush the writer, close the database, within the grace.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sea_orm::sea_query::Expr;
use sea_orm::{DatabaseConnection, EntityTrait};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::agents::AgentRegistry;
use crate::agents::session::AgentApi;
use crate::api::Ctx;
use crate::auth::Authenticator;
use crate::auth::jwt::JwtKeys;
use crate::auth::rate_limit::LoginLimiter;
use crate::config::Config;
use crate::db::entities::nodes;
use crate::hub::Hub;

/// Optional behaviours of a run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Also run an agent for this host, registered automatically.
    pub with_local_agent: bool,
    /// Register a demo server backed by the Arma 3 test double (implies the local agent).
    pub demo: bool,
}

/// A started controller.
pub struct App {
    /// The address the listener is bound to.
    pub local_addr: SocketAddr,
    /// The shared context.
    pub ctx: Ctx,
    tasks: TaskTracker,
    grace: Duration,
}

impl App {
    /// Runs the start-up sequence and begins serving.
    pub async fn start(
        config: Config,
        opts: &RunOptions,
        shutdown: CancellationToken,
    ) -> anyhow::Result<App> {
        crate::bootstrap::ensure_dir(&config.data_dir).context("data dir")?;
        let url = config.effective_database_url();
        let db = crate::db::connect(&url)
            .await
            .with_context(|| format!("database {}", redact(&url)))?;
        tracing::info!(database = %redact(&url), "database ready, migrations applied");
        let secret = crate::bootstrap::jwt_secret(&config.jwt_secret, &config.data_dir)
            .context("JWT secret")?;
        let keys = JwtKeys::new(&secret, config.access_token_ttl_seconds)
            .map_err(|e| anyhow::anyhow!("JWT keys: {e}"))?;
        let adapters = match &config.adapters_dir {
            Some(dir) => languard_adapters::Registry::load_dir(dir),
            None => languard_adapters::Registry::builtin(),
        };
        for e in adapters.errors() {
            tracing::warn!(error = %e, "game adapter skipped");
        }
        tracing::info!(game_types = ?adapters.names(), "game adapters loaded");
        let adapters = Arc::new(adapters);
        let hub = Hub::new(config.hub_capacity);
        let agents = AgentRegistry::new(Duration::from_secs(config.command_timeout_seconds));
        let ingest = crate::db::writer::IngestStats::default();
        let ctx = Ctx {
            db: db.clone(),
            auth: Authenticator::new(keys, db.clone()),
            hub: hub.clone(),
            agents: agents.clone(),
            limiter: Arc::new(LoginLimiter::new(config.login_attempts_per_minute)),
            config: Arc::new(config.clone()),
            shutdown: shutdown.clone(),
            ingest: ingest.clone(),
            adapters,
            spec_pushes: Default::default(),
        };
        // No agent has a session yet: every node starts offline.
        recover_nodes(&db).await.context("node recovery")?;
        crate::bootstrap::initial_admin(
            &db,
            &config.data_dir,
            std::env::var("LANGUARD_ADMIN_PASSWORD").ok(),
        )
        .await
        .context("initial admin")?;

        let tasks = TaskTracker::new();
        let writer_stop = CancellationToken::new();
        let (writer, writer_task) =
            crate::db::writer::spawn(db.clone(), hub.clone(), ingest, writer_stop.clone());
        let writer_join = tokio::spawn(writer_task.instrument(tracing::info_span!("writer")));
        tasks.spawn(
            crate::agents::liveness::run(
                agents.clone(),
                Duration::from_secs(config.node_offline_after_seconds),
                shutdown.clone(),
            )
            .instrument(tracing::info_span!("liveness")),
        );
        for job in retention_jobs(&config)? {
            let span = tracing::info_span!("retention", table = job.target.table());
            tasks.spawn(
                crate::jobs::retention::run(
                    db.clone(),
                    hub.clone(),
                    job,
                    Arc::new(crate::jobs::SystemClock),
                    shutdown.clone(),
                )
                .instrument(span),
            );
        }
        let agent_api = AgentApi::new(ctx.clone(), writer, tasks.clone());
        let router = crate::http::router(ctx.clone(), agent_api).await?;
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(c), Some(k)) => Some(crate::http::serve::tls_acceptor(
                c,
                k,
                config.tls_client_ca.as_deref(),
            )?),
            _ => None,
        };
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("bind {}", config.listen))?;
        let local_addr = listener.local_addr()?;
        let grace = Duration::from_secs(config.shutdown_grace_seconds);
        let serve_shutdown = shutdown.clone();
        let serve_tasks = tasks.clone();
        tasks.spawn(
            async move {
                crate::http::serve::serve(listener, router, tls, serve_shutdown, grace).await;
                // Sessions are gone: let the writer store what is queued, then stop.
                serve_tasks.close();
                writer_stop.cancel();
                if tokio::time::timeout(grace, writer_join).await.is_err() {
                    tracing::warn!("writer did not finish within the grace period");
                }
            }
            .instrument(tracing::info_span!("serve", addr = %local_addr)),
        );
        let scheme = if config.tls_enabled() {
            "https"
        } else {
            "http"
        };
        tracing::info!(addr = %local_addr, %scheme, "listening");
        // A machine-readable line for scripts and tests.
        println!("languard-controller listening on {local_addr}");

        if opts.with_local_agent || opts.demo {
            crate::local_agent::start(
                &ctx,
                &config,
                local_addr,
                opts.demo,
                &tasks,
                shutdown.clone(),
            )
            .await?;
        }
        Ok(App {
            local_addr,
            ctx,
            tasks,
            grace,
        })
    }

    /// Waits for the shutdown token, then for every task, bounded by the grace period (twice: the
    /// listener drain and the writer flush each get one).
    pub async fn wait(self) {
        self.ctx.shutdown.cancelled().await;
        self.tasks.close();
        if tokio::time::timeout(self.grace * 2 + Duration::from_secs(1), self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("shutdown grace period over with tasks still running");
        }
        if let Err(e) = self.ctx.db.clone().close().await {
            tracing::warn!(error = %e, "closing the database");
        }
        tracing::info!("controller stopped");
    }
}

/// The retention jobs of `config` (validated in `Config::validate`; parsed again here to get the
/// typed values): logs, metrics and events, all in `log_retention_time_zone`.
pub fn retention_jobs(config: &Config) -> anyhow::Result<Vec<crate::jobs::retention::Job>> {
    use crate::jobs::retention::{Job, RetentionOptions, Target, parse_schedule, parse_time_zone};
    let tz = parse_time_zone(&config.log_retention_time_zone)
        .map_err(|e| anyhow::anyhow!("log_retention_time_zone: {e}"))?;
    [
        (
            Target::Logs,
            "log_retention_schedule",
            &config.log_retention_schedule,
            config.log_retention_days,
        ),
        (
            Target::Metrics,
            "metrics_retention_schedule",
            &config.metrics_retention_schedule,
            config.metrics_retention_days,
        ),
        (
            Target::Events,
            "event_retention_schedule",
            &config.event_retention_schedule,
            config.event_retention_days,
        ),
    ]
    .into_iter()
    .map(|(target, field, schedule, days)| {
        Ok(Job {
            target,
            schedule: parse_schedule(schedule).map_err(|e| anyhow::anyhow!("{field}: {e}"))?,
            tz,
            opts: RetentionOptions::days(days),
        })
    })
    .collect()
}

async fn recover_nodes(db: &DatabaseConnection) -> Result<(), sea_orm::DbErr> {
    nodes::Entity::update_many()
        .col_expr(nodes::Column::Online, Expr::value(false))
        .exec(db)
        .await?;
    Ok(())
}

/// A database URL without its password, for logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redact_hides_the_password() {
        assert_eq!(
            super::redact("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(super::redact("sqlite://x.db"), "sqlite://x.db");
    }
}
