//! Access key lookup for SigV4: derived signing keys cached per access key, date, region and
//! service. The secret is unsealed (one backend call) only to derive a key the cache lacks,
//! then dropped; a cached key is re-checked against the store every second, so a deleted
//! access key stops working within a second on every replica.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
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
    date: NaiveDate,
    region: String,
    service: String,
    info: Arc<AccessKeyInfo>,
    key: [u8; 32],
    checked: Instant,
}

impl Entry {
    fn is_for(&self, date: NaiveDate, region: &str, service: &str) -> bool {
        self.date == date && self.region == region && self.service == service
    }
}

/// The signing-key cache, by access key id (looked up by `&str`: no allocation per request),
/// then scope.
#[derive(Default)]
pub struct Credentials {
    cache: RwLock<HashMap<String, Vec<Entry>>>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.cache.read().map(|c| c.values().map(Vec::len).sum::<usize>()).unwrap_or(0);
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
    ) -> Result<Option<(Arc<AccessKeyInfo>, [u8; 32])>, Error> {
        let cached = self.cache.read().ok().and_then(|c| {
            c.get(access_key_id)?
                .iter()
                .find(|e| e.is_for(date, region, signing_service))
                .map(|e| (e.info.clone(), e.key, e.checked))
        });
        if let Some((info, key, checked)) = cached {
            if checked.elapsed() < RECHECK {
                return Ok(Some((info, key)));
            }
            if service.access_key_exists(access_key_id).await? {
                if let Ok(mut c) = self.cache.write()
                    && let Some(entries) = c.get_mut(access_key_id)
                {
                    entries.iter_mut().for_each(|e| e.checked = Instant::now());
                }
                return Ok(Some((info, key)));
            }
            self.forget(access_key_id);
            return Ok(None);
        }
        let Some(found) = service.access_key_secret_for_authentication(access_key_id).await? else {
            return Ok(None);
        };
        let key = sigv4::signing_key(&found.secret, date, region, signing_service);
        let info = Arc::new(found.info);
        if let Ok(mut c) = self.cache.write() {
            if c.values().map(Vec::len).sum::<usize>() >= MAX_ENTRIES {
                c.clear();
            }
            let entry = Entry {
                date,
                region: region.to_owned(),
                service: signing_service.to_owned(),
                info: info.clone(),
                key,
                checked: Instant::now(),
            };
            c.entry(access_key_id.to_owned()).or_default().push(entry);
        }
        Ok(Some((info, key)))
    }

    /// Drops every cached key of an access key (after DeleteAccessKey on this replica).
    pub fn forget(&self, access_key_id: &str) {
        if let Ok(mut c) = self.cache.write() {
            c.remove(access_key_id);
        }
    }
}
