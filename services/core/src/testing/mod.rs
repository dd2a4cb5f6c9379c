//! In-memory ports for tests of the domain: a key store, an authorizer, an audit sink and a
//! backend, with [`ManualClock`](crate::ports::clock::ManualClock) for time. They keep the
//! ports' contracts (a change commits with its record or not at all; conditions are checked)
//! so a test of [`KeyService`](crate::service::KeyService) on them means what it would on a
//! database, without one. Enabled by the `testing` feature.

mod audit;
mod authorizer;
mod backend;
pub mod lifecycle;
mod store;

pub use audit::MemorySink;
pub use authorizer::RuleAuthorizer;
pub use backend::{MEMORY_WRAP, MemoryBackend};
pub use store::MemoryStore;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::ports::backend::DynBackend;
use crate::ports::clock::ManualClock;
use crate::service::{Backends, KeyService};

/// A plain allowed, successful Encrypt record with request id `request_id` at `time` (for
/// tests of the audit trail's storage).
pub fn audit_record(
    request_id: impl Into<String>,
    time: chrono::DateTime<chrono::Utc>,
) -> crate::ports::audit::AuditRecord {
    crate::ports::audit::AuditRecord {
        time,
        request_id: request_id.into(),
        trace_id: String::new(),
        principal: "Keyward::User::\"p\"".into(),
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
        encryption_context: BTreeMap::new(),
        source_ip: None,
        user_agent: None,
        justification: None,
        dry_run: false,
        duration_us: 0,
        interface: None,
        details: BTreeMap::new(),
    }
}

/// A service on in-memory ports, with handles to each.
#[derive(Debug, Clone)]
pub struct Harness {
    /// The service.
    pub service: Arc<KeyService>,
    /// Its key store (holding the records of changes).
    pub store: Arc<MemoryStore>,
    /// Its audit sink (holding the records of requests that changed nothing).
    pub audit: Arc<MemorySink>,
    /// Its clock.
    pub clock: Arc<ManualClock>,
    /// Its one backend, named `memory`.
    pub backend: Arc<MemoryBackend>,
}

impl Harness {
    /// A service whose authorizer applies `authorizer`'s rules, at 2026-01-01.
    pub fn new(authorizer: RuleAuthorizer) -> Self {
        Self::configured(authorizer, |s| s)
    }

    /// As [`Self::new`], with the service configured further (quotas, for example).
    pub fn configured(authorizer: RuleAuthorizer, configure: impl FnOnce(KeyService) -> KeyService) -> Self {
        let start = chrono::DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default();
        let clock = Arc::new(ManualClock::new(start));
        let store = Arc::new(MemoryStore::default());
        let audit = Arc::new(MemorySink::default());
        let backend = Arc::new(MemoryBackend::default());
        let dyn_backend: Arc<dyn DynBackend> = backend.clone();
        let backends = Backends::new(BTreeMap::from([("memory".to_owned(), dyn_backend)]), "memory".into());
        let backends = backends.unwrap_or_else(|e| unreachable!("one backend named as the default: {e}"));
        let service = KeyService::new(store.clone(), Arc::new(authorizer), audit.clone(), clock.clone(), backends);
        Self { service: Arc::new(configure(service)), store, audit, clock, backend }
    }

    /// Every committed record: those of requests that changed nothing, then those of changes.
    pub fn records(&self) -> Vec<crate::ports::audit::AuditRecord> {
        let mut all = self.audit.records();
        all.extend(self.store.records());
        all
    }

    /// A trail reader for [`lifecycle::Run`], starting after what is committed now.
    pub fn trail(&self) -> HarnessTrail {
        let seen = (self.audit.records().len(), self.store.records().len());
        HarnessTrail { harness: self.clone(), seen: std::sync::Mutex::new(seen) }
    }
}

/// Reads a harness's records incrementally.
#[derive(Debug)]
pub struct HarnessTrail {
    harness: Harness,
    seen: std::sync::Mutex<(usize, usize)>,
}

#[async_trait::async_trait]
impl lifecycle::Trail for HarnessTrail {
    async fn new_records(&self) -> Vec<crate::ports::audit::AuditRecord> {
        let (audit, store) = (self.harness.audit.records(), self.harness.store.records());
        let mut seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut new: Vec<_> = audit[seen.0..].to_vec();
        new.extend_from_slice(&store[seen.1..]);
        *seen = (audit.len(), store.len());
        new
    }
}
