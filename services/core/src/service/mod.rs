//! The key service: every operation, authorized through the gate and audited.

mod access_keys;
mod admin;
mod aliases;
mod approvals;
mod asymmetric;
mod audit_read;
mod backends;
mod canary;
mod crypto;
mod default_keys;
mod grants;
mod import;
mod maintenance;
mod policy;
mod quotas;
mod raw;
mod rotation;
mod scope;
mod signing;
#[cfg(test)]
mod tests;
mod usage;

use std::sync::Arc;

use tracing::Instrument;

pub use access_keys::{AccessKeyInfo, AccessKeySecret, CreateAccessKeyInput, ListAccessKeysOutput};
pub use admin::{
    CreateKeyInput, ListKeysOutput, RotateAfterUpdate, RotationUpdate, TagUpdate, UpdateKeyInput, VersionInfo,
};
pub use aliases::{AliasOutput, AliasWrite, ListAliasesOutput};
pub use approvals::{APPROVALS_TAG, ApprovalConfig, ListApprovalsOutput, MAX_APPROVALS};
pub use asymmetric::{AsymmetricDecryptInput, AsymmetricEncryptInput, AsymmetricOutput};
pub use backends::{Backends, DEFAULT_CALL_TIMEOUT, Guarded};
pub use crypto::{
    DataKeyInput, DataKeyOutput, DataKeyPairInput, DataKeyPairOutput, DataKeySize, DecryptInput, DecryptOutput,
    EncryptInput, EncryptOutput, ReEncryptInput, ReEncryptOutput,
};
pub use default_keys::{
    DEFAULT_KEY_ALIAS_PREFIX, DEFAULT_KEY_ROTATION_DAYS, default_key_namespace, is_service_managed,
};
pub use grants::{CreateGrantInput, GrantOutput, MAX_GRANTS_PER_GRANTEE, MAX_GRANTS_PER_KEY};
pub use import::{ImportInput, ImportParameters, MAX_VALID_TO};
pub use maintenance::MaintenanceReport;
pub use policy::{AskedResource, AuthorizeInput, DryRunAnswer};
pub use quotas::{BURST_TAG, Charge, Limit, QuotaConfig, Quotas, RATE_TAG};
pub use raw::{MAX_RAW_PLAINTEXT, RAW_AAD_DOMAIN, RawSealed};
pub use rotation::{DEFAULT_ROTATE_AFTER_ENCRYPTIONS, ROTATE_AFTER, RotationLimits};
use scope::Staged;
pub use scope::{RequestMeta, RequestStart, Scope};
pub use signing::{
    MAX_SIGNATURE, MacInput, MacOutput, PublicKeyOutput, SignInput, SignOutput, Verified, VerifyInput, VerifyMacInput,
};
pub use usage::{MAX_USAGE_DAYS, MAX_USAGE_KEYS, NamespaceUsage, UsageReport, VersionUsage};

use crate::error::{Error, ErrorCode, Result};
use crate::gate::Permit;
use crate::model::context::EncryptionContext;
use crate::model::ids::{AliasName, KeyId, KeyRef, Namespace};
use crate::model::key::{KeyMetadata, KeyRecord};
use crate::operation::{Action, Operation};
use crate::ports::audit::{AuditReader, AuditRecord, AuditRefusal, AuditSink};
use crate::ports::authorizer::{Authorizer, AuthzRequest, CreateFacts, Decision, RequestFacts, ResourceRef};
use crate::ports::backend::VersionHandle;
use crate::ports::backend::{BackendError, DynBackend as _};
use crate::ports::clock::Clock;
use crate::ports::store::{Change, Committed, KeyStore, StoreError, Write};

/// The domain service. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct KeyService {
    store: Arc<dyn KeyStore>,
    authorizer: Arc<dyn Authorizer>,
    audit: Arc<dyn AuditSink>,
    audit_reader: Option<Arc<dyn AuditReader>>,
    key_pairs: Option<Arc<dyn crate::ports::key_pairs::KeyPairs>>,
    clock: Arc<dyn Clock>,
    backends: Backends,
    /// Grant syncs, serialized and coalesced (see [`KeyService::sync_grants`]).
    grant_sync: grants::GrantSync,
    /// Request quotas (none configured: unlimited).
    quotas: Option<Quotas>,
    /// Encryption counts that rotate keys.
    rotation_limits: RotationLimits,
    /// Where deletion canaries are sent, besides the trail.
    notifier: Option<Arc<dyn crate::ports::notifier::Notifier>>,
    /// Quorums for sensitive requests.
    approvals: ApprovalConfig,
}

