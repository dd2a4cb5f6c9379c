//! Access key lookup for SigV4: derived signing keys cached per access key, date, region and
//! service. The secret is unsealed (one backend call) only to derive a key the cache lacks,
//! then dropped; a cached key is re-checked against the store every second, so a deleted
//! access key stops working within a second on every replica.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use keyward_core::Error;
use keyward_core::service::{AccessKeyInfo, KeyService};

use super::sigv4;

/// How long a cached signing key is trusted before the access key's existence is re-checked.
const RECHECK: Duration = Duration::from_secs(1);

/// Entries kept at most (a flood of scopes clears the cache rather than growing it).
const MAX_ENTRIES: usize = 10_000;

#[derive(Clone)]
struct Entry {
    info: AccessKeyInfo,
    key: [u8; 32],
    checked: Instant,
}

/// The signing-key cache.
#[derive(Default)]
pub struct Credentials {
    cache: RwLock<HashMap<(String, NaiveDate, String, String), Entry>>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.cache.read().map(|c| c.len()).unwrap_or(0);
        f.debug_struct("Credentials").field("cached_keys", &n).finish()
    }
}

impl Credentials {
    /// The access key and its signing key for a credential scope; `None` for an unknown or
    /// deleted access key.
    pub async fn signing_key(
        &self,
        service: &KeyService,
        access_key_id: &str,
        date: NaiveDate,
        region: &str,
        signing_service: &str,
    ) -> Result<Option<(AccessKeyInfo, [u8; 32])>, Error> {
        let id = (access_key_id.to_owned(), date, region.to_owned(), signing_service.to_owned());
        let cached = self.cache.read().ok().and_then(|c| c.get(&id).cloned());
        if let Some(e) = cached {
            if e.checked.elapsed() < RECHECK {
                return Ok(Some((e.info, e.key)));
            }
            if service.access_key_exists(access_key_id).await? {
                if let Ok(mut c) = self.cache.write()
                    && let Some(entry) = c.get_mut(&id)
                {
                    entry.checked = Instant::now();
                }
                return Ok(Some((e.info, e.key)));
            }
            self.forget(access_key_id);
            return Ok(None);
        }
        let Some(found) = service.access_key_secret_for_authentication(access_key_id).await? else {
            return Ok(None);
        };
        let key = sigv4::signing_key(&found.secret, date, region, signing_service);
        if let Ok(mut c) = self.cache.write() {
            if c.len() >= MAX_ENTRIES {
                c.clear();
            }
            c.insert(id, Entry { info: found.info.clone(), key, checked: Instant::now() });
        }
        Ok(Some((found.info, key)))
    }

    /// Drops every cached key of an access key (after DeleteAccessKey on this replica).
    pub fn forget(&self, access_key_id: &str) {
        if let Ok(mut c) = self.cache.write() {
            c.retain(|(id, ..), _| id != access_key_id);
        }
    }
}
