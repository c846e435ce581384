use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261203_000003_nodes::Nodes;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Servers::Table)
                    .if_not_exists()
                    .col(pk_auto(Servers::Id).big_integer())
                    .col(big_integer(Servers::NodeId))
                    .col(string(Servers::Name))
                    .col(string(Servers::GameType))
                    .col(string(Servers::ExecutablePath))
                    .col(string(Servers::WorkingDir))
                    .col(integer(Servers::GamePort))
                    .col(text(Servers::Settings))
                    .col(integer(Servers::RconPort))
                    .col(string(Servers::RconPassword))
                    .col(boolean(Servers::AutoRestart))
                    .col(integer(Servers::MaxRestarts))
                    .col(integer(Servers::RestartWindowSeconds))
                    .col(string(Servers::Status))
                    .col(integer(Servers::Pid).default(0))
                    .col(timestamp_with_time_zone_null(Servers::StartedAt))
                    .col(integer(Servers::RestartCount).default(0))
                    .col(timestamp_with_time_zone(Servers::CreatedAt))
                    .col(timestamp_with_time_zone(Servers::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Servers::Table, Servers::NodeId)
                            .to(Nodes::Table, Nodes::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_servers_node_name")
                    .table(Servers::Table)
                    .col(Servers::NodeId)
                    .col(Servers::Name)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_servers_status")
                    .table(Servers::Table)
                    .col(Servers::Status)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Servers::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum Servers {
    Table,
    Id,
    NodeId,
    Name,
    GameType,
    ExecutablePath,
    WorkingDir,
    GamePort,
    /// Adapter settings as JSON (for Arma 3: profiles dir, configs, mods, extra args).
    Settings,
    RconPort,
    RconPassword,
    AutoRestart,
    MaxRestarts,
    RestartWindowSeconds,
    Status,
    Pid,
    StartedAt,
    RestartCount,
    CreatedAt,
    UpdatedAt,
}
