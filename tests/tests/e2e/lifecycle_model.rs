//! The model-based lifecycle test on the real stores: random sequences of every lifecycle
//! operation against the reference model in `keyward_core::testing::lifecycle`, each answer
//! and audit record checked. 10,000 sequences on SQLite and 300 on Postgres in the full suite
//! (500 on SQLite in a bare `cargo test`); `KEYWARD_MODEL_CASES` overrides the SQLite count.

use std::sync::Arc;
use std::sync::Mutex;

use chrono::TimeZone;
use keyward_core::ports::audit::{AuditFilter, AuditReader as _, AuditRecord};
use keyward_core::ports::clock::ManualClock;
use keyward_core::testing::lifecycle::{Run, Trail, steps};
use keyward_e2e::Db;
use keyward_e2e::inproc::Rig;
use proptest::test_runner::{Config, TestRunner};

/// Reads a rig's new records: the writer's (in memory) and the changes' (in the database).
struct RigTrail<'a> {
    rig: &'a Rig,
    reader: keyward_store::SqlAuditReader,
    seen: Mutex<(usize, Option<i64>)>,
}

#[async_trait::async_trait]
impl Trail for RigTrail<'_> {
    async fn new_records(&self) -> Vec<AuditRecord> {
        let (memory, after) = *self.seen.lock().unwrap();
        let (mut new, count) = self.rig.audit.records_from(memory);
        let filter = AuditFilter { after_id: after, limit: 100_000, ..AuditFilter::default() };
        let stored = self.reader.query(&filter).await.expect("read change records");
        let last = stored.last().map(|s| s.id).or(after);
        new.extend(stored.into_iter().map(|s| s.record));
        *self.seen.lock().unwrap() = (count, last);
        new
    }
}

fn run_model(db: Db, cases: u32) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let clock = Arc::new(ManualClock::new(chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()));
    let rig = runtime.block_on(Rig::new(db, clock.clone()));
    let conn = rig.db.clone().expect("a database-backed rig");
    let reader = keyward_store::SqlAuditReader::new(keyward_store::SqlAuditStore::new(conn), None);
    let trail = RigTrail { rig: &rig, reader, seen: Mutex::new((0, None)) };
    runtime.block_on(trail.new_records());
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    let result = runner.run(&steps(1..40), |sequence| {
        let outcome = runtime.block_on(async {
            let outcome = Run::new(&rig.service, &clock, &trail).steps(&sequence).await;
            // One database serves every sequence: finish this one's pending deletions so the
            // next starts with none due.
            clock.advance(chrono::Duration::days(31));
            rig.service.run_maintenance().await.map_err(|e| e.to_string())?;
            trail.new_records().await;
            outcome
        });
        proptest::prop_assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn the_lifecycle_follows_the_model_on_sqlite() {
    // The full suite runs all of them; a bare `cargo test` a quick share.
    let default = if keyward_e2e::services_required() { 10_000 } else { 500 };
    let cases = std::env::var("KEYWARD_MODEL_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(default);
    run_model(Db::Sqlite, cases);
}

#[test]
fn the_lifecycle_follows_the_model_on_postgres() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let Some(db) = runtime.block_on(Db::postgres()) else { return };
    drop(runtime);
    run_model(db, 300);
}
