//! Storage: connection set-up (SQLite with WAL, or PostgreSQL), migrations, entities, and the single
//! writer for high-volume agent data.

pub mod entities;
pub mod writer;

use std::time::Duration;

use languard_migrations::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};

/// Connects to `url` and applies pending migrations.
///
/// SQLite gets WAL journaling, `synchronous=NORMAL`, a busy timeout and foreign keys; these are not
/// the sqlx defaults.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.sqlx_logging(false)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(30));
    if url.starts_with("sqlite:") {
        opts.max_connections(8)
            .min_connections(1)
            .map_sqlx_sqlite_opts(|o| {
                o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true)
                    .create_if_missing(true)
            });
    } else {
        opts.max_connections(16).min_connections(1);
    }
    let db = Database::connect(opts).await?;
    Migrator::up(&db, None).await?;
    Ok(db)
}

/// Whether `db` is SQLite.
pub fn is_sqlite(db: &DatabaseConnection) -> bool {
    matches!(db.get_database_backend(), sea_orm::DatabaseBackend::Sqlite)
}
