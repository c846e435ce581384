use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ServerEvents::Table)
                    .if_not_exists()
                    .col(pk_auto(ServerEvents::Id).big_integer())
                    // No foreign keys: the history outlives deleted servers and nodes.
                    .col(big_integer_null(ServerEvents::ServerId))
                    .col(big_integer_null(ServerEvents::NodeId))
                    .col(string(ServerEvents::EventType))
                    .col(text(ServerEvents::Message))
                    .col(text(ServerEvents::Attributes))
                    .col(string(ServerEvents::Actor))
                    .col(timestamp_with_time_zone(ServerEvents::CreatedAt))
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            (
                "idx_server_events_server",
                vec![ServerEvents::ServerId, ServerEvents::Id],
            ),
            (
                "idx_server_events_node",
                vec![ServerEvents::NodeId, ServerEvents::Id],
            ),
            ("idx_server_events_created", vec![ServerEvents::CreatedAt]),
        ] {
            let mut index = Index::create();
            index.name(name).table(ServerEvents::Table);
            for c in cols {
                index.col(c);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ServerEvents::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum ServerEvents {
    Table,
    Id,
    ServerId,
    NodeId,
    EventType,
    Message,
    Attributes,
    Actor,
    CreatedAt,
}
