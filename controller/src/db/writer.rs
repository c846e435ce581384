//! The single writer for agent data: event batches and heartbeats arrive on a bounded queue and are
//! written in batched transactions. Each event batch is stored together with the node's new
//! high-water sequence number in one transaction, so a resent event (at or below the mark) is
//! ignored: at-least-once on the wire becomes exactly-once in the database.
//!
//! What each event body becomes:
//! - `status`: the server row's status, a `status` history event; stopped/crashed/error also ends
//!   every open play session of the server.
//! - `logs`: rows of `logs`, inserted with multi-row `INSERT ... RETURNING id` statements at the end
//!   of the transaction (no round trip per line); published as `log` messages after the commit.
//! - `player` / `players`: the `players` table (who is on now) and `player_history` (sessions),
//!   reconciled idempotently; published as `players` messages.
//! - `chat`, `gap`: history events of type `chat` and `gap`.
//! - `metrics`: rows of `metrics`, one per owned server (`server_id` set) and one for the node
//!   (`server_id` NULL; memory in use as `mem_rss_bytes`, the rest in `extra` JSON), inserted with
//!   multi-row statements at the end of the transaction; the newest sample of each server and node
//!   in the transaction is published as a `metrics` message after the commit.
//!
//! [`IngestStats`] counts what was committed (for `/metrics`) and the queue depth.
//! A node only ever writes rows for the servers it owns (`servers.node_id`); the set is read once
//! per node per transaction. Strings from agents are cleaned of NUL (PostgreSQL rejects it in text).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use languard_proto::v1 as pb;
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::api::convert;
use crate::db::entities::{
    logs, metrics, nodes, player_history, players, schedules, server_events, servers,
};
use crate::hub::{
    EventData, Hub, HubPayload, LogData, MetricsData, PlayerData, PlayersData, StatusData,
};

/// Work for the writer.
pub enum WriteOp {
    /// Store agent events and reply with the node's new high-water mark.
    Events {
        /// The node that sent them (authenticated by its session).
        node_id: i64,
        /// The events, in sequence order.
        events: Vec<pb::AgentEvent>,
        /// The stored high-water mark, or why the batch failed.
        reply: oneshot::Sender<Result<u64, String>>,
    },
    /// Align the stored state of a node's servers with what its agent reported when it connected
    /// (a database restored from a backup, state lost with an agent's spool). Queued before the
    /// session's events, so anything the agent sends afterwards is applied on top.
    Reconcile {
        /// The node (authenticated by its session); only its own servers are touched.
        node_id: i64,
        /// The agent's report.
        servers: Vec<pb::ServerState>,
    },
    /// The node was heard from.
    Touch {
        /// The node.
        node_id: i64,
        /// When.
        at: DateTime<Utc>,
    },
}

/// Counters of what the writer committed since start, and its queue depth. Cheap to clone; read
/// by the Prometheus endpoint.
#[derive(Clone, Default)]
pub struct IngestStats {
    inner: Arc<StatsInner>,
}

#[derive(Default)]
struct StatsInner {
    /// The latest load sample of each node.
    node_loads: std::sync::Mutex<HashMap<i64, pb::NodeLoad>>,
    events: AtomicU64,
    log_lines: AtomicU64,
    metrics_rows: AtomicU64,
    transactions: AtomicU64,
    failed_transactions: AtomicU64,
    queued: AtomicU64,
}

impl IngestStats {
    /// The latest load sample a node's agent sent (since the controller started).
    pub fn node_load(&self, node_id: i64) -> Option<pb::NodeLoad> {
        self.inner
            .node_loads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&node_id)
            .cloned()
    }

    fn set_node_load(&self, node_id: i64, load: pb::NodeLoad) {
        let mut m = self
            .inner
            .node_loads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let newer = m.get(&node_id).is_none_or(|old| {
            old.sample_time.as_ref().map(|t| (t.seconds, t.nanos))
                <= load.sample_time.as_ref().map(|t| (t.seconds, t.nanos))
        });
        if newer {
            m.insert(node_id, load);
        }
    }

    /// Agent events stored (each sequence number once; resends not counted).
    pub fn events(&self) -> u64 {
        self.inner.events.load(Ordering::Relaxed)
    }
    /// Log rows inserted.
    pub fn log_lines(&self) -> u64 {
        self.inner.log_lines.load(Ordering::Relaxed)
    }
    /// Metrics rows inserted.
    pub fn metrics_rows(&self) -> u64 {
        self.inner.metrics_rows.load(Ordering::Relaxed)
    }
    /// Writer transactions committed.
    pub fn transactions(&self) -> u64 {
        self.inner.transactions.load(Ordering::Relaxed)
    }
    /// Writer transactions that failed (rolled back; the agents resend).
    pub fn failed_transactions(&self) -> u64 {
        self.inner.failed_transactions.load(Ordering::Relaxed)
    }
    /// Operations waiting in the writer's queue.
    pub fn queue_depth(&self) -> u64 {
        self.inner.queued.load(Ordering::Relaxed)
    }
}

/// Cheap-to-clone handle for submitting work.
#[derive(Clone)]
pub struct WriterHandle {
    tx: mpsc::Sender<WriteOp>,
    stats: IngestStats,
}

impl WriterHandle {
    /// Queues `op`; waits when the queue is full (back-pressure to the agent's stream).
    pub async fn submit(&self, op: WriteOp) -> bool {
        self.stats.inner.queued.fetch_add(1, Ordering::Relaxed);
        let ok = self.tx.send(op).await.is_ok();
        if !ok {
            self.stats.inner.queued.fetch_sub(1, Ordering::Relaxed);
        }
        ok
    }
}

