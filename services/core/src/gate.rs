//! The authorization gate. A [`Permit`] exists only as the result of an allowing policy
//! decision (or, for background work, of the system itself), and every port method that
//! changes a key or touches key material demands one. Code without a decision cannot name
//! the operation.

use crate::model::ids::KeyId;
use crate::operation::Action;

/// Proof that an action was allowed, and for which key.
#[derive(Debug)]
pub struct Permit {
    action: Action,
    key: Option<KeyId>,
}

impl Permit {
    /// Only the domain mints permits: after an Allow decision, or for system work.
    pub(crate) fn new(action: Action, key: Option<KeyId>) -> Self {
        Self { action, key }
    }

    /// The allowed action.
    pub fn action(&self) -> Action {
        self.action
    }

    /// The key the action was allowed on, if it names one.
    pub fn key(&self) -> Option<KeyId> {
        self.key
    }
}
