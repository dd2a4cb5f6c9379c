//! `approvals`: M-of-N approval requests. Times are Unix microseconds.

use sea_orm::entity::prelude::*;

/// An approval request row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "approvals")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// JSON of the pending request (operation and input).
    pub request: String,
    pub resource: String,
    pub key_id: Option<String>,
    pub requested_by: String,
    /// JSON array of the requester's groups.
    pub requester_groups: String,
    pub required: i64,
    /// JSON array of approvals (`principal`, `at`).
    pub votes: String,
    pub state: String,
    pub rejected_by: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    /// JSON of how the run ended.
    pub result: Option<String>,
    pub revision: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
