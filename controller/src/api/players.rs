//! `PlayerService`: who is on (the `players` table), play sessions (`player_history`), and
//! BattlEye RCon actions routed to the owning agent as `AgentCommand.rcon`.
//!
//! Commands built here (BattlEye syntax): `kick <slot> [reason]`, `ban <slot> <minutes> [reason]`
//! for a player who is on, `addBan <guid> <minutes> [reason]` for a GUID that is not, `bans`,
//! `removeBan <number>`, `say -1 <text>` / `say <slot> <text>`, `#lock`, `#unlock`. A GUID is
//! resolved to the player's current slot from the `players` table. Every action (not `bans`) is
//! recorded as an `rcon` history event with the acting user; the server's RCon password is masked
//! wherever a command is recorded or echoed.

use std::collections::BTreeMap;

use languard_battleye::players::{BanDuration, BanRow, parse_bans};
use languard_proto::v1 as pb;
use languard_proto::v1::player_service_server::PlayerService;
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tonic::{Request, Response, Status};

use super::servers::{map_command_error, map_result_error};
use super::{Ctx, convert, events, logs::contains_ci, page};
use crate::auth::{Caller, Role};
use crate::db::entities::{nodes, player_history, players, servers};
use crate::error::{ApiError, ApiResult};

/// Longest kick/ban reason, in characters.
pub const MAX_REASON: usize = 200;
/// Longest message text, in characters.
pub const MAX_TEXT: usize = 400;
/// Longest raw command, in bytes.
pub const MAX_COMMAND: usize = 1000;
/// Largest (and default) page of `ListBans`: community ban lists run to thousands, and every page
/// reads the whole list over RCon, so one page holds a long list whole.
const MAX_BANS_PAGE: usize = 10_000;

/// The `PlayerService` implementation.
pub struct PlayerApi {
    ctx: Ctx,
}

/// A `players` row as the API shows it.
pub fn player(p: &players::Model) -> pb::Player {
    pb::Player {
        server_id: p.server_id,
        slot: p.slot,
        name: p.name.clone(),
        guid: p.guid.clone(),
        verified: p.verified,
        address: p.address.clone(),
        ping: p.ping,
        in_lobby: p.in_lobby,
        joined_time: Some(convert::timestamp(p.joined_at)),
    }
}

/// A `player_history` row as the API shows it.
pub fn session(h: &player_history::Model) -> pb::PlayerSession {
    pb::PlayerSession {
        id: h.id,
        server_id: h.server_id,
        guid: h.guid.clone(),
        name: h.name.clone(),
        address: h.address.clone(),
        joined_time: Some(convert::timestamp(h.joined_at)),
        left_time: h.left_at.map(convert::timestamp),
    }
}

/// Checks free text that goes into an RCon command: no control characters (a newline would end
/// the command), at most `max` characters.
fn check_text(field: &str, s: &str, required: bool, max: usize) -> ApiResult<String> {
    let t = s.trim();
    if required && t.is_empty() {
        return Err(ApiError::invalid(field, "is required"));
    }
    if t.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            field,
            "must not contain newlines or other control characters",
        ));
    }
    if t.chars().count() > max {
        return Err(ApiError::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(t.to_owned())
}

/// A BattlEye GUID: 32 hex digits, stored lower case.
fn check_guid(field: &str, g: &str) -> ApiResult<String> {
    let g = g.trim().to_ascii_lowercase();
    if g.len() != 32 || !g.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ApiError::invalid(field, "must be 32 hexadecimal digits"));
    }
    Ok(g)
}

/// A command with a trailing optional argument.
fn with_tail(head: String, tail: &str) -> String {
    if tail.is_empty() {
        head
    } else {
        format!("{head} {tail}")
    }
}