/// Most operations folded into one transaction.
const MAX_BATCH: usize = 256;

/// Creates the writer, counting into `stats`; run the returned future as a task.
pub fn spawn(
    db: DatabaseConnection,
    hub: Hub,
    stats: IngestStats,
    shutdown: CancellationToken,
) -> (WriterHandle, impl std::future::Future<Output = ()>) {
    let (tx, rx) = mpsc::channel(1024);
    (
        WriterHandle {
            tx,
            stats: stats.clone(),
        },
        run(db, hub, stats, rx, shutdown),
    )
}

async fn run(
    db: DatabaseConnection,
    hub: Hub,
    stats: IngestStats,
    mut rx: mpsc::Receiver<WriteOp>,
    shutdown: CancellationToken,
) {
    let mut acked: HashMap<i64, u64> = HashMap::new();
    loop {
        let first = tokio::select! {
            op = rx.recv() => op,
            _ = shutdown.cancelled() => None,
        };
        let Some(first) = first else { break };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        stats
            .inner
            .queued
            .fetch_sub(batch.len() as u64, Ordering::Relaxed);
        write_batch(&db, &hub, &stats, &mut acked, batch).await;
    }
    // Shutdown: store what is already queued, then stop.
    rx.close();
    let mut rest = Vec::new();
    while let Ok(op) = rx.try_recv() {
        rest.push(op);
    }
    if !rest.is_empty() {
        tracing::info!(
            ops = rest.len(),
            "writer flushing queued work before shutdown"
        );
        stats
            .inner
            .queued
            .fetch_sub(rest.len() as u64, Ordering::Relaxed);
        write_batch(&db, &hub, &stats, &mut acked, rest).await;
    }
    tracing::info!("writer stopped");
}

/// A live message to publish once the transaction commits.
struct Published {
    server_id: i64,
    node_id: i64,
    ts: DateTime<Utc>,
    payload: HubPayload,
}

/// A log row waiting for the batched insert at the end of the transaction.
struct PendingLog {
    server_id: i64,
    node_id: i64,
    ts: DateTime<Utc>,
    level: &'static str,
    kind: String,
    text: String,
}

/// A metrics row waiting for the batched insert at the end of the transaction.
struct PendingMetric {
    server_id: Option<i64>,
    node_id: i64,
    ts: DateTime<Utc>,
    cpu_percent: f64,
    rss: i64,
    virt: i64,
    threads: i32,
    extra: String,
}

/// What to publish after the commit, in event order.
enum Pub {
    /// A message ready to go.
    Ready(Published),
    /// The `n`th pending log row (its id is known after the insert).
    Log(usize),
}

/// Per-transaction state: caches that are only valid inside it.
#[derive(Default)]
struct TxState {
    /// Servers owned by each node.
    owned: HashMap<i64, HashSet<i64>>,
    /// Who is on each server (as stored, kept up to date by this transaction).
    players: HashMap<i64, Vec<players::Model>>,
    /// Log rows to insert.
    logs: Vec<PendingLog>,
    /// Ids of `logs`, in order, once inserted.
    log_ids: Vec<i64>,
    /// Publications in event order.
    publish: Vec<Pub>,
    /// Metrics rows to insert.
    metrics: Vec<PendingMetric>,
    /// The newest sample of each (node, server; 0 for the node), published after the commit.
    latest_metrics: BTreeMap<(i64, i64), (DateTime<Utc>, MetricsData)>,
    /// Agent events applied (new sequence numbers).
    events: u64,
    /// (node, server) pairs already warned about foreign metrics in this transaction.
    foreign_metrics: HashSet<(i64, i64)>,
    /// The newest host load of each node, kept for `Node.load` after the commit.
    node_loads: Vec<(i64, pb::NodeLoad)>,
}

/// Rows per multi-row log insert (5 bind parameters each; SQLite allows 32766, PostgreSQL 65535).
const LOG_INSERT_CHUNK: usize = 2000;
/// Rows per multi-row metrics insert (8 bind parameters each).
const METRICS_INSERT_CHUNK: usize = 2000;

