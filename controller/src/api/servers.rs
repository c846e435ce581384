//! `ServerService`: server specs (validated, stored, pushed to the owning agent) and power actions
//! (routed to the owning agent; its answer is returned).

use std::collections::BTreeMap;

use chrono::Utc;
use languard_proto::v1 as pb;
use languard_proto::v1::server_service_server::ServerService;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use tonic::{Request, Response, Status};

use super::convert::{self, StoredArma3};
use super::{Ctx, events, page, specs};
use crate::agents::registry::CommandError;
use crate::auth::{Caller, Role};
use crate::db::entities::{nodes, servers};
use crate::error::{ApiError, ApiResult};
use languard_adapters::Registry;

/// The `ServerService` implementation.
pub struct ServerApi {
    ctx: Ctx,
}

/// A validated spec, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidSpec {
    /// Name.
    pub name: String,
    /// Adapter.
    pub game_type: String,
    /// Executable.
    pub executable_path: String,
    /// Working dir.
    pub working_dir: String,
    /// Arma settings (game_port included).
    pub arma3: pb::Arma3Settings,
    /// RCon port.
    pub rcon_port: i32,
    /// Auto restart.
    pub auto_restart: bool,
    /// Restart limit.
    pub max_restarts: i32,
    /// Window.
    pub restart_window_seconds: i32,
    /// Exit 0 is a stop.
    pub clean_exit_stops: bool,
    /// Declared-adapter settings.
    pub settings: BTreeMap<String, String>,
}

fn spec_error(e: languard_adapters::SpecError) -> ApiError {
    ApiError::invalid(e.field, e.reason)
}

/// The agent-side form of a server as given to Create or Update, for the adapter's checks.
fn probe(s: &pb::Server, name: &str, game_type: &str) -> pb::ServerSpec {
    pb::ServerSpec {
        server_id: s.id,
        name: name.to_owned(),
        game_type: game_type.to_owned(),
        executable_path: s.executable_path.clone(),
        working_dir: s.working_dir.clone(),
        arma3: s.arma3.clone(),
        settings: s.settings.clone(),
        rcon_port: s.rcon_port,
        ..Default::default()
    }
}

/// Validates a server as given to Create or as it results from Update; names the failing field.
/// The generic fields are checked here; the game type's adapter checks (and defaults) the rest.
pub fn validate(s: &pb::Server, adapters: &Registry) -> ApiResult<ValidSpec> {
    let name = s.name.trim();
    if name.is_empty() {
        return Err(ApiError::invalid("server.name", "must not be empty"));
    }
    if name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "server.name",
            "must be at most 100 characters without control characters",
        ));
    }
    let game_type = if s.game_type.is_empty() {
        languard_adapters::arma3::NAME.to_owned()
    } else {
        s.game_type.clone()
    };
    let Some(adapter) = adapters.get(&game_type) else {
        return Err(ApiError::invalid(
            "server.game_type",
            format!(
                "unknown game type {game_type:?}; known: {}",
                adapters.names().join(", ")
            ),
        ));
    };
    languard_adapters::check::abs_path("server.executable_path", &s.executable_path, true)
        .map_err(spec_error)?;
    languard_adapters::check::abs_path("server.working_dir", &s.working_dir, false)
        .map_err(spec_error)?;
    if s.max_restarts < 0 {
        return Err(ApiError::invalid(
            "server.max_restarts",
            "must not be negative",
        ));
    }
    if s.restart_window_seconds < 0 {
        return Err(ApiError::invalid(
            "server.restart_window_seconds",
            "must not be negative",
        ));
    }
    let mut spec = probe(s, name, &game_type);
    adapter.normalize(&mut spec);
    adapter.validate(&spec).map_err(spec_error)?;
    Ok(ValidSpec {
        name: name.to_owned(),
        game_type,
        executable_path: s.executable_path.clone(),
        working_dir: s.working_dir.clone(),
        arma3: spec.arma3.unwrap_or_default(),
        rcon_port: s.rcon_port,
        auto_restart: s.auto_restart,
        max_restarts: if s.max_restarts == 0 && s.restart_window_seconds == 0 {
            3
        } else {
            s.max_restarts
        },
        restart_window_seconds: if s.restart_window_seconds == 0 {
            600
        } else {
            s.restart_window_seconds
        },
        clean_exit_stops: s.clean_exit_stops,
        settings: spec.settings.into_iter().collect(),
    })
}

