//! `GET /metrics`: the controller's own gauges and counters in the Prometheus text format (0.0.4).
//!
//! No authentication, by design: it exposes only counts (nodes, servers by status, players, rows
//! written, dropped live messages) and node ids with their agents' spool sizes; never names,
//! addresses, tokens or anything from the game servers. Deployments that want even those hidden
//! block the path at their reverse proxy.
//!
//! Counts read from the database (servers by status, players, nodes) are cached for
//! [`DB_CACHE_TTL`], and concurrent scrapes share one query; a database that cannot be read leaves
//! those series out and sets `languard_database_up` to 0.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use sea_orm::sea_query::Expr;
use sea_orm::{DbErr, EntityTrait, PaginatorTrait, QuerySelect};
use tokio::sync::Mutex;

use crate::api::Ctx;
use crate::db::entities::{nodes, players, servers};

/// How long counts read from the database are reused.
pub const DB_CACHE_TTL: Duration = Duration::from_secs(2);

/// The content type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The statuses always reported (0 when no server has them), so series do not appear and vanish.
const STATUSES: [&str; 6] = [
    "stopped", "starting", "running", "stopping", "crashed", "error",
];

/// Counts read from the database.
#[derive(Debug, Clone, Default)]
struct DbCounts {
    nodes: u64,
    servers_by_status: Vec<(String, u64)>,
    players: u64,
}

/// The endpoint's state: the context and the cache of database counts.
#[derive(Clone)]
pub struct MetricsState {
    ctx: Ctx,
    cache: Arc<Mutex<Option<(Instant, DbCounts)>>>,
}

impl MetricsState {
    /// State over `ctx` with an empty cache.
    pub fn new(ctx: Ctx) -> Self {
        Self {
            ctx,
            cache: Arc::new(Mutex::new(None)),
        }
    }

    /// The cached counts, re-read when older than the TTL (one reader at a time).
    async fn counts(&self) -> Result<DbCounts, DbErr> {
        let mut cache = self.cache.lock().await;
        if let Some((at, c)) = cache.as_ref()
            && at.elapsed() < DB_CACHE_TTL
        {
            return Ok(c.clone());
        }
        let c = read_counts(&self.ctx.db).await?;
        *cache = Some((Instant::now(), c.clone()));
        Ok(c)
    }
}

async fn read_counts(db: &sea_orm::DatabaseConnection) -> Result<DbCounts, DbErr> {
    let nodes = nodes::Entity::find().count(db).await?;
    let players = players::Entity::find().count(db).await?;
    let rows: Vec<(String, i64)> = servers::Entity::find()
        .select_only()
        .column(servers::Column::Status)
        .column_as(Expr::cust("COUNT(*)"), "n")
        .group_by(servers::Column::Status)
        .into_tuple()
        .all(db)
        .await?;
    let mut by_status: Vec<(String, u64)> =
        STATUSES.iter().map(|s| ((*s).to_owned(), 0u64)).collect();
    for (status, n) in rows {
        let n = u64::try_from(n).unwrap_or(0);
        match by_status.iter_mut().find(|(s, _)| *s == status) {
            Some(slot) => slot.1 = n,
            None => by_status.push((status, n)),
        }
    }
    Ok(DbCounts {
        nodes,
        servers_by_status: by_status,
        players,
    })
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Writes one metric family: HELP, TYPE, then its samples (`labels` already rendered, may be "").
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, u64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, v) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {v}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {v}");
        }
    }
}

fn one(v: u64) -> Vec<(String, u64)> {
    vec![(String::new(), v)]
}

/// Renders every family as Prometheus text.
async fn render(state: &MetricsState) -> String {
    let ctx = &state.ctx;
    let mut out = String::with_capacity(4096);
    let counts = state.counts().await;
    if let Err(e) = &counts {
        tracing::warn!(error = %e, "/metrics: database counts unavailable");
    }
    family(
        &mut out,
        "languard_database_up",
        "gauge",
        "1 when the counts below could be read from the database.",
        &one(u64::from(counts.is_ok())),
    );
    family(
        &mut out,
        "languard_nodes_online",
        "gauge",
        "Nodes with a live agent session.",
        &one(ctx.agents.online_count() as u64),
    );
    if let Ok(c) = &counts {
        family(
            &mut out,
            "languard_nodes",
            "gauge",
            "Nodes registered.",
            &one(c.nodes),
        );
        let by_status: Vec<(String, u64)> = c
            .servers_by_status
            .iter()
            .map(|(s, n)| (format!("status=\"{}\"", escape(s)), *n))
            .collect();
        family(
            &mut out,
            "languard_servers",
            "gauge",
            "Servers by status.",
            &by_status,
        );
        family(
            &mut out,
            "languard_players_online",
            "gauge",
            "Players connected to any server.",
            &one(c.players),
        );
    }
    let spool: Vec<(String, u64)> = ctx
        .agents
        .spool_bytes()
        .into_iter()
        .map(|(node, b)| (format!("node_id=\"{node}\""), b))
        .collect();
    family(
        &mut out,
        "languard_agent_spool_bytes",
        "gauge",
        "Bytes in each connected agent's spool waiting for acknowledgement (latest heartbeat).",
        &spool,
    );
    let i = &ctx.ingest;
    family(
        &mut out,
        "languard_ingest_events_total",
        "counter",
        "Agent events stored (each sequence number once).",
        &one(i.events()),
    );
    family(
        &mut out,
        "languard_ingest_log_lines_total",
        "counter",
        "Log entries stored.",
        &one(i.log_lines()),
    );
    family(
        &mut out,
        "languard_ingest_metrics_rows_total",
        "counter",
        "Metrics rows stored (one per server and one per node per sample).",
        &one(i.metrics_rows()),
    );
    family(
        &mut out,
        "languard_writer_transactions_total",
        "counter",
        "Writer transactions committed.",
        &one(i.transactions()),
    );
    family(
        &mut out,
        "languard_writer_failed_transactions_total",
        "counter",
        "Writer transactions rolled back (the agents resend).",
        &one(i.failed_transactions()),
    );
    family(
        &mut out,
        "languard_writer_queue_depth",
        "gauge",
        "Operations waiting in the writer's queue.",
        &one(i.queue_depth()),
    );
    family(
        &mut out,
        "languard_hub_dropped_messages_total",
        "counter",
        "Live messages dropped for slow subscribers.",
        &one(ctx.hub.dropped()),
    );
    out
}

/// The handler of `GET /metrics`.
pub async fn handler(State(state): State<MetricsState>) -> Response {
    let body = render(&state).await;
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_render_in_the_text_format() {
        let mut out = String::new();
        family(
            &mut out,
            "x_total",
            "counter",
            "Things.",
            &[
                (String::new(), 3),
                (format!("status=\"{}\"", escape("a\"b\\c\nd")), 4),
            ],
        );
        assert_eq!(
            out,
            "# HELP x_total Things.\n# TYPE x_total counter\nx_total 3\nx_total{status=\"a\\\"b\\\\c\\nd\"} 4\n"
        );
    }
}
