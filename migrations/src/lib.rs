//! Languard's database schema, as sea-orm migrations (one per file, applied in order by
//! [`Migrator::up`] when the controller starts). Works on SQLite and PostgreSQL.

pub use sea_orm_migration::prelude::*;

mod m20261203_000001_users;
mod m20261203_000002_refresh_tokens;
mod m20261203_000003_nodes;
mod m20261203_000004_servers;
mod m20261203_000005_server_events;
mod m20261203_000006_logs;
mod m20261203_000007_metrics;
mod m20261203_000008_players;
mod m20261203_000009_player_history;
mod m20261204_000010_logs_players_links;
mod m20261205_000011_metrics_indexes;
mod m20261206_000012_schedules;
mod m20261207_000013_servers_clean_exit;

/// Applies Languard's migrations.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261203_000001_users::Migration),
            Box::new(m20261203_000002_refresh_tokens::Migration),
            Box::new(m20261203_000003_nodes::Migration),
            Box::new(m20261203_000004_servers::Migration),
            Box::new(m20261203_000005_server_events::Migration),
            Box::new(m20261203_000006_logs::Migration),
            Box::new(m20261203_000007_metrics::Migration),
            Box::new(m20261203_000008_players::Migration),
            Box::new(m20261203_000009_player_history::Migration),
            Box::new(m20261204_000010_logs_players_links::Migration),
            Box::new(m20261205_000011_metrics_indexes::Migration),
            Box::new(m20261206_000012_schedules::Migration),
            Box::new(m20261207_000013_servers_clean_exit::Migration),
        ]
    }
}
