//! The group-commit writer: requests hand their record to one task that commits batches and
//! acknowledges each request once its batch is durable.

use std::sync::Arc;
use std::time::Duration;

use keyward_core::ports::audit::{AuditError, AuditRecord, AuditSink, AuditStore};
use tokio::sync::{mpsc, oneshot};

/// Batch limits.
#[derive(Debug, Clone, Copy)]
pub struct WriterConfig {
    /// Most records in one transaction.
    pub max_batch: usize,
    /// Most records waiting; beyond it, records are refused at once.
    pub queue: usize,
    /// How long a batch may wait for more records once the first arrived. Zero (the default)
    /// commits what is queued at once: records that arrive during a commit form the next
    /// batch, so batches grow with load without adding latency at low load.
    pub linger: Duration,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self { max_batch: 256, queue: 8192, linger: Duration::ZERO }
    }
}

type Ack = oneshot::Sender<Result<(), AuditError>>;

/// An [`AuditSink`] that group-commits into an [`AuditStore`].
#[derive(Debug, Clone)]
pub struct AuditWriter {
    tx: mpsc::Sender<(AuditRecord, Ack)>,
}

impl AuditWriter {
    /// Starts the writer task on the current runtime.
    pub fn spawn(store: Arc<dyn AuditStore>, config: WriterConfig) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        let handle = tokio::spawn(run(store, rx, config));
        (Self { tx }, handle)
    }
}

async fn run(store: Arc<dyn AuditStore>, mut rx: mpsc::Receiver<(AuditRecord, Ack)>, config: WriterConfig) {
    let mut records = Vec::with_capacity(config.max_batch);
    let mut acks: Vec<Ack> = Vec::with_capacity(config.max_batch);
    while let Some((record, ack)) = rx.recv().await {
        records.push(record);
        acks.push(ack);
        // Take whatever is already queued (and, with a linger, wait briefly for stragglers).
        let deadline = tokio::time::Instant::now() + config.linger;
        while records.len() < config.max_batch {
            match rx.try_recv() {
                Ok((r, a)) => {
                    records.push(r);
                    acks.push(a);
                }
                Err(mpsc::error::TryRecvError::Empty) if config.linger.is_zero() => break,
                Err(mpsc::error::TryRecvError::Empty) => match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some((r, a))) => {
                        records.push(r);
                        acks.push(a);
                    }
                    Ok(None) | Err(_) => break,
                },
                Err(mpsc::error::TryRecvError::Disconnected) => break,
            }
        }
        let result = store.append(&records).await;
        if let Err(e) = &result {
            tracing::error!(error = %e, records = records.len(), "audit batch not committed");
        }
        records.clear();
        for ack in acks.drain(..) {
            // A request that gave up waiting has dropped its receiver; nothing to do.
            let _ = ack.send(result.clone());
        }
    }
}

#[async_trait::async_trait]
impl AuditSink for AuditWriter {
    async fn record(&self, record: AuditRecord) -> Result<(), AuditError> {
        let (ack, done) = oneshot::channel();
        self.tx.try_send((record, ack)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => AuditError("audit queue full".into()),
            mpsc::error::TrySendError::Closed(_) => AuditError("audit writer stopped".into()),
        })?;
        done.await.map_err(|_| AuditError("audit writer stopped".into()))?
    }
}
