//! A key's usage (fixed at creation; null on keys made before it existed, which are all
//! `ENCRYPT_DECRYPT`), and an audit record's operation-specific details.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Keys {
    Table,
    KeyUsage,
}

#[derive(DeriveIden)]
enum AuditRecords {
    Table,
    Details,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter().table(Keys::Table).add_column(ColumnDef::new(Keys::KeyUsage).text().null()).to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(AuditRecords::Table)
                .add_column(ColumnDef::new(AuditRecords::Details).text().null())
                .to_owned(),
        )
        .await
    }
}
