//! `key_versions`: one row per key version, with its material reference and counters.

use sea_orm::entity::prelude::*;

/// A key version row.
#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "key_versions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub key_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub version: i64,
    /// Wrapped material or an HSM handle; emptied when destroyed.
    pub material: Vec<u8>,
    pub destroyed: bool,
    pub created_at: i64,
    pub encryptions: i64,
    pub decryptions: i64,
    pub last_used_at: Option<i64>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("key_version::Model")
            .field("key_id", &self.key_id)
            .field("version", &self.version)
            .field("material", &"<redacted>")
            .finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