impl KeyService {
    /// Wires the service to its ports.
    pub fn new(
        store: Arc<dyn KeyStore>,
        authorizer: Arc<dyn Authorizer>,
        audit: Arc<dyn AuditSink>,
        clock: Arc<dyn Clock>,
        backends: Backends,
    ) -> Self {
        Self {
            store,
            authorizer,
            audit,
            audit_reader: None,
            key_pairs: None,
            clock,
            backends,
            grant_sync: grants::GrantSync::default(),
            quotas: None,
            rotation_limits: RotationLimits::default(),
            notifier: None,
            approvals: ApprovalConfig::default(),
        }
    }

    /// Sends deletion canaries to operators (a webhook).
    #[must_use]
    pub fn with_notifier(mut self, notifier: Arc<dyn crate::ports::notifier::Notifier>) -> Self {
        self.notifier = Some(notifier);
        self
    }

    /// Enforces request quotas (see [`Quotas`]).
    #[must_use]
    pub fn with_quotas(mut self, quotas: Quotas) -> Self {
        self.quotas = (!quotas.is_unlimited()).then_some(quotas);
        self
    }

    /// Lets QueryAudit and VerifyAudit read the committed trail.
    #[must_use]
    pub fn with_audit_reader(mut self, reader: Arc<dyn AuditReader>) -> Self {
        self.audit_reader = Some(reader);
        self
    }

    /// Lets GenerateDataKeyPair make key pairs.
    #[must_use]
    pub fn with_key_pairs(mut self, key_pairs: Arc<dyn crate::ports::key_pairs::KeyPairs>) -> Self {
        self.key_pairs = Some(key_pairs);
        self
    }

    /// The authorizer (for reloads).
    pub fn authorizer(&self) -> &Arc<dyn Authorizer> {
        &self.authorizer
    }

    /// Whether the audit trail takes records (false while its store is failing).
    pub fn audit_ready(&self) -> bool {
        !matches!(self.audit.admit(), Err(AuditRefusal::Unavailable))
    }

    /// Whether the database answers (for readiness).
    pub async fn ping_database(&self) -> std::result::Result<(), String> {
        self.store.ping().await.map_err(|e| e.to_string())
    }

    /// Each backend instance and whether it is up, as the probe and failing calls left it
    /// (never a backend call: readiness reads this).
    pub fn backend_states(&self) -> std::collections::BTreeMap<String, bool> {
        self.backends.names().filter_map(|n| Some((n.to_owned(), self.backends.get(n)?.is_up()))).collect()
    }

    /// Probes one backend instance now (a live check, not the last probe's answer).
    pub async fn probe_backend(&self, name: &str) -> bool {
        match self.backends.get(name) {
            Some(b) => b.probe().await.is_ok(),
            None => false,
        }
    }

    /// Probes the backends marked down, or all of them; returns how many are down.
    pub async fn probe_backends(&self, all: bool) -> usize {
        if all { self.backends.probe_all().await } else { self.backends.probe_down().await }
    }

    /// Opens a request scope. Crate-private: outside code reaches operations only through
    /// [`KeyService::audited`] and [`KeyService::dry_run`], so nothing runs unaudited.
    fn begin(&self, start: RequestStart) -> Scope {
        Scope::new(start.meta, start.principal, start.operation, self.clock.now())
    }

    /// Runs an operation as a dry run: it stops at its (first) decision, which is answered
    /// whether Allow or Deny, and audited with `dry_run`. Failures before any decision
    /// (unknown key, bad input) are answered as errors.
    pub async fn dry_run<T>(
        &self,
        start: RequestStart,
        op: impl AsyncFnOnce(&mut Scope) -> Result<T>,
    ) -> Result<DryRunAnswer> {
        let mut scope = self.begin(start);
        scope.set_dry_run();
        self.audited_scope(scope, async |scope| {
            let outcome = op(scope).await;
            match scope.decision {
                Some(allowed) => Ok(DryRunAnswer {
                    allowed,
                    determining_policies: scope.determining_policies.clone(),
                    errors: scope.policy_errors.clone(),
                    policy_version: scope.policy_version.clone().unwrap_or_default(),
                }),
                None => match outcome {
                    Err(e) => Err(e),
                    // A listing across namespaces filters by many decisions, not one.
                    Ok(_) => Err(Error::invalid(
                        "this request makes no single authorization decision to dry-run: name its namespace or key",
                    )),
                },
            }
        })
        .await
    }

