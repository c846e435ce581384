use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Players::Table)
                    .if_not_exists()
                    .col(pk_auto(Players::Id).big_integer())
                    .col(big_integer(Players::ServerId))
                    .col(integer(Players::Slot))
                    .col(string(Players::Guid))
                    .col(string(Players::Name))
                    .col(string(Players::Address))
                    .col(integer(Players::Ping))
                    .col(boolean(Players::Verified))
                    .col(boolean(Players::InLobby))
                    .col(timestamp_with_time_zone(Players::JoinedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_players_server")
                    .table(Players::Table)
                    .col(Players::ServerId)
                    .col(Players::Slot)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Players::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Players {
    Table,
    Id,
    ServerId,
    Slot,
    Guid,
    Name,
    Address,
    Ping,
    Verified,
    InLobby,
    JoinedAt,
}
