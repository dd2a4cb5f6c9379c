//! `access_keys`: SigV4 credentials. The secret is stored only sealed by `backend`.

use sea_orm::entity::prelude::*;

/// An access key row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "access_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The principal's entity uid.
    pub principal: String,
    /// JSON array of the principal's groups.
    pub groups: String,
    pub default_namespace: String,
    pub created_at: i64,
    pub created_by: String,
    pub backend: String,
    pub seal_key_id: String,
    /// The sealing key's material as the backend returned it.
    pub material: Vec<u8>,
    pub sealed_algorithm: i32,
    pub sealed_params: Vec<u8>,
    pub sealed_secret: Vec<u8>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
