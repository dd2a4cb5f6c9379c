//! The Cedar implementation of the domain's authorizer port.

use std::sync::{Arc, Mutex, RwLock};

use cedar_policy::{Entities, Request};
use keyward_core::model::grant::GrantRecord;
use keyward_core::ports::authorizer::{Authorizer, AuthzRequest, Decision, PolicySnapshot, PolicyText, Reloaded};

use crate::bundle::{PolicyBundle, Reads};
use crate::cache::{self, DecisionCache};
use crate::index::{Candidates, Index};
use crate::{entities, grants, proofs};

/// The policy files, the grants, and the index over both.
#[derive(Debug)]
struct Active {
    bundle: Arc<PolicyBundle>,
    grants: Arc<[GrantRecord]>,
    index: Index,
    reads: Reads,
    version: Arc<str>,
    /// This generation's decisions (a reload or grant change starts a new one).
    cache: DecisionCache,
}

impl Active {
    fn new(bundle: Arc<PolicyBundle>, grants: Arc<[GrantRecord]>) -> Result<Self, String> {
        let (grant_set, templates) = grants::policy_set(&grants)?;
        let index = Index::build(bundle.policy_set().policies().chain(grant_set.policies()), &templates)?;
        let grant_reads = Reads {
            context_keys: grants.iter().any(|g| g.constraints.encryption_context_equals.is_some()),
            ..Reads::default()
        };
        let reads = bundle.reads.union(grant_reads);
        let version = Arc::from(bundle.version());
        Ok(Self { bundle, grants, index, reads, version, cache: DecisionCache::default() })
    }
}

/// Decides with the active policy set and grants. Default deny; forbid wins; any evaluation
/// error denies (Cedar alone would skip an erroring policy, letting a broken forbid allow).
#[derive(Debug)]
pub struct CedarAuthorizer {
    active: RwLock<Arc<Active>>,
    /// Serializes read-modify-write updates (reloads and grant syncs).
    updates: Mutex<()>,
    cedar: cedar_policy::Authorizer,
    /// Whether a reload must pass the safety proofs.
    proofs: ReloadProofs,
}

/// Whether ReloadPolicies proves a set safe (never-errors, lockout) before loading it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReloadProofs {
    /// Prove when a solver is installed; without one, load with a warning.
    #[default]
    WhenAvailable,
    /// Prove always: without a solver, refuse.
    Required,
    /// Never prove.
    Off,
}

impl ReloadProofs {
    /// Proves `bundle` as this mode asks; the outcome, or why the set is refused.
    fn check(self, bundle: &PolicyBundle, force: bool) -> Result<String, String> {
        match self {
            Self::Off => return Ok("off".into()),
            Self::WhenAvailable if !proofs::solver_available() => {
                tracing::warn!("no cvc5 solver: the reloaded policy set is not proved safe");
                return Ok("unavailable".into());
            }
            Self::WhenAvailable | Self::Required => {}
        }
        let report = proofs::prove_blocking(bundle, &proofs::Extra::default())?;
        if report.safe_to_load() {
            return Ok("proved".into());
        }
        let failed = report.failed().join(", ");
        if force {
            tracing::warn!(%failed, "policy set fails its proofs; loaded by force");
            return Ok(format!("failed, loaded by force: {failed}"));
        }
        let example = report.proofs.iter().find_map(|p| p.counterexample.as_deref()).unwrap_or_default();
        Err(format!(
            "the policy set fails its safety proofs ({failed}); fix it, or reload with force as an admin. \
             A counterexample:\n{example}"
        ))
    }
}

impl CedarAuthorizer {
    /// An authorizer over a validated bundle, with no grants yet.
    pub fn new(bundle: PolicyBundle) -> Result<Self, String> {
        let active = Active::new(Arc::new(bundle), Arc::from(Vec::new()))?;
        Ok(Self {
            active: RwLock::new(Arc::new(active)),
            updates: Mutex::new(()),
            cedar: cedar_policy::Authorizer::new(),
            proofs: ReloadProofs::default(),
        })
    }

    /// Sets whether reloads must pass the safety proofs.
    #[must_use]
    pub fn with_reload_proofs(mut self, proofs: ReloadProofs) -> Self {
        self.proofs = proofs;
        self
    }

