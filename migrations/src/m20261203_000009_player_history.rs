use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PlayerHistory::Table)
                    .if_not_exists()
                    .col(pk_auto(PlayerHistory::Id).big_integer())
                    .col(big_integer(PlayerHistory::ServerId))
                    .col(string(PlayerHistory::Guid))
                    .col(string(PlayerHistory::Name))
                    .col(string(PlayerHistory::Address))
                    .col(timestamp_with_time_zone(PlayerHistory::JoinedAt))
                    .col(timestamp_with_time_zone_null(PlayerHistory::LeftAt))
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("idx_player_history_server_joined", PlayerHistory::ServerId),
            ("idx_player_history_guid", PlayerHistory::Guid),
            ("idx_player_history_name", PlayerHistory::Name),
        ] {
            let mut index = Index::create();
            index.name(name).table(PlayerHistory::Table).col(col);
            if matches!(col, PlayerHistory::ServerId) {
                index.col(PlayerHistory::JoinedAt);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(PlayerHistory::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum PlayerHistory {
    Table,
    Id,
    ServerId,
    Guid,
    Name,
    Address,
    JoinedAt,
    LeftAt,
}
