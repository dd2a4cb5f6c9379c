//! The group-commit writer: requests hand their record to a lane, one task per lane commits
//! batches and acknowledges each request once its batch is durable. Each lane has one batch in
//! flight, so several lanes keep the database busy while one waits for its flush; each lane
//! writes its own hash chain, so chains never depend on commit order between lanes.

use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use keyward_core::ports::audit::{AuditError, AuditRecord, AuditRefusal, AuditSink, AuditStore};
use tokio::sync::{mpsc, oneshot};

/// Batch limits.
#[derive(Debug, Clone, Copy)]
pub struct WriterConfig {
    /// Most records in one transaction.
    pub max_batch: usize,
    /// Most records waiting per lane; beyond it, records are refused at once.
    pub queue: usize,
    /// How long a batch may wait for more records once the first arrived, and only while it
    /// is smaller than the last batch; a lone request never waits. Zero commits what is
    /// queued at once (records that arrive during a commit form the next batch).
    pub linger: Duration,
    /// A commit not done within this time counts as failed (its requests answer 503), so a
    /// stalled database turns into fast refusals rather than piled-up requests.
    pub commit_timeout: Duration,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            max_batch: 256,
            queue: 8192,
            linger: Duration::from_millis(1),
            commit_timeout: Duration::from_millis(1500),
        }
    }
}

/// How often a failing store is probed for recovery.
const PROBE_INTERVAL: Duration = Duration::from_millis(250);

type Ack = oneshot::Sender<Result<(), AuditError>>;

/// One committing task's queue and health.
#[derive(Debug)]
struct Lane {
    tx: mpsc::Sender<(AuditRecord, Ack)>,
    healthy: Arc<AtomicBool>,
}

impl Lane {
    fn open(&self) -> bool {
        self.healthy.load(Ordering::Acquire) && self.tx.capacity() > 0
    }
}

/// An [`AuditSink`] that group-commits into one or more [`AuditStore`] lanes.
#[derive(Debug, Clone)]
pub struct AuditWriter {
    lanes: Arc<[Lane]>,
    next: Arc<AtomicUsize>,
}

impl AuditWriter {
    /// Starts one writer task on the current runtime.
    pub fn spawn(store: Arc<dyn AuditStore>, config: WriterConfig) -> (Self, tokio::task::JoinHandle<()>) {
        Self::spawn_lanes(vec![store], config)
    }

    /// Starts one writer task per store (at least one); records are spread over the lanes.
    /// The handle finishes when every lane has committed its queue after the last sender went.
    pub fn spawn_lanes(stores: Vec<Arc<dyn AuditStore>>, config: WriterConfig) -> (Self, tokio::task::JoinHandle<()>) {
        let mut lanes = Vec::with_capacity(stores.len());
        let mut tasks = Vec::with_capacity(stores.len());
        for (index, store) in stores.into_iter().enumerate() {
            let (tx, rx) = mpsc::channel(config.queue.max(1));
            let healthy = Arc::new(AtomicBool::new(true));
            tasks.push(tokio::spawn(run(index, store, rx, config, healthy.clone())));
            lanes.push(Lane { tx, healthy });
        }
        let handle = tokio::spawn(async move {
            for task in tasks {
                let _ = task.await;
            }
        });
        (Self { lanes: lanes.into(), next: Arc::new(AtomicUsize::new(0)) }, handle)
    }

    /// Records waiting to be committed.
    pub fn queue_depth(&self) -> usize {
        self.lanes.iter().map(|l| l.tx.max_capacity() - l.tx.capacity()).sum()
    }

    /// The next lane able to take a record, starting from the round-robin position: a healthy
    /// one if any, else any with room (its writer commits once the store answers).
    fn pick(&self) -> Option<&Lane> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let order = || (0..self.lanes.len()).map(move |i| &self.lanes[(start + i) % self.lanes.len()]);
        order().find(|l| l.open()).or_else(|| order().find(|l| l.tx.capacity() > 0))
    }
}

async fn run(
    lane: usize,
    store: Arc<dyn AuditStore>,
    mut rx: mpsc::Receiver<(AuditRecord, Ack)>,
    config: WriterConfig,
    healthy: Arc<AtomicBool>,
) {
    let mut records = Vec::with_capacity(config.max_batch);
    let mut acks: Vec<Ack> = Vec::with_capacity(config.max_batch);
    let mut last_batch = 1;
    loop {
        // While the store is failing, no request is admitted; probe it until it answers.
        let next = if healthy.load(Ordering::Acquire) {
            rx.recv().await
        } else {
            tokio::select! {
                next = rx.recv() => next,
                () = tokio::time::sleep(PROBE_INTERVAL) => {
                    if matches!(tokio::time::timeout(config.commit_timeout, store.ping()).await, Ok(Ok(()))) {
                        tracing::info!("audit store answers again; admitting requests");
                        healthy.store(true, Ordering::Release);
                    }
                    continue;
                }
            }
        };
        let Some((record, ack)) = next else { break };
        records.push(record);
        acks.push(ack);
        // Take whatever is already queued. While the batch is smaller than the last one, wait
        // (at most the linger) for the requests that are likely on their way: each commit has
        // a fixed cost in the database, so fuller batches leave more CPU for requests. A lone
        // request (the last batch held one record) never waits.
        let deadline = tokio::time::Instant::now() + config.linger;
        while records.len() < config.max_batch {
            match rx.try_recv() {
                Ok((r, a)) => {
                    records.push(r);
                    acks.push(a);
                }
                Err(mpsc::error::TryRecvError::Empty) if config.linger.is_zero() || records.len() >= last_batch => {
                    break;
                }
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
        last_batch = records.len();
        metrics::gauge!("keyward_audit_queue_depth", "lane" => lane.to_string()).set(rx.len() as f64);
        metrics::histogram!("keyward_audit_batch_records").record(records.len() as f64);
        let started = std::time::Instant::now();
        let result = match tokio::time::timeout(config.commit_timeout, store.append(&records)).await {
            Ok(r) => r,
            Err(_) => Err(AuditError(format!("commit not done within {:?}", config.commit_timeout))),
        };
        let outcome = if result.is_ok() { "committed" } else { "failed" };
        metrics::histogram!("keyward_audit_commit_seconds", "outcome" => outcome)
            .record(started.elapsed().as_secs_f64());
        match &result {
            Ok(()) => healthy.store(true, Ordering::Release),
            Err(e) => {
                tracing::error!(error = %e, records = records.len(), "audit batch not committed; refusing requests until the store recovers");
                healthy.store(false, Ordering::Release);
            }
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
    fn admit(&self) -> Result<(), AuditRefusal> {
        if !self.lanes.iter().any(|l| l.healthy.load(Ordering::Acquire)) {
            return Err(AuditRefusal::Unavailable);
        }
        if !self.lanes.iter().any(Lane::open) {
            return Err(AuditRefusal::QueueFull);
        }
        Ok(())
    }

    async fn record(&self, record: AuditRecord) -> Result<(), AuditError> {
        let (ack, done) = oneshot::channel();
        let lane = self.pick().ok_or_else(|| AuditError("no audit lane can take records".into()))?;
        lane.tx.try_send((record, ack)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => AuditError("audit queue full".into()),
            mpsc::error::TrySendError::Closed(_) => AuditError("audit writer stopped".into()),
        })?;
        done.await.map_err(|_| AuditError("audit writer stopped".into()))?
    }
}