    fn active(&self) -> Arc<Active> {
        self.active.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn lock_updates(&self) -> std::sync::MutexGuard<'_, ()> {
        self.updates.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn swap(&self, active: Active) {
        *self.active.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(active);
    }

    /// The active bundle.
    pub fn bundle(&self) -> Arc<PolicyBundle> {
        self.active().bundle.clone()
    }

    /// Replaces the policy files (already validated by construction), keeping the grants.
    pub fn replace(&self, bundle: PolicyBundle) -> Result<(), String> {
        let _updating = self.lock_updates();
        let grants = self.active().grants.clone();
        self.swap(Active::new(Arc::new(bundle), grants)?);
        Ok(())
    }

    /// How many policies (files and grants) are indexed.
    pub fn len(&self) -> usize {
        self.active().index.len()
    }

    /// Decisions held by the current generation's cache.
    #[cfg(test)]
    pub(crate) fn cached_decisions(&self) -> usize {
        self.active().cache.len()
    }

    /// Whether no policy is indexed (everything is denied).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl CedarAuthorizer {
    /// Decides with extra entities (Cedar JSON) beside the ones the request implies; policy
    /// test cases use it.
    pub fn decide_with(&self, request: &AuthzRequest<'_>, extra: Option<&serde_json::Value>) -> Decision {
        self.evaluate(&self.active(), request, extra)
    }

    /// Decides with Cedar, never from the cache (what every cached decision must equal).
    pub fn decide_fresh(&self, request: &AuthzRequest<'_>) -> Decision {
        self.evaluate(&self.active(), request, None)
    }

    fn evaluate(&self, active: &Active, request: &AuthzRequest<'_>, extra: Option<&serde_json::Value>) -> Decision {
        let version = active.version.clone();
        let deny = |errors: Vec<String>| Decision {
            allowed: false,
            determining_policies: Vec::new(),
            errors,
            policy_version: version.clone(),
        };
        let mut built = match entities::build(&active.bundle, active.reads, request) {
            Ok(b) => b,
            Err(e) => return deny(vec![format!("request could not be built: {e}")]),
        };
        if let Some(extra) = extra {
            let added = Entities::from_json_value(extra.clone(), Some(&active.bundle.schema))
                .map_err(|e| e.to_string())
                .and_then(|e| built.entities.clone().add_entities(e, None).map_err(|e| e.to_string()));
            match added {
                Ok(all) => built.entities = all,
                Err(e) => return deny(vec![format!("extra entities: {e}")]),
            }
        }
        let cedar_request = match Request::new(built.principal, built.action, built.resource, built.context, None) {
            Ok(r) => r,
            Err(e) => return deny(vec![format!("request does not match the schema: {e}")]),
        };
        let candidates = Candidates { principals: &built.principals, resources: &built.resources };
        let outcome = active.index.decide(&self.cedar, &cedar_request, &built.entities, &candidates);
        Decision {
            allowed: outcome.allowed,
            determining_policies: outcome.determining,
            errors: outcome.errors,
            policy_version: version,
        }
    }
}

impl CedarAuthorizer {
    /// Decides by evaluating every policy file's policy, without the index (grants are not
    /// included). For benchmarks: the cost the index avoids.
    pub fn decide_unindexed(&self, request: &AuthzRequest<'_>) -> bool {
        let active = self.active();
        let Ok(built) = entities::build(&active.bundle, active.reads, request) else { return false };
        let Ok(r) = Request::new(built.principal, built.action, built.resource, built.context, None) else {
            return false;
        };
        let response = self.cedar.is_authorized(&r, active.bundle.policy_set(), &built.entities);
        response.decision() == cedar_policy::Decision::Allow && response.diagnostics().errors().next().is_none()
    }
}

impl Authorizer for CedarAuthorizer {
    fn decide(&self, request: &AuthzRequest<'_>) -> Decision {
        let active = self.active();
        let Some(key) = cache::key(active.reads, request) else {
            return self.evaluate(&active, request, None);
        };
        if let Some(decision) = active.cache.get(&key) {
            return decision;
        }
        let decision = self.evaluate(&active, request, None);
        active.cache.put(key, &decision);
        decision
    }

    fn snapshot(&self) -> PolicySnapshot {
        let active = self.active();
        PolicySnapshot {
            version: active.version.to_string(),
            policies: active.bundle.policy_texts().into_iter().map(|(id, text)| PolicyText { id, text }).collect(),
            schema: active.bundle.schema_text().to_owned(),
        }
    }

    fn reload(&self, force: bool) -> Result<Reloaded, String> {
        let _updating = self.lock_updates();
        let current = self.active();
        let bundle = current.bundle.source().load().map_err(|e| e.to_string())?;
        let proofs = self.proofs.check(&bundle, force)?;
        let version = bundle.version().to_owned();
        self.swap(Active::new(Arc::new(bundle), current.grants.clone())?);
        tracing::info!(%version, %proofs, "policy set reloaded");
        Ok(Reloaded { version, proofs })
    }

    fn check_grant(&self, grant: &GrantRecord) -> Result<(), String> {
        let (set, _) = grants::policy_set(std::slice::from_ref(grant))?;
        self.active().bundle.validate(&set)
    }

    fn set_grants(&self, grants: &[GrantRecord]) -> Result<(), String> {
        let _updating = self.lock_updates();
        let bundle = self.active().bundle.clone();
        self.swap(Active::new(bundle, Arc::from(grants.to_vec()))?);
        Ok(())
    }
}
