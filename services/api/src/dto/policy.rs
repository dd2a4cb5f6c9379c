//! Dry-run answers, Authorize, GetPolicies and ReloadPolicies bodies.

use std::collections::BTreeMap;

use keyward_core::service::DryRunAnswer;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The answer of a dry run or an Authorize call: nothing was done.
#[derive(Debug, Serialize, ToSchema)]
pub struct DryRunResponse {
    /// `Allow` or `Deny`.
    pub decision: String,
    /// Ids of the policies that determined the decision.
    pub determining_policies: Vec<String>,
    /// Policy evaluation errors (any error denies).
    pub errors: Vec<String>,
    /// The policy set's version.
    pub policy_version: String,
}

impl From<DryRunAnswer> for DryRunResponse {
    fn from(a: DryRunAnswer) -> Self {
        Self {
            decision: if a.allowed { "Allow" } else { "Deny" }.to_owned(),
            determining_policies: a.determining_policies,
            errors: a.errors,
            policy_version: a.policy_version,
        }
    }
}

/// The request context of an Authorize question.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeContext {
    /// The encryption context.
    #[serde(default)]
    pub encryption_context: Option<BTreeMap<String, String>>,
    /// The caller's address (default: yours).
    #[serde(default)]
    pub source_ip: Option<String>,
    /// A justification, as `x-keyward-justification` would carry it.
    #[serde(default)]
    pub justification: Option<String>,
    /// Sign and Verify: the signing algorithm (`context.signing_algorithm`).
    #[serde(default)]
    pub signing_algorithm: Option<String>,
    /// Sign and Verify: `RAW` or `DIGEST` (`context.message_type`).
    #[serde(default)]
    pub message_type: Option<String>,
    /// GenerateMac and VerifyMac: the MAC algorithm (`context.mac_algorithm`).
    #[serde(default)]
    pub mac_algorithm: Option<String>,
}

/// Authorize's body: may `principal` do `action` on `resource` in `context`?
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeRequest {
    /// A principal uid (`Keyward::User::"alice"`, `Keyward::Service::"ci"`); default: the caller.
    #[serde(default)]
    pub principal: Option<String>,
    /// The groups of `principal` when it is not the caller.
    #[serde(default)]
    pub groups: Option<Vec<String>>,
    /// An action: `Encrypt`, or `Keyward::Action::"Encrypt"`.
    pub action: String,
    /// `Keyward::Key::"<id or alias/NAME>"` or `Keyward::Namespace::"<name>"`.
    pub resource: String,
    /// The request context.
    #[serde(default)]
    pub context: Option<AuthorizeContext>,
}

/// One policy of the active set.
#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyDocument {
    /// Its `@id`.
    pub id: String,
    /// Its text.
    pub text: String,
}

/// GetPolicies' answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct GetPoliciesResponse {
    /// The active set's version (content hash, plus the git commit of a checkout).
    pub policy_version: String,
    /// The policies from files; grants are listed per key by ListGrants.
    pub policies: Vec<PolicyDocument>,
    /// The Cedar schema.
    pub schema: String,
}

/// ReloadPolicies' body (may be empty).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReloadPoliciesRequest {
    /// Load a set that fails its safety proofs (never-errors, lockout): members of `admins`
    /// only, and audited.
    #[serde(default)]
    pub force: bool,
}

/// ReloadPolicies' answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReloadPoliciesResponse {
    /// The version now active.
    pub policy_version: String,
    /// The safety proofs: `proved`, `off`, `unavailable` (no solver on the server), or
    /// `failed, loaded by force: <properties>`.
    pub proofs: String,
}
