//! The authorization gate. A [`Permit`] exists only as the result of an allowing policy
//! decision (or, for background work, of the system itself), and every port method that
//! changes a key or touches key material demands one, for that key. Code without a decision
//! cannot name the operation.
//!
//! Outside this crate the only way in is an operation run by [`KeyService::audited`] or
//! [`KeyService::dry_run`], which decide, record and then act:
//!
//! ```
//! use keyward_core::service::{EncryptInput, KeyService, RequestStart};
//! async fn handler(service: &KeyService, start: RequestStart, input: EncryptInput) {
//!     let _ = service.audited(start, async |scope| service.encrypt(scope, input).await).await;
//! }
//! ```
//!
//! A handler cannot mint a permit, reach a backend or the store, or open a scope that escapes
//! the audited path; each of these fails to compile:
//!
//! ```compile_fail
//! let _ = keyward_core::gate::Permit::new(keyward_core::operation::Action::ReEncryptTo, None);
//! ```
//! ```compile_fail
//! fn reach(service: &keyward_core::service::KeyService) { let _ = service.backends(); }
//! ```
//! ```compile_fail
//! fn reach(service: &keyward_core::service::KeyService) { let _ = service.store(); }
//! ```
//! ```compile_fail
//! use keyward_core::service::{KeyService, RequestStart};
//! fn open(service: &KeyService, start: RequestStart) { let _ = service.begin(start); }
//! ```
//!
//! [`KeyService::audited`]: crate::service::KeyService::audited
//! [`KeyService::dry_run`]: crate::service::KeyService::dry_run

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

    /// Checks the permit names `key`: every store write calls this, so a permit for one key
    /// cannot change another.
    pub fn ensure_key(&self, key: KeyId) -> Result<(), String> {
        if self.key == Some(key) {
            Ok(())
        } else {
            Err(format!(
                "a permit for {} on {:?} cannot change key {key}",
                self.action,
                self.key.map(|k| k.to_string())
            ))
        }
    }
}