    /// Runs an operation in a new scope and commits its audit record before releasing the
    /// result. If the record cannot be committed, the result is withheld (fail closed).
    pub async fn audited<T>(&self, start: RequestStart, op: impl AsyncFnOnce(&mut Scope) -> Result<T>) -> Result<T> {
        self.audited_scope(self.begin(start), op).await
    }

    async fn audited_scope<T>(&self, mut scope: Scope, op: impl AsyncFnOnce(&mut Scope) -> Result<T>) -> Result<T> {
        // A request the trail cannot take does not run.
        match self.audit.admit() {
            Ok(()) => {}
            Err(AuditRefusal::QueueFull) => {
                metrics::counter!("keyward_audit_refusals_total", "reason" => "queue_full").increment(1);
                return Err(Error::rate_limited("the audit queue is full"));
            }
            Err(AuditRefusal::Unavailable) => {
                metrics::counter!("keyward_audit_refusals_total", "reason" => "store_failing").increment(1);
                return Err(Error::audit_unavailable("the audit store is failing; refusing until it recovers"));
            }
        }
        let result = op(&mut scope).await;
        let staged = scope.staged.take();
        let canary = canary::Tripped::take(&mut scope);
        let mut record = scope.into_record(self.clock.now(), result.as_ref().err());
        let result = match (result, staged) {
            (Ok(value), Some(staged)) => match self.commit_staged(&record, staged).await {
                Ok(()) => return Ok(value),
                Err(e) => {
                    record = record.with_outcome(Some(&e));
                    Err(e)
                }
            },
            // A request that now waits for approval: its approval request commits with its record.
            (Err(pending), Some(staged)) if pending.code() == ErrorCode::ApprovalPending => {
                match self.commit_staged(&record, staged).await {
                    Ok(()) => return Err(pending),
                    Err(e) => {
                        record = record.with_outcome(Some(&e));
                        Err(e)
                    }
                }
            }
            (result, Some(staged)) => {
                self.after_commit(staged.change.write(), false).await;
                result
            }
            (result, None) => result,
        };
        if let Err(e) = &result
            && e.code() == ErrorCode::Internal
        {
            tracing::error!(code = %e.code(), reason = e.reason().unwrap_or(""), "request failed");
        }
        if result.as_ref().err().is_some_and(Error::is_recorded) {
            return result;
        }
        match self.audit.record(record).instrument(tracing::info_span!("audit_commit")).await {
            Ok(()) => {
                if let Some(tripped) = canary {
                    // Boxed: the canary is itself an audited request.
                    Box::pin(self.raise_canary(tripped)).await;
                }
                result
            }
            Err(e) => {
                tracing::error!(error = %e, "audit record not committed; withholding the result");
                Err(Error::audit_unavailable(e.0))
            }
        }
    }

    /// Commits a request's staged change in the same transaction as its record. `Ok` when
    /// both committed; the refusal (also recorded) when the change's condition failed; an
    /// error when nothing committed, which the caller records like any failure.
    async fn commit_staged(&self, applied: &AuditRecord, staged: Staged) -> Result<()> {
        let refused = applied.clone().with_outcome(Some(&staged.refused));
        let outcome =
            self.store.commit(&staged.change, applied, &refused).instrument(tracing::info_span!("commit_change")).await;
        self.after_commit(staged.change.write(), matches!(outcome, Ok(Committed::Applied))).await;
        match outcome {
            Ok(Committed::Applied) => Ok(()),
            // Already recorded with the change's transaction: answered, not recorded again.
            Ok(Committed::Refused) => Err(staged.refused.recorded()),
            Err(e) => {
                tracing::error!(error = %e, "change and its audit record not committed");
                Err(Error::audit_unavailable(
                    "the change could not be committed with its audit record; nothing changed",
                )
                .with_reason(e.to_string()))
            }
        }
    }

