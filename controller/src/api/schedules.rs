//! `ScheduleService`: scheduled server tasks (a restart with in-game warnings, an RCon message, an
//! RCon command) on a cron expression in a time zone. Stored here, executed by the server's agent
//! (its spec carries the enabled schedules, so they run while the controller is away); every
//! change pushes the server's spec to its agent again.

use std::collections::BTreeMap;

use chrono::Utc;
use languard_proto::v1 as pb;
use languard_proto::v1::schedule_service_server::ScheduleService;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use tonic::{Request, Response, Status};

use super::{Ctx, convert, events, page, specs};
use crate::auth::{Caller, Role};
use crate::db::entities::{schedules, servers};
use crate::error::{ApiError, ApiResult};

/// Longest text of a message, command or warning.
const MAX_TEXT: usize = 400;
/// Furthest a warning may come before its restart.
const MAX_WARNING_SECONDS: i32 = 86_400;

/// The JSON form of an action in the `action` column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoredAction {
    /// A restart with warnings.
    Restart {
        /// Seconds before the restart, descending.
        warning_seconds: Vec<i32>,
        /// Template with {minutes}/{seconds}.
        warning_message: String,
    },
    /// A message to everyone.
    Message {
        /// The text.
        text: String,
    },
    /// A raw RCon command.
    Command {
        /// The command.
        command: String,
    },
}

impl StoredAction {
    fn from_proto(a: &pb::schedule::Action) -> Self {
        match a {
            pb::schedule::Action::Restart(r) => {
                let mut w = r.warning_seconds.clone();
                w.sort_unstable_by(|a, b| b.cmp(a));
                StoredAction::Restart {
                    warning_seconds: w,
                    warning_message: r.warning_message.clone(),
                }
            }
            pb::schedule::Action::Message(m) => StoredAction::Message {
                text: m.text.clone(),
            },
            pb::schedule::Action::Command(c) => StoredAction::Command {
                command: c.command.clone(),
            },
        }
    }

    fn to_proto(&self) -> pb::schedule::Action {
        match self {
            StoredAction::Restart {
                warning_seconds,
                warning_message,
            } => pb::schedule::Action::Restart(pb::RestartAction {
                warning_seconds: warning_seconds.clone(),
                warning_message: warning_message.clone(),
            }),
            StoredAction::Message { text } => {
                pb::schedule::Action::Message(pb::MessageAction { text: text.clone() })
            }
            StoredAction::Command { command } => pb::schedule::Action::Command(pb::CommandAction {
                command: command.clone(),
            }),
        }
    }
}

/// A schedule row as the API (and the agent) sees it; `next_run_time` computed from now.
pub fn to_proto(r: &schedules::Model) -> pb::Schedule {
    let action = serde_json::from_str::<StoredAction>(&r.action)
        .ok()
        .map(|a| a.to_proto());
    pb::Schedule {
        id: r.id,
        server_id: r.server_id,
        name: r.name.clone(),
        cron: r.cron.clone(),
        time_zone: r.time_zone.clone(),
        enabled: r.enabled,
        action,
        create_time: Some(convert::timestamp(r.created_at)),
        update_time: Some(convert::timestamp(r.updated_at)),
        last_run_time: r.last_run_at.map(convert::timestamp),
        last_result: r.last_result.clone(),
        next_run_time: if r.enabled {
            next_run(&r.cron, &r.time_zone, Utc::now()).map(convert::timestamp)
        } else {
            None
        },
    }
}

/// The next time `cron` fires in `tz` (empty: UTC) after `now`.
pub fn next_run(cron: &str, tz: &str, now: chrono::DateTime<Utc>) -> Option<chrono::DateTime<Utc>> {
    let c = crate::jobs::retention::parse_schedule(cron).ok()?;
    let tz = if tz.is_empty() {
        chrono_tz::UTC
    } else {
        tz.parse().ok()?
    };
    crate::jobs::retention::next_run(&c, tz, now)
}

