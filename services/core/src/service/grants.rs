//! Grants: CreateGrant, ListGrants, RevokeGrant. A grant becomes Cedar policies in the
//! authorizer; a granter never gives more than it holds.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{KeyService, Scope, store_err};
use crate::error::{Detail, Error, Result};
use crate::model::context::EncryptionContext;
use crate::model::grant::{self, GrantConstraints, GrantRecord};
use crate::model::ids::{KeyId, KeyRef};
use crate::operation::{Action, Operation};
use crate::ports::authorizer::{AuthzRequest, ResourceRef};
use crate::ports::backend::DynBackend as _;
use crate::ports::store::Write;

/// Most active grants one key may have.
pub const MAX_GRANTS_PER_KEY: usize = 500;
/// Most active grants one grantee may hold on one key.
pub const MAX_GRANTS_PER_GRANTEE: usize = 50;

/// CreateGrant's input.
#[derive(Debug, Clone)]
pub struct CreateGrantInput {
    /// The key.
    pub key: KeyRef,
    /// The grantee's entity uid.
    pub grantee: String,
    /// Operation names.
    pub operations: Vec<String>,
    /// Encryption-context constraints.
    pub constraints: GrantConstraints,
    /// The principal expected to retire it.
    pub retiring_principal: Option<String>,
}

/// A grant as answered.
#[derive(Debug, Clone)]
pub struct GrantOutput {
    /// The grant id.
    pub grant_id: Uuid,
    /// The key.
    pub key_id: KeyId,
    /// The grantee's entity uid.
    pub grantee: String,
    /// Operation names.
    pub operations: Vec<String>,
    /// Encryption-context constraints.
    pub constraints: GrantConstraints,
    /// Who created it.
    pub granted_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// The principal expected to retire it.
    pub retiring_principal: Option<String>,
}

impl From<GrantRecord> for GrantOutput {
    fn from(g: GrantRecord) -> Self {
        Self {
            grant_id: g.id,
            key_id: g.key_id,
            grantee: g.grantee,
            operations: g.operations.iter().map(|a| a.as_str().to_owned()).collect(),
            constraints: g.constraints,
            granted_by: g.granted_by,
            created_at: g.created_at,
            retiring_principal: g.retiring_principal,
        }
    }
}

/// Checks a grantee uid: `Keyward::User::"…"`, `Keyward::Service::"…"` or `Keyward::Group::"…"`.
fn check_grantee(uid: &str) -> Result<()> {
    let ok = ["Keyward::User::\"", "Keyward::Service::\"", "Keyward::Group::\""]
        .iter()
        .any(|p| uid.strip_prefix(p).and_then(|r| r.strip_suffix('"')).is_some_and(|id| !id.is_empty()));
    if !ok || uid.len() > 300 {
        return Err(Error::invalid(
            "`grantee` must be an entity uid like Keyward::User::\"alice\", Keyward::Service::\"x\" or \
             Keyward::Group::\"g\"",
        ));
    }
    Ok(())
}

impl KeyService {
    /// CreateGrant: needs `CreateGrant` on the key, and the caller must itself be allowed
    /// every granted operation (in a context meeting the constraint).
    pub async fn create_grant(&self, scope: &mut Scope, input: CreateGrantInput) -> Result<GrantOutput> {
        let key = self.resolve(scope, &input.key).await?;
        check_grantee(&input.grantee)?;
        if let Some(r) = &input.retiring_principal {
            check_grantee(r).map_err(|_| {
                Error::invalid("`retiring_principal` must be an entity uid like Keyward::User::\"alice\"")
            })?;
        }
        let operations = grant::parse_operations(&input.operations)?;
        grant::check_constraints(&input.constraints)?;
        let permit =
            self.authorize_key(scope, Action::Op(Operation::CreateGrant), &key, &EncryptionContext::default())?;
        let caller = scope.principal()?;
        let witness = EncryptionContext::new(input.constraints.witness())?;
        let protection = self.backends.lookup(&key.backend)?.capabilities().protection;
        for action in &operations {
            let facts = Self::facts(scope, &witness);
            let request = AuthzRequest {
                principal: &caller,
                action: *action,
                resource: ResourceRef::Key { key: &key, protection },
                facts,
            };
            if !self.authorizer.decide(&request).allowed {
                return Err(Error::access_denied(Action::Op(Operation::CreateGrant))
                    .with_reason(format!("the granter may not {action} on this key itself")));
            }
        }
        let resource = self.key_resource(&key)?;
        if let Some(required) = self.approval_gate(scope, Operation::CreateGrant, resource)? {
            let request = crate::model::approval::PendingRequest::CreateGrant {
                key_id: key.id,
                grantee: input.grantee,
                operations: input.operations,
                encryption_context_equals: input.constraints.encryption_context_equals,
                encryption_context_subset: input.constraints.encryption_context_subset,
                retiring_principal: input.retiring_principal,
            };
            return Err(self.defer(scope, permit, request, resource, required));
        }
        let record = GrantRecord {
            id: Uuid::now_v7(),
            key_id: key.id,
            grantee: input.grantee,
            operations,
            constraints: input.constraints,
            granted_by: caller.to_string(),
            created_at: self.clock.now(),
            retiring_principal: input.retiring_principal,
        };
        self.authorizer.check_grant(&record).map_err(|e| Error::invalid(format!("grant is not valid: {e}")))?;
        // Every grant is a policy in the set: bound them.
        let active = self.store.grants(Some(key.id)).await.map_err(store_err)?;
        if active.len() >= MAX_GRANTS_PER_KEY {
            return Err(Error::conflict(format!(
                "the key has {MAX_GRANTS_PER_KEY} active grants, the most it may have"
            ))
            .with_detail(Detail::LimitExceeded));
        }
        if active.iter().filter(|g| g.grantee == record.grantee).count() >= MAX_GRANTS_PER_GRANTEE {
            return Err(Error::conflict(format!(
                "`{}` holds {MAX_GRANTS_PER_GRANTEE} active grants on this key, the most one grantee may hold",
                record.grantee
            ))
            .with_detail(Detail::LimitExceeded));
        }
        let output = record.clone().into();
        let refused = Error::conflict("the grant could not be stored; retry");
        self.stage(scope, permit, Write::InsertGrant(record), refused)?;
        Ok(output)
    }

