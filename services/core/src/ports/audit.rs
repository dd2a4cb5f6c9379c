//! The audit port: one record per request, committed before the response is released.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::model::ids::KeyId;

/// One audit record. Never holds plaintext, key material or tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    /// When the request arrived.
    pub time: DateTime<Utc>,
    /// The request's id (also in `x-request-id`).
    pub request_id: String,
    /// The W3C trace id.
    pub trace_id: String,
    /// The principal's uid, or `anonymous` when authentication failed.
    pub principal: String,
    /// The principal's groups at the time (so decisions can be replayed).
    pub principal_groups: Vec<String>,
    /// The operation.
    pub action: String,
    /// The resource's entity uid, when one was resolved.
    pub resource: Option<String>,
    /// The key, when the operation used one.
    pub key_id: Option<KeyId>,
    /// The key version, when one was used.
    pub key_version: Option<u32>,
    /// `Allow`, `Deny`, or none when no decision was reached.
    pub decision: Option<bool>,
    /// The policies that determined the decision.
    pub determining_policies: Vec<String>,
    /// The policy set version that decided.
    pub policy_version: Option<String>,
    /// Policy evaluation errors (any error denies).
    pub policy_errors: Vec<String>,
    /// `Success` or the error code.
    pub outcome: String,
    /// The private reason of a failure (never shown to the caller).
    pub reason: Option<String>,
    /// The caller's encryption context (non-secret by design).
    pub encryption_context: BTreeMap<String, String>,
    /// The caller's address.
    pub source_ip: Option<String>,
    /// The caller's user agent.
    pub user_agent: Option<String>,
    /// The justification the caller gave.
    pub justification: Option<String>,
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// Time spent, in microseconds.
    pub duration_us: u64,
    /// The front door the request came through: none for the REST API, `aws-kms` for the
    /// AWS KMS-compatible API.
    pub interface: Option<String>,
    /// Operation-specific facts: for Sign and Verify `signing_algorithm`, `message_type` and
    /// `message_sha256`; for the MAC operations `mac_algorithm` and `message_sha256`. Empty
    /// for the rest.
    pub details: BTreeMap<String, String>,
}

impl AuditRecord {
    /// The record with its outcome: `Success`, or the error's code and private reason.
    #[must_use]
    pub fn with_outcome(mut self, outcome: Option<&crate::error::Error>) -> Self {
        self.outcome = outcome.map_or_else(|| "Success".to_owned(), |e| e.code().as_str().to_owned());
        self.reason = outcome.and_then(|e| e.reason().map(str::to_owned));
        self
    }
}

/// Filters for reading the trail.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only this principal uid.
    pub principal: Option<String>,
    /// Only this key.
    pub key_id: Option<KeyId>,
    /// Only this action.
    pub action: Option<String>,
    /// Only allowed (`true`) or denied (`false`) decisions.
    pub decision: Option<bool>,
    /// From this time on.
    pub from: Option<DateTime<Utc>>,
    /// Before this time.
    pub to: Option<DateTime<Utc>>,
    /// After this record id (the cursor).
    pub after_id: Option<i64>,
    /// At most this many.
    pub limit: u64,
}

/// A committed record with its place in the trail.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAuditRecord {
    /// The row id (the pagination cursor).
    pub id: i64,
    /// The record.
    pub record: AuditRecord,
    /// The writer's chain.
    pub chain_id: Option<String>,
    /// Position in the chain.
    pub sequence: Option<i64>,
    /// The record's hash.
    pub hash: Option<String>,
}

/// The result of walking every chain and checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyOutcome {
    /// Nothing broken.
    pub ok: bool,
    /// Chained records checked.
    pub records_checked: u64,
    /// Of those, records a valid signature covers.
    pub verified_records: u64,
    /// Records past their chain's last signature (chained, but not yet vouched for).
    pub unsigned_tail_records: u64,
    /// The first problem: where and what.
    pub first_break: Option<String>,
}

/// Reading and verifying the committed trail.
#[async_trait::async_trait]
pub trait AuditReader: Send + Sync + std::fmt::Debug {
    /// Records matching a filter, oldest first.
    async fn query(&self, filter: &AuditFilter) -> Result<Vec<StoredAuditRecord>, AuditError>;

    /// Walks every chain and checkpoint.
    async fn verify(&self) -> Result<VerifyOutcome, AuditError>;

    /// What the trail holds of each version of a key used since `since`: successful
    /// requests that used the material ([`crate::operation::Operation::uses_key_material`]),
    /// dry runs excluded.
    async fn version_activity(&self, key: KeyId, since: DateTime<Utc>) -> Result<Vec<VersionActivity>, AuditError>;
}

/// One key version's recorded use over a window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionActivity {
    /// The version.
    pub version: u32,
    /// Successful requests that used it.
    pub uses: u64,
    /// Of those, Decrypt requests.
    pub decryptions: u64,
    /// Distinct principals among them.
    pub principals: u64,
    /// The first of them.
    pub first_used_at: Option<DateTime<Utc>>,
    /// The last of them.
    pub last_used_at: Option<DateTime<Utc>>,
}

/// Why the audit trail could not record.
#[derive(Debug, Clone, thiserror::Error)]
#[error("audit trail unavailable: {0}")]
pub struct AuditError(pub String);

/// Why a request is turned away before it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditRefusal {
    /// The writer's queue is full: the caller should back off and retry.
    QueueFull,
    /// The store is failing; requests resume once it answers again.
    Unavailable,
}

/// Durable audit storage behind a writer.
#[async_trait::async_trait]
pub trait AuditSink: Send + Sync + std::fmt::Debug {
    /// Whether a new request can be recorded now; checked before the request runs, so a
    /// request that could not be recorded never runs.
    fn admit(&self) -> Result<(), AuditRefusal> {
        Ok(())
    }

    /// Returns once the record is durably committed, or an error if it cannot be.
    async fn record(&self, record: AuditRecord) -> Result<(), AuditError>;
}

/// Where a writer commits batches of records.
#[async_trait::async_trait]
pub trait AuditStore: Send + Sync + std::fmt::Debug {
    /// Commits all records in one transaction, or none.
    async fn append(&self, records: &[AuditRecord]) -> Result<(), AuditError>;

    /// Checks the store answers (used to notice recovery after a failure).
    async fn ping(&self) -> Result<(), AuditError> {
        Ok(())
    }
}
