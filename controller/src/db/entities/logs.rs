//! `logs`: every log entry a game server wrote, as the agent parsed it.

use sea_orm::entity::prelude::*;

/// A row of `logs`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "logs")]
pub struct Model {
    /// Id, increasing in arrival order (the single writer inserts in order).
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The server that wrote it.
    pub server_id: i64,
    /// When it was written (UTC).
    pub ts: DateTimeUtc,
    /// "info", "warning" or "error".
    pub level: String,
    /// Structured kind ("other", "player_connected", ...).
    pub kind: String,
    /// The text, continuation lines joined with "\n".
    pub line: String,
}

/// No navigable relations are used.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
