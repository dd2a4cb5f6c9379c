//! On Postgres, the audit trail's indexed identifier columns (principal, key id, chain id)
//! compare bytewise (`COLLATE "C"`). They are identifiers, not prose: a linguistic collation
//! only makes every index insertion slower (a `strcoll` per comparison, in three B-trees per
//! record), and equality is the same under both. SQLite already compares them bytewise.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

const COLUMNS: [&str; 3] = ["principal", "key_id", "chain_id"];

async fn collate(m: &SchemaManager<'_>, collation: &str) -> Result<(), DbErr> {
    if m.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    let alters: Vec<String> =
        COLUMNS.iter().map(|c| format!("ALTER COLUMN {c} TYPE text COLLATE \"{collation}\"")).collect();
    m.get_connection().execute_unprepared(&format!("ALTER TABLE audit_records {}", alters.join(", "))).await?;
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        collate(m, "C").await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        collate(m, "default").await
    }
}