/// Ports a server occupies on its node, as its adapter sees them.
fn ports_of(adapters: &Registry, spec: &pb::ServerSpec) -> Vec<languard_adapters::PortUse> {
    adapters
        .get(&spec.game_type)
        .map(|a| a.ports(spec))
        .unwrap_or_default()
}

impl ServerApi {
    /// A service over `ctx`.
    pub fn new(ctx: Ctx) -> Self {
        Self { ctx }
    }

    async fn get_row(&self, id: i64) -> ApiResult<servers::Model> {
        servers::Entity::find_by_id(id)
            .one(&self.ctx.db)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("server {id} not found")))
    }

    fn to_proto(&self, s: &servers::Model) -> pb::Server {
        convert::server(s, self.ctx.agents.is_online(s.node_id))
    }

    /// Refuses a name or port already used by another server of the node.
    async fn check_clashes(
        &self,
        node_id: i64,
        except: Option<i64>,
        spec: &ValidSpec,
    ) -> ApiResult<()> {
        let others = servers::Entity::find()
            .filter(servers::Column::NodeId.eq(node_id))
            .all(&self.ctx.db)
            .await?;
        let mine = ports_of(
            &self.ctx.adapters,
            &pb::ServerSpec {
                game_type: spec.game_type.clone(),
                arma3: Some(spec.arma3.clone()),
                settings: spec.settings.clone().into_iter().collect(),
                rcon_port: spec.rcon_port,
                ..Default::default()
            },
        );
        for o in others.iter().filter(|o| Some(o.id) != except) {
            if o.name == spec.name {
                return Err(ApiError::AlreadyExists(format!(
                    "server.name: {:?} already exists on node {node_id}",
                    spec.name
                )));
            }
            let theirs = ports_of(&self.ctx.adapters, &convert::spec(o));
            for a in &mine {
                if let Some(b) = theirs.iter().find(|b| a.overlaps(b)) {
                    return Err(ApiError::invalid(
                        a.field.clone(),
                        format!(
                            "ports {}-{} clash with server {} ({:?}) using {}-{} on the same node",
                            a.first, a.last, o.id, o.name, b.first, b.last
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    async fn push_spec(&self, row: &servers::Model) {
        specs::push(&self.ctx, row).await;
    }

    async fn create(&self, caller: &Caller, r: pb::CreateServerRequest) -> ApiResult<pb::Server> {
        let s = r
            .server
            .ok_or_else(|| ApiError::invalid("server", "is required"))?;
        if s.node_id == 0 {
            return Err(ApiError::invalid("server.node_id", "is required"));
        }
        nodes::Entity::find_by_id(s.node_id)
            .one(&self.ctx.db)
            .await?
            .ok_or_else(|| {
                ApiError::invalid(
                    "server.node_id",
                    format!("node {} does not exist", s.node_id),
                )
            })?;
        let spec = validate(&s, &self.ctx.adapters)?;
        if spec.rcon_port != 0 && r.rcon_password.is_empty() {
            return Err(ApiError::invalid(
                "rcon_password",
                "is required when rcon_port is set",
            ));
        }
        check_password(&r.rcon_password)?;
        self.check_clashes(s.node_id, None, &spec).await?;
        let now = Utc::now();
        let row = servers::ActiveModel {
            node_id: Set(s.node_id),
            name: Set(spec.name.clone()),
            game_type: Set(spec.game_type.clone()),
            executable_path: Set(spec.executable_path.clone()),
            working_dir: Set(spec.working_dir.clone()),
            game_port: Set(spec.arma3.game_port),
            settings: Set(settings_json(&spec)?),
            rcon_port: Set(spec.rcon_port),
            rcon_password: Set(r.rcon_password),
            auto_restart: Set(spec.auto_restart),
            max_restarts: Set(spec.max_restarts),
            restart_window_seconds: Set(spec.restart_window_seconds),
            clean_exit_stops: Set(spec.clean_exit_stops),
            status: Set("stopped".into()),
            pid: Set(0),
            started_at: Set(None),
            restart_count: Set(0),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&self.ctx.db)
        .await?;
        events::record(
            &self.ctx,
            Some(row.id),
            Some(row.node_id),
            "spec",
            &format!("server {:?} created", row.name),
            BTreeMap::new(),
            &caller.username,
        )
        .await;
        self.push_spec(&row).await;
        Ok(self.to_proto(&row))
    }

    async fn update(&self, caller: &Caller, r: pb::UpdateServerRequest) -> ApiResult<pb::Server> {
        let row = self.get_row(r.id).await?;
        let mask = r.update_mask.map(|m| m.paths).unwrap_or_default();
        if mask.is_empty() {
            return Err(ApiError::invalid(
                "update_mask",
                "must name at least one field",
            ));
        }
        let patch = r.server.unwrap_or_default();
        let mut merged = self.to_proto(&row);
        let mut password = row.rcon_password.clone();
        let mut arma = merged.arma3.clone().unwrap_or_default();
        let new_arma = patch.arma3.clone().unwrap_or_default();
        for path in &mask {
            match path.as_str() {
                "name" => merged.name = patch.name.clone(),
                "executable_path" => merged.executable_path = patch.executable_path.clone(),
                "working_dir" => merged.working_dir = patch.working_dir.clone(),
                "arma3" => arma = new_arma.clone(),
                "arma3.game_port" => arma.game_port = new_arma.game_port,
                "arma3.profiles_dir" => arma.profiles_dir = new_arma.profiles_dir.clone(),
                "arma3.config_path" => arma.config_path = new_arma.config_path.clone(),
                "arma3.basic_config_path" => {
                    arma.basic_config_path = new_arma.basic_config_path.clone()
                }
                "arma3.mods" => arma.mods = new_arma.mods.clone(),
                "arma3.server_mods" => arma.server_mods = new_arma.server_mods.clone(),
                "arma3.extra_args" => arma.extra_args = new_arma.extra_args.clone(),
                "arma3.profile_name" => arma.profile_name = new_arma.profile_name.clone(),
                "arma3.log_file_glob" => arma.log_file_glob = new_arma.log_file_glob.clone(),
                "arma3.log_time_zone" => arma.log_time_zone = new_arma.log_time_zone.clone(),
                "rcon_port" => merged.rcon_port = patch.rcon_port,
                "rcon_password" => password = r.rcon_password.clone(),
                "auto_restart" => merged.auto_restart = patch.auto_restart,
                "max_restarts" => merged.max_restarts = patch.max_restarts,
                "restart_window_seconds" => {
                    merged.restart_window_seconds = patch.restart_window_seconds
                }
                "clean_exit_stops" => merged.clean_exit_stops = patch.clean_exit_stops,
                "settings" => merged.settings = patch.settings.clone(),
                other => {
                    return Err(ApiError::invalid(
                        "update_mask",
                        format!("field {other:?} cannot be updated"),
                    ));
                }
            }
        }
        merged.arma3 = Some(arma);
        let spec = validate(&merged, &self.ctx.adapters)?;
        if spec.rcon_port != 0 && password.is_empty() {
            return Err(ApiError::invalid(
                "rcon_password",
                "is required when rcon_port is set",
            ));
        }
        check_password(&password)?;
        self.check_clashes(row.node_id, Some(row.id), &spec).await?;
        let mut active: servers::ActiveModel = row.into();
        active.name = Set(spec.name.clone());
        active.executable_path = Set(spec.executable_path.clone());
        active.working_dir = Set(spec.working_dir.clone());
        active.game_port = Set(spec.arma3.game_port);
        active.settings = Set(settings_json(&spec)?);
        active.rcon_port = Set(spec.rcon_port);
        active.rcon_password = Set(password);
        active.auto_restart = Set(spec.auto_restart);
        active.max_restarts = Set(spec.max_restarts);
        active.restart_window_seconds = Set(spec.restart_window_seconds);
        active.clean_exit_stops = Set(spec.clean_exit_stops);
        active.updated_at = Set(Utc::now());
        let row = active.update(&self.ctx.db).await?;
        let attrs = BTreeMap::from([("fields".to_owned(), mask.join(","))]);
        events::record(
            &self.ctx,
            Some(row.id),
            Some(row.node_id),
            "spec",
            &format!("server {:?} changed", row.name),
            attrs,
            &caller.username,
        )
        .await;
        self.push_spec(&row).await;
        Ok(self.to_proto(&row))
    }

    async fn delete(&self, caller: &Caller, id: i64) -> ApiResult<()> {
        let row = self.get_row(id).await?;
        if matches!(row.status.as_str(), "running" | "starting" | "stopping") {
            return Err(ApiError::FailedPrecondition(format!(
                "server {id} is {}; stop or kill it before deleting",
                row.status
            )));
        }
        if self.ctx.agents.is_online(row.node_id) {
            let action = pb::agent_command::Action::Remove(pb::ServerRef { server_id: id });
            let result = self
                .ctx
                .agents
                .send(row.node_id, &caller.username, action)
                .await
                .map_err(map_command_error)?;
            if !result.ok {
                return Err(map_result_error(&result));
            }
        }
        servers::Entity::delete_by_id(id).exec(&self.ctx.db).await?;
        events::record(
            &self.ctx,
            Some(id),
            Some(row.node_id),
            "spec",
            &format!("server {:?} deleted", row.name),
            BTreeMap::new(),
            &caller.username,
        )
        .await;
        Ok(())
    }

    async fn list(&self, r: pb::ListServersRequest) -> ApiResult<pb::ListServersResponse> {
        let p = page::parse(r.page_size, &r.page_token)?;
        let mut q = servers::Entity::find()
            .order_by_asc(servers::Column::Id)
            .limit(p.size);
        if let Some(after) = p.after {
            q = q.filter(servers::Column::Id.gt(after));
        }
        if r.node_id != 0 {
            q = q.filter(servers::Column::NodeId.eq(r.node_id));
        }
        if r.status != 0 {
            let status = pb::ServerStatus::try_from(r.status)
                .map_err(|_| ApiError::invalid("status", "unknown status"))?;
            q = q.filter(servers::Column::Status.eq(convert::status_str(status)));
        }
        let rows = q.all(&self.ctx.db).await?;
        Ok(pb::ListServersResponse {
            next_page_token: page::next_token(rows.len(), p.size, rows.last().map(|s| s.id)),
            servers: rows.iter().map(|s| self.to_proto(s)).collect(),
        })
    }

    /// Routes a power action to the owning agent and returns the server as the agent left it.
    async fn power(&self, caller: &Caller, id: i64, verb: &str) -> ApiResult<pb::Server> {
        let row = self.get_row(id).await?;
        let node = nodes::Entity::find_by_id(row.node_id)
            .one(&self.ctx.db)
            .await?;
        let node_name = node.as_ref().map(|n| n.name.clone()).unwrap_or_default();
        if !self.ctx.agents.is_online(row.node_id) {
            let seen = node
                .and_then(|n| n.last_seen_at)
                .map(|t| format!("last seen {}", t.to_rfc3339()))
                .unwrap_or_else(|| "never connected".into());
            return Err(ApiError::Unavailable(format!(
                "node {node_name:?} (id {}) of server {id} is offline ({seen}); cannot {verb} it",
                row.node_id
            )));
        }
        let target = pb::ServerRef { server_id: id };
        let action = match verb {
            "start" => pb::agent_command::Action::Start(target),
            "stop" => pb::agent_command::Action::Stop(target),
            "restart" => pb::agent_command::Action::Restart(target),
            _ => pb::agent_command::Action::Kill(target),
        };
        let attrs = BTreeMap::from([("action".to_owned(), verb.to_owned())]);
        events::record(
            &self.ctx,
            Some(id),
            Some(row.node_id),
            "power",
            &format!("{verb} requested by {}", caller.username),
            attrs,
            &caller.username,
        )
        .await;
        let result = self
            .ctx
            .agents
            .send(row.node_id, &caller.username, action)
            .await
            .map_err(map_command_error)?;
        if !result.ok {
            return Err(map_result_error(&result));
        }
        let mut server = self.to_proto(&row);
        if let Some(state) = result.state {
            server.status = state.status;
            server.pid = state.pid;
            server.started_time = state.started_time;
            server.restart_count = state.restart_count;
        }
        Ok(server)
    }
}

fn check_password(pw: &str) -> ApiResult<()> {
    if pw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ApiError::invalid(
            "rcon_password",
            "must not contain spaces or control characters",
        ));
    }
    if pw.len() > 128 {
        return Err(ApiError::invalid(
            "rcon_password",
            "must be at most 128 bytes",
        ));
    }
    Ok(())
}

fn settings_json(spec: &ValidSpec) -> ApiResult<String> {
    let mut stored = StoredArma3::from(&spec.arma3);
    stored.adapter_settings = spec.settings.clone();
    serde_json::to_string(&stored).map_err(|e| ApiError::Internal(e.to_string()))
}

/// How a command that got no answer shows to the caller.
pub(crate) fn map_command_error(e: CommandError) -> ApiError {
    match e {
        CommandError::Offline(m) => ApiError::Unavailable(m),
        CommandError::Timeout(m) => ApiError::DeadlineExceeded(m),
    }
}

/// How a command the agent refused shows to the caller.
pub(crate) fn map_result_error(r: &pb::CommandResult) -> ApiError {
    let msg = format!("agent: {}", r.error);
    match pb::CommandErrorKind::try_from(r.error_kind).unwrap_or(pb::CommandErrorKind::Internal) {
        pb::CommandErrorKind::FailedPrecondition => ApiError::FailedPrecondition(msg),
        pb::CommandErrorKind::NotFound => ApiError::NotFound(msg),
        pb::CommandErrorKind::InvalidArgument => ApiError::invalid("server", msg),
        pb::CommandErrorKind::Unavailable => ApiError::Unavailable(msg),
        _ => ApiError::Internal(msg),
    }
}

#[tonic::async_trait]
impl ServerService for ServerApi {
    async fn create_server(
        &self,
        req: Request<pb::CreateServerRequest>,
    ) -> Result<Response<pb::Server>, Status> {
        let caller = self.ctx.auth.require(&req, Role::Admin).await?;
        Ok(Response::new(self.create(&caller, req.into_inner()).await?))
    }

    async fn get_server(
        &self,
        req: Request<pb::GetServerRequest>,
    ) -> Result<Response<pb::Server>, Status> {
        self.ctx.auth.require(&req, Role::Viewer).await?;
        let row = self.get_row(req.get_ref().id).await?;
        Ok(Response::new(self.to_proto(&row)))
    }

    async fn list_servers(
        &self,
        req: Request<pb::ListServersRequest>,
    ) -> Result<Response<pb::ListServersResponse>, Status> {
        self.ctx.auth.require(&req, Role::Viewer).await?;
        Ok(Response::new(self.list(req.into_inner()).await?))
    }

    async fn update_server(
        &self,
        req: Request<pb::UpdateServerRequest>,
    ) -> Result<Response<pb::Server>, Status> {
        let caller = self.ctx.auth.require(&req, Role::Admin).await?;
        Ok(Response::new(self.update(&caller, req.into_inner()).await?))
    }

    async fn delete_server(
        &self,
        req: Request<pb::DeleteServerRequest>,
    ) -> Result<Response<pb::DeleteServerResponse>, Status> {
        let caller = self.ctx.auth.require(&req, Role::Admin).await?;
        self.delete(&caller, req.get_ref().id).await?;
        Ok(Response::new(pb::DeleteServerResponse {}))
    }

    async fn start_server(
        &self,
        req: Request<pb::StartServerRequest>,
    ) -> Result<Response<pb::Server>, Status> {
        let caller = self.ctx.auth.require(&req, Role::Operator).await?;
        Ok(Response::new(
            self.power(&caller, req.get_ref().id, "start").await?,
        ))
    }

    async fn stop_server(
        &self,
        req: Request<pb::StopServerRequest>,
    ) -> Result<Response<pb::Server>, Status> {
        let caller = self.ctx.auth.require(&req, Role::Operator).await?;
        Ok(Response::new(
            self.power(&caller, req.get_ref().id, "stop").await?,
        ))
    }

    async fn restart_server(
        &self,
        req: Request<pb::RestartServerRequest>,
    ) -> Result<Response<pb::Server>, Status> {
        let caller = self.ctx.auth.require(&req, Role::Operator).await?;
        Ok(Response::new(
            self.power(&caller, req.get_ref().id, "restart").await?,
        ))
    }

    async fn list_game_types(
        &self,
        req: Request<pb::ListGameTypesRequest>,
    ) -> Result<Response<pb::ListGameTypesResponse>, Status> {
        self.ctx.auth.require(&req, Role::Viewer).await?;
        let r = req.into_inner();
        let slice = page::parse_slice(r.page_size, &r.page_token, page::MAX_PAGE_SIZE as usize)?;
        let (game_types, next_page_token) = slice.take(self.ctx.adapters.list());
        Ok(Response::new(pb::ListGameTypesResponse {
            game_types,
            next_page_token,
        }))
    }

    async fn kill_server(
        &self,
        req: Request<pb::KillServerRequest>,
    ) -> Result<Response<pb::Server>, Status> {
        let caller = self.ctx.auth.require(&req, Role::Operator).await?;
        Ok(Response::new(
            self.power(&caller, req.get_ref().id, "kill").await?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> pb::Server {
        pb::Server {
            node_id: 1,
            name: "main".into(),
            executable_path: "/srv/arma3/arma3server_x64".into(),
            arma3: Some(pb::Arma3Settings {
                game_port: 2302,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn field_of(e: ApiError) -> String {
        match e {
            ApiError::InvalidArgument { field, .. } => field,
            other => panic!("expected invalid argument, got {other:?}"),
        }
    }

    #[test]
    fn a_good_spec_validates_with_defaults() {
        let v = validate(&base(), &Registry::builtin()).expect("valid");
        assert_eq!(v.game_type, "arma3");
        assert_eq!(v.max_restarts, 3);
        assert_eq!(v.restart_window_seconds, 600);
    }

    #[test]
    fn errors_name_the_field() {
        let mut s = base();
        s.name = " ".into();
        assert_eq!(
            field_of(validate(&s, &Registry::builtin()).expect_err("name")),
            "server.name"
        );
        let mut s = base();
        s.executable_path = "relative/arma".into();
        assert_eq!(
            field_of(validate(&s, &Registry::builtin()).expect_err("path")),
            "server.executable_path"
        );
        let mut s = base();
        s.arma3 = Some(pb::Arma3Settings {
            game_port: 80,
            ..Default::default()
        });
        assert_eq!(
            field_of(validate(&s, &Registry::builtin()).expect_err("port")),
            "server.arma3.game_port"
        );
        let mut s = base();
        s.rcon_port = 2304;
        assert_eq!(
            field_of(validate(&s, &Registry::builtin()).expect_err("rcon in game range")),
            "server.rcon_port"
        );
        let mut s = base();
        s.rcon_port = 70000;
        assert_eq!(
            field_of(validate(&s, &Registry::builtin()).expect_err("rcon range")),
            "server.rcon_port"
        );
        let mut s = base();
        s.game_type = "minecraft".into();
        assert_eq!(
            field_of(validate(&s, &Registry::builtin()).expect_err("game type")),
            "server.game_type"
        );
        let mut s = base();
        s.arma3 = Some(pb::Arma3Settings {
            game_port: 2302,
            profiles_dir: "x".into(),
            ..Default::default()
        });
        assert_eq!(
            field_of(validate(&s, &Registry::builtin()).expect_err("profiles")),
            "server.arma3.profiles_dir"
        );
        let arma = |glob: &str, tz: &str| pb::Arma3Settings {
            game_port: 2302,
            log_file_glob: glob.into(),
            log_time_zone: tz.into(),
            ..Default::default()
        };
        let mut s = base();
        s.arma3 = Some(arma("../x/*.rpt", ""));
        assert_eq!(
            field_of(validate(&s, &Registry::builtin()).expect_err("glob")),
            "server.arma3.log_file_glob"
        );
        s.arma3 = Some(arma("", "Mars/Olympus"));
        assert_eq!(
            field_of(validate(&s, &Registry::builtin()).expect_err("tz")),
            "server.arma3.log_time_zone"
        );
        s.arma3 = Some(arma("console_*.log;*.rpt", "Europe/Berlin"));
        assert!(validate(&s, &Registry::builtin()).is_ok());
    }
}
