//! A small read-through cache of key records and version material, so the hot path (every
//! Encrypt and Decrypt) does not query the database. Writes through this store invalidate
//! at once; changes made by another replica are seen when announced, or within the key TTL.
//! Versions are immutable until destroyed, and destruction invalidates them here.
//!
//! A read that started before an invalidation must not put back what it read: every
//! invalidation advances an epoch, a loader notes the epoch before it queries, and its result
//! is kept only when no invalidation came in between.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// Advanced by every invalidation (under the lock of what it invalidates).
    epoch: AtomicU64,
}

/// The epoch a loader saw before it queried the database.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Epoch(u64);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl KeyCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self { ttl, keys: Mutex::default(), versions: Mutex::default(), epoch: AtomicU64::new(0) }
    }

    /// Noted before a database read whose result may be cached.
    pub(crate) fn epoch(&self) -> Epoch {
        Epoch(self.epoch.load(Ordering::SeqCst))
    }

    fn invalidated(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    fn current(&self, seen: Epoch) -> bool {
        self.epoch.load(Ordering::SeqCst) == seen.0
    }

    pub(crate) fn key(&self, id: KeyId) -> Option<KeyRecord> {
        let keys = lock(&self.keys);
        keys.get(&id).filter(|(at, _)| at.elapsed() < self.ttl).map(|(_, k)| k.clone())
    }

    /// Keeps a record read after `seen`, unless something was invalidated since.
    pub(crate) fn put_key(&self, key: &KeyRecord, seen: Epoch) {
        if self.ttl.is_zero() {
            return;
        }
        let mut keys = lock(&self.keys);
        if !self.current(seen) {
            return;
        }
        if keys.len() >= CAPACITY {
            keys.clear();
        }
        keys.insert(key.id, (Instant::now(), key.clone()));
    }

    pub(crate) fn forget_key(&self, id: KeyId) {
        let mut keys = lock(&self.keys);
        self.invalidated();
        keys.remove(&id);
    }

    /// Drops every cached key record (versions are immutable until destroyed, and destroying
    /// is announced per key).
    pub(crate) fn clear_keys(&self) {
        let mut keys = lock(&self.keys);
        self.invalidated();
        keys.clear();
    }

    pub(crate) fn version(&self, id: KeyId, version: u32) -> Option<VersionRecord> {
        lock(&self.versions).get(&(id, version)).cloned()
    }

    pub(crate) fn put_version(&self, id: KeyId, v: &VersionRecord, seen: Epoch) {
        if self.ttl.is_zero() || v.destroyed {
            return;
        }
        let mut versions = lock(&self.versions);
        if !self.current(seen) {
            return;
        }
        if versions.len() >= CAPACITY {
            versions.clear();
        }
        versions.insert((id, v.version), v.clone());
    }

    pub(crate) fn forget_versions(&self, id: KeyId) {
        let mut versions = lock(&self.versions);
        self.invalidated();
        versions.retain(|(k, _), _| *k != id);
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use keyward_core::model::ids::Namespace;
    use keyward_core::model::key::KeySpec;
    use zeroize::Zeroizing;

    use super::*;

    fn key() -> KeyRecord {
        let ns = Namespace::parse("tests").unwrap_or_else(|e| unreachable!("{e}"));
        KeyRecord::new(KeyId(uuid::Uuid::new_v4()), ns, "o".into(), "software".into(), KeySpec::Aes256, Utc::now())
    }

    #[test]
    fn a_read_older_than_an_invalidation_is_not_kept() {
        let cache = KeyCache::new(Duration::from_secs(600));
        let (k, other) = (key(), key());
        // Read before another replica's change was announced, put back after it.
        let seen = cache.epoch();
        cache.forget_key(other.id);
        cache.put_key(&k, seen);
        assert!(cache.key(k.id).is_none(), "a stale record came back after the invalidation");
        let seen = cache.epoch();
        cache.clear_keys();
        cache.put_key(&k, seen);
        assert!(cache.key(k.id).is_none());
        let v = VersionRecord::new(1, Zeroizing::new(vec![1; 8]), Utc::now());
        let seen = cache.epoch();
        cache.forget_versions(k.id);
        cache.put_version(k.id, &v, seen);
        assert!(cache.version(k.id, 1).is_none());
        // With nothing in between, reads are kept.
        let seen = cache.epoch();
        cache.put_key(&k, seen);
        cache.put_version(k.id, &v, seen);
        assert!(cache.key(k.id).is_some() && cache.version(k.id, 1).is_some());
    }
}