async fn write_batch(
    db: &DatabaseConnection,
    hub: &Hub,
    stats: &IngestStats,
    acked: &mut HashMap<i64, u64>,
    batch: Vec<WriteOp>,
) {
    let mut replies = Vec::new();
    let mut st = TxState::default();
    let result: Result<(), DbErr> = async {
        // IMMEDIATE: take the write lock up front, so a read-then-write transaction cannot fail
        // with SQLITE_BUSY_SNAPSHOT when another connection commits in between (ignored elsewhere).
        let txn = db
            .begin_with_options(sea_orm::TransactionOptions {
                sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
                ..Default::default()
            })
            .await?;
        let mut touches: HashMap<i64, DateTime<Utc>> = HashMap::new();
        for op in batch {
            match op {
                WriteOp::Touch { node_id, at } => {
                    touches.insert(node_id, at);
                }
                WriteOp::Reconcile { node_id, servers } => {
                    reconcile(&txn, &mut st, node_id, servers).await?;
                }
                WriteOp::Events {
                    node_id,
                    events,
                    reply,
                } => {
                    let mark = apply_events(&txn, acked, node_id, events, &mut st).await?;
                    replies.push((reply, mark));
                }
            }
        }
        insert_logs(&txn, &mut st).await?;
        insert_metrics(&txn, &st).await?;
        for (node_id, at) in touches {
            nodes::Entity::update_many()
                .col_expr(nodes::Column::LastSeenAt, Expr::value(at))
                .filter(nodes::Column::Id.eq(node_id))
                .exec(&txn)
                .await?;
        }
        txn.commit().await
    }
    .await;
    match result {
        Ok(()) => {
            for (node_id, load) in std::mem::take(&mut st.node_loads) {
                stats.set_node_load(node_id, load);
            }
            let s = &stats.inner;
            s.transactions.fetch_add(1, Ordering::Relaxed);
            s.events.fetch_add(st.events, Ordering::Relaxed);
            s.log_lines
                .fetch_add(st.log_ids.len() as u64, Ordering::Relaxed);
            s.metrics_rows
                .fetch_add(st.metrics.len() as u64, Ordering::Relaxed);
            let TxState {
                publish,
                logs,
                log_ids,
                latest_metrics,
                ..
            } = st;
            let mut logs: Vec<Option<PendingLog>> = logs.into_iter().map(Some).collect();
            for p in publish {
                match p {
                    Pub::Ready(p) => hub.publish(p.server_id, p.node_id, p.ts, p.payload),
                    Pub::Log(i) => {
                        let (Some(l), Some(id)) =
                            (logs.get_mut(i).and_then(Option::take), log_ids.get(i))
                        else {
                            continue;
                        };
                        hub.publish(
                            l.server_id,
                            l.node_id,
                            l.ts,
                            HubPayload::Log(LogData {
                                id: *id,
                                level: l.level.to_owned(),
                                kind: l.kind,
                                text: l.text,
                                time: l.ts,
                            }),
                        );
                    }
                }
            }
            for ((node_id, server_id), (ts, data)) in latest_metrics {
                hub.publish(server_id, node_id, ts, HubPayload::Metrics(data));
            }
            for (reply, mark) in replies {
                let _ = reply.send(Ok(mark));
            }
        }
        Err(e) => {
            stats
                .inner
                .failed_transactions
                .fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, "writer transaction failed; agents will resend");
            // The cached marks may be ahead of what was committed.
            acked.clear();
            for (reply, _) in replies {
                let _ = reply.send(Err(e.to_string()));
            }
        }
    }
}

/// Inserts the pending log rows with multi-row `INSERT ... RETURNING id` statements.
///
/// Within one statement the ids increase in row order on both back-ends (SQLite AUTOINCREMENT,
/// PostgreSQL's sequence evaluated row by row), but the order of the RETURNING rows is not
/// guaranteed, so the returned ids are sorted before they are matched to the rows.
async fn insert_logs(txn: &DatabaseTransaction, st: &mut TxState) -> Result<(), DbErr> {
    for chunk in st.logs.chunks(LOG_INSERT_CHUNK) {
        let mut q = Query::insert();
        q.into_table(logs::Entity)
            .columns([
                logs::Column::ServerId,
                logs::Column::Ts,
                logs::Column::Level,
                logs::Column::Kind,
                logs::Column::Line,
            ])
            .returning_col(logs::Column::Id);
        for l in chunk {
            q.values([
                l.server_id.into(),
                l.ts.into(),
                l.level.into(),
                l.kind.clone().into(),
                l.text.clone().into(),
            ])
            .map_err(|e| DbErr::Custom(format!("log insert: {e}")))?;
        }
        let rows = txn.query_all(&q).await?;
        let mut ids = rows
            .iter()
            .map(|r| r.try_get_by_index::<i64>(0))
            .collect::<Result<Vec<i64>, _>>()?;
        if ids.len() != chunk.len() {
            return Err(DbErr::Custom(format!(
                "log insert returned {} ids for {} rows",
                ids.len(),
                chunk.len()
            )));
        }
        ids.sort_unstable();
        st.log_ids.extend(ids);
    }
    Ok(())
}

/// Inserts the pending metrics rows with multi-row `INSERT` statements.
async fn insert_metrics(txn: &DatabaseTransaction, st: &TxState) -> Result<(), DbErr> {
    for chunk in st.metrics.chunks(METRICS_INSERT_CHUNK) {
        let mut q = Query::insert();
        q.into_table(metrics::Entity).columns([
            metrics::Column::ServerId,
            metrics::Column::NodeId,
            metrics::Column::Ts,
            metrics::Column::CpuPercent,
            metrics::Column::MemRssBytes,
            metrics::Column::MemVirtualBytes,
            metrics::Column::Threads,
            metrics::Column::Extra,
        ]);
        for m in chunk {
            q.values([
                m.server_id.into(),
                m.node_id.into(),
                m.ts.into(),
                m.cpu_percent.into(),
                m.rss.into(),
                m.virt.into(),
                m.threads.into(),
                m.extra.clone().into(),
            ])
            .map_err(|e| DbErr::Custom(format!("metrics insert: {e}")))?;
        }
        txn.execute(&q).await?;
    }
    Ok(())
}

/// A measurement as stored: finite and not negative (SQLite would store NaN as NULL and fail the
/// NOT NULL constraint, blocking the node's whole batch; PostgreSQL would poison every average).
fn measure(x: f64) -> f64 {
    if x.is_finite() && x > 0.0 { x } else { 0.0 }
}

/// A byte count as stored (BIGINT is signed).
fn bytes(x: u64) -> i64 {
    i64::try_from(x).unwrap_or(i64::MAX)
}