fn check_text(field: &str, text: &str, required: bool) -> ApiResult<()> {
    if text.trim().is_empty() {
        return if required {
            Err(ApiError::invalid(field, "must not be empty"))
        } else {
            Ok(())
        };
    }
    if text.chars().count() > MAX_TEXT {
        return Err(ApiError::invalid(
            field,
            format!("must be at most {MAX_TEXT} characters"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// Validates a schedule as given to Create or as it results from Update; names the failing field.
pub fn validate(s: &pb::Schedule) -> ApiResult<()> {
    let name = s.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "schedule.name",
            "must be 1-100 characters without control characters",
        ));
    }
    crate::jobs::retention::parse_schedule(&s.cron).map_err(|e| {
        ApiError::invalid(
            "schedule.cron",
            format!("{:?} is not a cron expression: {e}", s.cron),
        )
    })?;
    if next_run(&s.cron, "", Utc::now()).is_none() {
        return Err(ApiError::invalid(
            "schedule.cron",
            format!("{:?} never fires (no matching date)", s.cron),
        ));
    }
    if !s.time_zone.is_empty() && s.time_zone.parse::<chrono_tz::Tz>().is_err() {
        return Err(ApiError::invalid(
            "schedule.time_zone",
            format!(
                "unknown time zone {:?}; use an IANA name such as Europe/Berlin",
                s.time_zone
            ),
        ));
    }
    match &s.action {
        None => {
            return Err(ApiError::invalid(
                "schedule.action",
                "set exactly one of restart, message or command",
            ));
        }
        Some(pb::schedule::Action::Restart(r)) => {
            let mut seen = std::collections::HashSet::new();
            for w in &r.warning_seconds {
                if !(1..=MAX_WARNING_SECONDS).contains(w) {
                    return Err(ApiError::invalid(
                        "schedule.restart.warning_seconds",
                        format!(
                            "{w}: each warning must be 1-{MAX_WARNING_SECONDS} seconds before the restart"
                        ),
                    ));
                }
                if !seen.insert(*w) {
                    return Err(ApiError::invalid(
                        "schedule.restart.warning_seconds",
                        format!("{w} is listed twice"),
                    ));
                }
            }
            check_text(
                "schedule.restart.warning_message",
                &r.warning_message,
                false,
            )?;
        }
        Some(pb::schedule::Action::Message(m)) => {
            check_text("schedule.message.text", &m.text, true)?;
        }
        Some(pb::schedule::Action::Command(c)) => {
            check_text("schedule.command.command", &c.command, true)?;
        }
    }
    Ok(())
}

/// Raw commands need admin, like `SendRconCommand`.
fn check_role(caller: &Caller, s: &pb::Schedule) -> ApiResult<()> {
    if matches!(s.action, Some(pb::schedule::Action::Command(_))) && caller.role < Role::Admin {
        return Err(ApiError::PermissionDenied(
            "schedules with a raw RCon command need the admin role".into(),
        ));
    }
    Ok(())
}

/// The `ScheduleService` implementation.
pub struct ScheduleApi {
    ctx: Ctx,
}

impl ScheduleApi {
    /// A service over `ctx`.
    pub fn new(ctx: Ctx) -> Self {
        Self { ctx }
    }

    async fn get_row(&self, id: i64) -> ApiResult<schedules::Model> {
        schedules::Entity::find_by_id(id)
            .one(&self.ctx.db)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("schedule {id} not found")))
    }

    async fn server(&self, id: i64) -> ApiResult<servers::Model> {
        servers::Entity::find_by_id(id)
            .one(&self.ctx.db)
            .await?
            .ok_or_else(|| {
                ApiError::invalid("schedule.server_id", format!("server {id} does not exist"))
            })
    }

    async fn changed(&self, caller: &Caller, server: &servers::Model, what: String) {
        events::record(
            &self.ctx,
            Some(server.id),
            Some(server.node_id),
            "schedule",
            &what,
            BTreeMap::new(),
            &caller.username,
        )
        .await;
        specs::push(&self.ctx, server).await;
    }

    async fn create(
        &self,
        caller: &Caller,
        r: pb::CreateScheduleRequest,
    ) -> ApiResult<pb::Schedule> {
        let s = r
            .schedule
            .ok_or_else(|| ApiError::invalid("schedule", "is required"))?;
        if s.server_id == 0 {
            return Err(ApiError::invalid("schedule.server_id", "is required"));
        }
        validate(&s)?;
        check_role(caller, &s)?;
        let server = self.server(s.server_id).await?;
        let action = s
            .action
            .as_ref()
            .map(StoredAction::from_proto)
            .ok_or_else(|| ApiError::invalid("schedule.action", "is required"))?;
        let now = Utc::now();
        let row = schedules::ActiveModel {
            server_id: Set(s.server_id),
            name: Set(s.name.trim().to_owned()),
            cron: Set(s.cron.trim().to_owned()),
            time_zone: Set(s.time_zone.clone()),
            enabled: Set(s.enabled),
            action: Set(
                serde_json::to_string(&action).map_err(|e| ApiError::Internal(e.to_string()))?
            ),
            created_at: Set(now),
            updated_at: Set(now),
            last_run_at: Set(None),
            last_result: Set(String::new()),
            ..Default::default()
        }
        .insert(&self.ctx.db)
        .await?;
        self.changed(caller, &server, format!("schedule {:?} created", row.name))
            .await;
        Ok(to_proto(&row))
    }

    async fn update(
        &self,
        caller: &Caller,
        r: pb::UpdateScheduleRequest,
    ) -> ApiResult<pb::Schedule> {
        let row = self.get_row(r.id).await?;
        let mask = r.update_mask.map(|m| m.paths).unwrap_or_default();
        if mask.is_empty() {
            return Err(ApiError::invalid(
                "update_mask",
                "must name at least one field",
            ));
        }
        let patch = r.schedule.unwrap_or_default();
        let before = to_proto(&row);
        // Changing a command schedule needs admin too.
        check_role(caller, &before)?;
        let mut merged = before.clone();
        for path in &mask {
            match path.as_str() {
                "name" => merged.name = patch.name.clone(),
                "cron" => merged.cron = patch.cron.clone(),
                "time_zone" => merged.time_zone = patch.time_zone.clone(),
                "enabled" => merged.enabled = patch.enabled,
                "action" => merged.action = patch.action.clone(),
                other => {
                    return Err(ApiError::invalid(
                        "update_mask",
                        format!("field {other:?} cannot be updated"),
                    ));
                }
            }
        }
        validate(&merged)?;
        check_role(caller, &merged)?;
        let action = merged
            .action
            .as_ref()
            .map(StoredAction::from_proto)
            .ok_or_else(|| ApiError::invalid("schedule.action", "is required"))?;
        let server = self.server(row.server_id).await?;
        let mut active: schedules::ActiveModel = row.into();
        active.name = Set(merged.name.trim().to_owned());
        active.cron = Set(merged.cron.trim().to_owned());
        active.time_zone = Set(merged.time_zone.clone());
        active.enabled = Set(merged.enabled);
        active.action =
            Set(serde_json::to_string(&action).map_err(|e| ApiError::Internal(e.to_string()))?);
        active.updated_at = Set(Utc::now());
        let row = active.update(&self.ctx.db).await?;
        self.changed(
            caller,
            &server,
            format!("schedule {:?} changed ({})", row.name, mask.join(",")),
        )
        .await;
        Ok(to_proto(&row))
    }

    async fn delete(&self, caller: &Caller, id: i64) -> ApiResult<()> {
        let row = self.get_row(id).await?;
        check_role(caller, &to_proto(&row))?;
        let server = self.server(row.server_id).await?;
        schedules::Entity::delete_by_id(id)
            .exec(&self.ctx.db)
            .await?;
        self.changed(caller, &server, format!("schedule {:?} deleted", row.name))
            .await;
        Ok(())
    }

    async fn list(&self, r: pb::ListSchedulesRequest) -> ApiResult<pb::ListSchedulesResponse> {
        let p = page::parse(r.page_size, &r.page_token)?;
        let mut q = schedules::Entity::find()
            .order_by_asc(schedules::Column::Id)
            .limit(p.size);
        if let Some(after) = p.after {
            q = q.filter(schedules::Column::Id.gt(after));
        }
        if r.server_id != 0 {
            q = q.filter(schedules::Column::ServerId.eq(r.server_id));
        }
        let rows = q.all(&self.ctx.db).await?;
        Ok(pb::ListSchedulesResponse {
            next_page_token: page::next_token(rows.len(), p.size, rows.last().map(|s| s.id)),
            schedules: rows.iter().map(to_proto).collect(),
        })
    }
}