/// A ban row of the `bans` answer as the API shows it.
fn ban(b: &BanRow, ip_ban: bool) -> pb::Ban {
    pb::Ban {
        number: i32::try_from(b.id).unwrap_or(i32::MAX),
        target: b.target.clone(),
        ip_ban,
        minutes_left: match b.duration {
            BanDuration::Minutes(m) => i64::try_from(m).unwrap_or(i64::MAX),
            BanDuration::Permanent => -1,
            BanDuration::Expired => 0,
        },
        reason: b.reason.clone(),
    }
}

/// Where a player named by a `PlayerRef` is.
enum Target {
    /// On the server, at this slot.
    Slot(i32),
    /// A GUID that is not on the server.
    Offline(String),
}

impl PlayerApi {
    /// A service over `ctx`.
    pub fn new(ctx: Ctx) -> Self {
        Self { ctx }
    }

    async fn server(&self, id: i64) -> ApiResult<servers::Model> {
        if id == 0 {
            return Err(ApiError::invalid("server_id", "is required"));
        }
        servers::Entity::find_by_id(id)
            .one(&self.ctx.db)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("server {id} not found")))
    }

    /// Resolves a player reference: a GUID to its current slot, or the slot as given.
    async fn target(&self, server_id: i64, r: Option<&pb::PlayerRef>) -> ApiResult<Target> {
        let r = r.ok_or_else(|| ApiError::invalid("player", "is required"))?;
        if r.guid.trim().is_empty() {
            if r.slot < 0 {
                return Err(ApiError::invalid("player.slot", "must not be negative"));
            }
            return Ok(Target::Slot(r.slot));
        }
        let guid = check_guid("player.guid", &r.guid)?;
        let on = players::Entity::find()
            .filter(players::Column::ServerId.eq(server_id))
            .filter(players::Column::Guid.eq(guid.clone()))
            .one(&self.ctx.db)
            .await?;
        Ok(match on {
            Some(p) => Target::Slot(p.slot),
            None => Target::Offline(guid),
        })
    }

    /// The slot of a player who must be on the server.
    async fn online_slot(&self, server_id: i64, r: Option<&pb::PlayerRef>) -> ApiResult<i32> {
        match self.target(server_id, r).await? {
            Target::Slot(s) => Ok(s),
            Target::Offline(g) => Err(ApiError::NotFound(format!(
                "no player with GUID {g} is on server {server_id}"
            ))),
        }
    }

    /// Sends `command` to the server's RCon through its agent; records it unless `record` is false.
    async fn rcon(
        &self,
        caller: &Caller,
        server: &servers::Model,
        action: &str,
        command: String,
        record: bool,
    ) -> ApiResult<pb::RconActionResponse> {
        let mask = |s: &str| {
            if server.rcon_password.is_empty() {
                s.to_owned()
            } else {
                s.replace(&server.rcon_password, "***")
            }
        };
        if !self.ctx.agents.is_online(server.node_id) {
            let node = nodes::Entity::find_by_id(server.node_id)
                .one(&self.ctx.db)
                .await?;
            let name = node.as_ref().map(|n| n.name.clone()).unwrap_or_default();
            let seen = node
                .and_then(|n| n.last_seen_at)
                .map(|t| format!("last seen {}", t.to_rfc3339()))
                .unwrap_or_else(|| "never connected".into());
            return Err(ApiError::Unavailable(format!(
                "node {name:?} (id {}) of server {} is offline ({seen}); cannot send {action}",
                server.node_id, server.id
            )));
        }
        let shown = mask(&command);
        let result = self
            .ctx
            .agents
            .send(
                server.node_id,
                &caller.username,
                pb::agent_command::Action::Rcon(pb::RconCommand {
                    server_id: server.id,
                    command,
                }),
            )
            .await
            .map_err(map_command_error);
        if record {
            let mut attrs = BTreeMap::from([
                ("action".to_owned(), action.to_owned()),
                ("command".to_owned(), shown.clone()),
            ]);
            let outcome = match &result {
                Ok(r) if r.ok => "ok".to_owned(),
                Ok(r) => format!("failed: {}", mask(&r.error)),
                Err(e) => format!("failed: {e}"),
            };
            attrs.insert("outcome".into(), outcome.clone());
            events::record(
                &self.ctx,
                Some(server.id),
                Some(server.node_id),
                "rcon",
                &format!("{action} by {}: {shown} ({outcome})", caller.username),
                attrs,
                &caller.username,
            )
            .await;
        }
        let result = result?;
        if !result.ok {
            return Err(map_result_error(&result));
        }
        Ok(pb::RconActionResponse {
            command: shown,
            output: mask(&result.output),
        })
    }

    async fn list_players_(&self, r: pb::ListPlayersRequest) -> ApiResult<pb::ListPlayersResponse> {
        let slice = page::parse_slice(r.page_size, &r.page_token, page::MAX_PAGE_SIZE as usize)?;
        self.server(r.server_id).await?;
        let rows = players::Entity::find()
            .filter(players::Column::ServerId.eq(r.server_id))
            .order_by_asc(players::Column::Slot)
            .order_by_asc(players::Column::Id)
            .all(&self.ctx.db)
            .await?;
        let (rows, next_page_token) = slice.take(rows);
        Ok(pb::ListPlayersResponse {
            players: rows.iter().map(player).collect(),
            next_page_token,
        })
    }

    async fn sessions(
        &self,
        r: pb::ListPlayerSessionsRequest,
    ) -> ApiResult<pb::ListPlayerSessionsResponse> {
        let p = page::parse(r.page_size, &r.page_token)?;
        let mut cond = Condition::all();
        if let Some(before) = p.after {
            cond = cond.add(player_history::Column::Id.lt(before));
        }
        if r.server_id != 0 {
            cond = cond.add(player_history::Column::ServerId.eq(r.server_id));
        }
        if !r.guid.trim().is_empty() {
            cond = cond.add(player_history::Column::Guid.eq(check_guid("guid", &r.guid)?));
        }
        if !r.name_contains.is_empty() {
            let n = check_text("name_contains", &r.name_contains, false, 200)?;
            cond = cond.add(contains_ci(player_history::Column::Name, &n));
        }
        if let Some(t) = &r.start_time {
            let t = convert::from_timestamp(t)
                .ok_or_else(|| ApiError::invalid("start_time", "out of range"))?;
            cond = cond.add(player_history::Column::JoinedAt.gte(t));
        }
        if let Some(t) = &r.end_time {
            let t = convert::from_timestamp(t)
                .ok_or_else(|| ApiError::invalid("end_time", "out of range"))?;
            cond = cond.add(player_history::Column::JoinedAt.lt(t));
        }
        let rows = player_history::Entity::find()
            .filter(cond)
            .order_by_desc(player_history::Column::Id)
            .limit(p.size)
            .all(&self.ctx.db)
            .await?;
        Ok(pb::ListPlayerSessionsResponse {
            next_page_token: page::next_token(rows.len(), p.size, rows.last().map(|h| h.id)),
            sessions: rows.iter().map(session).collect(),
        })
    }

    async fn kick(
        &self,
        c: &Caller,
        r: pb::KickPlayerRequest,
    ) -> ApiResult<pb::RconActionResponse> {
        let server = self.server(r.server_id).await?;
        let reason = check_text("reason", &r.reason, false, MAX_REASON)?;
        let slot = self.online_slot(server.id, r.player.as_ref()).await?;
        let cmd = with_tail(format!("kick {slot}"), &reason);
        self.rcon(c, &server, "kick", cmd, true).await
    }

    async fn ban_(&self, c: &Caller, r: pb::BanPlayerRequest) -> ApiResult<pb::RconActionResponse> {
        let server = self.server(r.server_id).await?;
        let reason = check_text("reason", &r.reason, false, MAX_REASON)?;
        if r.minutes < 0 {
            return Err(ApiError::invalid(
                "minutes",
                "must not be negative (0 is permanent)",
            ));
        }
        let cmd = match self.target(server.id, r.player.as_ref()).await? {
            Target::Slot(slot) => format!("ban {slot} {}", r.minutes),
            Target::Offline(guid) => format!("addBan {guid} {}", r.minutes),
        };
        self.rcon(c, &server, "ban", with_tail(cmd, &reason), true)
            .await
    }

    async fn bans(&self, c: &Caller, r: pb::ListBansRequest) -> ApiResult<pb::ListBansResponse> {
        let slice = page::parse_slice(r.page_size, &r.page_token, MAX_BANS_PAGE)?;
        let server = self.server(r.server_id).await?;
        let out = self.rcon(c, &server, "bans", "bans".into(), false).await?;
        let list = parse_bans(&out.output);
        if list.skipped > 0 {
            tracing::debug!(
                server_id = server.id,
                skipped = list.skipped,
                "unparsed lines in the bans answer"
            );
        }
        let mut bans: Vec<pb::Ban> = list.guid_bans.iter().map(|b| ban(b, false)).collect();
        bans.extend(list.ip_bans.iter().map(|b| ban(b, true)));
        let (bans, next_page_token) = slice.take(bans);
        Ok(pb::ListBansResponse {
            bans,
            next_page_token,
        })
    }

    async fn remove_ban_(
        &self,
        c: &Caller,
        r: pb::RemoveBanRequest,
    ) -> ApiResult<pb::RconActionResponse> {
        let server = self.server(r.server_id).await?;
        if r.number < 0 {
            return Err(ApiError::invalid("number", "must not be negative"));
        }
        let cmd = format!("removeBan {}", r.number);
        self.rcon(c, &server, "remove_ban", cmd, true).await
    }

    async fn say(
        &self,
        c: &Caller,
        r: pb::SendMessageRequest,
    ) -> ApiResult<pb::RconActionResponse> {
        let server = self.server(r.server_id).await?;
        let text = check_text("text", &r.text, true, MAX_TEXT)?;
        let to = match r.player.as_ref() {
            None => -1,
            Some(p) => self.online_slot(server.id, Some(p)).await?,
        };
        let cmd = format!("say {to} {text}");
        self.rcon(c, &server, "message", cmd, true).await
    }

    async fn lock(&self, c: &Caller, id: i64, lock: bool) -> ApiResult<pb::RconActionResponse> {
        let server = self.server(id).await?;
        let (action, cmd) = if lock {
            ("lock", "#lock")
        } else {
            ("unlock", "#unlock")
        };
        self.rcon(c, &server, action, cmd.into(), true).await
    }

    async fn raw(
        &self,
        c: &Caller,
        r: pb::SendRconCommandRequest,
    ) -> ApiResult<pb::RconActionResponse> {
        let server = self.server(r.server_id).await?;
        let cmd = check_text("command", &r.command, true, MAX_COMMAND)?;
        if cmd.len() > MAX_COMMAND {
            return Err(ApiError::invalid(
                "command",
                format!("must be at most {MAX_COMMAND} bytes"),
            ));
        }
        self.rcon(c, &server, "command", cmd, true).await
    }
}

