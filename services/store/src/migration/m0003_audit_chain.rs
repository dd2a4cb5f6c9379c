//! Tamper evidence: each audit record carries its chain, sequence and hashes; signed
//! checkpoints of each chain's head; the trail is append-only (triggers refuse UPDATE and
//! DELETE, and TRUNCATE on Postgres).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AuditRecords {
    Table,
    ChainId,
    Sequence,
    PrevHash,
    Hash,
}

#[derive(DeriveIden)]
enum AuditCheckpoints {
    Table,
    Id,
    ChainId,
    Sequence,
    HeadHash,
    Time,
    KeyId,
    Signature,
}

const POSTGRES_APPEND_ONLY: &str = r#"
CREATE OR REPLACE FUNCTION keyward_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'the audit trail is append-only (% on %)', TG_OP, TG_TABLE_NAME;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_records_append_only BEFORE UPDATE OR DELETE ON audit_records
  FOR EACH ROW EXECUTE FUNCTION keyward_append_only();
CREATE TRIGGER audit_records_no_truncate BEFORE TRUNCATE ON audit_records
  FOR EACH STATEMENT EXECUTE FUNCTION keyward_append_only();
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
  FOR EACH ROW EXECUTE FUNCTION keyward_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
  FOR EACH STATEMENT EXECUTE FUNCTION keyward_append_only();
"#;

const SQLITE_APPEND_ONLY: &[&str] = &[
    "CREATE TRIGGER audit_records_no_update BEFORE UPDATE ON audit_records BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END",
    "CREATE TRIGGER audit_records_no_delete BEFORE DELETE ON audit_records BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END",
    "CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END",
    "CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // Records written before chaining have no chain (null), and are reported as such.
        m.alter_table(
            Table::alter()
                .table(AuditRecords::Table)
                .add_column(ColumnDef::new(AuditRecords::ChainId).text().null())
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(AuditRecords::Table)
                .add_column(ColumnDef::new(AuditRecords::Sequence).big_integer().null())
                .to_owned(),
        )
        .await?;
        for col in [AuditRecords::PrevHash, AuditRecords::Hash] {
            m.alter_table(
                Table::alter().table(AuditRecords::Table).add_column(ColumnDef::new(col).text().null()).to_owned(),
            )
            .await?;
        }
        m.create_index(
            Index::create()
                .name("audit_chain_sequence")
                .table(AuditRecords::Table)
                .col(AuditRecords::ChainId)
                .col(AuditRecords::Sequence)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(AuditCheckpoints::Table)
                .col(ColumnDef::new(AuditCheckpoints::Id).big_integer().not_null().auto_increment().primary_key())
                .col(ColumnDef::new(AuditCheckpoints::ChainId).text().not_null())
                .col(ColumnDef::new(AuditCheckpoints::Sequence).big_integer().not_null())
                .col(ColumnDef::new(AuditCheckpoints::HeadHash).text().not_null())
                .col(ColumnDef::new(AuditCheckpoints::Time).big_integer().not_null())
                .col(ColumnDef::new(AuditCheckpoints::KeyId).text().not_null())
                .col(ColumnDef::new(AuditCheckpoints::Signature).text().not_null())
                .to_owned(),
        )
        .await?;
        let db = m.get_connection();
        match db.get_database_backend() {
            DbBackend::Postgres => {
                db.execute_unprepared(POSTGRES_APPEND_ONLY).await?;
            }
            DbBackend::Sqlite => {
                for sql in SQLITE_APPEND_ONLY {
                    db.execute_unprepared(sql).await?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}
