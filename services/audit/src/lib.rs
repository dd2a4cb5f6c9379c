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
    use keyward_core::ports::audit::{AuditError, AuditRecord, AuditRefusal, AuditSink, AuditStore};

    use super::*;

    fn record(n: usize) -> AuditRecord {
        keyward_core::testing::audit_record(format!("r{n}"), DateTime::from_timestamp(0, 0).unwrap_or_default())
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

    #[tokio::test]
    async fn a_failing_store_refuses_admission_until_it_recovers() {
        let store = Arc::new(MemoryAuditStore::new());
        let (writer, _task) = AuditWriter::spawn(store.clone(), WriterConfig::default());
        assert_eq!(writer.admit(), Ok(()));
        store.set_failing(true);
        assert!(writer.record(record(1)).await.is_err());
        assert_eq!(writer.admit(), Err(AuditRefusal::Unavailable), "no request runs while the store fails");
        store.set_failing(false);
        assert!(admitted_within_2s(&writer).await, "the probe notices recovery without any request");
    }

    /// Whether the writer admits requests again within two seconds (its probe's work).
    async fn admitted_within_2s(writer: &AuditWriter) -> bool {
        for _ in 0..40 {
            if writer.admit().is_ok() {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        false
    }

    /// A store whose appends wait until released.
    #[derive(Debug, Default)]
    struct Stalled(tokio::sync::Notify);

    #[async_trait::async_trait]
    impl AuditStore for Stalled {
        async fn append(&self, _: &[AuditRecord]) -> Result<(), AuditError> {
            self.0.notified().await;
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_full_queue_refuses_admission_and_a_stalled_commit_times_out() {
        let store = Arc::new(Stalled::default());
        let config = WriterConfig {
            queue: 2,
            max_batch: 1,
            commit_timeout: std::time::Duration::from_millis(200),
            ..WriterConfig::default()
        };
        let (writer, _task) = AuditWriter::spawn(store.clone(), config);
        let mut pending = Vec::new();
        for n in 0..3 {
            let w = writer.clone();
            pending.push(tokio::spawn(async move { w.record(record(n)).await }));
            // Let the writer take the first record into its (stalled) commit.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        // One record is in the stalled commit, two fill the queue.
        assert_eq!(writer.admit(), Err(AuditRefusal::QueueFull));
        for p in pending {
            assert!(matches!(p.await, Ok(Err(_))), "a commit past the timeout fails its requests");
        }
    }

    #[tokio::test]
    async fn lanes_share_the_load_and_a_failing_lane_is_avoided() {
        let (a, b) = (Arc::new(MemoryAuditStore::new()), Arc::new(MemoryAuditStore::new()));
        let lanes: Vec<Arc<dyn AuditStore>> = vec![a.clone(), b.clone()];
        let (writer, _task) = AuditWriter::spawn_lanes(lanes, WriterConfig::default());
        for n in 0..100 {
            assert!(writer.record(record(n)).await.is_ok());
        }
        assert_eq!((a.records().len(), b.records().len()), (50, 50), "round robin");
        // Lane a fails: the record it held fails, then a is avoided and b takes everything.
        a.set_failing(true);
        let failures = futures_failures(&writer, 100..102).await;
        assert_eq!(failures, 1, "only the record on the failing lane fails");
        assert_eq!(writer.admit(), Ok(()), "another lane is healthy");
        assert_eq!(futures_failures(&writer, 200..220).await, 0);
        assert_eq!(b.records().len(), 50 + 1 + 20);
    }

    /// A store that remembers the size of every batch, each commit taking `.1`.
    #[derive(Debug, Default)]
    struct Batches(std::sync::Mutex<Vec<usize>>, std::time::Duration);

    #[async_trait::async_trait]
    impl AuditStore for Batches {
        async fn append(&self, records: &[AuditRecord]) -> Result<(), AuditError> {
            self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(records.len());
            tokio::time::sleep(self.1).await;
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_lone_request_never_waits_and_a_batch_smaller_than_the_last_waits_for_stragglers() {
        let linger = std::time::Duration::from_secs(2);
        let store = Arc::new(Batches(std::sync::Mutex::default(), std::time::Duration::from_millis(200)));
        let (writer, _task) = AuditWriter::spawn(store.clone(), WriterConfig { linger, ..WriterConfig::default() });
        let started = std::time::Instant::now();
        assert!(writer.record(record(0)).await.is_ok());
        assert!(started.elapsed() < linger / 2, "a lone request is committed at once");
        // Four at once form one batch (all queued before the writer runs).
        let four = tokio::join!(
            writer.record(record(1)),
            writer.record(record(2)),
            writer.record(record(3)),
            writer.record(record(4))
        );
        assert!(four.0.is_ok() && four.1.is_ok() && four.2.is_ok() && four.3.is_ok());
        // The next batch is smaller than four: the writer waits for a straggler.
        let late = {
            let w = writer.clone();
            async move {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                w.record(record(6)).await
            }
        };
        let (first, second) = tokio::join!(writer.record(record(5)), late);
        assert!(first.is_ok() && second.is_ok());
        assert_eq!(*store.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner), vec![1, 4, 2]);
    }

    #[tokio::test]
    async fn a_batch_waits_no_longer_than_a_commit_takes() {
        let linger = std::time::Duration::from_secs(2);
        let store = Arc::new(Batches::default());
        let (writer, _task) = AuditWriter::spawn(store.clone(), WriterConfig { linger, ..WriterConfig::default() });
        let two = tokio::join!(writer.record(record(1)), writer.record(record(2)));
        assert!(two.0.is_ok() && two.1.is_ok());
        // Smaller than the last batch, but the store commits at once: no wait for a straggler.
        let started = std::time::Instant::now();
        assert!(writer.record(record(3)).await.is_ok());
        assert!(started.elapsed() < linger / 2, "waited {:?} for an instant commit", started.elapsed());
    }

    #[tokio::test]
    async fn a_thread_with_its_own_lane_commits_its_records_there_and_others_use_the_shared_lanes() {
        let (shared, own) = (Arc::new(MemoryAuditStore::new()), Arc::new(MemoryAuditStore::new()));
        let (writer, _task) = AuditWriter::spawn(shared.clone(), WriterConfig::default());
        let writer = writer.with_thread_stores(vec![own.clone()]);
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let Some(lane) = writer.thread_lane() else { unreachable!("a store was set aside for this thread") };
                tokio::task::spawn_local(lane);
                assert!(writer.thread_lane().is_none(), "one lane per thread");
                let tasks: Vec<_> = (0..50)
                    .map(|n| {
                        let w = writer.clone();
                        tokio::task::spawn_local(async move { w.record(record(n)).await })
                    })
                    .collect();
                for t in tasks {
                    assert!(matches!(t.await, Ok(Ok(()))));
                }
            })
            .await;
        assert_eq!((own.records().len(), shared.records().len()), (50, 0));
        // Another thread finds no store left, and its records go to the shared lane.
        let other = writer.clone();
        let from_other = tokio::task::spawn_blocking(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            rt.block_on(async { other.thread_lane().is_none() && other.record(record(99)).await.is_ok() }).then_some(())
        });
        assert_eq!(from_other.await.ok().flatten(), Some(()));
        assert_eq!((own.records().len(), shared.records().len()), (50, 1));
        // The thread's own lane fails: that record fails, and the thread's requests are refused
        // at once (not after a second timeout on a shared lane) until the store answers again.
        own.set_failing(true);
        local
            .run_until(async {
                assert!(writer.record(record(100)).await.is_err());
                assert_eq!(writer.admit(), Err(AuditRefusal::Unavailable));
                own.set_failing(false);
                assert!(admitted_within_2s(&writer).await, "the lane's probe notices recovery");
                assert!(writer.record(record(101)).await.is_ok());
            })
            .await;
        assert_eq!((own.records().len(), shared.records().len()), (51, 1));
    }

    async fn futures_failures(writer: &AuditWriter, range: std::ops::Range<usize>) -> usize {
        let mut failures = 0;
        for n in range {
            failures += usize::from(writer.record(record(n)).await.is_err());
        }
        failures
    }
}
