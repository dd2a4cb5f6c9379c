//! The group-commit writer: requests hand their record to a lane, one task per lane commits
//! batches and acknowledges each request once its batch is durable. Each lane has one batch in
//! flight, so several lanes keep the database busy while one waits for its flush; each lane
//! writes its own hash chain, so chains never depend on commit order between lanes.
//!
//! Request threads can own a lane ([`AuditWriter::thread_lane`]): the thread runs its lane's
//! task, so handing a record over and being told it is committed stay on the thread (no
//! wake-up of another thread per record; only the database round trip per batch crosses).

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    /// is smaller than the last batch and no longer than the last commit took; a lone request
    /// never waits. Zero commits what is queued at once (records that arrive during a commit
    /// form the next batch).
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
    /// Which writer a thread's lane belongs to (a process may run several).
    id: usize,
    lanes: Arc<[Lane]>,
    next: Arc<AtomicUsize>,
    threads: Arc<ThreadLanes>,
}

/// Stores set aside for request threads, and the lanes threads took.
#[derive(Debug)]
struct ThreadLanes {
    config: WriterConfig,
    stores: Mutex<Vec<Arc<dyn AuditStore>>>,
    taken: Mutex<Vec<Arc<Lane>>>,
}

static WRITER_IDS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's lanes, by writer id.
    static THREAD_LANES: RefCell<Vec<(usize, Arc<Lane>)>> = const { RefCell::new(Vec::new()) };
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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
        let threads = ThreadLanes { config, stores: Mutex::default(), taken: Mutex::default() };
        let writer = Self {
            id: WRITER_IDS.fetch_add(1, Ordering::Relaxed),
            lanes: lanes.into(),
            next: Arc::new(AtomicUsize::new(0)),
            threads: Arc::new(threads),
        };
        (writer, handle)
    }

    /// Sets stores aside for [`Self::thread_lane`], one per request thread (each its own chain).
    pub fn with_thread_stores(self, stores: Vec<Arc<dyn AuditStore>>) -> Self {
        *lock(&self.threads.stores) = stores;
        self
    }

    /// Gives the calling thread a lane of its own, if a store is left for it: the thread must
    /// run the returned task (its records wait for it). Records made on the thread go to that
    /// lane while it has room, else to the shared lanes; while its last commit failed, the
    /// thread's requests are refused at admission until the lane's probe reaches the store.
    pub fn thread_lane(&self) -> Option<impl Future<Output = ()> + Send + 'static> {
        if self.own_lane().is_some() {
            return None;
        }
        let store = lock(&self.threads.stores).pop()?;
        let config = self.threads.config;
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        let healthy = Arc::new(AtomicBool::new(true));
        let lane = Arc::new(Lane { tx, healthy: healthy.clone() });
        let index = {
            let mut taken = lock(&self.threads.taken);
            taken.push(lane.clone());
            self.lanes.len() + taken.len() - 1
        };
        THREAD_LANES.with(|l| l.borrow_mut().push((self.id, lane)));
        Some(run(index, store, rx, config, healthy))
    }

    /// The calling thread's lane, if it took one.
    fn own_lane(&self) -> Option<Arc<Lane>> {
        THREAD_LANES.with(|l| l.borrow().iter().find(|(id, _)| *id == self.id).map(|(_, lane)| lane.clone()))
    }

    /// Records waiting to be committed.
    pub fn queue_depth(&self) -> usize {
        let waiting = |l: &Lane| l.tx.max_capacity() - l.tx.capacity();
        self.lanes.iter().map(waiting).sum::<usize>()
            + lock(&self.threads.taken).iter().map(|l| waiting(l)).sum::<usize>()
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
    // How long the last commit took: waiting longer than a commit costs more latency than the
    // fuller batch saves (an in-memory store never waits).
    let mut last_commit = Duration::ZERO;
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
        // (at most the linger, and no longer than the last commit took) for the requests that
        // are likely on their way: each commit has a fixed cost in the database, so fuller
        // batches leave more CPU for requests. A lone request (the last batch held one record)
        // never waits.
        let linger = config.linger.min(last_commit);
        let deadline = tokio::time::Instant::now() + linger;
        while records.len() < config.max_batch {
            match rx.try_recv() {
                Ok((r, a)) => {
                    records.push(r);
                    acks.push(a);
                }
                Err(mpsc::error::TryRecvError::Empty) if linger.is_zero() || records.len() >= last_batch => {
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
        last_commit = started.elapsed();
        metrics::histogram!("keyward_audit_commit_seconds", "outcome" => outcome).record(last_commit.as_secs_f64());
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
        let healthy = |l: &Lane| l.healthy.load(Ordering::Acquire);
        // A thread's own lane speaks for the store: when its commit failed, the shared lanes
        // would fail too (after their own timeout), so refuse at once until its probe answers.
        let own = self.own_lane();
        if own.as_deref().is_some_and(|l| !healthy(l)) || (own.is_none() && !self.lanes.iter().any(healthy)) {
            return Err(AuditRefusal::Unavailable);
        }
        if !self.lanes.iter().any(Lane::open) && !own.as_deref().is_some_and(Lane::open) {
            return Err(AuditRefusal::QueueFull);
        }
        Ok(())
    }

    async fn record(&self, record: AuditRecord) -> Result<(), AuditError> {
        let (ack, done) = oneshot::channel();
        // A full own lane hands over to the shared ones; an unhealthy one was refused at
        // admission (and a record that raced the failure waits for the probe).
        let own = self.own_lane().filter(|l| l.tx.capacity() > 0);
        let lane = match &own {
            Some(lane) => lane,
            None => self.pick().ok_or_else(|| AuditError("no audit lane can take records".into()))?,
        };
        lane.tx.try_send((record, ack)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => AuditError("audit queue full".into()),
            mpsc::error::TrySendError::Closed(_) => AuditError("audit writer stopped".into()),
        })?;
        done.await.map_err(|_| AuditError("audit writer stopped".into()))?
    }
}
