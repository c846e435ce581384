//! The single writer for agent data: event batches and heartbeats arrive on a bounded queue and are
//! written in batched transactions. Each event batch is stored together with the node's new
//! high-water sequence number in one transaction, so a resent event (at or below the mark) is
//! ignored: at-least-once on the wire becomes exactly-once in the database.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use languard_proto::v1 as pb;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait,
    QueryFilter, Set, TransactionTrait,
};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::api::convert;
use crate::db::entities::{nodes, server_events, servers};
use crate::hub::{EventData, Hub, HubPayload, StatusData};

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
    /// The node was heard from.
    Touch {
        /// The node.
        node_id: i64,
        /// When.
        at: DateTime<Utc>,
    },
}

/// Cheap-to-clone handle for submitting work.
#[derive(Clone)]
pub struct WriterHandle {
    tx: mpsc::Sender<WriteOp>,
}

impl WriterHandle {
    /// Queues `op`; waits when the queue is full (back-pressure to the agent's stream).
    pub async fn submit(&self, op: WriteOp) -> bool {
        self.tx.send(op).await.is_ok()
    }
}

/// Most operations folded into one transaction.
const MAX_BATCH: usize = 256;

/// Creates the writer; run the returned future as a task.
pub fn spawn(
    db: DatabaseConnection,
    hub: Hub,
    shutdown: CancellationToken,
) -> (WriterHandle, impl std::future::Future<Output = ()>) {
    let (tx, rx) = mpsc::channel(1024);
    (WriterHandle { tx }, run(db, hub, rx, shutdown))
}

async fn run(
    db: DatabaseConnection,
    hub: Hub,
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
        write_batch(&db, &hub, &mut acked, batch).await;
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
        write_batch(&db, &hub, &mut acked, rest).await;
    }
    tracing::info!("writer stopped");
}

struct Published {
    server_id: i64,
    node_id: i64,
    ts: DateTime<Utc>,
    payload: HubPayload,
}

async fn write_batch(
    db: &DatabaseConnection,
    hub: &Hub,
    acked: &mut HashMap<i64, u64>,
    batch: Vec<WriteOp>,
) {
    let mut replies = Vec::new();
    let mut publish = Vec::new();
    let result: Result<(), DbErr> = async {
        let txn = db.begin().await?;
        let mut touches: HashMap<i64, DateTime<Utc>> = HashMap::new();
        for op in batch {
            match op {
                WriteOp::Touch { node_id, at } => {
                    touches.insert(node_id, at);
                }
                WriteOp::Events {
                    node_id,
                    events,
                    reply,
                } => {
                    let mark = apply_events(&txn, acked, node_id, events, &mut publish).await?;
                    replies.push((reply, mark));
                }
            }
        }
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
            for p in publish {
                hub.publish(p.server_id, p.node_id, p.ts, p.payload);
            }
            for (reply, mark) in replies {
                let _ = reply.send(Ok(mark));
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "writer transaction failed; agents will resend");
            // The cached marks may be ahead of what was committed.
            acked.clear();
            for (reply, _) in replies {
                let _ = reply.send(Err(e.to_string()));
            }
        }
    }
}

async fn apply_events(
    txn: &DatabaseTransaction,
    acked: &mut HashMap<i64, u64>,
    node_id: i64,
    events: Vec<pb::AgentEvent>,
    publish: &mut Vec<Published>,
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
        let ts = ev
            .time
            .as_ref()
            .and_then(convert::from_timestamp)
            .unwrap_or_else(Utc::now);
        match ev.body {
            Some(pb::agent_event::Body::Status(sc)) => {
                apply_status(txn, node_id, ev.server_id, ts, sc, publish).await?;
            }
            None => tracing::warn!(node_id, seq = ev.seq, "event without body skipped"),
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

async fn apply_status(
    txn: &DatabaseTransaction,
    node_id: i64,
    server_id: i64,
    ts: DateTime<Utc>,
    sc: pb::StatusChanged,
    publish: &mut Vec<Published>,
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
        ("reason".to_owned(), sc.reason.clone()),
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
        attrs.insert("last_log_lines".into(), sc.last_log_lines.join("\n"));
    }
    let message = format!("{previous} → {status}: {}", sc.reason);
    let actor = if sc.actor.is_empty() {
        "agent".to_owned()
    } else {
        sc.actor.clone()
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
    publish.push(Published {
        server_id,
        node_id,
        ts,
        payload: HubPayload::Status(StatusData {
            status: status.into(),
            previous: previous.into(),
            pid: sc.pid,
            reason: sc.reason.clone(),
        }),
    });
    publish.push(Published {
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
    });
    Ok(())
}
