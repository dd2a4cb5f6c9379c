//! `audit_records`: the audit trail. The service only inserts and reads.

use sea_orm::entity::prelude::*;

/// An audit row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_records")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub time: i64,
    pub request_id: String,
    pub trace_id: String,
    pub principal: String,
    pub action: String,
    pub resource: Option<String>,
    pub key_id: Option<String>,
    pub key_version: Option<i64>,
    /// `Allow`, `Deny`, or null when no decision was reached.
    pub decision: Option<String>,
    /// JSON array of policy ids.
    pub determining_policies: String,
    pub policy_version: Option<String>,
    pub outcome: String,
    pub reason: Option<String>,
    /// JSON object.
    pub encryption_context: String,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub dry_run: bool,
    pub duration_us: i64,
    /// JSON array of the principal's groups.
    pub principal_groups: String,
    /// JSON array of policy evaluation errors.
    pub policy_errors: String,
    pub justification: Option<String>,
    /// The writer's chain (null for records written before chaining).
    pub chain_id: Option<String>,
    /// Position in the chain, from 1.
    pub sequence: Option<i64>,
    /// The previous record's hash (hex; 64 zeros for the first).
    pub prev_hash: Option<String>,
    /// SHA-256 over `prev_hash` and the record's canonical encoding (hex).
    pub hash: Option<String>,
    /// The front door: null for the REST API, `aws-kms` for the AWS KMS-compatible API.
    pub interface: Option<String>,
    /// Operation-specific facts as a JSON object (the signing algorithm, the message's
    /// SHA-256); null when there are none.
    pub details: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
