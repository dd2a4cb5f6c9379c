//! The deletion canary: what an attempt to use a key pending deletion does (null: `alert`),
//! and the attempts counted on the key.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Keys {
    Table,
    OnUseWhilePending,
    DeletionCanaryCount,
    DeletionCanaryLastAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one column at a time.
        for column in [
            ColumnDef::new(Keys::OnUseWhilePending).text().null().to_owned(),
            ColumnDef::new(Keys::DeletionCanaryCount).big_integer().not_null().default(0).to_owned(),
            ColumnDef::new(Keys::DeletionCanaryLastAt).big_integer().null().to_owned(),
        ] {
            let mut column = column;
            m.alter_table(Table::alter().table(Keys::Table).add_column(&mut column).to_owned()).await?;
        }
        Ok(())
    }
}
