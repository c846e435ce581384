use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Nodes::Table)
                    .if_not_exists()
                    .col(pk_auto(Nodes::Id).big_integer())
                    .col(string_uniq(Nodes::Name))
                    .col(string_uniq(Nodes::TokenHash))
                    .col(boolean(Nodes::Online).default(false))
                    .col(timestamp_with_time_zone_null(Nodes::LastSeenAt))
                    .col(string(Nodes::AgentVersion).default(""))
                    .col(string(Nodes::Hostname).default(""))
                    .col(string(Nodes::Os).default(""))
                    .col(big_integer(Nodes::AckedSeq).default(0))
                    .col(timestamp_with_time_zone(Nodes::CreatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Nodes::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum Nodes {
    Table,
    Id,
    Name,
    TokenHash,
    Online,
    LastSeenAt,
    AgentVersion,
    Hostname,
    Os,
    AckedSeq,
    CreatedAt,
}