/// Queues the rows of one sample: the node's, and one per server the node owns.
async fn apply_metrics(
    txn: &DatabaseTransaction,
    st: &mut TxState,
    node_id: i64,
    ts: DateTime<Utc>,
    sample: pb::MetricsSample,
) -> Result<(), DbErr> {
    if let Some(n) = sample.node {
        let disks: Vec<serde_json::Value> = n
            .disks
            .iter()
            .map(|d| {
                serde_json::json!({
                    "mount_point": clean(d.mount_point.clone()),
                    "total_bytes": d.total_bytes,
                    "available_bytes": d.available_bytes,
                })
            })
            .collect();
        let extra = serde_json::json!({
            "memory_total_bytes": n.memory_total_bytes,
            "load1": measure(n.load1),
            "load5": measure(n.load5),
            "load15": measure(n.load15),
            "disks": disks,
            "net_rx_bytes_per_second": n.net_rx_bytes_per_second,
            "net_tx_bytes_per_second": n.net_tx_bytes_per_second,
            "spool_bytes": n.spool_bytes,
        });
        let cpu = measure(n.cpu_percent);
        st.node_loads.push((
            node_id,
            pb::NodeLoad {
                sample_time: Some(convert::timestamp(ts)),
                cpu_percent: cpu,
                memory_used_bytes: n.memory_used_bytes,
                memory_total_bytes: n.memory_total_bytes,
                load1: measure(n.load1),
            },
        ));
        st.metrics.push(PendingMetric {
            server_id: None,
            node_id,
            ts,
            cpu_percent: cpu,
            rss: bytes(n.memory_used_bytes),
            virt: 0,
            threads: 0,
            extra: extra.to_string(),
        });
        latest_metric(
            st,
            node_id,
            0,
            ts,
            MetricsData {
                cpu_percent: cpu,
                rss_bytes: n.memory_used_bytes,
                virtual_bytes: 0,
                threads: 0,
                uptime_seconds: 0,
                memory_total_bytes: Some(n.memory_total_bytes),
            },
        );
    }
    for s in sample.servers {
        if !owns(txn, st, node_id, s.server_id).await? {
            // Once per transaction: a catching-up agent may send thousands of samples at once.
            if st.foreign_metrics.insert((node_id, s.server_id)) {
                tracing::warn!(
                    node_id,
                    server_id = s.server_id,
                    "metrics for a server this node does not own; skipped"
                );
            }
            continue;
        }
        let cpu = measure(s.cpu_percent);
        st.metrics.push(PendingMetric {
            server_id: Some(s.server_id),
            node_id,
            ts,
            cpu_percent: cpu,
            rss: bytes(s.rss_bytes),
            virt: bytes(s.virtual_bytes),
            threads: i32::try_from(s.threads).unwrap_or(i32::MAX),
            extra: serde_json::json!({ "uptime_seconds": s.uptime_seconds }).to_string(),
        });
        latest_metric(
            st,
            node_id,
            s.server_id,
            ts,
            MetricsData {
                cpu_percent: cpu,
                rss_bytes: s.rss_bytes,
                virtual_bytes: s.virtual_bytes,
                threads: s.threads,
                uptime_seconds: s.uptime_seconds,
                memory_total_bytes: None,
            },
        );
    }
    Ok(())
}

/// Keeps `data` for publication if it is the newest sample of (node, server) so far.
fn latest_metric(
    st: &mut TxState,
    node_id: i64,
    server_id: i64,
    ts: DateTime<Utc>,
    data: MetricsData,
) {
    match st.latest_metrics.entry((node_id, server_id)) {
        std::collections::btree_map::Entry::Occupied(mut e) => {
            if ts >= e.get().0 {
                e.insert((ts, data));
            }
        }
        std::collections::btree_map::Entry::Vacant(e) => {
            e.insert((ts, data));
        }
    }
}

/// Replaces NUL, which PostgreSQL refuses in text columns, so one bad byte cannot block a node.
fn clean(s: String) -> String {
    if s.contains('\0') {
        s.replace('\0', "\u{FFFD}")
    } else {
        s
    }
}

/// A GUID as stored: trimmed, lower case.
fn norm_guid(g: &str) -> String {
    clean(g.trim().to_ascii_lowercase())
}

fn level_str(v: i32) -> &'static str {
    match pb::LogLevel::try_from(v).unwrap_or(pb::LogLevel::Info) {
        pb::LogLevel::Warning => "warning",
        pb::LogLevel::Error => "error",
        _ => "info",
    }
}

/// Whether `node_id` owns `server_id` (read once per node per transaction).
async fn owns(
    txn: &DatabaseTransaction,
    st: &mut TxState,
    node_id: i64,
    server_id: i64,
) -> Result<bool, DbErr> {
    if let std::collections::hash_map::Entry::Vacant(slot) = st.owned.entry(node_id) {
        let ids: Vec<i64> = servers::Entity::find()
            .select_only()
            .column(servers::Column::Id)
            .filter(servers::Column::NodeId.eq(node_id))
            .into_tuple()
            .all(txn)
            .await?;
        slot.insert(ids.into_iter().collect());
    }
    Ok(st
        .owned
        .get(&node_id)
        .is_some_and(|s| s.contains(&server_id)))
}