#[tonic::async_trait]
impl ScheduleService for ScheduleApi {
    async fn create_schedule(
        &self,
        req: Request<pb::CreateScheduleRequest>,
    ) -> Result<Response<pb::Schedule>, Status> {
        let caller = self.ctx.auth.require(&req, Role::Operator).await?;
        Ok(Response::new(self.create(&caller, req.into_inner()).await?))
    }

    async fn get_schedule(
        &self,
        req: Request<pb::GetScheduleRequest>,
    ) -> Result<Response<pb::Schedule>, Status> {
        self.ctx.auth.require(&req, Role::Viewer).await?;
        let row = self.get_row(req.get_ref().id).await?;
        Ok(Response::new(to_proto(&row)))
    }

    async fn list_schedules(
        &self,
        req: Request<pb::ListSchedulesRequest>,
    ) -> Result<Response<pb::ListSchedulesResponse>, Status> {
        self.ctx.auth.require(&req, Role::Viewer).await?;
        Ok(Response::new(self.list(req.into_inner()).await?))
    }

    async fn update_schedule(
        &self,
        req: Request<pb::UpdateScheduleRequest>,
    ) -> Result<Response<pb::Schedule>, Status> {
        let caller = self.ctx.auth.require(&req, Role::Operator).await?;
        Ok(Response::new(self.update(&caller, req.into_inner()).await?))
    }

