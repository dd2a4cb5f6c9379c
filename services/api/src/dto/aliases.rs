//! Alias bodies.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// CreateAlias' body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAliasRequest {
    /// `true`: answer the authorization decision and do nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// The key (id or alias) the alias points to.
    pub target_key_id: String,
}

/// An alias.
#[derive(Debug, Serialize, ToSchema)]
pub struct Alias {
    /// `alias/NAME`.
    pub alias_name: String,
    /// The key it points to.
    pub target_key_id: String,
}

/// ListAliases' query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListAliasesQuery {
    /// `true`: answer the authorization decision and do nothing.
    #[serde(default)]
    pub dry_run: Option<bool>,
    /// Only aliases of this key.
    pub key_id: Option<String>,
    /// Page size, 1-1000 (default 100).
    pub limit: Option<u64>,
    /// The cursor from the previous page.
    pub next_token: Option<String>,
}

/// ListAliases' answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListAliasesResponse {
    /// The page.
    pub aliases: Vec<Alias>,
    /// Pass as `next_token` for the next page; absent on the last page.
    pub next_token: Option<String>,
}