async fn apply_events(
    txn: &DatabaseTransaction,
    acked: &mut HashMap<i64, u64>,
    node_id: i64,
    events: Vec<pb::AgentEvent>,
    st: &mut TxState,
) -> Result<u64, DbErr> {
    let mut mark = match acked.get(&node_id) {
        Some(m) => *m,
        None => {
            let node = nodes::Entity::find_by_id(node_id).one(txn).await?;
            node.map(|n| u64::try_from(n.acked_seq).unwrap_or(0))
                .unwrap_or(0)
        }
    };
    let start = mark;
    for ev in events {
        if ev.seq <= mark {
            continue;
        }
        mark = ev.seq;
        st.events += 1;
        let ts = ev
            .time
            .as_ref()
            .and_then(convert::from_timestamp)
            .unwrap_or_else(Utc::now);
        let server_id = ev.server_id;
        let Some(body) = ev.body else {
            tracing::warn!(node_id, seq = ev.seq, "event without body skipped");
            continue;
        };
        // Status updates check ownership in their own UPDATE; everything else here.
        let check = match &body {
            pb::agent_event::Body::Status(_) | pb::agent_event::Body::Metrics(_) => false,
            pb::agent_event::Body::Gap(_) => server_id != 0,
            _ => true,
        };
        let foreign = check && !owns(txn, st, node_id, server_id).await?;
        if foreign {
            tracing::warn!(
                node_id,
                server_id,
                seq = ev.seq,
                "event for a server this node does not own; skipped"
            );
            continue;
        }
        match body {
            pb::agent_event::Body::Status(sc) => {
                apply_status(txn, st, node_id, server_id, ts, sc).await?;
            }
            pb::agent_event::Body::Logs(batch) => {
                for e in batch.entries {
                    let at = e
                        .time
                        .as_ref()
                        .and_then(convert::from_timestamp)
                        .unwrap_or(ts);
                    st.publish.push(Pub::Log(st.logs.len()));
                    st.logs.push(PendingLog {
                        server_id,
                        node_id,
                        ts: at,
                        level: level_str(e.level),
                        kind: if e.kind.is_empty() {
                            "other".to_owned()
                        } else {
                            clean(e.kind)
                        },
                        text: clean(e.text),
                    });
                }
            }
            pb::agent_event::Body::Player(p) => {
                apply_player(txn, st, node_id, server_id, ts, p).await?;
            }
            pb::agent_event::Body::Players(snap) => {
                apply_snapshot(txn, st, node_id, server_id, ts, snap).await?;
            }
            pb::agent_event::Body::Chat(c) => {
                let channel = clean(c.channel);
                let name = clean(c.name);
                let text = clean(c.text);
                let message = format!("({channel}) {name}: {text}");
                let attrs = BTreeMap::from([
                    ("channel".to_owned(), channel),
                    ("name".to_owned(), name),
                    ("text".to_owned(), text),
                    ("admin".to_owned(), c.admin.to_string()),
                ]);
                record_event(
                    txn,
                    st,
                    Some(server_id),
                    node_id,
                    ts,
                    "chat",
                    message,
                    attrs,
                )
                .await?;
            }
            pb::agent_event::Body::Metrics(sample) => {
                // Ownership is checked per server inside (the node's own row needs none).
                apply_metrics(txn, st, node_id, ts, sample).await?;
            }
            pb::agent_event::Body::ScheduleRun(run) => {
                apply_schedule_run(txn, st, node_id, server_id, ts, run).await?;
            }
            pb::agent_event::Body::Gap(g) => {
                let reason = clean(g.reason);
                let message = format!(
                    "agent dropped {} log lines and {} metric samples: {reason}",
                    g.dropped_log_lines, g.dropped_metrics
                );
                let attrs = BTreeMap::from([
                    (
                        "dropped_log_lines".to_owned(),
                        g.dropped_log_lines.to_string(),
                    ),
                    ("dropped_metrics".to_owned(), g.dropped_metrics.to_string()),
                    ("reason".to_owned(), reason),
                ]);
                let server = (server_id != 0).then_some(server_id);
                record_event(txn, st, server, node_id, ts, "gap", message, attrs).await?;
            }
        }
    }
    if mark > start {
        nodes::Entity::update_many()
            .col_expr(
                nodes::Column::AckedSeq,
                Expr::value(i64::try_from(mark).unwrap_or(i64::MAX)),
            )
            .filter(nodes::Column::Id.eq(node_id))
            .exec(txn)
            .await?;
    }
    acked.insert(node_id, mark);
    Ok(mark)
}

/// A step of a schedule ran on the agent: a `schedule` event, and the schedule's last run and
/// result (only a schedule of this server: the server's ownership was checked by the caller).
async fn apply_schedule_run(
    txn: &DatabaseTransaction,
    st: &mut TxState,
    node_id: i64,
    server_id: i64,
    ts: DateTime<Utc>,
    run: pb::ScheduleRun,
) -> Result<(), DbErr> {
    let step = clean(run.step);
    let detail = clean(run.detail);
    let outcome = if run.ok { "ok" } else { "failed" };
    let result = format!("{step} {outcome}: {detail}");
    schedules::Entity::update_many()
        .col_expr(schedules::Column::LastRunAt, Expr::value(ts))
        .col_expr(schedules::Column::LastResult, Expr::value(result.clone()))
        .filter(schedules::Column::Id.eq(run.schedule_id))
        .filter(schedules::Column::ServerId.eq(server_id))
        .exec(txn)
        .await?;
    let mut attrs = BTreeMap::from([
        ("schedule_id".to_owned(), run.schedule_id.to_string()),
        ("step".to_owned(), step.clone()),
        ("ok".to_owned(), run.ok.to_string()),
        ("detail".to_owned(), detail),
    ]);
    if let Some(t) = run
        .occurrence_time
        .as_ref()
        .and_then(convert::from_timestamp)
    {
        attrs.insert("occurrence".to_owned(), t.to_rfc3339());
    }
    let message = format!("schedule {}: {result}", run.schedule_id);
    record_event(
        txn,
        st,
        Some(server_id),
        node_id,
        ts,
        "schedule",
        message,
        attrs,
    )
    .await
}

