//! An audit sink that keeps records in memory and can be made to fail.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::ports::audit::{AuditError, AuditRecord, AuditRefusal, AuditSink};

/// Records of requests that changed nothing, in commit order.
#[derive(Debug, Default)]
pub struct MemorySink {
    records: Mutex<Vec<AuditRecord>>,
    failing: AtomicBool,
}

impl MemorySink {
    /// What was committed.
    pub fn records(&self) -> Vec<AuditRecord> {
        self.records.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Makes every record (and admission) fail, or succeed again.
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl AuditSink for MemorySink {
    fn admit(&self) -> Result<(), AuditRefusal> {
        if self.failing.load(Ordering::SeqCst) { Err(AuditRefusal::Unavailable) } else { Ok(()) }
    }

    async fn record(&self, record: AuditRecord) -> Result<(), AuditError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(AuditError("the memory sink is failing".into()));
        }
        self.records.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(record);
        Ok(())
    }
}