    async fn delete_schedule(
        &self,
        req: Request<pb::DeleteScheduleRequest>,
    ) -> Result<Response<pb::DeleteScheduleResponse>, Status> {
        let caller = self.ctx.auth.require(&req, Role::Operator).await?;
        self.delete(&caller, req.get_ref().id).await?;
        Ok(Response::new(pb::DeleteScheduleResponse {}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> pb::Schedule {
        pb::Schedule {
            server_id: 1,
            name: "nightly".into(),
            cron: "0 4 * * *".into(),
            time_zone: "Europe/Berlin".into(),
            enabled: true,
            action: Some(pb::schedule::Action::Restart(pb::RestartAction {
                warning_seconds: vec![60, 900, 300],
                warning_message: String::new(),
            })),
            ..Default::default()
        }
    }

    fn field(s: pb::Schedule) -> String {
        match validate(&s) {
            Err(ApiError::InvalidArgument { field, .. }) => field,
            other => panic!("expected an invalid argument, got {other:?}"),
        }
    }

    #[test]
    fn a_good_schedule_validates_and_warnings_are_stored_descending() {
        validate(&base()).expect("valid");
        let a = StoredAction::from_proto(base().action.as_ref().expect("action"));
        assert_eq!(
            a,
            StoredAction::Restart {
                warning_seconds: vec![900, 300, 60],
                warning_message: String::new()
            }
        );
        let six = pb::Schedule {
            cron: "*/10 * * * * *".into(),
            ..base()
        };
        validate(&six).expect("six fields with seconds");
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(
            field(pb::Schedule {
                name: " ".into(),
                ..base()
            }),
            "schedule.name"
        );
        assert_eq!(
            field(pb::Schedule {
                cron: "every day".into(),
                ..base()
            }),
            "schedule.cron"
        );
        assert_eq!(
            field(pb::Schedule {
                time_zone: "Mars/Olympus".into(),
                ..base()
            }),
            "schedule.time_zone"
        );
        assert_eq!(
            field(pb::Schedule {
                action: None,
                ..base()
            }),
            "schedule.action"
        );
        assert_eq!(
            field(pb::Schedule {
                cron: "0 0 30 2 *".into(),
                ..base()
            }),
            "schedule.cron",
            "February 30th never comes"
        );
        let dup = pb::Schedule {
            action: Some(pb::schedule::Action::Restart(pb::RestartAction {
                warning_seconds: vec![60, 60],
                warning_message: String::new(),
            })),
            ..base()
        };
        assert_eq!(field(dup), "schedule.restart.warning_seconds");
        let far = pb::Schedule {
            action: Some(pb::schedule::Action::Restart(pb::RestartAction {
                warning_seconds: vec![86_401],
                warning_message: String::new(),
            })),
            ..base()
        };
        assert_eq!(field(far), "schedule.restart.warning_seconds");
        let ctl = pb::Schedule {
            action: Some(pb::schedule::Action::Message(pb::MessageAction {
                text: "hi\nthere".into(),
            })),
            ..base()
        };
        assert_eq!(field(ctl), "schedule.message.text");
        let empty = pb::Schedule {
            action: Some(pb::schedule::Action::Command(pb::CommandAction {
                command: String::new(),
            })),
            ..base()
        };
        assert_eq!(field(empty), "schedule.command.command");
    }

    #[test]
    fn next_run_uses_the_time_zone() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-03T10:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let utc = next_run("0 4 * * *", "", now).expect("next");
        assert_eq!(utc.to_rfc3339(), "2026-12-04T04:00:00+00:00");
        let berlin = next_run("0 4 * * *", "Europe/Berlin", now).expect("next");
        assert_eq!(berlin.to_rfc3339(), "2026-12-04T03:00:00+00:00");
    }
}