#[tonic::async_trait]
impl PlayerService for PlayerApi {
    async fn list_players(
        &self,
        req: Request<pb::ListPlayersRequest>,
    ) -> Result<Response<pb::ListPlayersResponse>, Status> {
        self.ctx.auth.require(&req, Role::Viewer).await?;
        Ok(Response::new(self.list_players_(req.into_inner()).await?))
    }

    async fn list_player_sessions(
        &self,
        req: Request<pb::ListPlayerSessionsRequest>,
    ) -> Result<Response<pb::ListPlayerSessionsResponse>, Status> {
        self.ctx.auth.require(&req, Role::Viewer).await?;
        Ok(Response::new(self.sessions(req.into_inner()).await?))
    }

    async fn kick_player(
        &self,
        req: Request<pb::KickPlayerRequest>,
    ) -> Result<Response<pb::RconActionResponse>, Status> {
        let c = self.ctx.auth.require(&req, Role::Operator).await?;
        Ok(Response::new(self.kick(&c, req.into_inner()).await?))
    }

    async fn ban_player(
        &self,
        req: Request<pb::BanPlayerRequest>,
    ) -> Result<Response<pb::RconActionResponse>, Status> {
        let c = self.ctx.auth.require(&req, Role::Operator).await?;
        Ok(Response::new(self.ban_(&c, req.into_inner()).await?))
    }

