//! SigV4 access keys, and the audit column naming the front door a request came through.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AccessKeys {
    Table,
    Id,
    Principal,
    Groups,
    DefaultNamespace,
    CreatedAt,
    CreatedBy,
    Backend,
    SealKeyId,
    Material,
    SealedAlgorithm,
    SealedParams,
    SealedSecret,
}

#[derive(DeriveIden)]
enum AuditRecords {
    Table,
    Interface,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(AccessKeys::Table)
                .col(ColumnDef::new(AccessKeys::Id).text().not_null().primary_key())
                .col(ColumnDef::new(AccessKeys::Principal).text().not_null())
                .col(ColumnDef::new(AccessKeys::Groups).text().not_null())
                .col(ColumnDef::new(AccessKeys::DefaultNamespace).text().not_null())
                .col(ColumnDef::new(AccessKeys::CreatedAt).big_integer().not_null())
                .col(ColumnDef::new(AccessKeys::CreatedBy).text().not_null())
                .col(ColumnDef::new(AccessKeys::Backend).text().not_null())
                .col(ColumnDef::new(AccessKeys::SealKeyId).text().not_null())
                .col(ColumnDef::new(AccessKeys::Material).binary().not_null())
                .col(ColumnDef::new(AccessKeys::SealedAlgorithm).integer().not_null())
                .col(ColumnDef::new(AccessKeys::SealedParams).binary().not_null())
                .col(ColumnDef::new(AccessKeys::SealedSecret).binary().not_null())
                .to_owned(),
        )
        .await?;
        // Null for the REST API (every record written before this column existed came from it).
        m.alter_table(
            Table::alter()
                .table(AuditRecords::Table)
                .add_column(ColumnDef::new(AuditRecords::Interface).text().null())
                .to_owned(),
        )
        .await?;
        Ok(())
    }
}
