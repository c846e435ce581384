//! What an agent is told about its servers: the spec of each (with the RCon password), the
//! definition of its declared adapter, and its enabled schedules.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use languard_proto::v1 as pb;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use super::{Ctx, convert, schedules as schedule_api};
use crate::db::entities::{schedules, servers};
use crate::error::ApiResult;

/// The specs of `rows`, with adapter definitions and enabled schedules (one query for all).
pub async fn build(ctx: &Ctx, rows: &[servers::Model]) -> ApiResult<Vec<pb::ServerSpec>> {
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut by_server: HashMap<i64, Vec<pb::Schedule>> = HashMap::new();
    if !ids.is_empty() {
        for s in schedules::Entity::find()
            .filter(schedules::Column::ServerId.is_in(ids))
            .filter(schedules::Column::Enabled.eq(true))
            .order_by_asc(schedules::Column::Id)
            .all(&ctx.db)
            .await?
        {
            by_server
                .entry(s.server_id)
                .or_default()
                .push(schedule_api::to_proto(&s));
        }
    }
    Ok(rows
        .iter()
        .map(|r| {
            let mut spec = convert::spec(r);
            spec.adapter_definition = ctx.adapters.definition(&r.game_type);
            spec.schedules = by_server.remove(&r.id).unwrap_or_default();
            spec
        })
        .collect())
}

/// Per-node locks that order spec pushes.
#[derive(Clone, Default)]
pub struct PushLocks(Arc<Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>>);

impl PushLocks {
    async fn lock(&self, node_id: i64) -> tokio::sync::OwnedMutexGuard<()> {
        let m = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(node_id)
            .or_default()
            .clone();
        m.lock_owned().await
    }
}

/// Sends the current spec of `row` to its agent if it is connected (it gets every spec again in
/// `SessionAccepted` when it reconnects). Pushes to one node are serialised and each reads the
/// server afresh under the lock, so the agent always ends with the newest spec.
pub async fn push(ctx: &Ctx, row: &servers::Model) {
    let _order = ctx.spec_pushes.lock(row.node_id).await;
    let row = match servers::Entity::find_by_id(row.id).one(&ctx.db).await {
        Ok(Some(r)) => r,
        Ok(None) => return, // deleted meanwhile
        Err(e) => {
            tracing::warn!(server_id = row.id, error = %e, "spec not read; the agent gets it on reconnect");
            return;
        }
    };
    let row = &row;
    let spec = match build(ctx, std::slice::from_ref(row)).await {
        Ok(mut v) => match v.pop() {
            Some(s) => s,
            None => return,
        },
        Err(e) => {
            tracing::warn!(server_id = row.id, error = %e, "spec not built; the agent gets it on reconnect");
            return;
        }
    };
    let cmd = pb::agent_command::Action::Upsert(spec);
    if let Err(e) = ctx.agents.send(row.node_id, "controller", cmd).await {
        tracing::info!(server_id = row.id, error = %e, "spec not pushed now; the agent gets it on reconnect");
    }
}
