//! An in-memory audit store: for tests and for benchmarks that isolate the request path.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use keyward_core::ports::audit::{AuditError, AuditRecord, AuditStore};

/// Keeps records in memory; can be told to fail, to test fail-closed behaviour.
#[derive(Debug, Default)]
pub struct MemoryAuditStore {
    records: Mutex<Vec<AuditRecord>>,
    failing: AtomicBool,
}

impl MemoryAuditStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every append fail (true) or succeed (false).
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    /// The records from index `start` on, and the count so far (the next `start`).
    pub fn records_from(&self, start: usize) -> (Vec<AuditRecord>, usize) {
        let records = self.records.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        (records.get(start..).map(<[AuditRecord]>::to_vec).unwrap_or_default(), records.len())
    }

    /// A copy of the records so far.
    pub fn records(&self) -> Vec<AuditRecord> {
        self.records.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

#[async_trait::async_trait]
impl AuditStore for MemoryAuditStore {
    async fn append(&self, records: &[AuditRecord]) -> Result<(), AuditError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(AuditError("store refuses records".into()));
        }
        self.records.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend_from_slice(records);
        Ok(())
    }

    async fn ping(&self) -> Result<(), AuditError> {
        if self.failing.load(Ordering::SeqCst) { Err(AuditError("store down".into())) } else { Ok(()) }
    }
}
