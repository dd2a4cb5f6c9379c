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

/// Counts taken for a flush: back into the buffer when dropped, unless [`Restore::written`].
pub(crate) struct Restore<'a> {
    buffer: &'a UsageBuffer,
    pending: Option<HashMap<(KeyId, u32), Pending>>,
}

impl<'a> Restore<'a> {
    pub(crate) fn new(buffer: &'a UsageBuffer, pending: HashMap<(KeyId, u32), Pending>) -> Self {
        Self { buffer, pending: Some(pending) }
    }

    pub(crate) fn pending(&self) -> impl Iterator<Item = (&(KeyId, u32), &Pending)> {
        self.pending.iter().flatten()
    }

    /// The counts are in the database: nothing to put back.
    pub(crate) fn written(mut self) {
        self.pending = None;
    }
}

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        if let Some(pending) = self.pending.take() {
            self.buffer.restore(pending);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_of_an_abandoned_flush_go_back_and_written_ones_do_not() {
        let buffer = UsageBuffer::default();
        let key = KeyId(uuid::Uuid::nil());
        for _ in 0..3 {
            buffer.add(key, 1, Usage::Encrypt, DateTime::<Utc>::MIN_UTC);
        }
        // A flush that is dropped midway (its task aborted, its request cancelled).
        drop(Restore::new(&buffer, buffer.take()));
        buffer.add(key, 1, Usage::Decrypt, DateTime::<Utc>::MIN_UTC);
        let pending = buffer.take();
        assert_eq!((pending[&(key, 1)].encryptions, pending[&(key, 1)].decryptions), (3, 1), "nothing lost");
        Restore::new(&buffer, pending).written();
        assert!(buffer.take().is_empty(), "written counts are not counted twice");
    }
}
