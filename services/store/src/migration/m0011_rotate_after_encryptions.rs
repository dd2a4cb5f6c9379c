//! Rotation by usage: a key's own encryption limit (null: its namespace's or the default).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Keys {
    Table,
    RotateAfterEncryptions,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let mut column = ColumnDef::new(Keys::RotateAfterEncryptions).big_integer().null().to_owned();
        m.alter_table(Table::alter().table(Keys::Table).add_column(&mut column).to_owned()).await
    }
}
