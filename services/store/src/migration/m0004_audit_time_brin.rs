//! On Postgres, the audit trail's time index becomes a BRIN index: the table is append-only
//! and time grows with insertion order, so block ranges summarise it well, and inserting a
//! record no longer updates a B-tree (a large share of the audit commit's cost). SQLite keeps
//! its B-tree.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() == DbBackend::Postgres {
            let db = m.get_connection();
            db.execute_unprepared("DROP INDEX IF EXISTS audit_time").await?;
            db.execute_unprepared("CREATE INDEX audit_time_brin ON audit_records USING brin (time)").await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() == DbBackend::Postgres {
            let db = m.get_connection();
            db.execute_unprepared("DROP INDEX IF EXISTS audit_time_brin").await?;
            db.execute_unprepared("CREATE INDEX audit_time ON audit_records (time)").await?;
        }
        Ok(())
    }
}
