//! Persistence on sea-orm: SQLite (the embedded default) and Postgres. Implements the
//! domain's key store and the audit trail's storage.

mod access_keys;
mod approvals;
mod audit;
mod audit_pg;
mod cache;
pub mod chain;
mod changes;
mod convert;
pub mod entity;
mod grants;
mod keys;
mod migration;
mod usage;
mod verify;

use std::time::Duration;

use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbBackend};
use sea_orm_migration::MigratorTrait;

pub use audit::{AuditQuery, SqlAuditReader, SqlAuditStore, audit_json};
pub use keys::{DEFAULT_KEY_CACHE_TTL, EncryptionTotal, SqlStore};
pub use migration::Migrator;
pub use verify::{Break, UnsignedTail, VerifyOptions, VerifyReport};

/// Why the database could not be opened or migrated.
#[derive(Debug, thiserror::Error)]
#[error("database: {0}")]
pub struct ConnectError(String);

/// Opens a database by URL (`sqlite://...` or `postgres://...`) without migrating.
pub async fn connect(url: &str) -> Result<DatabaseConnection, ConnectError> {
    let mut options = ConnectOptions::new(url.to_owned());
    options.sqlx_logging(false).connect_timeout(Duration::from_secs(10)).acquire_timeout(Duration::from_secs(10));
    if url.starts_with("sqlite:") {
        // WAL lets readers run beside the writer; a busy timeout queues writers instead of failing.
        options.max_connections(4).map_sqlx_sqlite_opts(|o| {
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
        });
    } else {
        // A database that stops answering must turn into fast 503s, not requests piling up
        // behind a pool waiting for connections.
        options.max_connections(16).acquire_timeout(Duration::from_secs(1));
    }
    let db = Database::connect(options).await.map_err(|e| ConnectError(redact(url, &e.to_string())))?;
    Ok(db)
}

/// Applies pending migrations.
/// Replicas starting together on Postgres take turns: one applies the migrations, the others
/// wait on a session advisory lock and then find nothing to do.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), ConnectError> {
    let failed = |e: &dyn std::fmt::Display| ConnectError(format!("migration failed: {e}"));
    if db.get_database_backend() != DbBackend::Postgres {
        return Migrator::up(db, None).await.map_err(|e| failed(&e));
    }
    let mut lock = db.get_postgres_connection_pool().acquire().await.map_err(|e| failed(&e))?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *lock)
        .await
        .map_err(|e| failed(&e))?;
    let result = Migrator::up(db, None).await.map_err(|e| failed(&e));
    let _ = sqlx::query("SELECT pg_advisory_unlock($1)").bind(MIGRATION_LOCK).execute(&mut *lock).await;
    result
}

/// The advisory lock id migrations hold on Postgres ("keyward" in ASCII).
const MIGRATION_LOCK: i64 = 0x6b_6579_7761_7264;

/// Which database a connection talks to, for logs.
pub fn backend_name(db: &DatabaseConnection) -> &'static str {
    match db.get_database_backend() {
        DbBackend::Sqlite => "sqlite",
        DbBackend::Postgres => "postgres",
        _ => "other",
    }
}

/// Removes a password that an error message may echo from the URL.
fn redact(url: &str, message: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) if u.password().is_some() => message.replace(u.password().unwrap_or_default(), "****"),
        _ => message.to_owned(),
    }
}
