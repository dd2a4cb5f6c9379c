//! Grants, and the audit columns that let decisions be replayed (groups, policy errors,
//! justification).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Grants {
    Table,
    Id,
    KeyId,
    Grantee,
    Operations,
    Constraints,
    GrantedBy,
    CreatedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum AuditRecords {
    Table,
    PrincipalGroups,
    PolicyErrors,
    Justification,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Grants::Table)
                .col(ColumnDef::new(Grants::Id).text().not_null().primary_key())
                .col(ColumnDef::new(Grants::KeyId).text().not_null())
                .col(ColumnDef::new(Grants::Grantee).text().not_null())
                .col(ColumnDef::new(Grants::Operations).text().not_null())
                .col(ColumnDef::new(Grants::Constraints).text().not_null())
                .col(ColumnDef::new(Grants::GrantedBy).text().not_null())
                .col(ColumnDef::new(Grants::CreatedAt).big_integer().not_null())
                .col(ColumnDef::new(Grants::RevokedAt).big_integer().null())
                .to_owned(),
        )
        .await?;
        m.create_index(Index::create().name("grants_key").table(Grants::Table).col(Grants::KeyId).to_owned()).await?;
        // SQLite adds one column per ALTER TABLE.
        for col in [AuditRecords::PrincipalGroups, AuditRecords::PolicyErrors] {
            m.alter_table(
                Table::alter()
                    .table(AuditRecords::Table)
                    .add_column(ColumnDef::new(col).text().not_null().default("[]"))
                    .to_owned(),
            )
            .await?;
        }
        m.alter_table(
            Table::alter()
                .table(AuditRecords::Table)
                .add_column(ColumnDef::new(AuditRecords::Justification).text().null())
                .to_owned(),
        )
        .await?;
        Ok(())
    }
}
