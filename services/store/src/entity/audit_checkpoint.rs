//! `audit_checkpoints`: signed statements of a chain's head, written periodically.

use sea_orm::entity::prelude::*;

/// A checkpoint row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_checkpoints")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub chain_id: String,
    /// The head's sequence (0: an empty chain).
    pub sequence: i64,
    /// The head record's hash (hex).
    pub head_hash: String,
    /// When it was signed (µs since the epoch).
    pub time: i64,
    /// The signing key's id (hex of the first 8 bytes of its public key).
    pub key_id: String,
    /// Ed25519 signature over the checkpoint statement (hex).
    pub signature: String,
    /// Set on a chain's genesis checkpoint (sequence 0): the head of the chain it follows
    /// (`chain:sequence:hash`), or empty for a writer's first chain.
    pub previous: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
