//! Policy administration and questions to the authorizer: dry-run answers, Authorize,
//! GetPolicies, ReloadPolicies.

use std::net::IpAddr;

use super::{KeyService, Scope};
use crate::error::{Error, Result};
use crate::model::context::EncryptionContext;
use crate::model::ids::{KeyRef, Namespace};
use crate::model::principal::{ADMINS_GROUP, Principal};
use crate::operation::{Action, Operation};
use crate::ports::authorizer::{AuthzRequest, PolicySnapshot, Reloaded, RequestFacts, ResourceRef};
use crate::ports::backend::DynBackend as _;

/// What a dry run or an Authorize call answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DryRunAnswer {
    /// Allow or Deny.
    pub allowed: bool,
    /// The policies that determined it.
    pub determining_policies: Vec<String>,
    /// Evaluation errors (any error denies).
    pub errors: Vec<String>,
    /// The policy set's version.
    pub policy_version: String,
}

/// The resource an Authorize question is about.
#[derive(Debug, Clone)]
pub enum AskedResource {
    /// A key, by id or alias.
    Key(KeyRef),
    /// A namespace.
    Namespace(Namespace),
}

/// "May P do A on R with C?"
#[derive(Debug, Clone)]
pub struct AuthorizeInput {
    /// The principal asked about; `None` is the caller.
    pub principal: Option<Principal>,
    /// The action.
    pub action: Action,
    /// The resource.
    pub resource: AskedResource,
    /// The encryption context.
    pub encryption_context: EncryptionContext,
    /// A justification, as the request would carry it.
    pub justification: Option<String>,
    /// A source address (default: the caller's).
    pub source_ip: Option<IpAddr>,
    /// The algorithm a signing or MAC request would name.
    pub algorithm: crate::ports::authorizer::AlgorithmFacts,
}

impl KeyService {
    /// Authorize: answers a question without doing anything. Asking about another principal
    /// needs `Authorize` on the resource; the answer itself is audited as a dry run.
    pub async fn authorize_question(&self, scope: &mut Scope, input: AuthorizeInput) -> Result<DryRunAnswer> {
        let caller = scope.principal()?;
        let key = match &input.resource {
            AskedResource::Key(r) => Some(self.resolve(scope, r).await?),
            AskedResource::Namespace(_) => None,
        };
        let protection = match &key {
            Some(k) => Some(self.backends.lookup(&k.backend)?.capabilities().protection),
            None => None,
        };
        let resource = match (&key, protection, &input.resource) {
            (Some(key), Some(protection), _) => ResourceRef::Key { key, protection },
            (_, _, AskedResource::Namespace(ns)) => ResourceRef::Namespace(ns),
            _ => return Err(Error::internal("resource not resolved")),
        };
        let asked = input.principal.unwrap_or_else(|| (*caller).clone());
        // A question is about the caller only if every asked attribute is the caller's real
        // one: made-up groups, a source address or a justification would otherwise reveal
        // decisions (and so tags and namespaces) on keys the caller cannot see.
        let same_groups = {
            let (mut a, mut c) = (asked.groups.clone(), caller.groups.clone());
            a.sort_unstable();
            a.dedup();
            c.sort_unstable();
            c.dedup();
            a == c
        };
        let about_self = asked.kind == caller.kind
            && asked.id == caller.id
            && same_groups
            && input.source_ip.is_none_or(|ip| Some(ip) == scope.meta.source_ip)
            && input.justification.as_ref().is_none_or(|j| Some(j) == scope.meta.justification.as_ref());
        if !about_self {
            self.authorize(scope, Action::Op(Operation::Authorize), resource, &input.encryption_context)?;
        }
        scope.set_dry_run();
        scope.note_context(&input.encryption_context);
        let facts = RequestFacts {
            encryption_context: &input.encryption_context,
            source_ip: input.source_ip.or(scope.meta.source_ip),
            justification: input.justification.as_deref(),
            request_time: scope.started,
            dry_run: true,
            create: None,
            forwarded: None,
            algorithm: input.algorithm,
        };
        let decision =
            self.authorizer.decide(&AuthzRequest { principal: &asked, action: input.action, resource, facts });
        if about_self {
            scope.note_decision(resource.uid(), &decision);
        }
        Ok(DryRunAnswer {
            allowed: decision.allowed,
            determining_policies: decision.determining_policies,
            errors: decision.errors,
            policy_version: decision.policy_version.to_string(),
        })
    }

    /// GetPolicies: the active set and its version.
    pub async fn get_policies(&self, scope: &mut Scope) -> Result<PolicySnapshot> {
        self.authorize(scope, Action::Op(Operation::GetPolicies), ResourceRef::System, &EncryptionContext::default())?;
        Ok(self.authorizer.snapshot())
    }

    /// ReloadPolicies: reloads from the policy directory. An invalid set, or one that fails
    /// its safety proofs (never-errors, lockout), keeps the old one and the answer lists the
    /// problems; `force` loads a set that fails its proofs, for members of `admins` only.
    pub async fn reload_policies(&self, scope: &mut Scope, force: bool) -> Result<Reloaded> {
        let permit = self.authorize(
            scope,
            Action::Op(Operation::ReloadPolicies),
            ResourceRef::System,
            &EncryptionContext::default(),
        )?;
        if force {
            scope.details.insert("force".into(), "true".into());
            if !scope.principal()?.groups.iter().any(|g| g == ADMINS_GROUP) {
                return Err(Error::access_denied(Action::Op(Operation::ReloadPolicies))
                    .with_reason("only members of `admins` may force a reload past the policy proofs"));
            }
        }
        if let Some(required) = self.approval_gate(scope, Operation::ReloadPolicies, ResourceRef::System)? {
            let request = crate::model::approval::PendingRequest::ReloadPolicies { force };
            return Err(self.defer(scope, permit, request, ResourceRef::System, required));
        }
        // The proofs run a solver for a moment: not on a request thread.
        let authorizer = self.authorizer.clone();
        let reloaded = tokio::task::spawn_blocking(move || authorizer.reload(force))
            .await
            .map_err(|e| Error::internal(format!("the reload task failed: {e}")))?
            .map_err(|problems| {
                Error::invalid(format!("the policy set was refused and the active set is unchanged:\n{problems}"))
            })?;
        scope.details.insert("proofs".into(), reloaded.proofs.clone());
        Ok(reloaded)
    }
}
