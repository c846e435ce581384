//! `schedules`: scheduled server tasks, executed by the server's agent.

use sea_orm::entity::prelude::*;

/// A row of `schedules`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "schedules")]
pub struct Model {
    /// Id.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The server it acts on.
    pub server_id: i64,
    /// Human name.
    pub name: String,
    /// Cron expression (5 or 6 fields).
    pub cron: String,
    /// IANA time zone of the cron expression.
    pub time_zone: String,
    /// Whether it runs.
    pub enabled: bool,
    /// The action as JSON (`StoredAction`).
    pub action: String,
    /// Creation time.
    pub created_at: DateTimeUtc,
    /// Last change.
    pub updated_at: DateTimeUtc,
    /// When a step last ran (reported by the agent).
    pub last_run_at: Option<DateTimeUtc>,
    /// Its outcome.
    pub last_result: String,
}

/// No navigable relations are used.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
