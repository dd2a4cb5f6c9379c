//! Keys, versions, aliases, idempotency keys and the audit trail.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Keys {
    Table,
    Id,
    Namespace,
    Description,
    Owner,
    Tags,
    Spec,
    State,
    Backend,
    PrimaryVersion,
    MinDecryptionVersion,
    RotationPeriodDays,
    NextRotationAt,
    DeletionDate,
    CreatedAt,
    UpdatedAt,
    Revision,
}

#[derive(DeriveIden)]
enum KeyVersions {
    Table,
    KeyId,
    Version,
    Material,
    Destroyed,
    CreatedAt,
    Encryptions,
    Decryptions,
    LastUsedAt,
}

#[derive(DeriveIden)]
enum Aliases {
    Table,
    Name,
    KeyId,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    Principal,
    IdemKey,
    RequestHash,
    KeyId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum AuditRecords {
    Table,
    Id,
    Time,
    RequestId,
    TraceId,
    Principal,
    Action,
    Resource,
    KeyId,
    KeyVersion,
    Decision,
    DeterminingPolicies,
    PolicyVersion,
    Outcome,
    Reason,
    EncryptionContext,
    SourceIp,
    UserAgent,
    DryRun,
    DurationUs,
}

fn text(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).text().not_null().to_owned()
}

fn text_null(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).text().null().to_owned()
}

fn big(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).big_integer().not_null().to_owned()
}

fn big_null(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).big_integer().null().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Keys::Table)
                .col(text(Keys::Id).primary_key())
                .col(text(Keys::Namespace))
                .col(text(Keys::Description))
                .col(text(Keys::Owner))
                .col(text(Keys::Tags))
                .col(text(Keys::Spec))
                .col(text(Keys::State))
                .col(text(Keys::Backend))
                .col(big(Keys::PrimaryVersion))
                .col(big(Keys::MinDecryptionVersion))
                .col(big_null(Keys::RotationPeriodDays))
                .col(big_null(Keys::NextRotationAt))
                .col(big_null(Keys::DeletionDate))
                .col(big(Keys::CreatedAt))
                .col(big(Keys::UpdatedAt))
                .col(big(Keys::Revision))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create().name("keys_namespace_id").table(Keys::Table).col(Keys::Namespace).col(Keys::Id).to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("keys_state_deletion")
                .table(Keys::Table)
                .col(Keys::State)
                .col(Keys::DeletionDate)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create().name("keys_next_rotation").table(Keys::Table).col(Keys::NextRotationAt).to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(KeyVersions::Table)
                .col(text(KeyVersions::KeyId))
                .col(big(KeyVersions::Version))
                .col(ColumnDef::new(KeyVersions::Material).binary().not_null())
                .col(ColumnDef::new(KeyVersions::Destroyed).boolean().not_null())
                .col(big(KeyVersions::CreatedAt))
                .col(big(KeyVersions::Encryptions))
                .col(big(KeyVersions::Decryptions))
                .col(big_null(KeyVersions::LastUsedAt))
                .primary_key(Index::create().col(KeyVersions::KeyId).col(KeyVersions::Version))
                .foreign_key(
                    ForeignKey::create().from(KeyVersions::Table, KeyVersions::KeyId).to(Keys::Table, Keys::Id),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Aliases::Table)
                .col(text(Aliases::Name).primary_key())
                .col(text(Aliases::KeyId))
                .col(big(Aliases::UpdatedAt))
                .foreign_key(ForeignKey::create().from(Aliases::Table, Aliases::KeyId).to(Keys::Table, Keys::Id))
                .to_owned(),
        )
        .await?;
        m.create_index(Index::create().name("aliases_key_id").table(Aliases::Table).col(Aliases::KeyId).to_owned())
            .await?;

        m.create_table(
            Table::create()
                .table(IdempotencyKeys::Table)
                .col(text(IdempotencyKeys::Principal))
                .col(text(IdempotencyKeys::IdemKey))
                .col(text(IdempotencyKeys::RequestHash))
                .col(text(IdempotencyKeys::KeyId))
                .col(big(IdempotencyKeys::CreatedAt))
                .primary_key(Index::create().col(IdempotencyKeys::Principal).col(IdempotencyKeys::IdemKey))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(AuditRecords::Table)
                .col(ColumnDef::new(AuditRecords::Id).big_integer().not_null().auto_increment().primary_key())
                .col(big(AuditRecords::Time))
                .col(text(AuditRecords::RequestId))
                .col(text(AuditRecords::TraceId))
                .col(text(AuditRecords::Principal))
                .col(text(AuditRecords::Action))
                .col(text_null(AuditRecords::Resource))
                .col(text_null(AuditRecords::KeyId))
                .col(big_null(AuditRecords::KeyVersion))
                .col(text_null(AuditRecords::Decision))
                .col(text(AuditRecords::DeterminingPolicies))
                .col(text_null(AuditRecords::PolicyVersion))
                .col(text(AuditRecords::Outcome))
                .col(text_null(AuditRecords::Reason))
                .col(text(AuditRecords::EncryptionContext))
                .col(text_null(AuditRecords::SourceIp))
                .col(text_null(AuditRecords::UserAgent))
                .col(ColumnDef::new(AuditRecords::DryRun).boolean().not_null())
                .col(big(AuditRecords::DurationUs))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create().name("audit_time").table(AuditRecords::Table).col(AuditRecords::Time).to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("audit_key_time")
                .table(AuditRecords::Table)
                .col(AuditRecords::KeyId)
                .col(AuditRecords::Time)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("audit_principal_time")
                .table(AuditRecords::Table)
                .col(AuditRecords::Principal)
                .col(AuditRecords::Time)
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(AuditRecords::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(IdempotencyKeys::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(Aliases::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(KeyVersions::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(Keys::Table).to_owned()).await
    }
}
