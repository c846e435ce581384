//! `AgentService.Session`: authenticates the node token, takes the hello, sends the desired specs,
//! then pumps heartbeats, event batches (to the writer, acknowledged once durable) and command results.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::time::Duration;

use chrono::Utc;
use futures::Stream;
use futures::StreamExt;
use languard_proto::v1 as pb;
use languard_proto::v1::agent_service_server::AgentService;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::task::TaskTracker;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;

use crate::api::{Ctx, events};
use crate::auth::guard::bearer;
use crate::auth::refresh::hash_token;
use crate::db::entities::{nodes, servers};
use crate::db::writer::{WriteOp, WriterHandle};

/// The `AgentService` implementation.
pub struct AgentApi {
    ctx: Ctx,
    writer: WriterHandle,
    tasks: TaskTracker,
}

/// The outbound stream of a session.
pub type SessionStream = Pin<Box<dyn Stream<Item = Result<pb::ControllerMessage, Status>> + Send>>;

impl AgentApi {
    /// A service over `ctx`, writing through `writer`, spawning session tasks on `tasks`.
    pub fn new(ctx: Ctx, writer: WriterHandle, tasks: TaskTracker) -> Self {
        Self { ctx, writer, tasks }
    }
}

fn accepted(
    node: &nodes::Model,
    specs: Vec<pb::ServerSpec>,
    heartbeat: u32,
) -> pb::ControllerMessage {
    pb::ControllerMessage {
        body: Some(pb::controller_message::Body::Accepted(
            pb::SessionAccepted {
                node_id: node.id,
                node_name: node.name.clone(),
                acked_seq: u64::try_from(node.acked_seq).unwrap_or(0),
                servers: specs,
                heartbeat_interval_seconds: heartbeat,
            },
        )),
    }
}

#[tonic::async_trait]
impl AgentService for AgentApi {
    type SessionStream = SessionStream;

    async fn session(
        &self,
        req: Request<Streaming<pb::AgentMessage>>,
    ) -> Result<Response<SessionStream>, Status> {
        let token = bearer(&req)?;
        let node = nodes::Entity::find()
            .filter(nodes::Column::TokenHash.eq(hash_token(token)))
            .one(&self.ctx.db)
            .await
            .map_err(crate::error::ApiError::from)?
            .ok_or_else(|| Status::unauthenticated("unknown node token"))?;
        let mut inbound = req.into_inner();
        let mut hello = match tokio::time::timeout(Duration::from_secs(10), inbound.message()).await
        {
            Ok(Ok(Some(pb::AgentMessage {
                body: Some(pb::agent_message::Body::Hello(h)),
            }))) => h,
            Ok(Ok(_)) => {
                return Err(Status::invalid_argument(
                    "the first message of a session must be hello",
                ));
            }
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(Status::deadline_exceeded("no hello within 10 s")),
        };
        let now = Utc::now();
        nodes::Entity::update_many()
            .col_expr(nodes::Column::Online, Expr::value(true))
            .col_expr(nodes::Column::LastSeenAt, Expr::value(now))
            .col_expr(
                nodes::Column::AgentVersion,
                Expr::value(hello.agent_version.clone()),
            )
            .col_expr(nodes::Column::Hostname, Expr::value(hello.hostname.clone()))
            .col_expr(nodes::Column::Os, Expr::value(hello.os.clone()))
            .filter(nodes::Column::Id.eq(node.id))
            .exec(&self.ctx.db)
            .await
            .map_err(crate::error::ApiError::from)?;
        let rows = servers::Entity::find()
            .filter(servers::Column::NodeId.eq(node.id))
            .all(&self.ctx.db)
            .await
            .map_err(crate::error::ApiError::from)?;
        let specs = crate::api::specs::build(&self.ctx, &rows).await?;
        let (tx, rx) = mpsc::channel(256);
        tx.send(Ok(accepted(
            &node,
            specs,
            self.ctx.config.heartbeat_interval_seconds,
        )))
        .await
        .map_err(|_| Status::internal("session closed"))?;
        let (session_id, cancel) =
            self.ctx
                .agents
                .register(node.id, tx.clone(), &self.ctx.shutdown);
        // The writer's queue is ordered: the agent's report lands before anything this session sends.
        self.writer
            .submit(WriteOp::Reconcile {
                node_id: node.id,
                servers: std::mem::take(&mut hello.servers),
            })
            .await;
        let attrs = BTreeMap::from([
            ("hostname".to_owned(), hello.hostname.clone()),
            ("agent_version".to_owned(), hello.agent_version.clone()),
        ]);
        events::record(
            &self.ctx,
            None,
            Some(node.id),
            "node_online",
            &format!("node {:?} connected", node.name),
            attrs,
            "controller",
        )
        .await;
        tracing::info!(node_id = node.id, node = %node.name, session_id, host = %hello.hostname, "agent session started");

        let span = tracing::info_span!("agent_session", node_id = node.id, session_id);
        let ctx = self.ctx.clone();
        let writer = self.writer.clone();
        let reader_cancel = cancel.clone();
        let node_name = node.name.clone();
        self.tasks.spawn(
            async move {
                pump(
                    &ctx,
                    &writer,
                    node.id,
                    session_id,
                    inbound,
                    tx,
                    reader_cancel,
                )
                .await;
                if ctx.agents.unregister(node.id, session_id) {
                    let res = nodes::Entity::update_many()
                        .col_expr(nodes::Column::Online, Expr::value(false))
                        .filter(nodes::Column::Id.eq(node.id))
                        .exec(&ctx.db)
                        .await;
                    if let Err(e) = res {
                        tracing::error!(error = %e, "could not mark node offline");
                    }
                    events::record(
                        &ctx,
                        None,
                        Some(node.id),
                        "node_offline",
                        &format!("node {node_name:?} went offline"),
                        BTreeMap::new(),
                        "controller",
                    )
                    .await;
                }
                tracing::info!("agent session ended");
            }
            .instrument(span),
        );
        let out = ReceiverStream::new(rx).take_until(cancel.cancelled_owned());
        Ok(Response::new(Box::pin(out)))
    }
}

