//! M-of-N approval requests.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Approvals {
    Table,
    Id,
    Request,
    Resource,
    KeyId,
    RequestedBy,
    RequesterGroups,
    Required,
    Votes,
    State,
    RejectedBy,
    CreatedAt,
    ExpiresAt,
    Result,
    Revision,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Approvals::Table)
                .col(ColumnDef::new(Approvals::Id).text().not_null().primary_key())
                .col(ColumnDef::new(Approvals::Request).text().not_null())
                .col(ColumnDef::new(Approvals::Resource).text().not_null())
                .col(ColumnDef::new(Approvals::KeyId).text().null())
                .col(ColumnDef::new(Approvals::RequestedBy).text().not_null())
                .col(ColumnDef::new(Approvals::RequesterGroups).text().not_null())
                .col(ColumnDef::new(Approvals::Required).big_integer().not_null())
                .col(ColumnDef::new(Approvals::Votes).text().not_null())
                .col(ColumnDef::new(Approvals::State).text().not_null())
                .col(ColumnDef::new(Approvals::RejectedBy).text().null())
                .col(ColumnDef::new(Approvals::CreatedAt).big_integer().not_null())
                .col(ColumnDef::new(Approvals::ExpiresAt).big_integer().not_null())
                .col(ColumnDef::new(Approvals::Result).text().null())
                .col(ColumnDef::new(Approvals::Revision).big_integer().not_null())
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("approvals_state_expires")
                .table(Approvals::Table)
                .col(Approvals::State)
                .col(Approvals::ExpiresAt)
                .to_owned(),
        )
        .await
    }
}
