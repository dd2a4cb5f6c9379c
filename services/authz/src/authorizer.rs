//! The Cedar implementation of the domain's authorizer port.

use std::sync::{Arc, RwLock};

use cedar_policy::{Decision as CedarDecision, Request};
use keyward_core::ports::authorizer::{Authorizer, AuthzRequest, Decision};

use crate::bundle::PolicyBundle;
use crate::entities;

/// Decides with the active policy bundle. Default deny; forbid wins; any evaluation error
/// denies (Cedar alone would skip an erroring policy, letting a broken forbid allow).
#[derive(Debug)]
pub struct CedarAuthorizer {
    active: RwLock<Arc<PolicyBundle>>,
    cedar: cedar_policy::Authorizer,
}

impl CedarAuthorizer {
    /// An authorizer over a validated bundle.
    pub fn new(bundle: PolicyBundle) -> Self {
        Self { active: RwLock::new(Arc::new(bundle)), cedar: cedar_policy::Authorizer::new() }
    }

    /// The active bundle.
    pub fn bundle(&self) -> Arc<PolicyBundle> {
        self.active.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Replaces the active bundle (already validated by construction).
    pub fn replace(&self, bundle: PolicyBundle) {
        *self.active.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(bundle);
    }
}

impl Authorizer for CedarAuthorizer {
    fn decide(&self, request: &AuthzRequest<'_>) -> Decision {
        let bundle = self.bundle();
        let version: Arc<str> = Arc::from(bundle.version());
        let deny = |errors: Vec<String>| Decision {
            allowed: false,
            determining_policies: Vec::new(),
            errors,
            policy_version: version.clone(),
        };
        let built = match entities::build(&bundle, request) {
            Ok(b) => b,
            Err(e) => return deny(vec![format!("request could not be built: {e}")]),
        };
        let cedar_request = match Request::new(built.principal, built.action, built.resource, built.context, None) {
            Ok(r) => r,
            Err(e) => return deny(vec![format!("request does not match the schema: {e}")]),
        };
        let response = self.cedar.is_authorized(&cedar_request, &bundle.policies, &built.entities);
        let diagnostics = response.diagnostics();
        let errors: Vec<String> = diagnostics.errors().map(ToString::to_string).collect();
        let mut determining_policies: Vec<String> = diagnostics.reason().map(ToString::to_string).collect();
        determining_policies.sort();
        Decision {
            allowed: response.decision() == CedarDecision::Allow && errors.is_empty(),
            determining_policies,
            errors,
            policy_version: version,
        }
    }
}
