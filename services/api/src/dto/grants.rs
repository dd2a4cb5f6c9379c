//! Grant bodies.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Encryption-context constraints of a grant (at most one kind).
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantConstraints {
    /// The request's context must be exactly this map.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_context_equals: Option<BTreeMap<String, String>>,
    /// The request's context must include these pairs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_context_subset: Option<BTreeMap<String, String>>,
}

/// CreateGrant's body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGrantRequest {
    /// `Keyward::User::"alice"`, `Keyward::Service::"ci"` or `Keyward::Group::"team"`.
    pub grantee: String,
    /// Operation names, e.g. `["Encrypt", "Decrypt"]`.
    pub operations: Vec<String>,
    /// Optional encryption-context constraints.
    #[serde(default)]
    pub constraints: Option<GrantConstraints>,
    /// Optional: the principal expected to retire the grant (`Keyward::User::"..."`); listed by
    /// the AWS API's ListRetirableGrants. Retiring is still a RevokeGrant decision.
    #[serde(default)]
    pub retiring_principal: Option<String>,
    /// `true`: answer the authorization decision and do nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// CreateGrant's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreateGrantResponse {
    /// The new grant's id.
    pub grant_id: String,
}

/// A grant.
#[derive(Debug, Serialize, ToSchema)]
pub struct Grant {
    /// Its id.
    pub grant_id: String,
    /// The key.
    pub key_id: String,
    /// The grantee's uid.
    pub grantee: String,
    /// Granted operations.
    pub operations: Vec<String>,
    /// Constraints.
    pub constraints: GrantConstraints,
    /// Who granted it.
    pub granted_by: String,
    /// When (RFC 3339).
    pub created_at: String,
    /// The principal expected to retire it, if one was named.
    pub retiring_principal: Option<String>,
}

/// ListGrants' answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListGrantsResponse {
    /// The key's active grants, oldest first.
    pub grants: Vec<Grant>,
}
