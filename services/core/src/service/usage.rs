//! GetKeyUsage: what each version of a key is used for, from its counters and the audit
//! trail, and which versions nothing has decrypted with lately (safe to retire).

use chrono::{DateTime, Utc};

use super::{KeyService, Scope};
use crate::error::{Error, Result};
use crate::model::context::EncryptionContext;
use crate::model::ids::{KeyId, KeyRef, Namespace};
use crate::model::key::KeyRecord;
use crate::operation::{Action, Operation};

/// The longest window GetKeyUsage reads (the trail's cost is bounded by it).
pub const MAX_USAGE_DAYS: u32 = 366;

/// Most keys in one page of GetNamespaceUsage.
pub const MAX_USAGE_KEYS: u64 = 100;

/// GetNamespaceUsage's answer: one report per key, by key id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceUsage {
    /// The namespace.
    pub namespace: Namespace,
    /// The window, in days.
    pub days: u32,
    /// This page's keys.
    pub keys: Vec<UsageReport>,
    /// The cursor of the next page, if there may be one.
    pub next_token: Option<String>,
}

/// One version's usage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionUsage {
    /// The version.
    pub version: u32,
    /// Encryptions since the version was made (the version's counter).
    pub encryptions: u64,
    /// Decryptions since the version was made (the version's counter).
    pub decryptions: u64,
    /// Decryptions recorded in the window.
    pub recent_decryptions: u64,
    /// The first recorded use in the window.
    pub first_used_at: Option<DateTime<Utc>>,
    /// The last use (the counter's, or the trail's if later).
    pub last_used_at: Option<DateTime<Utc>>,
    /// Distinct principals that used it in the window.
    pub principals: u64,
    /// No decryption in the window and not the primary version (a destroyed version is).
    pub safe_to_retire: bool,
}

/// GetKeyUsage's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageReport {
    /// The key.
    pub key_id: KeyId,
    /// The window, in days.
    pub days: u32,
    /// Oldest first.
    pub versions: Vec<VersionUsage>,
    /// The highest minimum decryption version that would refuse no decryption seen in the
    /// window: every version below it is safe to retire (never above the primary version,
    /// never below the current minimum).
    pub recommended_min_decryption_version: u32,
}

impl KeyService {
    /// GetKeyUsage over the last `days` days.
    pub async fn get_key_usage(&self, scope: &mut Scope, key: &KeyRef, days: u32) -> Result<UsageReport> {
        check_days(days)?;
        let key = self.resolve(scope, key).await?;
        self.authorize_key(scope, Action::Op(Operation::GetKeyUsage), &key, &EncryptionContext::default())?;
        self.usage_report(&key, days).await
    }

    /// GetNamespaceUsage: the report of each key in a namespace, a page of at most
    /// [`MAX_USAGE_KEYS`] keys at a time (each key costs one read of the trail).
    pub async fn get_namespace_usage(
        &self,
        scope: &mut Scope,
        namespace: &Namespace,
        days: u32,
        next_token: Option<&str>,
        limit: u64,
    ) -> Result<NamespaceUsage> {
        check_days(days)?;
        if !(1..=MAX_USAGE_KEYS).contains(&limit) {
            return Err(Error::invalid(format!("`limit` must be 1-{MAX_USAGE_KEYS}")));
        }
        let after =
            next_token.map(str::parse::<KeyId>).transpose().map_err(|_| Error::invalid("invalid `next_token`"))?;
        self.authorize_namespace(scope, Action::Op(Operation::GetNamespaceUsage), namespace)?;
        let page = self.store.list_keys(Some(namespace), after, limit).await.map_err(super::store_err)?;
        let next_token = (page.len() as u64 == limit).then(|| page.last().map(|k| k.id.to_string())).flatten();
        let mut keys = Vec::with_capacity(page.len());
        for key in &page {
            keys.push(self.usage_report(key, days).await?);
        }
        Ok(NamespaceUsage { namespace: namespace.clone(), days, keys, next_token })
    }

    async fn usage_report(&self, key: &KeyRecord, days: u32) -> Result<UsageReport> {
        let since = self.clock.now() - chrono::Duration::days(i64::from(days));
        let activity =
            self.reader()?.version_activity(key.id, since).await.map_err(|e| Error::audit_unavailable(e.0))?;
        let versions = self.store.versions(key.id).await.map_err(super::store_err)?;
        let versions: Vec<VersionUsage> = versions
            .into_iter()
            .map(|v| {
                let seen = activity.iter().find(|a| a.version == v.version).cloned().unwrap_or_default();
                VersionUsage {
                    version: v.version,
                    encryptions: v.encryptions,
                    decryptions: v.decryptions,
                    recent_decryptions: seen.decryptions,
                    first_used_at: seen.first_used_at,
                    last_used_at: v.last_used_at.max(seen.last_used_at),
                    principals: seen.principals,
                    safe_to_retire: v.destroyed || (v.version != key.primary_version && seen.decryptions == 0),
                }
            })
            .collect();
        let mut recommended = key.min_decryption_version;
        for v in versions.iter().filter(|v| v.version >= key.min_decryption_version) {
            if v.version >= key.primary_version || !v.safe_to_retire {
                break;
            }
            recommended = v.version + 1;
        }
        Ok(UsageReport { key_id: key.id, days, versions, recommended_min_decryption_version: recommended })
    }
}

fn check_days(days: u32) -> Result<()> {
    if (1..=MAX_USAGE_DAYS).contains(&days) {
        Ok(())
    } else {
        Err(Error::invalid(format!("`days` must be 1-{MAX_USAGE_DAYS}")))
    }
}
