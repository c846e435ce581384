//! `player_history`: every play session (join to leave) of every server.

use sea_orm::entity::prelude::*;

/// A row of `player_history`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "player_history")]
pub struct Model {
    /// Id, increasing in join order.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The server.
    pub server_id: i64,
    /// BattlEye GUID, lower case; empty if never reported.
    pub guid: String,
    /// Name during the session.
    pub name: String,
    /// IP address and port.
    pub address: String,
    /// When the player joined.
    pub joined_at: DateTimeUtc,
    /// When the player left; `None` while on.
    pub left_at: Option<DateTimeUtc>,
}

/// No navigable relations are used.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
