//! Grants: delegations of named operations on one key to one principal or group, optionally
//! constrained by the encryption context. The authorizer turns each into Cedar policies.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::model::ids::KeyId;
use crate::operation::Action;

/// The operations a grant may name: using and reading a key.
pub const GRANTABLE: [&str; 9] = [
    "Encrypt",
    "Decrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "ReEncryptFrom",
    "ReEncryptTo",
    "DescribeKey",
    "ListKeyVersions",
    "ListGrants",
];

/// Most operations, context pairs and grants per key accepted.
const MAX_PAIRS: usize = 32;

/// What the encryption context of a request must look like for the grant to apply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantConstraints {
    /// The context must be exactly this map.
    pub encryption_context_equals: Option<BTreeMap<String, String>>,
    /// The context must include these pairs (it may hold more).
    pub encryption_context_subset: Option<BTreeMap<String, String>>,
}

impl GrantConstraints {
    /// Whether there is any constraint.
    pub fn is_empty(&self) -> bool {
        self.encryption_context_equals.is_none() && self.encryption_context_subset.is_none()
    }

    /// A context that satisfies the constraint (for checking the granter holds what it grants).
    pub fn witness(&self) -> BTreeMap<String, String> {
        let mut map = self.encryption_context_subset.clone().unwrap_or_default();
        if let Some(eq) = &self.encryption_context_equals {
            map.clone_from(eq);
        }
        map
    }
}

/// A grant as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRecord {
    /// The grant id.
    pub id: Uuid,
    /// The key it applies to.
    pub key_id: KeyId,
    /// The grantee's entity uid: `Keyward::User::"alice"`, `Keyward::Service::"x"` or
    /// `Keyward::Group::"g"` (members of the group).
    pub grantee: String,
    /// The granted actions.
    pub operations: Vec<Action>,
    /// Encryption-context constraints.
    pub constraints: GrantConstraints,
    /// The principal that created it.
    pub granted_by: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// A principal uid named as the one expected to retire it (listed by ListRetirableGrants;
    /// retiring is still a RevokeGrant decision).
    pub retiring_principal: Option<String>,
}

impl GrantRecord {
    /// The Cedar policy id of a constrained grant, or the prefix of its template links.
    pub fn policy_id(&self) -> String {
        format!("grant:{}", self.id)
    }
}

/// Parses and checks requested operations.
pub fn parse_operations(names: &[String]) -> Result<Vec<Action>> {
    if names.is_empty() || names.len() > GRANTABLE.len() {
        return Err(Error::invalid(format!("`operations` must name 1-{} operations", GRANTABLE.len())));
    }
    let mut ops = Vec::with_capacity(names.len());
    for name in names {
        if !GRANTABLE.contains(&name.as_str()) {
            return Err(Error::invalid(format!(
                "operation `{}` cannot be granted; grantable: {}",
                crate::model::ids::truncate(name),
                GRANTABLE.join(", ")
            )));
        }
        let action: Action = name.parse().map_err(|()| Error::invalid("unknown operation"))?;
        if !ops.contains(&action) {
            ops.push(action);
        }
    }
    Ok(ops)
}

/// Checks constraint maps: bounded, non-empty keys, and not both kinds at once.
pub fn check_constraints(c: &GrantConstraints) -> Result<()> {
    if c.encryption_context_equals.is_some() && c.encryption_context_subset.is_some() {
        return Err(Error::invalid("give `encryption_context_equals` or `encryption_context_subset`, not both"));
    }
    for map in [&c.encryption_context_equals, &c.encryption_context_subset].into_iter().flatten() {
        if map.len() > MAX_PAIRS {
            return Err(Error::invalid(format!("a constraint holds at most {MAX_PAIRS} pairs")));
        }
        if map.keys().any(|k| k.is_empty() || k.len() > 256) || map.values().any(|v| v.len() > 1024) {
            return Err(Error::invalid("constraint keys must be 1-256 characters and values at most 1024"));
        }
    }
    if c.encryption_context_subset.as_ref().is_some_and(BTreeMap::is_empty) {
        return Err(Error::invalid("`encryption_context_subset` must name at least one pair"));
    }
    Ok(())
}