/// Stores a history event written by the agent (actor "agent") and queues its publication.
#[allow(clippy::too_many_arguments)]
async fn record_event(
    txn: &DatabaseTransaction,
    st: &mut TxState,
    server_id: Option<i64>,
    node_id: i64,
    ts: DateTime<Utc>,
    event_type: &str,
    message: String,
    attrs: BTreeMap<String, String>,
) -> Result<(), DbErr> {
    let row = server_events::ActiveModel {
        server_id: Set(server_id),
        node_id: Set(Some(node_id)),
        event_type: Set(event_type.to_owned()),
        message: Set(message.clone()),
        attributes: Set(serde_json::to_string(&attrs).unwrap_or_else(|_| "{}".into())),
        actor: Set("agent".into()),
        created_at: Set(ts),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    st.publish.push(Pub::Ready(Published {
        server_id: server_id.unwrap_or(0),
        node_id,
        ts,
        payload: HubPayload::Event(EventData {
            id: row.id,
            event_type: event_type.to_owned(),
            message,
            attributes: attrs,
            actor: "agent".into(),
        }),
    }));
    Ok(())
}

/// Updates each reported server whose stored status or pid differs, and tells live viewers. No
/// history event: the agent's own status events, spooled and resent, remain the history.
async fn reconcile(
    txn: &DatabaseTransaction,
    st: &mut TxState,
    node_id: i64,
    reported: Vec<pb::ServerState>,
) -> Result<(), DbErr> {
    let now = Utc::now();
    let owned: HashMap<i64, servers::Model> = servers::Entity::find()
        .filter(servers::Column::NodeId.eq(node_id))
        .all(txn)
        .await?
        .into_iter()
        .map(|s| (s.id, s))
        .collect();
    for r in reported {
        if r.status == pb::ServerStatus::Unspecified as i32 {
            continue;
        }
        let Some(row) = owned.get(&r.server_id) else {
            tracing::warn!(
                node_id,
                server_id = r.server_id,
                "the agent reported a server this node does not own; ignored"
            );
            continue;
        };
        let status = convert::status_i32_str(r.status);
        if row.status == status && row.pid == r.pid {
            continue;
        }
        servers::Entity::update_many()
            .col_expr(servers::Column::Status, Expr::value(status))
            .col_expr(servers::Column::Pid, Expr::value(r.pid))
            .col_expr(
                servers::Column::StartedAt,
                Expr::value(r.started_time.as_ref().and_then(convert::from_timestamp)),
            )
            .col_expr(servers::Column::RestartCount, Expr::value(r.restart_count))
            .filter(servers::Column::Id.eq(row.id))
            .filter(servers::Column::NodeId.eq(node_id))
            .exec(txn)
            .await?;
        tracing::info!(
            node_id,
            server_id = row.id,
            from = %row.status,
            to = status,
            pid = r.pid,
            "server state reconciled with the agent's report"
        );
        st.publish.push(Pub::Ready(Published {
            server_id: row.id,
            node_id,
            ts: now,
            payload: HubPayload::Status(StatusData {
                status: status.into(),
                previous: row.status.clone(),
                pid: r.pid,
                reason: "reported by the agent when it connected".into(),
            }),
        }));
    }
    Ok(())
}

async fn apply_status(
    txn: &DatabaseTransaction,
    st: &mut TxState,
    node_id: i64,
    server_id: i64,
    ts: DateTime<Utc>,
    sc: pb::StatusChanged,
) -> Result<(), DbErr> {
    let status = convert::status_i32_str(sc.status);
    let previous = convert::status_i32_str(sc.previous);
    // The filter on node_id means a node can only ever change its own servers.
    let res = servers::Entity::update_many()
        .col_expr(servers::Column::Status, Expr::value(status))
        .col_expr(servers::Column::Pid, Expr::value(sc.pid))
        .col_expr(
            servers::Column::StartedAt,
            Expr::value(sc.started_time.as_ref().and_then(convert::from_timestamp)),
        )
        .col_expr(servers::Column::RestartCount, Expr::value(sc.restart_count))
        .filter(servers::Column::Id.eq(server_id))
        .filter(servers::Column::NodeId.eq(node_id))
        .exec(txn)
        .await?;
    if res.rows_affected == 0 {
        tracing::warn!(
            node_id,
            server_id,
            "status for a server this node does not own; skipped"
        );
        return Ok(());
    }
    let mut attrs = BTreeMap::from([
        ("from".to_owned(), previous.to_owned()),
        ("to".to_owned(), status.to_owned()),
        ("reason".to_owned(), clean(sc.reason.clone())),
    ]);
    if sc.pid != 0 {
        attrs.insert("pid".into(), sc.pid.to_string());
    }
    if let Some(c) = sc.exit_code {
        attrs.insert("exit_code".into(), c.to_string());
    }
    if let Some(s) = sc.signal {
        attrs.insert("signal".into(), s.to_string());
    }
    if !sc.last_log_lines.is_empty() {
        attrs.insert("last_log_lines".into(), clean(sc.last_log_lines.join("\n")));
    }
    let message = format!("{previous} → {status}: {}", clean(sc.reason.clone()));
    let actor = if sc.actor.is_empty() {
        "agent".to_owned()
    } else {
        clean(sc.actor.clone())
    };
    let row = server_events::ActiveModel {
        server_id: Set(Some(server_id)),
        node_id: Set(Some(node_id)),
        event_type: Set("status".into()),
        message: Set(message.clone()),
        attributes: Set(serde_json::to_string(&attrs).unwrap_or_else(|_| "{}".into())),
        actor: Set(actor.clone()),
        created_at: Set(ts),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    st.publish.push(Pub::Ready(Published {
        server_id,
        node_id,
        ts,
        payload: HubPayload::Status(StatusData {
            status: status.into(),
            previous: previous.into(),
            pid: sc.pid,
            reason: clean(sc.reason),
        }),
    }));
    st.publish.push(Pub::Ready(Published {
        server_id,
        node_id,
        ts,
        payload: HubPayload::Event(EventData {
            id: row.id,
            event_type: "status".into(),
            message,
            attributes: attrs,
            actor,
        }),
    }));
    if matches!(status, "stopped" | "crashed" | "error") {
        end_all_sessions(txn, st, node_id, server_id, ts).await?;
    }
    Ok(())
}

// ---- players ----

fn player_data(p: &players::Model) -> PlayerData {
    PlayerData {
        slot: p.slot,
        name: p.name.clone(),
        guid: p.guid.clone(),
        verified: p.verified,
        address: p.address.clone(),
        ping: p.ping,
        in_lobby: p.in_lobby,
        joined_time: p.joined_at,
    }
}

/// The server's players as stored, loaded once per transaction.
async fn load_players(
    txn: &DatabaseTransaction,
    st: &mut TxState,
    server_id: i64,
) -> Result<Vec<players::Model>, DbErr> {
    if let Some(list) = st.players.remove(&server_id) {
        return Ok(list);
    }
    players::Entity::find()
        .filter(players::Column::ServerId.eq(server_id))
        .order_by_asc(players::Column::Id)
        .all(txn)
        .await
}

/// Identity: the GUID once known, otherwise (slot, name).
fn find_player(list: &[players::Model], guid: &str, slot: i32, name: &str) -> Option<usize> {
    if !guid.is_empty()
        && let Some(i) = list.iter().position(|p| p.guid == guid)
    {
        return Some(i);
    }
    list.iter()
        .position(|p| p.slot == slot && p.name == name && (guid.is_empty() || p.guid.is_empty()))
}

fn publish_players(
    st: &mut TxState,
    list: &[players::Model],
    node_id: i64,
    server_id: i64,
    ts: DateTime<Utc>,
    change: &str,
    player: Option<PlayerData>,
) {
    let mut players: Vec<PlayerData> = list.iter().map(player_data).collect();
    players.sort_by_key(|p| p.slot);
    st.publish.push(Pub::Ready(Published {
        server_id,
        node_id,
        ts,
        payload: HubPayload::Players(PlayersData {
            change: change.to_owned(),
            player,
            players,
        }),
    }));
}

/// A player as reported, before storing.
struct NewPlayer {
    slot: i32,
    name: String,
    guid: String,
    verified: bool,
    address: String,
    ping: i32,
    in_lobby: bool,
}

/// Opens a session: a `player_history` row and a `players` row linked to it.
async fn join(
    txn: &DatabaseTransaction,
    list: &mut Vec<players::Model>,
    server_id: i64,
    ts: DateTime<Utc>,
    p: NewPlayer,
) -> Result<PlayerData, DbErr> {
    let h = player_history::ActiveModel {
        server_id: Set(server_id),
        guid: Set(p.guid.clone()),
        name: Set(p.name.clone()),
        address: Set(p.address.clone()),
        joined_at: Set(ts),
        left_at: Set(None),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    let row = players::ActiveModel {
        server_id: Set(server_id),
        slot: Set(p.slot),
        guid: Set(p.guid),
        name: Set(p.name),
        address: Set(p.address),
        ping: Set(p.ping),
        verified: Set(p.verified),
        in_lobby: Set(p.in_lobby),
        joined_at: Set(ts),
        history_id: Set(h.id),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    let data = player_data(&row);
    list.push(row);
    Ok(data)
}

/// Ends the session of `list[i]`: deletes the row and closes its history row.
async fn leave(
    txn: &DatabaseTransaction,
    list: &mut Vec<players::Model>,
    i: usize,
    ts: DateTime<Utc>,
) -> Result<PlayerData, DbErr> {
    let row = list.remove(i);
    players::Entity::delete_by_id(row.id).exec(txn).await?;
    player_history::Entity::update_many()
        .col_expr(player_history::Column::LeftAt, Expr::value(Some(ts)))
        .filter(player_history::Column::Id.eq(row.history_id))
        .filter(player_history::Column::LeftAt.is_null())
        .exec(txn)
        .await?;
    Ok(player_data(&row))
}

/// Sets the GUID (and verified flag) of `list[i]` and of its open history row.
async fn identify(
    txn: &DatabaseTransaction,
    list: &mut [players::Model],
    i: usize,
    guid: &str,
    verified: bool,
) -> Result<bool, DbErr> {
    let Some(row) = list.get_mut(i) else {
        return Ok(false);
    };
    let new_guid = if guid.is_empty() { &row.guid } else { guid }.to_owned();
    let verified = verified || (row.verified && new_guid == row.guid);
    if new_guid == row.guid && verified == row.verified {
        return Ok(false);
    }
    players::Entity::update_many()
        .col_expr(players::Column::Guid, Expr::value(new_guid.clone()))
        .col_expr(players::Column::Verified, Expr::value(verified))
        .filter(players::Column::Id.eq(row.id))
        .exec(txn)
        .await?;
    if new_guid != row.guid {
        player_history::Entity::update_many()
            .col_expr(player_history::Column::Guid, Expr::value(new_guid.clone()))
            .filter(player_history::Column::Id.eq(row.history_id))
            .exec(txn)
            .await?;
    }
    row.guid = new_guid;
    row.verified = verified;
    Ok(true)
}

async fn apply_player(
    txn: &DatabaseTransaction,
    st: &mut TxState,
    node_id: i64,
    server_id: i64,
    ts: DateTime<Utc>,
    ev: pb::PlayerEvent,
) -> Result<(), DbErr> {
    let change = pb::PlayerChange::try_from(ev.change).unwrap_or(pb::PlayerChange::Unspecified);
    let guid = norm_guid(&ev.guid);
    let name = clean(ev.name);
    let mut list = load_players(txn, st, server_id).await?;
    let found = find_player(&list, &guid, ev.slot, &name);
    match change {
        pb::PlayerChange::Joined | pb::PlayerChange::Identified => match found {
            Some(i) => {
                if change == pb::PlayerChange::Identified
                    && identify(txn, &mut list, i, &guid, ev.verified).await?
                {
                    let p = list.get(i).map(player_data);
                    publish_players(st, &list, node_id, server_id, ts, "identified", p);
                }
            }
            None => {
                // A different player on that slot must have left without us hearing of it.
                if let Some(i) = list.iter().position(|p| p.slot == ev.slot) {
                    let gone = leave(txn, &mut list, i, ts).await?;
                    publish_players(st, &list, node_id, server_id, ts, "left", Some(gone));
                }
                let p = join(
                    txn,
                    &mut list,
                    server_id,
                    ts,
                    NewPlayer {
                        slot: ev.slot,
                        name,
                        guid,
                        verified: ev.verified,
                        address: clean(ev.address),
                        ping: -1,
                        in_lobby: false,
                    },
                )
                .await?;
                publish_players(st, &list, node_id, server_id, ts, "joined", Some(p));
            }
        },
        pb::PlayerChange::Left => {
            // A kick followed by a disconnect: the second finds nobody and changes nothing.
            if let Some(i) = found {
                let gone = leave(txn, &mut list, i, ts).await?;
                publish_players(st, &list, node_id, server_id, ts, "left", Some(gone));
            }
        }
        pb::PlayerChange::Unspecified => {
            tracing::warn!(node_id, server_id, "player event without a change skipped");
        }
    }
    st.players.insert(server_id, list);
    Ok(())
}

async fn apply_snapshot(
    txn: &DatabaseTransaction,
    st: &mut TxState,
    node_id: i64,
    server_id: i64,
    ts: DateTime<Utc>,
    snap: pb::PlayerSnapshot,
) -> Result<(), DbErr> {
    let mut list = load_players(txn, st, server_id).await?;
    let mut seen: HashSet<i64> = HashSet::new();
    let mut joins = Vec::new();
    let mut updated = false;
    for sp in snap.players {
        let guid = norm_guid(&sp.guid);
        let name = clean(sp.name);
        let i = (!guid.is_empty())
            .then(|| {
                list.iter()
                    .position(|p| !seen.contains(&p.id) && p.guid == guid)
            })
            .flatten()
            .or_else(|| {
                list.iter().position(|p| {
                    !seen.contains(&p.id)
                        && p.slot == sp.slot
                        && p.name == name
                        && (guid.is_empty() || p.guid.is_empty())
                })
            });
        let Some(i) = i else {
            joins.push(NewPlayer {
                slot: sp.slot,
                name,
                guid,
                verified: sp.verified,
                address: clean(sp.address),
                ping: sp.ping,
                in_lobby: sp.in_lobby,
            });
            continue;
        };
        let Some(row) = list.get(i).cloned() else {
            continue;
        };
        seen.insert(row.id);
        if identify(txn, &mut list, i, &guid, sp.verified).await? {
            updated = true;
        }
        let address = if sp.address.is_empty() {
            row.address.clone()
        } else {
            clean(sp.address)
        };
        if row.ping != sp.ping
            || row.in_lobby != sp.in_lobby
            || row.slot != sp.slot
            || row.address != address
        {
            players::Entity::update_many()
                .col_expr(players::Column::Ping, Expr::value(sp.ping))
                .col_expr(players::Column::InLobby, Expr::value(sp.in_lobby))
                .col_expr(players::Column::Slot, Expr::value(sp.slot))
                .col_expr(players::Column::Address, Expr::value(address.clone()))
                .filter(players::Column::Id.eq(row.id))
                .exec(txn)
                .await?;
            if let Some(r) = list.get_mut(i) {
                r.ping = sp.ping;
                r.in_lobby = sp.in_lobby;
                r.slot = sp.slot;
                r.address = address;
            }
            updated = true;
        }
    }
    // Leaves first (their slots may be taken by the joins), then joins.
    while let Some(i) = list.iter().position(|p| !seen.contains(&p.id)) {
        let gone = leave(txn, &mut list, i, ts).await?;
        publish_players(st, &list, node_id, server_id, ts, "left", Some(gone));
    }
    for p in joins {
        let data = join(txn, &mut list, server_id, ts, p).await?;
        publish_players(st, &list, node_id, server_id, ts, "joined", Some(data));
    }
    if updated {
        publish_players(st, &list, node_id, server_id, ts, "reconciled", None);
    }
    st.players.insert(server_id, list);
    Ok(())
}

/// The server stopped: everyone on it has left.
async fn end_all_sessions(
    txn: &DatabaseTransaction,
    st: &mut TxState,
    node_id: i64,
    server_id: i64,
    ts: DateTime<Utc>,
) -> Result<(), DbErr> {
    let mut list = load_players(txn, st, server_id).await?;
    while !list.is_empty() {
        let gone = leave(txn, &mut list, 0, ts).await?;
        publish_players(st, &list, node_id, server_id, ts, "left", Some(gone));
    }
    // Sessions left open by anything else (there should be none) are closed too.
    player_history::Entity::update_many()
        .col_expr(player_history::Column::LeftAt, Expr::value(Some(ts)))
        .filter(player_history::Column::ServerId.eq(server_id))
        .filter(player_history::Column::LeftAt.is_null())
        .exec(txn)
        .await?;
    st.players.insert(server_id, list);
    Ok(())
}
