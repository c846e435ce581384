use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Logs::Table)
                    .if_not_exists()
                    .col(pk_auto(Logs::Id).big_integer())
                    .col(big_integer(Logs::ServerId))
                    .col(timestamp_with_time_zone(Logs::Ts))
                    .col(string(Logs::Level))
                    .col(string(Logs::Kind))
                    .col(text(Logs::Line))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_logs_server_ts")
                    .table(Logs::Table)
                    .col(Logs::ServerId)
                    .col(Logs::Ts)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_logs_ts")
                    .table(Logs::Table)
                    .col(Logs::Ts)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Logs::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Logs {
    Table,
    Id,
    ServerId,
    Ts,
    Level,
    Kind,
    Line,
}
