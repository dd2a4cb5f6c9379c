//! Genesis checkpoints: each chain starts with a signed statement naming its predecessor, so
//! a chain cannot be invented with the (public) hash rule alone.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AuditCheckpoints {
    Table,
    Previous,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(AuditCheckpoints::Table)
                .add_column(ColumnDef::new(AuditCheckpoints::Previous).text().null())
                .to_owned(),
        )
        .await
    }
}
