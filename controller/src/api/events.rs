//! `EventService`: the recorded history and the live feed; also [`record`], which stores an event
//! caused by the API and publishes it.

use std::collections::BTreeMap;
use std::pin::Pin;

use chrono::Utc;
use futures::Stream;
use languard_proto::v1 as pb;
use languard_proto::v1::event_service_server::EventService;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Set,
};
use tokio::sync::broadcast::error::RecvError;
use tonic::{Request, Response, Status};

use super::{Ctx, convert, page};
use crate::auth::Role;
use crate::db::entities::server_events;
use crate::error::{ApiError, ApiResult};
use crate::hub::{EventData, HubPayload};

/// The `EventService` implementation.
pub struct EventApi {
    ctx: Ctx,
}

/// Stores an event and publishes it on the hub. A storage failure is logged, not returned: the
/// action it describes has already happened.
pub async fn record(
    ctx: &Ctx,
    server_id: Option<i64>,
    node_id: Option<i64>,
    event_type: &str,
    message: &str,
    attributes: BTreeMap<String, String>,
    actor: &str,
) {
    let now = Utc::now();
    let row = server_events::ActiveModel {
        server_id: Set(server_id),
        node_id: Set(node_id),
        event_type: Set(event_type.to_owned()),
        message: Set(message.to_owned()),
        attributes: Set(serde_json::to_string(&attributes).unwrap_or_else(|_| "{}".into())),
        actor: Set(actor.to_owned()),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(&ctx.db)
    .await;
    match row {
        Ok(row) => ctx.hub.publish(
            server_id.unwrap_or(0),
            node_id.unwrap_or(0),
            now,
            HubPayload::Event(EventData {
                id: row.id,
                event_type: event_type.to_owned(),
                message: message.to_owned(),
                attributes,
                actor: actor.to_owned(),
            }),
        ),
        Err(e) => tracing::error!(error = %e, event_type, "could not record event"),
    }
}

impl EventApi {
    /// A service over `ctx`.
    pub fn new(ctx: Ctx) -> Self {
        Self { ctx }
    }

    async fn list(&self, r: pb::ListEventsRequest) -> ApiResult<pb::ListEventsResponse> {
        let p = page::parse(r.page_size, &r.page_token)?;
        let mut cond = Condition::all();
        if let Some(before) = p.after {
            cond = cond.add(server_events::Column::Id.lt(before));
        }
        if r.server_id != 0 {
            cond = cond.add(server_events::Column::ServerId.eq(r.server_id));
        }
        if r.node_id != 0 {
            cond = cond.add(server_events::Column::NodeId.eq(r.node_id));
        }
        if !r.r#type.is_empty() {
            cond = cond.add(server_events::Column::EventType.eq(r.r#type.clone()));
        }
        if let Some(t) = &r.start_time {
            let t = convert::from_timestamp(t)
                .ok_or_else(|| ApiError::invalid("start_time", "out of range"))?;
            cond = cond.add(server_events::Column::CreatedAt.gte(t));
        }
        if let Some(t) = &r.end_time {
            let t = convert::from_timestamp(t)
                .ok_or_else(|| ApiError::invalid("end_time", "out of range"))?;
            cond = cond.add(server_events::Column::CreatedAt.lt(t));
        }
        let rows = server_events::Entity::find()
            .filter(cond)
            .order_by_desc(server_events::Column::Id)
            .limit(p.size)
            .all(&self.ctx.db)
            .await?;
        Ok(pb::ListEventsResponse {
            next_page_token: page::next_token(rows.len(), p.size, rows.last().map(|e| e.id)),
            events: rows.iter().map(convert::event).collect(),
        })
    }
}

/// The stream type of `WatchEvents`.
pub type LiveStream = Pin<Box<dyn Stream<Item = Result<pb::LiveEvent, Status>> + Send>>;

#[tonic::async_trait]
impl EventService for EventApi {
    async fn list_events(
        &self,
        req: Request<pb::ListEventsRequest>,
    ) -> Result<Response<pb::ListEventsResponse>, Status> {
        self.ctx.auth.require(&req, Role::Viewer).await?;
        Ok(Response::new(self.list(req.into_inner()).await?))
    }

    type WatchEventsStream = LiveStream;

    async fn watch_events(
        &self,
        req: Request<pb::WatchEventsRequest>,
    ) -> Result<Response<LiveStream>, Status> {
        self.ctx.auth.require(&req, Role::Viewer).await?;
        let server_id = req.get_ref().server_id;
        let mut rx = self.ctx.hub.subscribe();
        let hub = self.ctx.hub.clone();
        let shutdown = self.ctx.shutdown.clone();
        let stream = async_stream_like(move |tx| async move {
            loop {
                let msg = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tx.closed() => break,
                    m = rx.recv() => m,
                };
                let item = match msg {
                    Ok(m) if server_id == 0 || m.server_id == server_id => m.proto.clone(),
                    Ok(_) => continue,
                    Err(RecvError::Lagged(n)) => {
                        hub.count_dropped(n);
                        pb::LiveEvent {
                            server_id,
                            node_id: 0,
                            time: Some(convert::timestamp(Utc::now())),
                            payload: Some(pb::live_event::Payload::Lagged(pb::Lagged {
                                missed: n,
                            })),
                        }
                    }
                    Err(RecvError::Closed) => break,
                };
                if tx.send(Ok(item)).await.is_err() {
                    break;
                }
            }
        });
        Ok(Response::new(stream))
    }
}

/// Runs `f` as a task feeding a bounded channel, and returns the channel as a stream. The task ends
/// when the receiver is dropped (the client went away).
fn async_stream_like<F, Fut>(f: F) -> LiveStream
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<pb::LiveEvent, Status>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(f(tx));
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}
