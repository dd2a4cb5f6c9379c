//! Who is calling: an authenticated principal with its groups.

use std::fmt;

use crate::error::Error;

/// The group whose members the lockout proof keeps able to delete keys and reload policies,
/// and who alone may force a reload past the policy proofs.
pub const ADMINS_GROUP: &str = "admins";

/// The kind of principal, which picks its Cedar entity type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrincipalKind {
    /// A person: `Keyward::User`.
    User,
    /// A machine identity: `Keyward::Service`.
    Service,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    /// User or service.
    pub kind: PrincipalKind,
    /// The token's subject.
    pub id: String,
    /// Group names from the token's groups claim.
    pub groups: Vec<String>,
}

impl Principal {
    /// A principal uid (`Keyward::User::"alice"` or `Keyward::Service::"ci"`) with its groups.
    pub fn from_uid(uid: &str, groups: Vec<String>) -> Result<Self, Error> {
        let id_of = |ty: &str| {
            uid.strip_prefix(ty)?
                .strip_prefix("::\"")?
                .strip_suffix('"')
                .filter(|id| !id.is_empty() && id.len() <= 256 && !id.contains(['"', '\\']))
        };
        let (kind, id) = if let Some(id) = id_of("Keyward::User") {
            (PrincipalKind::User, id)
        } else if let Some(id) = id_of("Keyward::Service") {
            (PrincipalKind::Service, id)
        } else {
            return Err(Error::invalid("`principal` must be Keyward::User::\"<id>\" or Keyward::Service::\"<id>\""));
        };
        if groups.len() > 256 {
            return Err(Error::invalid("at most 256 `groups`"));
        }
        if let Some(g) = groups.iter().find(|g| g.is_empty() || g.len() > 256 || g.contains(['"', '\\'])) {
            return Err(Error::invalid(format!(
                "group `{}` is invalid: 1-256 characters, no quotes or backslashes",
                g.chars().take(64).collect::<String>()
            )));
        }
        Ok(Self { kind, id: id.to_owned(), groups })
    }

    /// The system principal that runs background work (deletion, scheduled rotation).
    pub fn system() -> Self {
        Self { kind: PrincipalKind::Service, id: "keyward:system".into(), groups: Vec::new() }
    }

    /// The Cedar entity type name.
    pub fn entity_type(&self) -> &'static str {
        match self.kind {
            PrincipalKind::User => "Keyward::User",
            PrincipalKind::Service => "Keyward::Service",
        }
    }
}

impl fmt::Display for Principal {
    /// The entity uid, e.g. `Keyward::User::"alice"`, as stored in owner fields and audit records.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}::{:?}", self.entity_type(), self.id)
    }
}
