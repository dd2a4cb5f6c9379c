//! CreateAccessKey, ListAccessKeys and DeleteAccessKey bodies.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// CreateAccessKey's body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccessKeyRequest {
    /// The principal requests signed with the key act as: `Keyward::User::"alice"` or
    /// `Keyward::Service::"ci"`.
    #[schema(example = "Keyward::User::\"alice\"")]
    pub principal: String,
    /// The principal's groups, as a token's groups claim would give them.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Where CreateKey through the AWS-compatible API puts keys that name no namespace.
    #[schema(example = "payments")]
    pub default_namespace: String,
    /// `true`: answer the authorization decision and do nothing.
    #[serde(default)]
    pub dry_run: Option<bool>,
}

/// An access key (never with its secret, except in CreateAccessKey's answer).
#[derive(Debug, Serialize, ToSchema)]
pub struct AccessKey {
    /// The access key id (20 characters of `A-Z2-7`, starting `KW`).
    pub access_key_id: String,
    /// The principal it acts as.
    pub principal: String,
    /// The principal's groups.
    pub groups: Vec<String>,
    /// Its default namespace.
    pub default_namespace: String,
    /// When it was issued (RFC 3339).
    pub created_at: String,
}

/// CreateAccessKey's answer: the only time the secret is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreateAccessKeyResponse {
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key: store it now, it is never shown again.
    pub secret_access_key: String,
    /// The principal it acts as.
    pub principal: String,
    /// The principal's groups.
    pub groups: Vec<String>,
    /// Its default namespace.
    pub default_namespace: String,
    /// When it was issued (RFC 3339).
    pub created_at: String,
}

/// ListAccessKeys' query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListAccessKeysQuery {
    /// `true`: answer the authorization decision and do nothing.
    #[serde(default)]
    pub dry_run: Option<bool>,
    /// Page size, 1-1000 (default 100).
    pub limit: Option<u64>,
    /// The cursor from the previous page.
    pub next_token: Option<String>,
}

/// ListAccessKeys' answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListAccessKeysResponse {
    /// The page, by access key id.
    pub access_keys: Vec<AccessKey>,
    /// Pass as `next_token` for the next page; absent on the last page.
    pub next_token: Option<String>,
}
