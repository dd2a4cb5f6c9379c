//! The key store port. Reads need nothing; every write is a [`Change`], which demands a
//! [`Permit`] and commits with its audit record.

use chrono::{DateTime, Utc};

use crate::gate::Permit;
use uuid::Uuid;

use crate::model::access_key::AccessKeyRecord;
use crate::model::approval::{ApprovalRecord, ApprovalState};
use crate::model::grant::GrantRecord;
use crate::model::ids::{AliasName, KeyId, Namespace};
use crate::model::key::KeyRecord;
use crate::model::version::{Usage, VersionRecord};
use crate::operation::{Action, Operation};
use crate::ports::audit::AuditRecord;

/// Why the store failed. `Conflict` is a lost race or a uniqueness violation.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint or an optimistic-concurrency check failed.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database failed.
    #[error("store failure: {0}")]
    Backend(String),
}

/// An idempotency key presented on a create call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// The principal that presented it (keys are per principal).
    pub principal: String,
    /// The header's value.
    pub key: String,
    /// A hash of the request, to refuse a reused key with a different request.
    pub request_hash: String,
}

/// One request's state change. A request changes state through exactly one `Change`, which
/// the store commits in the same database transaction as the request's audit record: no change
/// is ever visible without the record naming it, and no record claims a change that did not
/// land.
#[derive(Debug)]
pub struct Change {
    permit: Permit,
    write: Write,
}

impl Change {
    /// A write under a permit: the permit must name the key the write changes (and, for access
    /// keys, be for the access-key operation), so a permit for one thing cannot change another.
    pub fn new(permit: Permit, write: Write) -> Result<Self, String> {
        match write.key() {
            Some(key) => permit.ensure_key(key)?,
            None => {
                let wanted: &[Operation] = match &write {
                    Write::InsertAccessKey(_) => &[Operation::CreateAccessKey],
                    // An approval of a request on the system: asked under the request's own
                    // permit, decided under Approve or Reject, expired by the system.
                    Write::InsertApproval(a) | Write::UpdateApproval(a) => {
                        &[a.request.operation(), Operation::Approve, Operation::Reject, Operation::ExpireApproval]
                    }
                    _ => &[Operation::DeleteAccessKey],
                };
                if !wanted.iter().any(|op| permit.action() == Action::Op(*op)) {
                    return Err(format!("a permit for {} cannot write this", permit.action()));
                }
            }
        }
        Ok(Self { permit, write })
    }

    /// What is written.
    pub fn write(&self) -> &Write {
        &self.write
    }

    /// The permit it was allowed by.
    pub fn permit(&self) -> &Permit {
        &self.permit
    }
}

/// The writes a request can make. Each is conditional on what its decision saw (a key's
/// revision, an alias's target, a grant still active, a name still free); when the condition
/// no longer holds, the store commits the request's refusal record instead and changes nothing.
#[derive(Debug)]
pub enum Write {
    /// A new key with its first version, an optional alias and idempotency key.
    InsertKey {
        /// The key.
        key: KeyRecord,
        /// Version 1.
        version: VersionRecord,
        /// An alias created with it.
        alias: Option<AliasName>,
        /// The idempotency key remembered with it.
        idempotency: Option<IdempotencyKey>,
    },
    /// A changed key, if its stored revision is still `revision - 1`.
    UpdateKey(KeyRecord),
    /// A new primary version and the changed key, with the same revision check.
    AddVersion(KeyRecord, VersionRecord),
    /// Every version's material marked destroyed and the changed key, with the revision check.
    DestroyKey(KeyRecord),
    /// A version's material replaced (imported, or deleted) and the changed key, with the
    /// revision check. `replaced` is what the version held before, destroyed in its backend
    /// once the change lands; a new material whose change does not land is destroyed instead.
    SetMaterial {
        /// The changed key.
        key: KeyRecord,
        /// The version as it now is.
        version: VersionRecord,
        /// The material it held before, if any is left to destroy.
        replaced: Option<zeroize::Zeroizing<Vec<u8>>>,
    },
    /// An alias created (`expected` none: refused if it exists) or repointed (refused unless
    /// it still points to `expected`).
    PutAlias {
        /// The alias and its new target.
        alias: AliasRecord,
        /// The key it pointed to when the decision was made.
        expected: Option<KeyId>,
    },
    /// An alias deleted, if it still points to `key`.
    DeleteAlias {
        /// The alias.
        name: AliasName,
        /// The key the decision was about.
        key: KeyId,
    },
    /// A new grant.
    InsertGrant(GrantRecord),
    /// A grant revoked, if still active on `key`.
    RevokeGrant {
        /// The grant.
        id: Uuid,
        /// Its key.
        key: KeyId,
        /// When.
        at: DateTime<Utc>,
    },
    /// A new access key.
    InsertAccessKey(AccessKeyRecord),
    /// An access key deleted, if it exists (the record, to destroy its sealing key after).
    DeleteAccessKey(AccessKeyRecord),
    /// A new approval request.
    InsertApproval(ApprovalRecord),
    /// An approval request changed, if its stored revision is still `revision - 1`.
    UpdateApproval(ApprovalRecord),
    /// A deletion canary counted on its key, if the key is still pending deletion. The key's
    /// revision is left alone: an alarm must not make a concurrent management change fail.
    NoteDeletionCanary {
        /// The key.
        key: KeyId,
        /// When the attempt was made.
        at: DateTime<Utc>,
    },
}

