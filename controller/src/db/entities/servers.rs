//! `servers`: game servers, their spec (desired state) and last reported status.

use sea_orm::entity::prelude::*;

/// A row of `servers`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "servers")]
pub struct Model {
    /// Id.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Owning node.
    pub node_id: i64,
    /// Name, unique per node.
    pub name: String,
    /// Adapter name.
    pub game_type: String,
    /// Absolute executable path.
    pub executable_path: String,
    /// Working directory (may be empty).
    pub working_dir: String,
    /// Game port (duplicated out of `settings` for clash checks).
    pub game_port: i32,
    /// Adapter settings as JSON.
    pub settings: String,
    /// RCon port, 0 for none.
    pub rcon_port: i32,
    /// RCon password; never returned by the API.
    pub rcon_password: String,
    /// Restart on crash.
    pub auto_restart: bool,
    /// Restart limit in the window.
    pub max_restarts: i32,
    /// The window, seconds.
    pub restart_window_seconds: i32,
    /// An unrequested exit with code 0 is a stop, not a crash.
    pub clean_exit_stops: bool,
    /// Last reported status ("stopped", "running", ...).
    pub status: String,
    /// Last reported pid.
    pub pid: i32,
    /// Last reported process start.
    pub started_at: Option<DateTimeUtc>,
    /// Restarts in the window.
    pub restart_count: i32,
    /// Creation time.
    pub created_at: DateTimeUtc,
    /// Last spec change.
    pub updated_at: DateTimeUtc,
}

/// No navigable relations are used.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
