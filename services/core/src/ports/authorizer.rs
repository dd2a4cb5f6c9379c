//! The authorizer port: given who, what, on which resource and in what context, decide.

use std::net::IpAddr;
use std::sync::Arc;

use crate::model::context::EncryptionContext;
use crate::model::ids::Namespace;
use crate::model::key::{KeyRecord, Protection};
use crate::model::principal::Principal;
use crate::operation::Action;

/// The resource of a request: a key, or a namespace for operations on no key.
#[derive(Debug, Clone, Copy)]
pub enum ResourceRef<'a> {
    /// An existing key and its backend's protection level.
    Key {
        /// The key.
        key: &'a KeyRecord,
        /// Its backend's protection level.
        protection: Protection,
    },
    /// A namespace (CreateKey, ListKeys, GenerateRandom, ListAliases).
    Namespace(&'a Namespace),
}

impl ResourceRef<'_> {
    /// The Cedar entity uid of the resource, as written in audit records.
    pub fn uid(&self) -> String {
        match self {
            Self::Key { key, .. } => format!("Keyward::Key::\"{}\"", key.id),
            Self::Namespace(ns) => format!("Keyward::Namespace::\"{ns}\""),
        }
    }
}

/// Request facts beside principal, action and resource.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    /// The caller's encryption context (empty when the operation has none).
    pub encryption_context: &'a EncryptionContext,
    /// The caller's address.
    pub source_ip: Option<IpAddr>,
    /// A justification the caller gave.
    pub justification: Option<&'a str>,
    /// Whether the call is a dry run.
    pub dry_run: bool,
}

/// One question to the authorizer.
#[derive(Debug, Clone, Copy)]
pub struct AuthzRequest<'a> {
    /// Who asks.
    pub principal: &'a Principal,
    /// What they want to do.
    pub action: Action,
    /// On what.
    pub resource: ResourceRef<'a>,
    /// In what context.
    pub facts: RequestFacts<'a>,
}

/// The answer, with its reasons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Allow or deny.
    pub allowed: bool,
    /// Ids of the policies that determined the decision.
    pub determining_policies: Vec<String>,
    /// Evaluation errors (any error denies).
    pub errors: Vec<String>,
    /// The policy set's version.
    pub policy_version: Arc<str>,
}

/// Decides requests. Default deny: anything not explicitly permitted is denied.
pub trait Authorizer: Send + Sync + std::fmt::Debug {
    /// Decides one request.
    fn decide(&self, request: &AuthzRequest<'_>) -> Decision;
}
