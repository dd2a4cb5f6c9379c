//! The audit trail's writer: group commit into durable storage, acknowledging each request
//! only after its record is committed.

mod memory;
mod writer;

pub use memory::MemoryAuditStore;
pub use writer::{AuditWriter, WriterConfig};

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::DateTime;
    use keyward_core::ports::audit::{AuditRecord, AuditSink};

    use super::*;

    fn record(n: usize) -> AuditRecord {
        AuditRecord {
            time: DateTime::from_timestamp(0, 0).unwrap_or_default(),
            request_id: format!("r{n}"),
            trace_id: String::new(),
            principal: "p".into(),
            principal_groups: vec![],
            action: "Encrypt".into(),
            resource: None,
            key_id: None,
            key_version: None,
            decision: Some(true),
            determining_policies: vec![],
            policy_version: None,
            policy_errors: vec![],
            outcome: "Success".into(),
            reason: None,
            encryption_context: Default::default(),
            source_ip: None,
            user_agent: None,
            justification: None,
            dry_run: false,
            duration_us: 0,
        }
    }

    #[tokio::test]
    async fn every_acknowledged_record_is_stored() {
        let store = Arc::new(MemoryAuditStore::new());
        let (writer, _task) = AuditWriter::spawn(store.clone(), WriterConfig::default());
        let tasks: Vec<_> = (0..500)
            .map(|n| {
                let w = writer.clone();
                tokio::spawn(async move { w.record(record(n)).await })
            })
            .collect();
        for t in tasks {
            assert!(matches!(t.await, Ok(Ok(()))));
        }
        assert_eq!(store.records().len(), 500);
    }

    #[tokio::test]
    async fn a_failing_store_fails_the_request() {
        let store = Arc::new(MemoryAuditStore::new());
        let (writer, _task) = AuditWriter::spawn(store.clone(), WriterConfig::default());
        store.set_failing(true);
        assert!(writer.record(record(1)).await.is_err());
        store.set_failing(false);
        assert!(writer.record(record(2)).await.is_ok(), "recovers when the store returns");
        assert_eq!(store.records().len(), 1);
    }
}
