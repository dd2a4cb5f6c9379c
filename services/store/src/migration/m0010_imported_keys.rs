//! Imported keys: a key's origin (null on keys made before imports existed, which are all
//! `KEYWARD`), when its imported material expires, and the material's fingerprint.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Keys {
    Table,
    Origin,
    ValidTo,
    MaterialFingerprint,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one column at a time.
        for column in [
            ColumnDef::new(Keys::Origin).text().null().to_owned(),
            ColumnDef::new(Keys::ValidTo).big_integer().null().to_owned(),
            ColumnDef::new(Keys::MaterialFingerprint).text().null().to_owned(),
        ] {
            let mut column = column;
            m.alter_table(Table::alter().table(Keys::Table).add_column(&mut column).to_owned()).await?;
        }
        Ok(())
    }
}
