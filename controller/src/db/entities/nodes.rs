//! `nodes`: hosts running an agent.

use sea_orm::entity::prelude::*;

/// A row of `nodes`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "nodes")]
pub struct Model {
    /// Id.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Unique name.
    #[sea_orm(unique)]
    pub name: String,
    /// SHA-256 (hex) of the node token.
    #[sea_orm(unique)]
    pub token_hash: String,
    /// Whether a session is live.
    pub online: bool,
    /// Last heartbeat or connect.
    pub last_seen_at: Option<DateTimeUtc>,
    /// Reported agent version.
    pub agent_version: String,
    /// Reported host name.
    pub hostname: String,
    /// Reported OS.
    pub os: String,
    /// Highest event sequence number stored for this node.
    pub acked_seq: i64,
    /// Creation time.
    pub created_at: DateTimeUtc,
}

/// No navigable relations are used.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