    async fn list_bans(
        &self,
        req: Request<pb::ListBansRequest>,
    ) -> Result<Response<pb::ListBansResponse>, Status> {
        let c = self.ctx.auth.require(&req, Role::Operator).await?;
        Ok(Response::new(self.bans(&c, req.into_inner()).await?))
    }

    async fn remove_ban(
        &self,
        req: Request<pb::RemoveBanRequest>,
    ) -> Result<Response<pb::RconActionResponse>, Status> {
        let c = self.ctx.auth.require(&req, Role::Operator).await?;
        Ok(Response::new(self.remove_ban_(&c, req.into_inner()).await?))
    }

    async fn send_message(
        &self,
        req: Request<pb::SendMessageRequest>,
    ) -> Result<Response<pb::RconActionResponse>, Status> {
        let c = self.ctx.auth.require(&req, Role::Operator).await?;
        Ok(Response::new(self.say(&c, req.into_inner()).await?))
    }

    async fn lock_server(
        &self,
        req: Request<pb::LockServerRequest>,
    ) -> Result<Response<pb::RconActionResponse>, Status> {
        let c = self.ctx.auth.require(&req, Role::Operator).await?;
        Ok(Response::new(
            self.lock(&c, req.get_ref().server_id, true).await?,
        ))
    }

