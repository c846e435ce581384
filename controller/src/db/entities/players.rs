//! `players`: who is on each server now (one row per connected player).

use sea_orm::entity::prelude::*;

/// A row of `players`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "players")]
pub struct Model {
    /// Id.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The server.
    pub server_id: i64,
    /// BattlEye slot (not an identity).
    pub slot: i32,
    /// BattlEye GUID, lower case; empty until reported.
    pub guid: String,
    /// Name in game.
    pub name: String,
    /// IP address and port.
    pub address: String,
    /// Ping in ms; -1 when unknown.
    pub ping: i32,
    /// Whether BattlEye verified the GUID.
    pub verified: bool,
    /// In role selection.
    pub in_lobby: bool,
    /// When this session began.
    pub joined_at: DateTimeUtc,
    /// The `player_history` row of this session (0 if none).
    pub history_id: i64,
}

/// No navigable relations are used.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
