//! A key store in memory, with the database store's contract: each change is conditional and
//! commits atomically with its record (or, its condition failing, only the refusal record).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::model::access_key::AccessKeyRecord;
use crate::model::approval::{ApprovalRecord, ApprovalState};
use crate::model::grant::GrantRecord;
use crate::model::ids::{AliasName, KeyId, Namespace};
use crate::model::key::{KeyRecord, KeyState};
use crate::model::version::{Usage, VersionRecord};
use crate::ports::audit::AuditRecord;
use crate::ports::store::{AliasRecord, Change, Committed, KeyStore, StoreError, Write};

#[derive(Debug, Default, Clone)]
struct State {
    keys: BTreeMap<KeyId, KeyRecord>,
    versions: BTreeMap<(KeyId, u32), VersionRecord>,
    aliases: BTreeMap<AliasName, AliasRecord>,
    grants: BTreeMap<Uuid, (GrantRecord, bool)>,
    access_keys: BTreeMap<String, AccessKeyRecord>,
    approvals: BTreeMap<Uuid, ApprovalRecord>,
    idempotency: BTreeMap<(String, String), (KeyId, String)>,
    records: Vec<AuditRecord>,
    grant_revision: i64,
}

/// Keys, versions, aliases, grants and access keys in memory, and the records of changes.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    failing: AtomicBool,
}

impl MemoryStore {
    /// The records committed with changes, in commit order.
    pub fn records(&self) -> Vec<AuditRecord> {
        self.lock().records.clone()
    }

