use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Metrics::Table)
                    .if_not_exists()
                    .col(pk_auto(Metrics::Id).big_integer())
                    .col(big_integer_null(Metrics::ServerId))
                    .col(big_integer(Metrics::NodeId))
                    .col(timestamp_with_time_zone(Metrics::Ts))
                    .col(double(Metrics::CpuPercent))
                    .col(big_integer(Metrics::MemRssBytes))
                    .col(big_integer(Metrics::MemVirtualBytes))
                    .col(integer(Metrics::Threads))
                    .col(text(Metrics::Extra))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_metrics_server_ts")
                    .table(Metrics::Table)
                    .col(Metrics::ServerId)
                    .col(Metrics::Ts)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_metrics_node_ts")
                    .table(Metrics::Table)
                    .col(Metrics::NodeId)
                    .col(Metrics::Ts)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Metrics::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Metrics {
    Table,
    Id,
    ServerId,
    NodeId,
    Ts,
    CpuPercent,
    MemRssBytes,
    MemVirtualBytes,
    Threads,
    Extra,
}
