//! For the log pipeline and players: an index for keyset pages of one server's log (`ListLogs`,
//! `TailLogs` read `WHERE server_id = ? AND id < ?`), and a link from a connected player to the
//! `player_history` row of their session (so a leave closes exactly that row).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("idx_logs_server_id")
                    .table(Logs::Table)
                    .col(Logs::ServerId)
                    .col(Logs::Id)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Players::Table)
                    .add_column(big_integer(Players::HistoryId).default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_player_history_open")
                    .table(PlayerHistory::Table)
                    .col(PlayerHistory::ServerId)
                    .col(PlayerHistory::LeftAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_player_history_open")
                    .table(PlayerHistory::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Players::Table)
                    .drop_column(Players::HistoryId)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_logs_server_id")
                    .table(Logs::Table)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Logs {
    Table,
    Id,
    ServerId,
}

#[derive(DeriveIden)]
enum Players {
    Table,
    HistoryId,
}

#[derive(DeriveIden)]
enum PlayerHistory {
    Table,
    ServerId,
    LeftAt,
}
