//! `LogService`: a server's stored log (filters, keyset pages in both orders) and the live tail
//! (backlog, then the hub, with no gap and no duplicate at the seam).

use std::pin::Pin;

use futures::Stream;
use languard_proto::v1 as pb;
use languard_proto::v1::log_service_server::LogService;
use sea_orm::sea_query::{Expr, Func, LikeExpr};
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tonic::{Request, Response, Status};

use super::{Ctx, convert, page};
use crate::auth::Role;
use crate::db::entities::{logs, servers};
use crate::error::{ApiError, ApiResult};
use crate::hub::log_level_from_str;

/// Default number of stored entries `TailLogs` sends first.
pub const DEFAULT_BACKLOG: u64 = 150;
/// Largest backlog.
pub const MAX_BACKLOG: u64 = 5000;
/// Rows per query when `TailLogs` catches up from the database after falling behind the hub.
const CATCH_UP_PAGE: u64 = 500;

/// The `LogService` implementation.
pub struct LogApi {
    ctx: Ctx,
}

/// A stored row as the API shows it.
pub fn entry(r: &logs::Model) -> pb::LogEntry {
    pb::LogEntry {
        id: r.id,
        server_id: r.server_id,
        time: Some(convert::timestamp(r.ts)),
        level: log_level_from_str(&r.level) as i32,
        kind: r.kind.clone(),
        text: r.line.clone(),
    }
}

/// `LIKE` pattern matching `needle` anywhere, with `\` escaping the wildcards.
pub fn contains_pattern(needle: &str) -> LikeExpr {
    let mut p = String::with_capacity(needle.len() + 2);
    p.push('%');
    for c in needle.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    LikeExpr::new(p).escape('\\')
}

/// A case-insensitive "contains" on `col`, the same on SQLite and PostgreSQL:
/// `LOWER(col) LIKE '%needle%'` with the needle lower-cased here. (SQLite's LOWER folds ASCII only,
/// so on SQLite non-ASCII letters match case-sensitively.)
pub fn contains_ci<C: ColumnTrait>(col: C, needle: &str) -> sea_orm::sea_query::SimpleExpr {
    use sea_orm::sea_query::ExprTrait;
    Expr::expr(Func::lower(Expr::col(col))).like(contains_pattern(&needle.to_lowercase()))
}

/// The stored levels at or above `min` (`None` for all).
fn levels_at_least(min: i32) -> ApiResult<Option<Vec<&'static str>>> {
    match pb::LogLevel::try_from(min)
        .map_err(|_| ApiError::invalid("min_level", format!("unknown level {min}")))?
    {
        pb::LogLevel::Unspecified | pb::LogLevel::Info => Ok(None),
        pb::LogLevel::Warning => Ok(Some(vec!["warning", "error"])),
        pb::LogLevel::Error => Ok(Some(vec!["error"])),
    }
}

async fn require_server(db: &DatabaseConnection, server_id: i64) -> ApiResult<()> {
    if server_id == 0 {
        return Err(ApiError::invalid("server_id", "is required"));
    }
    servers::Entity::find_by_id(server_id)
        .one(db)
        .await?
        .map(|_| ())
        .ok_or_else(|| ApiError::NotFound(format!("server {server_id} not found")))
}

/// Entries of `server_id` with id > `after`, oldest first, at most `limit`.
async fn read_after(
    db: &DatabaseConnection,
    server_id: i64,
    after: i64,
    limit: u64,
) -> ApiResult<Vec<logs::Model>> {
    Ok(logs::Entity::find()
        .filter(logs::Column::ServerId.eq(server_id))
        .filter(logs::Column::Id.gt(after))
        .order_by_asc(logs::Column::Id)
        .limit(limit)
        .all(db)
        .await?)
}

impl LogApi {
    /// A service over `ctx`.
    pub fn new(ctx: Ctx) -> Self {
        Self { ctx }
    }

