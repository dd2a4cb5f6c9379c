//! `keys`: one row per key. Times are Unix microseconds.

use sea_orm::entity::prelude::*;

/// A key row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub namespace: String,
    pub description: String,
    pub owner: String,
    /// JSON object of tags.
    pub tags: String,
    pub spec: String,
    /// Null on keys made before usages existed: the spec's usage.
    pub key_usage: Option<String>,
    pub state: String,
    pub backend: String,
    pub primary_version: i64,
    pub min_decryption_version: i64,
    pub rotation_period_days: Option<i64>,
    pub next_rotation_at: Option<i64>,
    pub deletion_date: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub revision: i64,
    /// `KEYWARD` or `EXTERNAL`; null on keys made before imports existed (`KEYWARD`).
    pub origin: Option<String>,
    /// When imported material expires.
    pub valid_to: Option<i64>,
    /// Hex fingerprint of imported material.
    pub material_fingerprint: Option<String>,
    /// The key's own encryption limit before rotation (null: the namespace's or the default).
    pub rotate_after_encryptions: Option<i64>,
    /// `alert` or `cancel`; null: `alert`.
    pub on_use_while_pending: Option<String>,
    /// Deletion canaries raised on the key (only the canary's write changes it).
    pub deletion_canary_count: i64,
    /// The latest canary.
    pub deletion_canary_last_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