    async fn unlock_server(
        &self,
        req: Request<pb::UnlockServerRequest>,
    ) -> Result<Response<pb::RconActionResponse>, Status> {
        let c = self.ctx.auth.require(&req, Role::Operator).await?;
        Ok(Response::new(
            self.lock(&c, req.get_ref().server_id, false).await?,
        ))
    }

    async fn send_rcon_command(
        &self,
        req: Request<pb::SendRconCommandRequest>,
    ) -> Result<Response<pb::RconActionResponse>, Status> {
        let c = self.ctx.auth.require(&req, Role::Admin).await?;
        Ok(Response::new(self.raw(&c, req.into_inner()).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(e: ApiError) -> String {
        match e {
            ApiError::InvalidArgument { field, .. } => field,
            other => panic!("expected invalid argument, got {other:?}"),
        }
    }

    #[test]
    fn text_checks_name_the_field_and_refuse_newlines() {
        assert_eq!(check_text("reason", " ok ", false, 10).expect("ok"), "ok");
        assert_eq!(
            field(check_text("reason", "a\nkick 1", false, 100).expect_err("newline")),
            "reason"
        );
        assert_eq!(
            field(check_text("text", "", true, 100).expect_err("empty")),
            "text"
        );
        assert_eq!(
            field(check_text("text", "xxxx", true, 3).expect_err("long")),
            "text"
        );
        assert_eq!(
            check_guid("g", "0123456789ABCDEF0123456789abcdef").expect("guid"),
            "0123456789abcdef0123456789abcdef"
        );
        assert_eq!(
            field(check_guid("player.guid", "xyz").expect_err("bad")),
            "player.guid"
        );
        assert_eq!(with_tail("kick 3".into(), ""), "kick 3");
        assert_eq!(with_tail("kick 3".into(), "bye"), "kick 3 bye");
    }
}
