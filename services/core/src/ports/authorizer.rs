//! The authorizer port: given who, what, on which resource and in what context, decide.

use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::model::context::EncryptionContext;
use crate::model::grant::GrantRecord;
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
    /// The deployment itself (policy and audit administration).
    System,
}

impl ResourceRef<'_> {
    /// The Cedar entity uid of the resource, as written in audit records.
    pub fn uid(&self) -> String {
        match self {
            Self::Key { key, .. } => key_uid(key.id),
            Self::Namespace(ns) => format!("Keyward::Namespace::\"{ns}\""),
            Self::System => SYSTEM_UID.to_owned(),
        }
    }
}

/// The uid of the deployment, the resource of policy and audit administration.
pub const SYSTEM_UID: &str = "Keyward::System::\"keyward\"";

/// A key's entity uid, as decisions and audit records name it.
pub fn key_uid(id: crate::model::ids::KeyId) -> String {
    format!("Keyward::Key::\"{id}\"")
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
    /// When the request arrived.
    pub request_time: DateTime<Utc>,
    /// Whether the call is a dry run.
    pub dry_run: bool,
    /// For CreateKey: where the key would live.
    pub create: Option<CreateFacts<'a>>,
    /// What a front door relays for another system (XKS: AWS KMS's request metadata).
    pub forwarded: Option<&'a std::collections::BTreeMap<String, String>>,
    /// Sign, Verify and the MAC operations: the algorithm and message type asked for.
    pub algorithm: AlgorithmFacts,
}

/// The algorithm a signing or MAC request names, so a policy can say "only PSS" or "only
/// DIGEST": `context.signing_algorithm`, `context.message_type`, `context.mac_algorithm`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlgorithmFacts {
    /// Sign and Verify.
    pub signing_algorithm: Option<crate::model::signing::SigningAlgorithm>,
    /// Sign and Verify.
    pub message_type: Option<crate::model::signing::MessageType>,
    /// GenerateMac and VerifyMac.
    pub mac_algorithm: Option<crate::model::signing::MacAlgorithm>,
}

/// What CreateKey asks for, so policies can limit who creates HSM objects or billable external
/// keys: `context.backend` (the backend instance) and `context.external` (linking an existing
/// external key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreateFacts<'a> {
    /// The backend instance the key would live in.
    pub backend: &'a str,
    /// Whether an existing external key is linked.
    pub external: bool,
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

/// One policy of the active set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyText {
    /// Its `@id`.
    pub id: String,
    /// Its source text.
    pub text: String,
}

/// The active policy set, as shown to administrators.
#[derive(Debug, Clone)]
pub struct PolicySnapshot {
    /// The set's version.
    pub version: String,
    /// The policies from files (grants are listed with their keys).
    pub policies: Vec<PolicyText>,
    /// The schema's text.
    pub schema: String,
}

/// What a reload loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloaded {
    /// The new set's version.
    pub version: String,
    /// The safety proofs' outcome: `proved`, `off`, `unavailable` (no solver), or
    /// `failed, loaded by force: <properties>`.
    pub proofs: String,
}

/// Decides requests. Default deny: anything not explicitly permitted is denied.
pub trait Authorizer: Send + Sync + std::fmt::Debug {
    /// Decides one request.
    fn decide(&self, request: &AuthzRequest<'_>) -> Decision;

    /// The active policy set.
    fn snapshot(&self) -> PolicySnapshot;

    /// Reloads the policy set from its origin; an invalid set, or one that fails its safety
    /// proofs (never-errors, lockout) without `force`, keeps the old one and the error lists
    /// every problem. May block for the proofs: call it off async threads.
    fn reload(&self, force: bool) -> Result<Reloaded, String>;

    /// Checks that a grant turns into valid policies (before it is stored).
    fn check_grant(&self, grant: &GrantRecord) -> Result<(), String>;

    /// Replaces the set of active grants (all of them, from the store).
    fn set_grants(&self, grants: &[GrantRecord]) -> Result<(), String>;
}
