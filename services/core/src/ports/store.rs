//! The key store port. Reads need nothing; every write demands a [`Permit`].

use chrono::{DateTime, Utc};

use crate::gate::Permit;
use uuid::Uuid;

use crate::model::access_key::AccessKeyRecord;
use crate::model::grant::GrantRecord;
use crate::model::ids::{AliasName, KeyId, Namespace};
use crate::model::key::KeyRecord;
use crate::model::version::{Usage, VersionRecord};

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

/// A new key with its first version, created in one transaction.
#[derive(Debug)]
pub struct NewKey<'a> {
    /// The key.
    pub key: &'a KeyRecord,
    /// Version 1.
    pub version: &'a VersionRecord,
    /// An alias to create with it.
    pub alias: Option<&'a AliasName>,
    /// The idempotency key to remember with it.
    pub idempotency: Option<&'a IdempotencyKey>,
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

    /// Inserts a key, its first version, an optional alias and idempotency key, atomically.
    async fn insert_key(&self, permit: &Permit, new: NewKey<'_>) -> Result<(), StoreError>;

    /// The key a remembered idempotency key created, with the stored request hash.
    async fn idempotent_key(&self, principal: &str, key: &str) -> Result<Option<(KeyId, String)>, StoreError>;

    /// Loads a key.
    async fn key(&self, id: KeyId) -> Result<Option<KeyRecord>, StoreError>;

    /// Lists keys by id order after a cursor, optionally in one namespace.
    async fn list_keys(
        &self,
        namespace: Option<&Namespace>,
        after: Option<KeyId>,
        limit: u64,
    ) -> Result<Vec<KeyRecord>, StoreError>;

    /// Writes a changed key if its revision is still `key.revision - 1`; otherwise `Conflict`.
    async fn update_key(&self, permit: &Permit, key: &KeyRecord) -> Result<(), StoreError>;

    /// Adds a version and writes the key (new primary) in one transaction, with the same
    /// revision check as [`KeyStore::update_key`].
    async fn add_version(&self, permit: &Permit, key: &KeyRecord, version: &VersionRecord) -> Result<(), StoreError>;

    /// Marks every version's material destroyed and writes the key, in one transaction.
    async fn destroy_key(&self, permit: &Permit, key: &KeyRecord) -> Result<(), StoreError>;

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

    /// Creates an alias (`expected` none: `Conflict` if it exists) or repoints it (`expected`
    /// the key it pointed to when the decision was made: `Conflict` if it has moved since).
    /// True when it was created.
    async fn put_alias(
        &self,
        permit: &Permit,
        alias: &AliasRecord,
        expected: Option<KeyId>,
    ) -> Result<bool, StoreError>;

    /// Deletes an alias; false when it did not exist.
    async fn delete_alias(&self, permit: &Permit, name: &AliasName) -> Result<bool, StoreError>;

    /// Keys pending deletion whose date has passed.
    async fn keys_due_for_deletion(&self, now: DateTime<Utc>) -> Result<Vec<KeyRecord>, StoreError>;

    /// Keys marked `Destroyed` with a version whose material is not yet destroyed (a pass
    /// that failed after the state change).
    async fn destroyed_keys_with_material(&self) -> Result<Vec<KeyRecord>, StoreError>;

    /// Enabled keys whose automatic rotation is due.
    async fn keys_due_for_rotation(&self, now: DateTime<Utc>) -> Result<Vec<KeyRecord>, StoreError>;

    /// Stores a new grant.
    async fn insert_grant(&self, permit: &Permit, grant: &GrantRecord) -> Result<(), StoreError>;

    /// Loads an active grant.
    async fn grant(&self, id: Uuid) -> Result<Option<GrantRecord>, StoreError>;

    /// The active grants of one key (all keys when `None`), oldest first.
    async fn grants(&self, key: Option<KeyId>) -> Result<Vec<GrantRecord>, StoreError>;

    /// Revokes a grant; false when it was not active.
    async fn revoke_grant(&self, permit: &Permit, id: Uuid, at: DateTime<Utc>) -> Result<bool, StoreError>;

    /// A value that changes whenever any grant is created or revoked (to resync replicas).
    async fn grants_revision(&self) -> Result<i64, StoreError>;

    /// Stores a new access key.
    async fn insert_access_key(&self, permit: &Permit, key: &AccessKeyRecord) -> Result<(), StoreError>;

    /// Loads an access key.
    async fn access_key(&self, id: &str) -> Result<Option<AccessKeyRecord>, StoreError>;

    /// Lists access keys by id after a cursor.
    async fn list_access_keys(&self, after: Option<&str>, limit: u64) -> Result<Vec<AccessKeyRecord>, StoreError>;

    /// Deletes an access key; false when it did not exist.
    async fn delete_access_key(&self, permit: &Permit, id: &str) -> Result<bool, StoreError>;
}
