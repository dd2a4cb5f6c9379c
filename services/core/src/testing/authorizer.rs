//! An authorizer deciding by a rule, for tests that are about the domain, not the policies.

use std::sync::Arc;

use crate::model::grant::GrantRecord;
use crate::ports::authorizer::{Authorizer, AuthzRequest, Decision, PolicySnapshot};

type Rule = dyn Fn(&AuthzRequest<'_>) -> bool + Send + Sync;

/// Allows what its rule allows; names the rule `rule` as the determining policy.
pub struct RuleAuthorizer(Arc<Rule>);

impl std::fmt::Debug for RuleAuthorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RuleAuthorizer")
    }
}

impl RuleAuthorizer {
    /// Decides by `rule`.
    pub fn new(rule: impl Fn(&AuthzRequest<'_>) -> bool + Send + Sync + 'static) -> Self {
        Self(Arc::new(rule))
    }

    /// Allows every authenticated request.
    pub fn allow_all() -> Self {
        Self::new(|_| true)
    }
}

impl Authorizer for RuleAuthorizer {
    fn decide(&self, request: &AuthzRequest<'_>) -> Decision {
        let allowed = (self.0)(request);
        Decision {
            allowed,
            determining_policies: if allowed { vec!["rule".into()] } else { Vec::new() },
            errors: Vec::new(),
            policy_version: Arc::from("memory"),
        }
    }

    fn snapshot(&self) -> PolicySnapshot {
        PolicySnapshot { version: "memory".into(), policies: Vec::new(), schema: String::new() }
    }

    fn reload(&self, _force: bool) -> Result<crate::ports::authorizer::Reloaded, String> {
        Ok(crate::ports::authorizer::Reloaded { version: "memory".into(), proofs: "off".into() })
    }

    fn check_grant(&self, _: &GrantRecord) -> Result<(), String> {
        Ok(())
    }

    fn set_grants(&self, _: &[GrantRecord]) -> Result<(), String> {
        Ok(())
    }
}
