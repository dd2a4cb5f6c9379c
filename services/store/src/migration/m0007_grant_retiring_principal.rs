//! A grant's retiring principal (AWS's RetiringPrincipal, listed by ListRetirableGrants).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Grants {
    Table,
    RetiringPrincipal,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Grants::Table)
                .add_column(ColumnDef::new(Grants::RetiringPrincipal).text().null())
                .to_owned(),
        )
        .await
    }
}