    async fn list(&self, r: pb::ListLogsRequest) -> ApiResult<pb::ListLogsResponse> {
        let p = page::parse(r.page_size, &r.page_token)?;
        require_server(&self.ctx.db, r.server_id).await?;
        let mut cond = Condition::all().add(logs::Column::ServerId.eq(r.server_id));
        if let Some(after) = p.after {
            cond = cond.add(if r.oldest_first {
                logs::Column::Id.gt(after)
            } else {
                logs::Column::Id.lt(after)
            });
        }
        if let Some(t) = &r.start_time {
            let t = convert::from_timestamp(t)
                .ok_or_else(|| ApiError::invalid("start_time", "out of range"))?;
            cond = cond.add(logs::Column::Ts.gte(t));
        }
        if let Some(t) = &r.end_time {
            let t = convert::from_timestamp(t)
                .ok_or_else(|| ApiError::invalid("end_time", "out of range"))?;
            cond = cond.add(logs::Column::Ts.lt(t));
        }
        if let Some(levels) = levels_at_least(r.min_level)? {
            cond = cond.add(logs::Column::Level.is_in(levels));
        }
        if !r.kind.is_empty() {
            cond = cond.add(logs::Column::Kind.eq(r.kind.clone()));
        }
        if !r.text_contains.is_empty() {
            if r.text_contains.chars().count() > 500 {
                return Err(ApiError::invalid(
                    "text_contains",
                    "must be at most 500 characters",
                ));
            }
            cond = cond.add(contains_ci(logs::Column::Line, &r.text_contains));
        }
        let mut q = logs::Entity::find().filter(cond).limit(p.size);
        q = if r.oldest_first {
            q.order_by_asc(logs::Column::Id)
        } else {
            q.order_by_desc(logs::Column::Id)
        };
        let rows = q.all(&self.ctx.db).await?;
        Ok(pb::ListLogsResponse {
            next_page_token: page::next_token(rows.len(), p.size, rows.last().map(|e| e.id)),
            entries: rows.iter().map(entry).collect(),
        })
    }
}

/// The stream type of `TailLogs`.
pub type TailStream = Pin<Box<dyn Stream<Item = Result<pb::LogEntry, Status>> + Send>>;

/// Sends `rows` in order, advancing `last`; false when the client is gone.
async fn send_rows(
    tx: &mpsc::Sender<Result<pb::LogEntry, Status>>,
    rows: &[logs::Model],
    last: &mut i64,
) -> bool {
    for r in rows {
        if r.id <= *last {
            continue;
        }
        if tx.send(Ok(entry(r))).await.is_err() {
            return false;
        }
        *last = r.id;
    }
    true
}

#[tonic::async_trait]
impl LogService for LogApi {
    async fn list_logs(
        &self,
        req: Request<pb::ListLogsRequest>,
    ) -> Result<Response<pb::ListLogsResponse>, Status> {
        self.ctx.auth.require(&req, Role::Viewer).await?;
        Ok(Response::new(self.list(req.into_inner()).await?))
    }

    type TailLogsStream = TailStream;

    /// Subscribes to the hub *before* reading the backlog, remembers the highest id sent and skips
    /// live entries at or below it: the single writer commits ids in increasing order and publishes
    /// after the commit, so nothing falls between the backlog and the live feed. A subscriber that
    /// falls behind the hub re-reads everything after its last id from the database.
    async fn tail_logs(
        &self,
        req: Request<pb::TailLogsRequest>,
    ) -> Result<Response<TailStream>, Status> {
        self.ctx.auth.require(&req, Role::Viewer).await?;
        let r = req.into_inner();
        let backlog = match r.backlog {
            0 => DEFAULT_BACKLOG,
            n if n < 0 => return Err(ApiError::invalid("backlog", "must not be negative").into()),
            n => u64::try_from(n).unwrap_or(MAX_BACKLOG).min(MAX_BACKLOG),
        };
        require_server(&self.ctx.db, r.server_id).await?;
        let server_id = r.server_id;
        let mut rx = self.ctx.hub.subscribe();
        let mut newest = logs::Entity::find()
            .filter(logs::Column::ServerId.eq(server_id))
            .order_by_desc(logs::Column::Id)
            .limit(backlog)
            .all(&self.ctx.db)
            .await
            .map_err(ApiError::from)?;
        newest.reverse();
        let db = self.ctx.db.clone();
        let shutdown = self.ctx.shutdown.clone();
        let (tx, out) = mpsc::channel(256);
        tokio::spawn(async move {
            let mut last = 0i64;
            if !send_rows(&tx, &newest, &mut last).await {
                return;
            }
            drop(newest);
            loop {
                let msg = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tx.closed() => break,
                    m = rx.recv() => m,
                };
                match msg {
                    Ok(m) if m.server_id == server_id => {
                        if let Some(pb::live_event::Payload::Log(e)) = &m.proto.payload
                            && e.id > last
                        {
                            if tx.send(Ok(e.clone())).await.is_err() {
                                break;
                            }
                            last = e.id;
                        }
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(missed)) => {
                        tracing::info!(
                            server_id,
                            missed,
                            "log tail fell behind the live feed; catching up from the database"
                        );
                        // Catch up from the database; the ring's remaining copies are skipped by id.
                        loop {
                            let rows = match read_after(&db, server_id, last, CATCH_UP_PAGE).await {
                                Ok(rows) => rows,
                                Err(e) => {
                                    let _ = tx.send(Err(Status::from(e))).await;
                                    return;
                                }
                            };
                            if !send_rows(&tx, &rows, &mut last).await {
                                return;
                            }
                            if (rows.len() as u64) < CATCH_UP_PAGE {
                                break;
                            }
                        }
                    }
                    Err(RecvError::Closed) => break,
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(out),
        )))
    }
}
