//! `grants`: delegations of operations on a key. Revoked rows stay, with `revoked_at`.

use sea_orm::entity::prelude::*;

/// A grant row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "grants")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub key_id: String,
    pub grantee: String,
    /// JSON array of operation names.
    pub operations: String,
    /// JSON object: `encryption_context_equals` / `encryption_context_subset`.
    pub constraints: String,
    pub granted_by: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    pub retiring_principal: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
