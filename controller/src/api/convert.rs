//! Conversions between rows, proto messages and wire values.

use chrono::{DateTime, TimeZone, Utc};
use languard_proto::v1 as pb;
use prost_types::Timestamp;

use crate::db::entities::{nodes, server_events, servers, users};

/// A proto timestamp.
pub fn timestamp(t: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// A chrono time from a proto timestamp; `None` when out of range.
pub fn from_timestamp(t: &Timestamp) -> Option<DateTime<Utc>> {
    Utc.timestamp_opt(t.seconds, u32::try_from(t.nanos).ok()?)
        .single()
}

/// The stored name of a status.
pub fn status_str(s: pb::ServerStatus) -> &'static str {
    match s {
        pb::ServerStatus::Unspecified => "unspecified",
        pb::ServerStatus::Stopped => "stopped",
        pb::ServerStatus::Starting => "starting",
        pb::ServerStatus::Running => "running",
        pb::ServerStatus::Stopping => "stopping",
        pb::ServerStatus::Crashed => "crashed",
        pb::ServerStatus::Error => "error",
    }
}

/// The status of a stored name.
pub fn status_from_str(s: &str) -> pb::ServerStatus {
    match s {
        "stopped" => pb::ServerStatus::Stopped,
        "starting" => pb::ServerStatus::Starting,
        "running" => pb::ServerStatus::Running,
        "stopping" => pb::ServerStatus::Stopping,
        "crashed" => pb::ServerStatus::Crashed,
        "error" => pb::ServerStatus::Error,
        _ => pb::ServerStatus::Unspecified,
    }
}

/// The stored name of a proto status value; unknown values become "unspecified".
pub fn status_i32_str(v: i32) -> &'static str {
    status_str(pb::ServerStatus::try_from(v).unwrap_or(pb::ServerStatus::Unspecified))
}

/// A user row as the API shows it.
pub fn user(u: &users::Model) -> pb::User {
    let role = crate::auth::Role::parse(&u.role)
        .map(|r| r.to_proto())
        .unwrap_or(pb::Role::Unspecified);
    pb::User {
        id: u.id,
        username: u.username.clone(),
        role: role as i32,
        create_time: Some(timestamp(u.created_at)),
        update_time: Some(timestamp(u.updated_at)),
    }
}

/// A node row as the API shows it; `online` comes from the live session registry.
pub fn node(n: &nodes::Model, online: bool) -> pb::Node {
    pb::Node {
        id: n.id,
        name: n.name.clone(),
        online,
        last_seen_time: n.last_seen_at.map(timestamp),
        agent_version: n.agent_version.clone(),
        hostname: n.hostname.clone(),
        os: n.os.clone(),
        create_time: Some(timestamp(n.created_at)),
        load: None,
    }
}

/// The Arma 3 settings stored in a server row's `settings` JSON.
pub fn arma3_settings(s: &servers::Model) -> pb::Arma3Settings {
    let mut a: pb::Arma3Settings = serde_json::from_str::<StoredArma3>(&s.settings)
        .map(Into::into)
        .unwrap_or_default();
    a.game_port = s.game_port;
    a
}

/// The declared-adapter settings stored in a server row's `settings` JSON.
pub fn adapter_settings(s: &servers::Model) -> std::collections::HashMap<String, String> {
    serde_json::from_str::<StoredArma3>(&s.settings)
        .map(|a| a.adapter_settings.into_iter().collect())
        .unwrap_or_default()
}

