//! Who is calling: an authenticated principal with its groups.

use std::fmt;

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
