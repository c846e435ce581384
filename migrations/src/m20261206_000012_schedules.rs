//! `schedules`: scheduled server tasks (restart with warnings, RCon message, RCon command) on a cron
//! expression in a time zone. Executed by the server's agent; the last outcome is written back.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Schedules::Table)
                    .if_not_exists()
                    .col(pk_auto(Schedules::Id).big_integer())
                    .col(big_integer(Schedules::ServerId))
                    .col(string(Schedules::Name))
                    .col(string(Schedules::Cron))
                    .col(string(Schedules::TimeZone))
                    .col(boolean(Schedules::Enabled))
                    .col(text(Schedules::Action))
                    .col(timestamp_with_time_zone(Schedules::CreatedAt))
                    .col(timestamp_with_time_zone(Schedules::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Schedules::LastRunAt))
                    .col(text(Schedules::LastResult).default(""))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_schedules_server")
                            .from(Schedules::Table, Schedules::ServerId)
                            .to(Servers::Table, Servers::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_schedules_server")
                    .table(Schedules::Table)
                    .col(Schedules::ServerId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Schedules::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Schedules {
    Table,
    Id,
    ServerId,
    Name,
    Cron,
    TimeZone,
    Enabled,
    Action,
    CreatedAt,
    UpdatedAt,
    LastRunAt,
    LastResult,
}

#[derive(DeriveIden)]
enum Servers {
    Table,
    Id,
}