    /// What follows a change: the authorizer reloads grants after a grant change; material
    /// made for a change that did not land, or freed by one that did, is destroyed.
    async fn after_commit(&self, write: &Write, applied: bool) {
        let destroy = |backend: &str, key_id: KeyId, version: u32, material: &[u8]| {
            let backend = self.backends.lookup(backend).ok().cloned();
            let material = zeroize::Zeroizing::new(material.to_vec());
            async move {
                let Some(backend) = backend else { return };
                let handle = VersionHandle { key_id, version, material: &material };
                if let Err(e) = backend.destroy(handle).await {
                    tracing::warn!(key = %key_id, error = %e, "material not destroyed; it is orphaned in its backend");
                }
            }
        };
        match (write, applied) {
            (w, true) if w.changes_grants() => {
                if let Err(e) = self.sync_grants().await {
                    tracing::error!(code = %e.code(), reason = e.reason().unwrap_or(""), "grants not reloaded after a change; the periodic sync retries");
                }
            }
            (Write::DeleteAccessKey(k), true) | (Write::InsertAccessKey(k), false) => {
                destroy(&k.backend, k.seal_key_id, 1, &k.material).await;
            }
            (Write::InsertKey { key, version, .. }, false) => {
                destroy(&key.backend, key.id, version.version, &version.material).await;
            }
            (Write::SetMaterial { key, version, replaced: Some(old) }, true) => {
                destroy(&key.backend, key.id, version.version, old).await;
            }
            (Write::SetMaterial { key, version, .. }, false) if !version.destroyed => {
                destroy(&key.backend, key.id, version.version, &version.material).await;
            }
            _ => {}
        }
    }

    /// Stages a request's change under its permit.
    fn stage(&self, scope: &mut Scope, permit: Permit, write: Write, refused: Error) -> Result<()> {
        let change = Change::new(permit, write).map_err(Error::internal)?;
        scope.stage(change, refused)
    }

    /// The facts of a request in its scope.
    fn facts<'a>(scope: &'a Scope, context: &'a EncryptionContext) -> RequestFacts<'a> {
        RequestFacts {
            encryption_context: context,
            source_ip: scope.meta.source_ip,
            justification: scope.meta.justification.as_deref(),
            request_time: scope.started,
            dry_run: scope.dry_run,
            create: scope.create.as_ref().map(|(backend, external)| CreateFacts { backend, external: *external }),
            forwarded: scope.meta.forwarded.as_ref(),
            algorithm: scope.algorithm,
        }
    }

    /// Asks the authorizer and notes the decision in the scope.
    fn decide_and_note(
        &self,
        scope: &mut Scope,
        action: Action,
        resource: ResourceRef<'_>,
        context: &EncryptionContext,
    ) -> Result<Decision> {
        let principal = scope.principal()?;
        // The action decided is the scope's own operation (ReEncrypt decides its two halves),
        // so the audit record's action and the decision cannot disagree.
        let fits = match action {
            Action::Op(op) => op == scope.operation,
            Action::ReEncryptFrom | Action::ReEncryptTo => scope.operation == Operation::ReEncrypt,
            // Asked quietly by the approval gate, never as the request's own decision.
            Action::RequireApproval(_) => false,
        };
        if !fits {
            return Err(Error::internal(format!("a {} request asked for a {action} decision", scope.operation)));
        }
        let facts = Self::facts(scope, context);
        let span = tracing::info_span!("authorize", action = action.as_str(), allowed = tracing::field::Empty);
        let decision =
            span.in_scope(|| self.authorizer.decide(&AuthzRequest { principal: &principal, action, resource, facts }));
        span.record("allowed", decision.allowed);
        scope.note_decision(resource.uid(), &decision);
        Ok(decision)
    }

