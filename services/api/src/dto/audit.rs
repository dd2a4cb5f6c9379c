//! QueryAudit and VerifyAudit bodies.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// QueryAudit's filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct QueryAuditQuery {
    /// A principal uid, e.g. `Keyward::User::"alice"`.
    pub principal: Option<String>,
    /// A key id.
    pub key_id: Option<String>,
    /// An operation name.
    pub action: Option<String>,
    /// `Allow` or `Deny`.
    pub decision: Option<String>,
    /// From this time (RFC 3339, inclusive).
    pub from: Option<String>,
    /// Before this time (RFC 3339, exclusive).
    pub to: Option<String>,
    /// 1-1000, default 100.
    pub limit: Option<u64>,
    /// The previous page's `next_token`.
    pub next_token: Option<String>,
    /// `true`: answer the authorization decision and do nothing.
    pub dry_run: Option<bool>,
}

/// One audit record.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditRecordDto {
    /// Row id.
    pub id: i64,
    /// When the request arrived (RFC 3339).
    pub time: String,
    /// The request id.
    pub request_id: String,
    /// The W3C trace id.
    pub trace_id: String,
    /// The principal uid, or `anonymous`.
    pub principal: String,
    /// The principal's groups.
    pub principal_groups: Vec<String>,
    /// The operation.
    pub action: String,
    /// The resource uid.
    pub resource: Option<String>,
    /// The key.
    pub key_id: Option<String>,
    /// The key version.
    pub key_version: Option<u32>,
    /// `Allow`, `Deny`, or null when no decision was reached.
    pub decision: Option<String>,
    /// Determining policy ids.
    pub determining_policies: Vec<String>,
    /// Policy evaluation errors.
    pub policy_errors: Vec<String>,
    /// The policy set version.
    pub policy_version: Option<String>,
    /// `Success` or the error code.
    pub outcome: String,
    /// The encryption context.
    pub encryption_context: BTreeMap<String, String>,
    /// The caller's address.
    pub source_ip: Option<String>,
    /// The caller's user agent.
    pub user_agent: Option<String>,
    /// The justification given.
    pub justification: Option<String>,
    /// Whether it was a dry run.
    pub dry_run: bool,
    /// Time spent, µs.
    pub duration_us: u64,
    /// The writer's chain.
    pub chain_id: Option<String>,
    /// Position in the chain.
    pub sequence: Option<i64>,
    /// The record's hash.
    pub hash: Option<String>,
    /// The front door: null for the REST API, `aws-kms` for the AWS KMS-compatible API.
    pub interface: Option<String>,
    /// Operation-specific facts: for Sign and Verify `signing_algorithm`, `message_type` and
    /// `message_sha256`; for GenerateMac and VerifyMac `mac_algorithm` and `message_sha256`
    /// (never the message itself). Absent for other operations.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, String>,
}

/// QueryAudit's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueryAuditResponse {
    /// Records, oldest first.
    pub records: Vec<AuditRecordDto>,
    /// Pass as `next_token` for the next page; null at the end.
    pub next_token: Option<String>,
}

/// VerifyAudit's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerifyAuditResponse {
    /// Nothing broken, every signature checked, and no chain's unsigned tail longer than the
    /// checkpoint interval.
    pub ok: bool,
    /// Chained records checked.
    pub records_checked: u64,
    /// Of those, records a valid checkpoint signature covers.
    pub verified_records: u64,
    /// Records after their chain's last signature: chained, not yet vouched for.
    pub unsigned_tail_records: u64,
    /// The first broken record or checkpoint, and what is wrong.
    pub first_break: Option<String>,
}