/// Reads the agent's messages until the stream ends or the session is cancelled.
async fn pump(
    ctx: &Ctx,
    writer: &WriterHandle,
    node_id: i64,
    session_id: u64,
    mut inbound: Streaming<pb::AgentMessage>,
    tx: mpsc::Sender<Result<pb::ControllerMessage, Status>>,
    cancel: tokio_util::sync::CancellationToken,
) {
    // Acknowledgements go out in order, once each batch is durable.
    let (ack_tx, mut ack_rx) = mpsc::channel::<oneshot::Receiver<Result<u64, String>>>(64);
    let ack_cancel = cancel.clone();
    let acker = tokio::spawn(
        async move {
            while let Some(done) = ack_rx.recv().await {
                match done.await {
                    Ok(Ok(seq)) => {
                        let ack = pb::ControllerMessage { body: Some(pb::controller_message::Body::Ack(pb::Ack { seq })) };
                        if tx.send(Ok(ack)).await.is_err() {
                            break;
                        }
                    }
                    Ok(Err(e)) => {
                        // The agent resends unacknowledged events on its next session.
                        tracing::warn!(error = %e, "batch not stored; ending session so the agent resends");
                        ack_cancel.cancel();
                        break;
                    }
                    Err(_) => break,
                }
            }
        }
        .in_current_span(),
    );
    loop {
        let msg = tokio::select! {
            _ = cancel.cancelled() => break,
            m = inbound.message() => m,
        };
        let body = match msg {
            Ok(Some(m)) => m.body,
            Ok(None) => break,
            Err(e) => {
                tracing::info!(error = %e, "agent stream error");
                break;
            }
        };
        ctx.agents.touch(node_id, session_id);
        match body {
            Some(pb::agent_message::Body::Heartbeat(hb)) => {
                ctx.agents
                    .set_spool_bytes(node_id, session_id, hb.spool_bytes);
                writer
                    .submit(WriteOp::Touch {
                        node_id,
                        at: Utc::now(),
                    })
                    .await;
            }
            Some(pb::agent_message::Body::Events(batch)) => {
                let (reply, done) = oneshot::channel();
                if !writer
                    .submit(WriteOp::Events {
                        node_id,
                        events: batch.events,
                        reply,
                    })
                    .await
                {
                    break;
                }
                if ack_tx.send(done).await.is_err() {
                    break;
                }
            }
            Some(pb::agent_message::Body::CommandResult(r)) => {
                ctx.agents.resolve(node_id, session_id, r)
            }
            Some(pb::agent_message::Body::Hello(_)) => tracing::warn!("duplicate hello ignored"),
            None => tracing::warn!("empty agent message ignored"),
        }
    }
    drop(ack_tx);
    let _ = tokio::time::timeout(Duration::from_secs(5), acker).await;
}