    /// Asks the authorizer; notes the decision in the scope; returns a permit or `AccessDenied`.
    /// In a dry run it stops here, whatever the decision: nothing past a decision happens.
    fn authorize(
        &self,
        scope: &mut Scope,
        action: Action,
        resource: ResourceRef<'_>,
        context: &EncryptionContext,
    ) -> Result<Permit> {
        let decision = self.decide_and_note(scope, action, resource, context)?;
        if scope.dry_run {
            return Err(Error::dry_run_complete());
        }
        if decision.allowed {
            self.charge_quotas(scope, resource)?;
            let key = match resource {
                ResourceRef::Key { key, .. } => Some(key.id),
                ResourceRef::Namespace(_) | ResourceRef::System => None,
            };
            Ok(Permit::new(action, key))
        } else {
            let mut err = Error::access_denied(action);
            if !decision.errors.is_empty() {
                err = err.with_reason(format!("policy evaluation errors: {}", decision.errors.join("; ")));
            }
            Err(err)
        }
    }

    /// Charges an allowed request to its quotas: the principal once per request, and each key
    /// and namespace it acts on. Over a limit, the operation does not run.
    fn charge_quotas(&self, scope: &mut Scope, resource: ResourceRef<'_>) -> Result<()> {
        let Some(quotas) = &self.quotas else { return Ok(()) };
        let principal = if scope.quota_charged { None } else { scope.principal().ok() };
        let (key, namespace) = match resource {
            ResourceRef::Key { key, .. } => (Some(key), Some(key.namespace.as_str())),
            ResourceRef::Namespace(ns) => (None, Some(ns.as_str())),
            ResourceRef::System => (None, None),
        };
        let principal_id = principal.as_ref().map(|p| p.to_string());
        let charge = quotas::Charge { principal: principal_id.as_deref(), key, namespace };
        quotas.charge(charge, self.clock.now())?;
        scope.quota_charged = true;
        Ok(())
    }

    fn authorize_key(
        &self,
        scope: &mut Scope,
        action: Action,
        key: &KeyRecord,
        ctx: &EncryptionContext,
    ) -> Result<Permit> {
        let protection = self.backends.lookup(&key.backend)?.capabilities().protection;
        self.authorize(scope, action, ResourceRef::Key { key, protection }, ctx)
    }

    fn authorize_namespace(&self, scope: &mut Scope, action: Action, ns: &Namespace) -> Result<Permit> {
        self.authorize(scope, action, ResourceRef::Namespace(ns), &EncryptionContext::default())
    }

    /// Whether the policies allow the caller `action` on `resource`, asked without noting the
    /// decision as the request's own (a question the request's own decision follows).
    fn decide_quietly(&self, scope: &Scope, action: Action, resource: ResourceRef<'_>) -> Result<bool> {
        let principal = scope.principal()?;
        let empty = EncryptionContext::default();
        let facts = Self::facts(scope, &empty);
        Ok(self.authorizer.decide(&AuthzRequest { principal: &principal, action, resource, facts }).allowed)
    }

    /// Whether the caller may do `action` in a namespace; used to filter listings, so the
    /// decision is not noted as the request's own.
    fn allows_namespace(&self, scope: &Scope, action: Action, ns: &Namespace) -> Result<bool> {
        let principal = scope.principal()?;
        let empty = EncryptionContext::default();
        let facts = RequestFacts { justification: None, ..Self::facts(scope, &empty) };
        let request = AuthzRequest { principal: &principal, action, resource: ResourceRef::Namespace(ns), facts };
        Ok(self.authorizer.decide(&request).allowed)
    }

    /// The backend of a key, reachable only with a permit for that key.
    fn backend_for(&self, permit: &Permit, key: &KeyRecord) -> Result<&Arc<Guarded>> {
        if permit.key() != Some(key.id) {
            return Err(Error::internal("permit does not name this key"));
        }
        self.backends.lookup(&key.backend)
    }

    /// The key's primary version (the one that encrypts), noted in the scope.
    async fn primary_version(
        &self,
        scope: &mut Scope,
        key: &KeyRecord,
    ) -> Result<crate::model::version::VersionRecord> {
        let version = key.primary_version;
        scope.note_key(key.id, Some(version));
        self.store
            .version(key.id, version)
            .await
            .map_err(store_err)?
            .ok_or_else(|| Error::internal(format!("primary version {version} of {} missing", key.id)))
    }