    /// ListGrants: the key's active grants.
    pub async fn list_grants(&self, scope: &mut Scope, key: &KeyRef) -> Result<Vec<GrantOutput>> {
        let key = self.resolve(scope, key).await?;
        self.authorize_key(scope, Action::Op(Operation::ListGrants), &key, &EncryptionContext::default())?;
        let grants = self.store.grants(Some(key.id)).await.map_err(store_err)?;
        Ok(grants.into_iter().map(Into::into).collect())
    }

    /// RevokeGrant: needs `RevokeGrant` on the grant's key; effective at once on this
    /// replica, and on others at their next grant sync.
    pub async fn revoke_grant(&self, scope: &mut Scope, id: Uuid) -> Result<()> {
        let grant =
            self.store.grant(id).await.map_err(store_err)?.ok_or_else(|| Error::not_found(format!("grant `{id}`")))?;
        let key = self
            .store
            .key(grant.key_id)
            .await
            .map_err(store_err)?
            .ok_or_else(|| Error::not_found(format!("grant `{id}`")))?;
        scope.note_key(key.id, None);
        let permit =
            self.authorize_key(scope, Action::Op(Operation::RevokeGrant), &key, &EncryptionContext::default())?;
        let write = Write::RevokeGrant { id, key: key.id, at: self.clock.now() };
        self.stage(scope, permit, write, Error::not_found(format!("grant `{id}`")))
    }

    /// ListRetirableGrants: the active grants naming `retiring` as their retiring principal,
    /// on the keys whose grants the caller may list.
    pub async fn list_retirable_grants(&self, scope: &mut Scope, retiring: &str) -> Result<Vec<GrantOutput>> {
        let caller = scope.principal()?;
        check_grantee(retiring)?;
        let mut out = Vec::new();
        for g in self.store.grants(None).await.map_err(store_err)? {
            if g.retiring_principal.as_deref() != Some(retiring) {
                continue;
            }
            let Some(key) = self.store.key(g.key_id).await.map_err(store_err)? else { continue };
            let protection = self.backends.lookup(&key.backend)?.capabilities().protection;
            let empty = EncryptionContext::default();
            let request = AuthzRequest {
                principal: &caller,
                action: Action::Op(Operation::ListGrants),
                resource: ResourceRef::Key { key: &key, protection },
                facts: Self::facts(scope, &empty),
            };
            if self.authorizer.decide(&request).allowed {
                out.push(g.into());
            }
        }
        Ok(out)
    }

    /// Loads every active grant into the authorizer; returns once the set includes every grant
    /// change committed before the call. Syncs run one at a time (a snapshot read before a
    /// concurrent revoke must not be applied after that revoke's own sync: it would bring the
    /// revoked grant back), a burst of changes is covered by one rebuild, and the rebuild (CPU
    /// work growing with the number of grants) runs on a blocking thread, not a request's.
    pub async fn sync_grants(&self) -> Result<()> {
        use std::sync::atomic::Ordering;
        let mine = self.grant_sync.requested.fetch_add(1, Ordering::AcqRel) + 1;
        let _one_at_a_time = self.grant_sync.lock.lock().await;
        if self.grant_sync.applied.load(Ordering::Acquire) >= mine {
            // A sync that read its snapshot after this call began has already covered it.
            return Ok(());
        }
        let target = self.grant_sync.requested.load(Ordering::Acquire);
        let grants = self.store.grants(None).await.map_err(store_err)?;
        let authorizer = self.authorizer.clone();
        let rebuilt = tokio::task::spawn_blocking(move || authorizer.set_grants(&grants))
            .await
            .map_err(|e| Error::internal(format!("grant rebuild did not finish: {e}")))?;
        rebuilt.map_err(Error::internal)?;
        self.grant_sync.applied.fetch_max(target, Ordering::AcqRel);
        metrics::counter!("keyward_grant_rebuilds_total").increment(1);
        Ok(())
    }

    /// Resyncs grants when the store's grant revision moved (grants made on other replicas).
    pub async fn sync_grants_if_changed(&self, seen: &mut Option<i64>) -> Result<()> {
        let now = self.store.grants_revision().await.map_err(store_err)?;
        if *seen != Some(now) {
            self.sync_grants().await?;
            *seen = Some(now);
        }
        Ok(())
    }
}

/// The state of grant syncs: how many were asked for, and how many a finished rebuild covers.
#[derive(Debug, Default)]
pub(super) struct GrantSync {
    lock: tokio::sync::Mutex<()>,
    requested: std::sync::atomic::AtomicU64,
    applied: std::sync::atomic::AtomicU64,
}