/// A server row as the API shows it (never the RCon password).
pub fn server(s: &servers::Model, node_online: bool) -> pb::Server {
    let running = matches!(s.status.as_str(), "running" | "starting" | "stopping");
    pb::Server {
        id: s.id,
        node_id: s.node_id,
        name: s.name.clone(),
        game_type: s.game_type.clone(),
        executable_path: s.executable_path.clone(),
        working_dir: s.working_dir.clone(),
        arma3: Some(arma3_settings(s)),
        rcon_port: s.rcon_port,
        rcon_password_set: !s.rcon_password.is_empty(),
        auto_restart: s.auto_restart,
        max_restarts: s.max_restarts,
        restart_window_seconds: s.restart_window_seconds,
        clean_exit_stops: s.clean_exit_stops,
        status: status_from_str(&s.status) as i32,
        status_stale: !node_online,
        pid: if running { s.pid } else { 0 },
        started_time: if running {
            s.started_at.map(timestamp)
        } else {
            None
        },
        restart_count: s.restart_count,
        create_time: Some(timestamp(s.created_at)),
        update_time: Some(timestamp(s.updated_at)),
        settings: adapter_settings(s),
    }
}

/// The agent-side spec of a server row (includes the RCon password).
pub fn spec(s: &servers::Model) -> pb::ServerSpec {
    pb::ServerSpec {
        server_id: s.id,
        name: s.name.clone(),
        game_type: s.game_type.clone(),
        executable_path: s.executable_path.clone(),
        working_dir: s.working_dir.clone(),
        arma3: Some(arma3_settings(s)),
        rcon_port: s.rcon_port,
        rcon_password: s.rcon_password.clone(),
        auto_restart: s.auto_restart,
        max_restarts: s.max_restarts,
        restart_window_seconds: s.restart_window_seconds,
        clean_exit_stops: s.clean_exit_stops,
        settings: adapter_settings(s),
        schedules: Vec::new(),
        adapter_definition: String::new(),
    }
}

/// An event row as the API shows it.
pub fn event(e: &server_events::Model) -> pb::ServerEvent {
    pb::ServerEvent {
        id: e.id,
        server_id: e.server_id.unwrap_or(0),
        node_id: e.node_id.unwrap_or(0),
        r#type: e.event_type.clone(),
        message: e.message.clone(),
        attributes: serde_json::from_str(&e.attributes).unwrap_or_default(),
        actor: e.actor.clone(),
        time: Some(timestamp(e.created_at)),
    }
}

/// The JSON form of Arma 3 settings in the `settings` column (game port lives in its own column).
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct StoredArma3 {
    /// -profiles
    pub profiles_dir: String,
    /// -config
    pub config_path: String,
    /// -cfg
    pub basic_config_path: String,
    /// -mod
    pub mods: Vec<String>,
    /// -serverMod
    pub server_mods: Vec<String>,
    /// verbatim extras
    pub extra_args: Vec<String>,
    /// -name
    pub profile_name: String,
    /// Log file patterns (';'-separated), empty for the default.
    pub log_file_glob: String,
    /// Log time zone, empty for the agent's default.
    pub log_time_zone: String,
    /// Settings of a declared adapter (`Server.settings`).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub adapter_settings: std::collections::BTreeMap<String, String>,
}

impl From<StoredArma3> for pb::Arma3Settings {
    fn from(s: StoredArma3) -> Self {
        pb::Arma3Settings {
            game_port: 0,
            profiles_dir: s.profiles_dir,
            config_path: s.config_path,
            basic_config_path: s.basic_config_path,
            mods: s.mods,
            server_mods: s.server_mods,
            extra_args: s.extra_args,
            profile_name: s.profile_name,
            log_file_glob: s.log_file_glob,
            log_time_zone: s.log_time_zone,
        }
    }
}

impl From<&pb::Arma3Settings> for StoredArma3 {
    fn from(s: &pb::Arma3Settings) -> Self {
        StoredArma3 {
            profiles_dir: s.profiles_dir.clone(),
            config_path: s.config_path.clone(),
            basic_config_path: s.basic_config_path.clone(),
            mods: s.mods.clone(),
            server_mods: s.server_mods.clone(),
            extra_args: s.extra_args.clone(),
            profile_name: s.profile_name.clone(),
            log_file_glob: s.log_file_glob.clone(),
            log_time_zone: s.log_time_zone.clone(),
            adapter_settings: std::collections::BTreeMap::new(),
        }
    }
}
