//! Per-version usage counters, buffered in memory and flushed in one transaction, so the
//! hot path does not write a row per encryption.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use keyward_core::model::ids::KeyId;
use keyward_core::model::version::Usage;

/// Counts not yet written.
#[derive(Debug, Default)]
pub(crate) struct UsageBuffer(Mutex<HashMap<(KeyId, u32), Pending>>);

#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Pending {
    pub encryptions: i64,
    pub decryptions: i64,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl UsageBuffer {
    pub(crate) fn add(&self, id: KeyId, version: u32, usage: Usage, at: DateTime<Utc>) {
        let mut map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let p = map.entry((id, version)).or_default();
        match usage {
            Usage::Encrypt => p.encryptions += 1,
            Usage::Decrypt => p.decryptions += 1,
        }
        p.last_used_at = Some(p.last_used_at.map_or(at, |t| t.max(at)));
    }

    pub(crate) fn take(&self) -> HashMap<(KeyId, u32), Pending> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Puts counts back after a failed flush.
    pub(crate) fn restore(&self, pending: HashMap<(KeyId, u32), Pending>) {
        let mut map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (k, p) in pending {
            let e = map.entry(k).or_default();
            e.encryptions += p.encryptions;
            e.decryptions += p.decryptions;
            e.last_used_at = e.last_used_at.max(p.last_used_at);
        }
    }
}
