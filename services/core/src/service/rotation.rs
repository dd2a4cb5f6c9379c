//! Rotation by usage. AES-GCM with random 96-bit nonces must stay well under 2^32 messages per
//! key (NIST SP 800-38D): a key rotates by itself once its primary version has encrypted
//! `rotate_after_encryptions` times (its own limit, its namespace's, or the default 2^30).
//! The count is the database's, summed over replicas as each flushes its counters (every
//! second); a replica rotates when the count plus the batch it just flushed reaches the limit,
//! so the next batch would cross it.

use std::collections::BTreeMap;

use super::KeyService;
use crate::error::Result;
use crate::gate::Permit;
use crate::model::ids::KeyId;
use crate::model::key::{KeyRecord, KeyState};
use crate::operation::{Action, Operation};

/// The default limit: 2^30 encryptions per primary version.
pub const DEFAULT_ROTATE_AFTER_ENCRYPTIONS: u64 = 1 << 30;

/// Limits a key or namespace may set.
pub const ROTATE_AFTER: std::ops::RangeInclusive<u64> = 1..=(1 << 32);

/// The default limit and the namespaces' own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationLimits {
    /// For keys and namespaces that set none.
    pub default: u64,
    /// Per namespace.
    pub namespaces: BTreeMap<String, u64>,
}

impl Default for RotationLimits {
    fn default() -> Self {
        Self { default: DEFAULT_ROTATE_AFTER_ENCRYPTIONS, namespaces: BTreeMap::new() }
    }
}

impl KeyService {
    /// Sets the default and per-namespace limits.
    #[must_use]
    pub fn with_rotation_limits(mut self, limits: RotationLimits) -> Self {
        self.rotation_limits = limits;
        self
    }

    /// The encryption count that rotates `key`.
    pub(super) fn rotate_after(&self, key: &KeyRecord) -> u64 {
        key.rotate_after_encryptions
            .or_else(|| self.rotation_limits.namespaces.get(key.namespace.as_str()).copied())
            .unwrap_or(self.rotation_limits.default)
    }

    /// After a flush of usage counters: rotates the key, as the system (audited), when
    /// `version` is still its primary version and `total` encryptions plus the `batch` just
    /// flushed reach its limit. `Ok(true)` when it rotated; a lost race with another replica's
    /// rotation is `Ok(false)`.
    pub async fn rotate_if_worn(&self, key: KeyId, version: u32, total: u64, batch: u64) -> Result<bool> {
        let Some(key) = self.store.key_current(key).await.map_err(super::store_err)? else { return Ok(false) };
        let limit = self.rotate_after(&key);
        let worn =
            key.primary_version == version && key.state == KeyState::Enabled && total.saturating_add(batch) >= limit;
        // Which keys rotate at all (spec, origin, backend) is `ensure_rotatable`'s to say.
        if !worn || self.ensure_rotatable(self.backends.lookup(&key.backend)?, &key).await.is_err() {
            return Ok(false);
        }
        let rotated = self
            .system(Operation::RotateKey, async |s, scope| {
                scope.note_key(key.id, Some(version));
                scope.details.insert("trigger".into(), "rotate_after_encryptions".into());
                scope.details.insert("encryptions".into(), total.to_string());
                scope.details.insert("rotate_after_encryptions".into(), limit.to_string());
                let permit = Permit::new(Action::Op(Operation::RotateKey), Some(key.id));
                s.rotate(scope, permit, key).await.map(|_| ())
            })
            .await;
        match rotated {
            Ok(()) => Ok(true),
            // Another replica rotated first (the revision check refused this one).
            Err(e) if e.code() == crate::error::ErrorCode::Conflict => Ok(false),
            Err(e) => Err(e),
        }
    }
}
