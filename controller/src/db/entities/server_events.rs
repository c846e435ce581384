//! `server_events`: the history of what happened to servers and nodes.

use sea_orm::entity::prelude::*;

/// A row of `server_events`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "server_events")]
pub struct Model {
    /// Id, increasing in recording order.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Server, if any.
    pub server_id: Option<i64>,
    /// Node, if any.
    pub node_id: Option<i64>,
    /// Type ("status", "power", "node_online", ...).
    pub event_type: String,
    /// Human-readable text.
    pub message: String,
    /// JSON object of string attributes.
    pub attributes: String,
    /// Username, "agent" or "controller".
    pub actor: String,
    /// When it happened.
    pub created_at: DateTimeUtc,
}

/// No navigable relations are used.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
