//! For metrics and retention: an index on `metrics.ts` alone (the retention job deletes
//! `WHERE ts < cutoff` in batches), and `(node_id, server_id, ts)` for a node's own rows
//! (`ListMetrics` by node reads `WHERE node_id = ? AND server_id IS NULL AND ts >= ? AND ts < ?`).
//! The latter replaces `idx_metrics_node_ts`, which is a prefix of it.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("idx_metrics_ts")
                    .table(Metrics::Table)
                    .col(Metrics::Ts)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_metrics_node_server_ts")
                    .table(Metrics::Table)
                    .col(Metrics::NodeId)
                    .col(Metrics::ServerId)
                    .col(Metrics::Ts)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_metrics_node_ts")
                    .table(Metrics::Table)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("idx_metrics_node_ts")
                    .table(Metrics::Table)
                    .col(Metrics::NodeId)
                    .col(Metrics::Ts)
                    .to_owned(),
            )
            .await?;
        for name in ["idx_metrics_node_server_ts", "idx_metrics_ts"] {
            manager
                .drop_index(Index::drop().name(name).table(Metrics::Table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Metrics {
    Table,
    NodeId,
    ServerId,
    Ts,
}