    /// Resolves an id or alias to a key, noting it in the scope.
    async fn resolve(&self, scope: &mut Scope, key: &KeyRef) -> Result<KeyRecord> {
        let action = match scope.operation {
            Operation::ReEncrypt => Action::ReEncryptTo,
            op => Action::Op(op),
        };
        let id = match key {
            KeyRef::Id(id) => *id,
            KeyRef::Alias(name) => match self.store.alias(name).await.map_err(store_err)? {
                Some(a) => a.key_id,
                None => match self.default_key(scope, name).await? {
                    Some(id) => id,
                    None => {
                        return Err(self.unknown_key(scope, action, key, Error::not_found(format!("alias `{name}`"))));
                    }
                },
            },
        };
        let loaded = if scope.operation.uses_cached_keys() {
            self.store.key(id).await
        } else {
            self.store.key_current(id).await
        };
        let Some(record) = loaded.map_err(store_err)? else {
            return Err(self.unknown_key(scope, action, key, Error::not_found(format!("key `{id}`"))));
        };
        scope.note_key(record.id, None);
        Ok(record)
    }

    /// The answer for a key that does not exist, the same one a caller gets for a key it may
    /// not use: the decision is asked about a key in no namespace, with no owner and no tags.
    /// Denied, it is `AccessDenied` (and recorded as that Deny), so a caller cannot tell
    /// missing keys from forbidden ones; allowed (an admin), it is `missing`.
    fn unknown_key(&self, scope: &mut Scope, action: Action, key: &KeyRef, missing: Error) -> Error {
        let principal = match scope.principal() {
            Ok(p) => p,
            Err(e) => return e,
        };
        let (id, shown) = match key {
            KeyRef::Id(id) => (*id, id.to_string()),
            KeyRef::Alias(name) => (KeyId(uuid::Uuid::nil()), name.to_string()),
        };
        let nowhere = KeyRecord::new(
            id,
            Namespace::nowhere(),
            String::new(),
            self.backends.default_name().to_owned(),
            crate::model::key::KeySpec::Aes256,
            scope.started,
        );
        let resource = ResourceRef::Key { key: &nowhere, protection: crate::model::key::Protection::Software };
        let empty = EncryptionContext::default();
        let facts = Self::facts(scope, &empty);
        let decision = self.authorizer.decide(&AuthzRequest { principal: &principal, action, resource, facts });
        if decision.allowed {
            return missing;
        }
        if scope.resource.is_none() {
            scope.resource = Some(format!("Keyward::Key::{shown:?}"));
        }
        scope.note_decision(resource.uid(), &decision);
        Error::access_denied(action).with_reason(missing.message().to_owned())
    }

    async fn metadata(&self, key: KeyRecord) -> Result<KeyMetadata> {
        let aliases = self.store.aliases_of(key.id).await.map_err(store_err)?;
        self.metadata_with(key, aliases)
    }

    fn metadata_with(&self, key: KeyRecord, aliases: Vec<AliasName>) -> Result<KeyMetadata> {
        let backend = self.backends.lookup(&key.backend)?;
        let (protection, backend_up) = (backend.capabilities().protection, backend.is_up());
        let rotate_after_encryptions = self.rotate_after(&key);
        Ok(KeyMetadata { key, aliases, protection, backend_up, rotate_after_encryptions })
    }
}

/// Maps a store failure: lost races are `Conflict`, the rest internal.
fn store_err(e: StoreError) -> Error {
    match e {
        StoreError::Conflict(reason) => {
            Error::conflict("the key changed concurrently or a name is taken; retry").with_reason(reason)
        }
        StoreError::Backend(reason) => Error::internal(reason),
    }
}

/// Maps a backend failure to the caller's error.
fn backend_err(e: BackendError) -> Error {
    match e {
        BackendError::DecryptFailed(reason) => Error::invalid_ciphertext(reason),
        BackendError::Unsupported(what) => Error::new(ErrorCode::UnsupportedOperation, what),
        BackendError::Unavailable(reason) => Error::key_unavailable(reason),
        BackendError::KeyUnusable(reason) => {
            Error::new(ErrorCode::KeyUnavailable, "the key is disabled or refused where its backend holds it")
                .with_reason(reason)
        }
        BackendError::InvalidRequest(reason) => Error::invalid(reason),
        BackendError::InvalidMaterial(reason) | BackendError::Internal(reason) => Error::internal(reason),
    }
}