impl Write {
    /// The key the write changes, if it changes one.
    pub fn key(&self) -> Option<KeyId> {
        match self {
            Self::InsertKey { key, .. }
            | Self::UpdateKey(key)
            | Self::AddVersion(key, _)
            | Self::DestroyKey(key)
            | Self::SetMaterial { key, .. } => Some(key.id),
            Self::PutAlias { alias, .. } => Some(alias.key_id),
            Self::DeleteAlias { key, .. } | Self::RevokeGrant { key, .. } | Self::NoteDeletionCanary { key, .. } => {
                Some(*key)
            }
            Self::InsertGrant(g) => Some(g.key_id),
            Self::InsertApproval(a) | Self::UpdateApproval(a) => a.request.key_id(),
            Self::InsertAccessKey(_) | Self::DeleteAccessKey(_) => None,
        }
    }

    /// Whether the write changes the grant set (the authorizer resyncs after it commits).
    pub fn changes_grants(&self) -> bool {
        matches!(self, Self::InsertGrant(_) | Self::RevokeGrant { .. })
    }
}

/// Whether a change was applied, or its condition failed and only the refusal was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Committed {
    /// The change and the request's record committed together.
    Applied,
    /// The change's condition no longer held: nothing changed, the refusal record committed.
    Refused,
}

/// An alias and its target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasRecord {
    /// The alias.
    pub name: AliasName,
    /// The key it points to.
    pub key_id: KeyId,
    /// When it was created or last pointed elsewhere.
    pub updated_at: DateTime<Utc>,
}

/// Persistent keys, versions, aliases.
#[async_trait::async_trait]
pub trait KeyStore: Send + Sync + std::fmt::Debug {
    /// Checks the database answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Commits a request's change with its audit record in one transaction: `applied` when
    /// the change's condition holds (and it is made), `refused` otherwise (nothing changes).
    /// An error means neither committed.
    async fn commit(
        &self,
        change: &Change,
        applied: &AuditRecord,
        refused: &AuditRecord,
    ) -> Result<Committed, StoreError>;

    /// The key a remembered idempotency key created, with the stored request hash.
    async fn idempotent_key(&self, principal: &str, key: &str) -> Result<Option<(KeyId, String)>, StoreError>;

    /// Loads a key; a store may answer from a cache that another replica's change reaches a
    /// few milliseconds after it commits.
    async fn key(&self, id: KeyId) -> Result<Option<KeyRecord>, StoreError>;

    /// Loads a key as the database holds it now, for operations that decide on its state
    /// (a change made on another replica a moment ago is seen).
    async fn key_current(&self, id: KeyId) -> Result<Option<KeyRecord>, StoreError> {
        self.key(id).await
    }

    /// Lists keys by id order after a cursor, optionally in one namespace.
    async fn list_keys(
        &self,
        namespace: Option<&Namespace>,
        after: Option<KeyId>,
        limit: u64,
    ) -> Result<Vec<KeyRecord>, StoreError>;

    /// Loads one version.
    async fn version(&self, id: KeyId, version: u32) -> Result<Option<VersionRecord>, StoreError>;

    /// Lists all versions of a key, oldest first.
    async fn versions(&self, id: KeyId) -> Result<Vec<VersionRecord>, StoreError>;

    /// Counts a use of a version. May be buffered and flushed in batches.
    fn record_usage(&self, id: KeyId, version: u32, usage: Usage, at: DateTime<Utc>);

    /// Resolves an alias.
    async fn alias(&self, name: &AliasName) -> Result<Option<AliasRecord>, StoreError>;

    /// The aliases pointing to a key.
    async fn aliases_of(&self, id: KeyId) -> Result<Vec<AliasName>, StoreError>;

    /// Lists aliases by name after a cursor, optionally only those of one key.
    async fn list_aliases(
        &self,
        key: Option<KeyId>,
        after: Option<&AliasName>,
        limit: u64,
    ) -> Result<Vec<AliasRecord>, StoreError>;

    /// Keys pending deletion whose date has passed.
    async fn keys_due_for_deletion(&self, now: DateTime<Utc>) -> Result<Vec<KeyRecord>, StoreError>;

    /// Keys marked `Destroyed` with a version whose material is not yet destroyed (a pass
    /// that failed after the state change).
    async fn destroyed_keys_with_material(&self) -> Result<Vec<KeyRecord>, StoreError>;

    /// Keys still holding imported material whose `valid_to` has passed.
    async fn keys_with_expired_material(&self, now: DateTime<Utc>) -> Result<Vec<KeyRecord>, StoreError>;

    /// Enabled keys whose automatic rotation is due.
    async fn keys_due_for_rotation(&self, now: DateTime<Utc>) -> Result<Vec<KeyRecord>, StoreError>;

    /// Loads an active grant.
    async fn grant(&self, id: Uuid) -> Result<Option<GrantRecord>, StoreError>;

    /// The active grants of one key (all keys when `None`), oldest first.
    async fn grants(&self, key: Option<KeyId>) -> Result<Vec<GrantRecord>, StoreError>;

    /// A value that changes whenever any grant is created or revoked (to resync replicas).
    async fn grants_revision(&self) -> Result<i64, StoreError>;

    /// Loads an access key.
    async fn access_key(&self, id: &str) -> Result<Option<AccessKeyRecord>, StoreError>;

    /// Lists access keys by id after a cursor.
    async fn list_access_keys(&self, after: Option<&str>, limit: u64) -> Result<Vec<AccessKeyRecord>, StoreError>;

    /// One approval request.
    async fn approval(&self, id: Uuid) -> Result<Option<ApprovalRecord>, StoreError>;

    /// Approval requests by id (time-ordered), after a cursor, in a state if given.
    async fn list_approvals(
        &self,
        state: Option<ApprovalState>,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<ApprovalRecord>, StoreError>;

    /// Pending approval requests whose time ran out by `now`.
    async fn approvals_expired(&self, now: DateTime<Utc>) -> Result<Vec<ApprovalRecord>, StoreError>;
}
