//! A small read-through cache of key records and version material, so the hot path (every
//! Encrypt and Decrypt) does not query the database. Writes through this store invalidate
//! at once; changes made by another replica are seen within the key TTL. Versions are
//! immutable until destroyed, and destruction invalidates them here.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use keyward_core::model::ids::KeyId;
use keyward_core::model::key::KeyRecord;
use keyward_core::model::version::VersionRecord;

/// Most entries of each kind before the cache starts over.
const CAPACITY: usize = 10_000;

#[derive(Debug)]
pub(crate) struct KeyCache {
    ttl: Duration,
    keys: Mutex<HashMap<KeyId, (Instant, KeyRecord)>>,
    versions: Mutex<HashMap<(KeyId, u32), VersionRecord>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl KeyCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self { ttl, keys: Mutex::default(), versions: Mutex::default() }
    }

    pub(crate) fn key(&self, id: KeyId) -> Option<KeyRecord> {
        let keys = lock(&self.keys);
        keys.get(&id).filter(|(at, _)| at.elapsed() < self.ttl).map(|(_, k)| k.clone())
    }

    pub(crate) fn put_key(&self, key: &KeyRecord) {
        if self.ttl.is_zero() {
            return;
        }
        let mut keys = lock(&self.keys);
        if keys.len() >= CAPACITY {
            keys.clear();
        }
        keys.insert(key.id, (Instant::now(), key.clone()));
    }

    pub(crate) fn forget_key(&self, id: KeyId) {
        lock(&self.keys).remove(&id);
    }

    /// Drops every cached key record (versions are immutable until destroyed, and destroying
    /// is announced per key).
    pub(crate) fn clear_keys(&self) {
        lock(&self.keys).clear();
    }

    pub(crate) fn version(&self, id: KeyId, version: u32) -> Option<VersionRecord> {
        lock(&self.versions).get(&(id, version)).cloned()
    }

    pub(crate) fn put_version(&self, id: KeyId, v: &VersionRecord) {
        if self.ttl.is_zero() || v.destroyed {
            return;
        }
        let mut versions = lock(&self.versions);
        if versions.len() >= CAPACITY {
            versions.clear();
        }
        versions.insert((id, v.version), v.clone());
    }

    pub(crate) fn forget_versions(&self, id: KeyId) {
        lock(&self.versions).retain(|(k, _), _| *k != id);
    }
}
