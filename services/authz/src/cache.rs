//! Decisions remembered by everything that decides them.
//!
//! A decision is a function of the policy set and grants (one [`crate::authorizer`] generation:
//! a reload or grant change starts a new, empty cache) and of what [`crate::entities::build`]
//! turns the request into: the principal and its groups, the action, the resource's id and
//! every attribute and tag, and the context. The key is exactly those inputs, encoded without
//! ambiguity (every field length-prefixed), not a hash of them, so two requests share an entry
//! only when Cedar would see the same request. The request time is in no key: while any policy
//! reads it, nothing is cached. Decisions with evaluation errors are not kept (they deny, and
//! are evaluated again).

use std::collections::HashMap;
use std::sync::Mutex;

use keyward_core::model::principal::PrincipalKind;
use keyward_core::ports::authorizer::{AuthzRequest, Decision, ResourceRef};

use crate::bundle::Reads;

/// Most decisions kept per generation; a full cache starts over.
const CAPACITY: usize = 16_384;

/// One generation's decisions.
#[derive(Debug, Default)]
pub(crate) struct DecisionCache {
    entries: Mutex<HashMap<Vec<u8>, Decision>>,
}

impl DecisionCache {
    pub(crate) fn get(&self, key: &[u8]) -> Option<Decision> {
        self.entries.lock().ok()?.get(key).cloned()
    }

    pub(crate) fn put(&self, key: Vec<u8>, decision: &Decision) {
        if !decision.errors.is_empty() {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= CAPACITY {
                entries.clear();
            }
            entries.insert(key, decision.clone());
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or(0)
    }
}

/// Length-prefixed fields.
struct Key(Vec<u8>);

impl Key {
    fn str(&mut self, s: &str) {
        self.0.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.0.extend_from_slice(s.as_bytes());
    }

    fn tag(&mut self, t: u8) {
        self.0.push(t);
    }

    fn opt(&mut self, s: Option<&str>) {
        match s {
            Some(s) => {
                self.tag(1);
                self.str(s);
            }
            None => self.tag(0),
        }
    }

    fn map<'a>(&mut self, entries: impl ExactSizeIterator<Item = (&'a String, &'a String)>) {
        self.0.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        for (k, v) in entries {
            self.str(k);
            self.str(v);
        }
    }
}

/// The cache key of a request, or none when the decision may depend on the time.
pub(crate) fn key(reads: Reads, req: &AuthzRequest<'_>) -> Option<Vec<u8>> {
    if reads.request_time {
        return None;
    }
    let mut k = Key(Vec::with_capacity(256));
    let p = req.principal;
    k.tag(match p.kind {
        PrincipalKind::User => 1,
        PrincipalKind::Service => 2,
    });
    k.str(&p.id);
    k.0.extend_from_slice(&(p.groups.len() as u32).to_le_bytes());
    for g in &p.groups {
        k.str(g);
    }
    k.str(req.action.as_str());
    if let keyward_core::operation::Action::RequireApproval(op) = req.action {
        k.str(op.as_str());
    }
    match req.resource {
        ResourceRef::Key { key, protection } => {
            k.tag(1);
            k.str(&key.id.to_string());
            k.str(key.namespace.as_str());
            k.str(key.spec.as_str());
            k.str(key.usage.as_str());
            k.str(key.state.as_str());
            k.str(&key.backend);
            k.str(protection.as_str());
            k.str(&key.owner);
            k.map(key.tags.iter());
        }
        ResourceRef::Namespace(ns) => {
            k.tag(2);
            k.str(ns.as_str());
        }
        ResourceRef::System => k.tag(3),
    }
    let f = &req.facts;
    k.map(f.encryption_context.entries().iter());
    k.tag(u8::from(f.dry_run));
    if reads.source_ip {
        k.opt(f.source_ip.map(|ip| ip.to_string()).as_deref());
    }
    match f.create {
        Some(c) => {
            k.tag(1);
            k.str(c.backend);
            k.tag(u8::from(c.external));
        }
        None => k.tag(0),
    }
    match f.forwarded {
        Some(m) => {
            k.tag(1);
            k.map(m.iter());
        }
        None => k.tag(0),
    }
    let a = &f.algorithm;
    k.opt(a.signing_algorithm.map(|a| a.as_str()));
    k.opt(a.message_type.map(|t| t.as_str()));
    k.opt(a.mac_algorithm.map(|a| a.as_str()));
    k.opt(f.justification);
    Some(k.0)
}
