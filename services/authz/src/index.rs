//! Policies indexed by scope, so a decision evaluates only the policies that can apply.
//!
//! A policy whose principal scope names an entity (`principal == U`, `principal in G`) can
//! only be satisfied by that principal or members of that group; one whose resource scope
//! names an entity (`resource == K`, `resource in N`) only by that resource or its
//! namespace's keys. Cedar checks the scope before any condition, so a skipped policy could
//! neither be satisfied nor raise an error: evaluating the candidate slices and combining
//! them as Cedar does (any forbid denies; otherwise any permit allows) gives the same
//! decision as evaluating the whole set, at a cost that does not grow with the set.

use std::collections::{BTreeSet, HashMap};

use cedar_policy::{
    Decision as CedarDecision, Entities, EntityUid, Policy, PolicySet, PrincipalConstraint, Request,
    ResourceConstraint, Template,
};

/// Where a policy is filed.
enum Slot {
    Global,
    Principal(EntityUid),
    Resource(EntityUid),
}

fn slot_of(policy: &Policy) -> Slot {
    match policy.principal_constraint() {
        PrincipalConstraint::Eq(uid) | PrincipalConstraint::In(uid) | PrincipalConstraint::IsIn(_, uid) => {
            return Slot::Principal(uid);
        }
        PrincipalConstraint::Any | PrincipalConstraint::Is(_) => {}
    }
    match policy.resource_constraint() {
        ResourceConstraint::Eq(uid) | ResourceConstraint::In(uid) | ResourceConstraint::IsIn(_, uid) => {
            Slot::Resource(uid)
        }
        ResourceConstraint::Any | ResourceConstraint::Is(_) => Slot::Global,
    }
}

/// The policy set split by scope.
#[derive(Debug, Default)]
pub(crate) struct Index {
    global: PolicySet,
    by_principal: HashMap<EntityUid, PolicySet>,
    by_resource: HashMap<EntityUid, PolicySet>,
    len: usize,
}

/// The entities a request's policies may be filed under.
pub(crate) struct Candidates<'a> {
    /// The principal and its groups.
    pub principals: &'a [EntityUid],
    /// The resource and its namespace.
    pub resources: &'a [EntityUid],
}

/// A combined answer over the evaluated slices.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub allowed: bool,
    pub determining: Vec<String>,
    pub errors: Vec<String>,
}

impl Index {
    /// Files every policy (static or linked); linked policies bring their templates along.
    pub fn build<'a>(policies: impl IntoIterator<Item = &'a Policy>, templates: &[Template]) -> Result<Self, String> {
        let mut index = Self::default();
        for t in templates {
            index.global.add_template(t.clone()).map_err(|e| e.to_string())?;
        }
        for policy in policies {
            let set = match slot_of(policy) {
                Slot::Global => &mut index.global,
                Slot::Principal(uid) => index.by_principal.entry(uid).or_default(),
                Slot::Resource(uid) => index.by_resource.entry(uid).or_default(),
            };
            add(set, policy, templates)?;
            index.len += 1;
        }
        Ok(index)
    }

    /// How many policies are filed.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Decides over the global slice and the slices of the request's entities.
    pub fn decide(
        &self,
        cedar: &cedar_policy::Authorizer,
        request: &Request,
        entities: &Entities,
        candidates: &Candidates<'_>,
    ) -> Outcome {
        let mut forbids = BTreeSet::new();
        let mut permits = BTreeSet::new();
        let mut errors = Vec::new();
        let slices = std::iter::once(&self.global)
            .chain(candidates.principals.iter().filter_map(|uid| self.by_principal.get(uid)))
            .chain(candidates.resources.iter().filter_map(|uid| self.by_resource.get(uid)));
        for set in slices {
            let response = cedar.is_authorized(request, set, entities);
            let diagnostics = response.diagnostics();
            errors.extend(diagnostics.errors().map(ToString::to_string));
            let reasons = diagnostics.reason().map(ToString::to_string);
            match response.decision() {
                CedarDecision::Allow => permits.extend(reasons),
                // A Deny with reasons is a satisfied forbid; without, no permit applied.
                CedarDecision::Deny => forbids.extend(reasons),
            }
        }
        let allowed = forbids.is_empty() && !permits.is_empty() && errors.is_empty();
        let determining = if forbids.is_empty() { permits } else { forbids };
        Outcome { allowed, determining: determining.into_iter().collect(), errors }
    }
}

fn add(set: &mut PolicySet, policy: &Policy, templates: &[Template]) -> Result<(), String> {
    if let Some(template_id) = policy.template_id()
        && set.template(template_id).is_none()
    {
        let template = templates
            .iter()
            .find(|t| t.id() == template_id)
            .ok_or_else(|| format!("policy `{}` links an unknown template", policy.id()))?;
        set.add_template(template.clone()).map_err(|e| e.to_string())?;
    }
    if policy.is_static() {
        set.add(policy.clone()).map_err(|e| e.to_string())
    } else {
        let template_id = policy.template_id().cloned().ok_or("linked policy without a template")?;
        let mut vals = HashMap::new();
        if let PrincipalConstraint::Eq(uid) | PrincipalConstraint::In(uid) = policy.principal_constraint() {
            vals.insert(cedar_policy::SlotId::principal(), uid);
        }
        if let ResourceConstraint::Eq(uid) | ResourceConstraint::In(uid) = policy.resource_constraint() {
            vals.insert(cedar_policy::SlotId::resource(), uid);
        }
        set.link(template_id, policy.id().clone(), vals).map_err(|e| e.to_string())
    }
}