    /// Makes every commit fail as a database would (nothing is written), or work again.
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn conflict(what: impl Into<String>) -> StoreError {
    StoreError::Conflict(what.into())
}

/// Writes a key if its stored revision is the one before.
fn write_key(s: &mut State, key: &KeyRecord) -> Result<(), StoreError> {
    match s.keys.get(&key.id) {
        Some(old) if old.revision == key.revision - 1 => {
            // The canary's counters are the store's own, as in the SQL store.
            let (count, last) = (old.deletion_canary_count, old.deletion_canary_last_at);
            s.keys.insert(
                key.id,
                crate::model::key::KeyRecord {
                    deletion_canary_count: count,
                    deletion_canary_last_at: last,
                    ..key.clone()
                },
            );
            Ok(())
        }
        _ => Err(conflict(format!("key {} changed concurrently", key.id))),
    }
}

fn apply(s: &mut State, write: &Write) -> Result<(), StoreError> {
    match write {
        Write::InsertKey { key, version, alias, idempotency } => {
            if s.keys.contains_key(&key.id) || alias.as_ref().is_some_and(|a| s.aliases.contains_key(a)) {
                return Err(conflict("the key id or alias is taken"));
            }
            if let Some(i) = idempotency {
                let slot = (i.principal.clone(), i.key.clone());
                if s.idempotency.contains_key(&slot) {
                    return Err(conflict("the idempotency key is taken"));
                }
                s.idempotency.insert(slot, (key.id, i.request_hash.clone()));
            }
            s.keys.insert(key.id, key.clone());
            s.versions.insert((key.id, version.version), version.clone());
            if let Some(a) = alias {
                let record = AliasRecord { name: a.clone(), key_id: key.id, updated_at: key.created_at };
                s.aliases.insert(a.clone(), record);
            }
            Ok(())
        }
        Write::UpdateKey(key) => write_key(s, key),
        Write::AddVersion(key, version) => {
            write_key(s, key)?;
            s.versions.insert((key.id, version.version), version.clone());
            Ok(())
        }
        Write::SetMaterial { key, version, .. } => {
            write_key(s, key)?;
            s.versions.insert((key.id, version.version), version.clone());
            Ok(())
        }
        Write::DestroyKey(key) => {
            write_key(s, key)?;
            for ((id, _), v) in &mut s.versions {
                if *id == key.id {
                    v.destroyed = true;
                    v.material = zeroize::Zeroizing::new(Vec::new());
                }
            }
            Ok(())
        }
        Write::PutAlias { alias, expected } => {
            let current = s.aliases.get(&alias.name).map(|a| a.key_id);
            if current != *expected {
                return Err(conflict(format!("alias {} moved", alias.name)));
            }
            s.aliases.insert(alias.name.clone(), alias.clone());
            Ok(())
        }
        Write::DeleteAlias { name, key } => match s.aliases.get(name) {
            Some(a) if a.key_id == *key => {
                s.aliases.remove(name);
                Ok(())
            }
            _ => Err(conflict(format!("alias {name} moved or is gone"))),
        },
        Write::InsertGrant(g) => {
            s.grants.insert(g.id, (g.clone(), false));
            s.grant_revision += 1;
            Ok(())
        }
        Write::RevokeGrant { id, key, .. } => match s.grants.get_mut(id) {
            Some((g, revoked)) if g.key_id == *key && !*revoked => {
                *revoked = true;
                s.grant_revision += 1;
                Ok(())
            }
            _ => Err(conflict(format!("grant {id} is not active"))),
        },
        Write::InsertAccessKey(k) => {
            if s.access_keys.contains_key(&k.id) {
                return Err(conflict("access key id taken"));
            }
            s.access_keys.insert(k.id.clone(), k.clone());
            Ok(())
        }
        Write::DeleteAccessKey(k) => {
            s.access_keys.remove(&k.id).map(|_| ()).ok_or_else(|| conflict(format!("access key {} is gone", k.id)))
        }
        Write::InsertApproval(a) => {
            if s.approvals.contains_key(&a.id) {
                return Err(conflict("approval id taken"));
            }
            s.approvals.insert(a.id, a.clone());
            Ok(())
        }
        Write::UpdateApproval(a) => match s.approvals.get(&a.id) {
            Some(old) if old.revision == a.revision - 1 => {
                s.approvals.insert(a.id, a.clone());
                Ok(())
            }
            _ => Err(conflict(format!("approval {} changed concurrently", a.id))),
        },
        Write::NoteDeletionCanary { key, at } => match s.keys.get_mut(key) {
            Some(k) if k.state == crate::model::key::KeyState::PendingDeletion => {
                k.deletion_canary_count += 1;
                k.deletion_canary_last_at = Some(*at);
                Ok(())
            }
            _ => Err(conflict(format!("key {key} is no longer pending deletion"))),
        },
    }
}

#[async_trait::async_trait]
impl KeyStore for MemoryStore {
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn commit(
        &self,
        change: &Change,
        applied: &AuditRecord,
        refused: &AuditRecord,
    ) -> Result<Committed, StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::Backend("the memory store is failing".into()));
        }
        let mut state = self.lock();
        // Applied to a copy, kept only if it holds: all or nothing, like a savepoint.
        let mut next = state.clone();
        let outcome = match apply(&mut next, change.write()) {
            Ok(()) => {
                *state = next;
                Committed::Applied
            }
            Err(StoreError::Conflict(_)) => Committed::Refused,
            Err(e) => return Err(e),
        };
        state.records.push(if outcome == Committed::Applied { applied.clone() } else { refused.clone() });
        Ok(outcome)
    }

    async fn idempotent_key(&self, principal: &str, key: &str) -> Result<Option<(KeyId, String)>, StoreError> {
        Ok(self.lock().idempotency.get(&(principal.to_owned(), key.to_owned())).cloned())
    }

    async fn key(&self, id: KeyId) -> Result<Option<KeyRecord>, StoreError> {
        Ok(self.lock().keys.get(&id).cloned())
    }

    async fn list_keys(
        &self,
        namespace: Option<&Namespace>,
        after: Option<KeyId>,
        limit: u64,
    ) -> Result<Vec<KeyRecord>, StoreError> {
        let state = self.lock();
        Ok(state
            .keys
            .values()
            .filter(|k| after.is_none_or(|a| k.id > a))
            .filter(|k| namespace.is_none_or(|n| k.namespace == *n))
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .cloned()
            .collect())
    }

    async fn version(&self, id: KeyId, version: u32) -> Result<Option<VersionRecord>, StoreError> {
        Ok(self.lock().versions.get(&(id, version)).cloned())
    }

    async fn versions(&self, id: KeyId) -> Result<Vec<VersionRecord>, StoreError> {
        Ok(self.lock().versions.iter().filter(|((k, _), _)| *k == id).map(|(_, v)| v.clone()).collect())
    }

    fn record_usage(&self, id: KeyId, version: u32, usage: Usage, at: DateTime<Utc>) {
        if let Some(v) = self.lock().versions.get_mut(&(id, version)) {
            match usage {
                Usage::Encrypt => v.encryptions += 1,
                Usage::Decrypt => v.decryptions += 1,
            }
            v.last_used_at = Some(at);
        }
    }

    async fn alias(&self, name: &AliasName) -> Result<Option<AliasRecord>, StoreError> {
        Ok(self.lock().aliases.get(name).cloned())
    }

    async fn aliases_of(&self, id: KeyId) -> Result<Vec<AliasName>, StoreError> {
        Ok(self.lock().aliases.values().filter(|a| a.key_id == id).map(|a| a.name.clone()).collect())
    }

    async fn list_aliases(
        &self,
        key: Option<KeyId>,
        after: Option<&AliasName>,
        limit: u64,
    ) -> Result<Vec<AliasRecord>, StoreError> {
        let state = self.lock();
        Ok(state
            .aliases
            .values()
            .filter(|a| after.is_none_or(|n| a.name > *n))
            .filter(|a| key.is_none_or(|k| a.key_id == k))
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .cloned()
            .collect())
    }

    async fn keys_due_for_deletion(&self, now: DateTime<Utc>) -> Result<Vec<KeyRecord>, StoreError> {
        let state = self.lock();
        let due = |k: &&KeyRecord| k.state == KeyState::PendingDeletion && k.deletion_date.is_some_and(|d| d <= now);
        Ok(state.keys.values().filter(due).cloned().collect())
    }

    async fn destroyed_keys_with_material(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let state = self.lock();
        Ok(state
            .keys
            .values()
            .filter(|k| k.state == KeyState::Destroyed)
            .filter(|k| state.versions.iter().any(|((id, _), v)| *id == k.id && !v.destroyed))
            .cloned()
            .collect())
    }

    async fn keys_with_expired_material(&self, now: DateTime<Utc>) -> Result<Vec<KeyRecord>, StoreError> {
        let state = self.lock();
        let due = |k: &&KeyRecord| {
            !matches!(k.state, KeyState::PendingImport | KeyState::Destroyed) && k.material_expired(now)
        };
        Ok(state.keys.values().filter(due).cloned().collect())
    }

    async fn keys_due_for_rotation(&self, now: DateTime<Utc>) -> Result<Vec<KeyRecord>, StoreError> {
        let state = self.lock();
        let due = |k: &&KeyRecord| k.state == KeyState::Enabled && k.next_rotation_at.is_some_and(|d| d <= now);
        Ok(state.keys.values().filter(due).cloned().collect())
    }

    async fn grant(&self, id: Uuid) -> Result<Option<GrantRecord>, StoreError> {
        Ok(self.lock().grants.get(&id).filter(|(_, revoked)| !revoked).map(|(g, _)| g.clone()))
    }

    async fn grants(&self, key: Option<KeyId>) -> Result<Vec<GrantRecord>, StoreError> {
        let state = self.lock();
        let mut active: Vec<GrantRecord> = state
            .grants
            .values()
            .filter(|(g, revoked)| !revoked && key.is_none_or(|k| g.key_id == k))
            .map(|(g, _)| g.clone())
            .collect();
        active.sort_by_key(|g| (g.created_at, g.id));
        Ok(active)
    }

    async fn grants_revision(&self) -> Result<i64, StoreError> {
        Ok(self.lock().grant_revision)
    }

    async fn access_key(&self, id: &str) -> Result<Option<AccessKeyRecord>, StoreError> {
        Ok(self.lock().access_keys.get(id).cloned())
    }

    async fn list_access_keys(&self, after: Option<&str>, limit: u64) -> Result<Vec<AccessKeyRecord>, StoreError> {
        let state = self.lock();
        Ok(state
            .access_keys
            .values()
            .filter(|k| after.is_none_or(|a| k.id.as_str() > a))
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .cloned()
            .collect())
    }

    async fn approval(&self, id: Uuid) -> Result<Option<ApprovalRecord>, StoreError> {
        Ok(self.lock().approvals.get(&id).cloned())
    }

    async fn list_approvals(
        &self,
        state: Option<ApprovalState>,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<ApprovalRecord>, StoreError> {
        Ok(self
            .lock()
            .approvals
            .values()
            .filter(|a| after.is_none_or(|c| a.id > c) && state.is_none_or(|s| a.state == s))
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .cloned()
            .collect())
    }

    async fn approvals_expired(&self, now: DateTime<Utc>) -> Result<Vec<ApprovalRecord>, StoreError> {
        let state = self.lock();
        let expired = |a: &&ApprovalRecord| a.state == ApprovalState::Pending && a.expires_at <= now;
        Ok(state.approvals.values().filter(expired).cloned().collect())
    }
}
