//! `metrics`: resource samples written by the agents, one row per running server per sample
//! (`server_id` set) and one per node (`server_id` NULL). Kept for `metrics_retention_days`.

use sea_orm::entity::prelude::*;

/// A row of `metrics`.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "metrics")]
pub struct Model {
    /// Id, increasing in arrival order.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The server; NULL for the node's own row.
    pub server_id: Option<i64>,
    /// The node that sampled it.
    pub node_id: i64,
    /// When it was sampled (the agent's clock, UTC).
    pub ts: DateTimeUtc,
    /// Server: percent of ONE core. Node: percent of all cores together.
    pub cpu_percent: f64,
    /// Server: resident memory of the process. Node: memory in use. Bytes.
    pub mem_rss_bytes: i64,
    /// Server: virtual memory of the process, bytes. Node: 0.
    pub mem_virtual_bytes: i64,
    /// Server: threads of the process. Node: 0.
    pub threads: i32,
    /// JSON object with the rest: server `{uptime_seconds}`; node `{memory_total_bytes, load1,
    /// load5, load15, disks, net_rx_bytes_per_second, net_tx_bytes_per_second, spool_bytes}`.
    pub extra: String,
}

/// No navigable relations are used.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
