//! Verifying the trail: every chain walked in sequence order beside its checkpoints, in pages
//! (memory does not grow with the trail), with an honest verdict.
//!
//! A chain is vouched for only by signatures: its genesis checkpoint (the chain exists and
//! follows a named predecessor), its periodic checkpoints (the chain reached this head), and
//! its successor's genesis (a chain abandoned after a store error reached this head). Records
//! after the last signature are the *unsigned tail*: chained, but anyone who knows the public
//! hash rule could have appended them. The verdict is `ok` only when nothing is broken, every
//! signature was checked, and each chain's unsigned tail spans no more than the checkpoint
//! interval (plus a request's time in flight) — what a crash between two checkpoints leaves.

use std::time::Duration;

use keyward_core::ports::audit::AuditError;
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};

use crate::chain::{GENESIS, VerifyingKey, record_hash};
use crate::entity::{audit_checkpoint, audit_record};

/// Rows read per page.
const PAGE: u64 = 2000;

/// Allowance for records that arrived before a checkpoint but committed after it.
const IN_FLIGHT: Duration = Duration::from_secs(5);

/// The outcome of walking every chain and checkpoint.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct VerifyReport {
    /// Nothing broken, every signature checked, and every unsigned tail within the interval.
    pub ok: bool,
    /// Whether checkpoint signatures were checked (not without the verifying key).
    pub signatures_checked: bool,
    /// Chained records checked.
    pub records_checked: u64,
    /// Of those, records covered by a valid signature.
    pub verified_records: u64,
    /// Records chained but past their chain's last signature.
    pub unsigned_tail: UnsignedTail,
    /// Checkpoints checked.
    pub checkpoints_checked: u64,
    /// Chains walked.
    pub chains: u64,
    /// Records written before chaining existed (not verifiable).
    pub unchained_records: u64,
    /// Problems found.
    pub breaks: u64,
    /// The first problem found.
    pub first_break: Option<Break>,
}

/// Records after their chain's last signature.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct UnsignedTail {
    /// How many.
    pub records: u64,
    /// In how many chains.
    pub chains: u64,
    /// The earliest such record's time.
    pub oldest: Option<chrono::DateTime<chrono::Utc>>,
    /// The longest span, first unsigned record to the chain's last, in seconds.
    pub longest_span_seconds: f64,
    /// Chains whose tail spans more than the checkpoint interval: checkpoints stopped, or
    /// records were appended by someone else.
    pub overdue_chains: u64,
}

/// Where the trail stops being trustworthy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Break {
    /// The chain.
    pub chain_id: String,
    /// The sequence where the problem shows.
    pub sequence: i64,
    /// The record's row id, when the record exists.
    pub record_id: Option<i64>,
    /// The checkpoint's row id, when a checkpoint is at fault.
    pub checkpoint_id: Option<i64>,
    /// What is wrong.
    pub reason: String,
}

/// How to walk.
#[derive(Debug, Clone, Copy)]
pub struct VerifyOptions<'a> {
    /// The key checkpoints are checked with; without it nothing can be vouched for.
    pub key: Option<&'a VerifyingKey>,
    /// The servers' checkpoint interval.
    pub checkpoint_interval: Duration,
    /// Resume from this checkpoint: its chain from its head on, and every later chain.
    pub from_checkpoint: Option<i64>,
}

/// One chain being walked.
struct Chain {
    id: String,
    last_sequence: i64,
    last_hash: String,
    last_row: Option<i64>,
    last_time: i64,
    first_row: Option<i64>,
    /// Whether a valid genesis checkpoint was seen.
    genesis: bool,
    /// The highest sequence a signature covers.
    signed: i64,
    /// The time of the first record after `signed`.
    unsigned_from: Option<i64>,
    /// Successors' genesis statements about this chain: (sequence, hash, checkpoint id).
    vouchers: Vec<(i64, String, i64)>,
}

impl Chain {
    fn new(id: String) -> Self {
        Self {
            id,
            last_sequence: 0,
            last_hash: GENESIS.to_owned(),
            last_row: None,
            last_time: 0,
            first_row: None,
            genesis: false,
            signed: 0,
            unsigned_from: None,
            vouchers: Vec::new(),
        }
    }

    fn sign_up_to(&mut self, sequence: i64) {
        if sequence > self.signed {
            self.signed = sequence;
            self.unsigned_from = None;
        }
    }
}

/// The walk's accumulating verdict.
struct Walk<'a> {
    options: VerifyOptions<'a>,
    report: VerifyReport,
}

impl Walk<'_> {
    fn fail(&mut self, b: Break) {
        self.report.breaks += 1;
        if self.report.first_break.is_none() {
            self.report.first_break = Some(b);
        }
    }

    fn at_record(chain: &Chain, sequence: i64, row: i64, reason: impl Into<String>) -> Break {
        Break { chain_id: chain.id.clone(), sequence, record_id: Some(row), checkpoint_id: None, reason: reason.into() }
    }

    fn at_checkpoint(c: &audit_checkpoint::Model, reason: impl Into<String>) -> Break {
        Break {
            chain_id: c.chain_id.clone(),
            sequence: c.sequence,
            record_id: None,
            checkpoint_id: Some(c.id),
            reason: reason.into(),
        }
    }

    fn signed(&self, c: &audit_checkpoint::Model) -> bool {
        self.options.key.is_some_and(|k| k.verifies(c))
    }

    fn record(&mut self, chain: &mut Chain, row: &audit_record::Model) {
        self.report.records_checked += 1;
        let sequence = row.sequence.unwrap_or(0);
        chain.first_row.get_or_insert(row.id);
        if sequence != chain.last_sequence + 1 {
            let reason =
                format!("sequence {sequence} follows {}: records missing (deleted) or reordered", chain.last_sequence);
            self.fail(Self::at_record(chain, sequence, row.id, reason));
        } else if row.prev_hash.as_deref() != Some(chain.last_hash.as_str()) {
            let reason = "prev_hash does not match the previous record: records reordered or replaced";
            self.fail(Self::at_record(chain, sequence, row.id, reason));
        } else if row.hash.as_deref() != Some(record_hash(&chain.last_hash, row).as_str()) {
            let reason = "hash does not match the record's contents: the record was altered";
            self.fail(Self::at_record(chain, sequence, row.id, reason));
        } else if chain.last_row.is_some_and(|p| row.id <= p) {
            let reason = "row ids are out of sequence order: rows were swapped";
            self.fail(Self::at_record(chain, sequence, row.id, reason));
        }
        chain.last_sequence = sequence;
        chain.last_hash = row.hash.clone().unwrap_or_default();
        chain.last_row = Some(row.id);
        chain.last_time = row.time;
        chain.unsigned_from.get_or_insert(row.time);
        // A successor's genesis names this head: the chain reached it, signed.
        if let Some(i) = chain.vouchers.iter().position(|(s, _, _)| *s == sequence) {
            let (_, hash, _) = chain.vouchers.swap_remove(i);
            if hash == chain.last_hash {
                chain.sign_up_to(sequence);
            } else {
                let reason = "the successor chain's genesis names a different head: the record was replaced";
                self.fail(Self::at_record(chain, sequence, row.id, reason));
            }
        }
    }

    fn checkpoint(&mut self, chain: &mut Chain, c: &audit_checkpoint::Model) {
        self.report.checkpoints_checked += 1;
        if self.options.key.is_some() && !self.signed(c) {
            self.fail(Self::at_checkpoint(c, "checkpoint signature is not valid: forged or altered checkpoint"));
            return;
        }
        if c.previous.is_some() {
            chain.genesis = self.options.key.is_some();
            return;
        }
        if c.sequence == 0 {
            return;
        }
        if chain.last_sequence < c.sequence {
            let reason = format!(
                "a checkpoint covers sequence {} but the chain ends at {}: the tail was deleted",
                c.sequence, chain.last_sequence
            );
            self.fail(Self::at_checkpoint(c, reason));
        } else if chain.last_hash != c.head_hash {
            self.fail(Self::at_checkpoint(c, "the checkpoint's head hash differs from the record's"));
        } else if self.options.key.is_some() {
            chain.sign_up_to(c.sequence);
        }
    }

    fn finish(&mut self, chain: Chain) {
        self.report.chains += 1;
        if let Some((sequence, _, checkpoint)) = chain.vouchers.first() {
            let reason = format!(
                "the successor chain's genesis (checkpoint {checkpoint}) names sequence {sequence} but the chain ends at {}: the tail was deleted",
                chain.last_sequence
            );
            self.fail(Break {
                chain_id: chain.id.clone(),
                sequence: *sequence,
                record_id: None,
                checkpoint_id: Some(*checkpoint),
                reason,
            });
        }
        if chain.last_sequence == 0 {
            return;
        }
        if !chain.genesis && chain.signed == 0 {
            let reason = "no signed genesis or checkpoint vouches for this chain: it could have been written by anyone";
            self.fail(Break {
                chain_id: chain.id.clone(),
                sequence: 1,
                record_id: chain.first_row,
                checkpoint_id: None,
                reason: reason.into(),
            });
        }
        self.report.verified_records += u64::try_from(chain.signed).unwrap_or(0);
        let tail = chain.last_sequence - chain.signed;
        if tail > 0 {
            let from = chain.unsigned_from.unwrap_or(chain.last_time);
            let span = Duration::from_micros(u64::try_from(chain.last_time - from).unwrap_or(0));
            let t = &mut self.report.unsigned_tail;
            t.records += u64::try_from(tail).unwrap_or(0);
            t.chains += 1;
            let oldest = chrono::DateTime::from_timestamp_micros(from);
            t.oldest = match (t.oldest, oldest) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            t.longest_span_seconds = t.longest_span_seconds.max(span.as_secs_f64());
            if span > self.options.checkpoint_interval + IN_FLIGHT {
                t.overdue_chains += 1;
            }
        }
    }
}

/// Walks the trail (see the module documentation).
pub(crate) async fn verify(db: &DatabaseConnection, options: VerifyOptions<'_>) -> Result<VerifyReport, AuditError> {
    let failed = |e: sea_orm::DbErr| AuditError(e.to_string());
    let unchained =
        audit_record::Entity::find().filter(audit_record::Column::ChainId.is_null()).count(db).await.map_err(failed)?;
    let mut walk = Walk {
        options,
        report: VerifyReport {
            ok: false,
            signatures_checked: options.key.is_some(),
            records_checked: 0,
            verified_records: 0,
            unsigned_tail: UnsignedTail::default(),
            checkpoints_checked: 0,
            chains: 0,
            unchained_records: unchained,
            breaks: 0,
            first_break: None,
        },
    };
    // Where to start: the beginning, or a checkpoint trusted for its signature.
    let mut records = Pages::<audit_record::Entity>::new();
    let mut checkpoints = Pages::<audit_checkpoint::Entity>::new();
    let mut current: Option<Chain> = None;
    if let Some(id) = options.from_checkpoint {
        let c = audit_checkpoint::Entity::find_by_id(id)
            .one(db)
            .await
            .map_err(failed)?
            .ok_or_else(|| AuditError(format!("no checkpoint {id}")))?;
        if !walk.signed(&c) || c.previous.is_some() {
            return Err(AuditError(format!("checkpoint {id} is not a validly signed head to resume from")));
        }
        let mut chain = Chain::new(c.chain_id.clone());
        (chain.last_sequence, chain.last_hash, chain.genesis) = (c.sequence, c.head_hash.clone(), true);
        chain.signed = c.sequence;
        chain.vouchers = vouchers(db, &walk, &c.chain_id).await?;
        records.cursor = Some((c.chain_id.clone(), c.sequence, i64::MAX));
        checkpoints.cursor = Some((c.chain_id.clone(), c.sequence, c.id));
        current = Some(chain);
    }
    loop {
        records.fill(db).await.map_err(failed)?;
        checkpoints.fill(db).await.map_err(failed)?;
        let next_record = records.peek().map(|r| (r.chain_id.clone().unwrap_or_default(), r.sequence.unwrap_or(0)));
        let next_checkpoint = checkpoints.peek().map(|c| (c.chain_id.clone(), c.sequence));
        // Records before checkpoints at the same place: a checkpoint vouches for the record
        // at its sequence.
        let take_record = match (&next_record, &next_checkpoint) {
            (None, None) => break,
            (Some(r), Some(c)) => r <= c,
            (Some(_), None) => true,
            (None, Some(_)) => false,
        };
        let chain_of = if take_record { &next_record } else { &next_checkpoint };
        let Some((chain_id, _)) = chain_of.clone() else { break };
        if current.as_ref().is_none_or(|c| c.id != chain_id) {
            if let Some(done) = current.take() {
                walk.finish(done);
            }
            let mut chain = Chain::new(chain_id.clone());
            chain.vouchers = vouchers(db, &walk, &chain_id).await?;
            current = Some(chain);
        }
        let Some(chain) = current.as_mut() else { break };
        if take_record {
            if let Some(row) = records.next() {
                walk.record(chain, &row);
            }
        } else if let Some(c) = checkpoints.next() {
            walk.checkpoint(chain, &c);
        }
    }
    if let Some(done) = current.take() {
        walk.finish(done);
    }
    let r = &mut walk.report;
    r.ok = r.breaks == 0 && r.signatures_checked && r.unsigned_tail.overdue_chains == 0;
    Ok(walk.report)
}

/// The heads of `chain` named by validly signed genesis checkpoints of its successors.
async fn vouchers(
    db: &DatabaseConnection,
    walk: &Walk<'_>,
    chain: &str,
) -> Result<Vec<(i64, String, i64)>, AuditError> {
    let rows = audit_checkpoint::Entity::find()
        .filter(audit_checkpoint::Column::Previous.starts_with(format!("{chain}:")))
        .all(db)
        .await
        .map_err(|e| AuditError(e.to_string()))?;
    Ok(rows
        .into_iter()
        .filter(|c| walk.signed(c))
        .filter_map(|c| {
            let (_, rest) = c.previous.as_deref()?.split_once(':')?;
            let (sequence, hash) = rest.split_once(':')?;
            Some((sequence.parse().ok()?, hash.to_owned(), c.id))
        })
        .collect())
}

/// Rows of one table in (chain, sequence, id) order, a page at a time.
struct Pages<E: EntityTrait> {
    rows: std::collections::VecDeque<E::Model>,
    cursor: Option<(String, i64, i64)>,
    done: bool,
}

/// The ordering columns of a trail table.
trait Ordered: EntityTrait {
    fn chain() -> Self::Column;
    fn sequence() -> Self::Column;
    fn id() -> Self::Column;
    fn key(m: &Self::Model) -> (String, i64, i64);
}

impl Ordered for audit_record::Entity {
    fn chain() -> Self::Column {
        audit_record::Column::ChainId
    }
    fn sequence() -> Self::Column {
        audit_record::Column::Sequence
    }
    fn id() -> Self::Column {
        audit_record::Column::Id
    }
    fn key(m: &audit_record::Model) -> (String, i64, i64) {
        (m.chain_id.clone().unwrap_or_default(), m.sequence.unwrap_or(0), m.id)
    }
}

impl Ordered for audit_checkpoint::Entity {
    fn chain() -> Self::Column {
        audit_checkpoint::Column::ChainId
    }
    fn sequence() -> Self::Column {
        audit_checkpoint::Column::Sequence
    }
    fn id() -> Self::Column {
        audit_checkpoint::Column::Id
    }
    fn key(m: &audit_checkpoint::Model) -> (String, i64, i64) {
        (m.chain_id.clone(), m.sequence, m.id)
    }
}

impl<E: Ordered> Pages<E>
where
    E::Model: Sync,
{
    fn new() -> Self {
        Self { rows: std::collections::VecDeque::new(), cursor: None, done: false }
    }

    async fn fill(&mut self, db: &DatabaseConnection) -> Result<(), sea_orm::DbErr> {
        if !self.rows.is_empty() || self.done {
            return Ok(());
        }
        let mut find = E::find()
            .filter(E::chain().is_not_null())
            .order_by_asc(E::chain())
            .order_by_asc(E::sequence())
            .order_by_asc(E::id())
            .limit(PAGE);
        if let Some((chain, sequence, id)) = &self.cursor {
            find = find.filter(
                Condition::any().add(E::chain().gt(chain.as_str())).add(
                    Condition::all().add(E::chain().eq(chain.as_str())).add(
                        Condition::any()
                            .add(E::sequence().gt(*sequence))
                            .add(Condition::all().add(E::sequence().eq(*sequence)).add(E::id().gt(*id))),
                    ),
                ),
            );
        }
        let page = find.all(db).await?;
        self.done = (page.len() as u64) < PAGE;
        if let Some(last) = page.last() {
            self.cursor = Some(E::key(last));
        }
        self.rows.extend(page);
        Ok(())
    }

    fn peek(&self) -> Option<&E::Model> {
        self.rows.front()
    }

    fn next(&mut self) -> Option<E::Model> {
        self.rows.pop_front()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]
mod tests {
    use std::sync::Arc;

    use keyward_core::ports::audit::{AuditRecord, AuditStore as _};
    use sea_orm::ConnectionTrait as _;

    use super::*;
    use crate::SqlAuditStore;
    use crate::chain::SigningKey;

    fn record(n: usize, at: chrono::DateTime<chrono::Utc>) -> AuditRecord {
        keyward_core::testing::audit_record(format!("r{n}"), at)
    }

    async fn database() -> (DatabaseConnection, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::connect(&format!("sqlite://{}?mode=rwc", dir.path().join("a.db").display())).await.unwrap();
        crate::migrate(&db).await.unwrap();
        (db, dir)
    }

    fn key() -> Arc<SigningKey> {
        Arc::new(SigningKey::from_seed(&[7; 32]).unwrap())
    }

    fn options(key: Option<&VerifyingKey>) -> VerifyOptions<'_> {
        VerifyOptions { key, checkpoint_interval: Duration::from_secs(60), from_checkpoint: None }
    }

    async fn fail_inserts(db: &DatabaseConnection, failing: bool) {
        let sql = if failing {
            "CREATE TRIGGER down BEFORE INSERT ON audit_records BEGIN SELECT RAISE(ABORT, 'down'); END"
        } else {
            "DROP TRIGGER down"
        };
        db.execute_unprepared(sql).await.unwrap();
    }

    #[tokio::test]
    async fn an_abandoned_chain_is_vouched_for_by_its_successors_genesis_and_the_tail_is_reported() {
        let (db, _dir) = database().await;
        let key = key();
        let store = SqlAuditStore::new(db.clone()).with_signing_key(key.clone());
        let now = chrono::Utc::now();
        store.append(&[record(1, now), record(2, now)]).await.unwrap();
        fail_inserts(&db, true).await;
        assert!(store.append(&[record(3, now)]).await.is_err(), "the store fails");
        fail_inserts(&db, false).await;
        store.append(&[record(4, now)]).await.unwrap();
        let verifying = key.verifying_key();
        let report = verify(&db, options(Some(&verifying))).await.unwrap();
        assert!(report.ok, "{report:?}");
        assert_eq!((report.chains, report.records_checked), (2, 3));
        assert_eq!(report.verified_records, 2, "the first chain is signed by the second's genesis");
        assert_eq!((report.unsigned_tail.records, report.unsigned_tail.chains), (1, 1));
        // With a checkpoint, the second chain is vouched for too.
        store.checkpoint(&key, chrono::Utc::now()).await.unwrap();
        let report = verify(&db, options(Some(&verifying))).await.unwrap();
        assert_eq!((report.verified_records, report.unsigned_tail.records), (3, 0), "{report:?}");
    }

    #[tokio::test]
    async fn a_chain_nobody_signed_is_not_vouched_for() {
        let (db, _dir) = database().await;
        let key = key();
        let verifying = key.verifying_key();
        // Written with the public hash rule but no signing key: no genesis, no checkpoint.
        let forger = SqlAuditStore::new(db.clone());
        forger.append(&[record(1, chrono::Utc::now())]).await.unwrap();
        let report = verify(&db, options(Some(&verifying))).await.unwrap();
        assert!(!report.ok);
        let reason = report.first_break.map(|b| b.reason).unwrap_or_default();
        assert!(reason.contains("could have been written by anyone"), "{reason}");
    }

    #[tokio::test]
    async fn without_the_key_nothing_is_vouched_for() {
        let (db, _dir) = database().await;
        let key = key();
        let store = SqlAuditStore::new(db.clone()).with_signing_key(key.clone());
        store.append(&[record(1, chrono::Utc::now())]).await.unwrap();
        store.checkpoint(&key, chrono::Utc::now()).await.unwrap();
        let report = verify(&db, options(None)).await.unwrap();
        assert!(!report.ok && !report.signatures_checked, "{report:?}");
        assert_eq!(report.verified_records, 0);
        let verifying = key.verifying_key();
        assert!(verify(&db, options(Some(&verifying))).await.unwrap().ok);
    }

    #[tokio::test]
    async fn a_tail_longer_than_the_checkpoint_interval_is_not_ok() {
        let (db, _dir) = database().await;
        let key = key();
        let store = SqlAuditStore::new(db.clone()).with_signing_key(key.clone());
        let start = chrono::Utc::now();
        store.append(&[record(1, start)]).await.unwrap();
        store.checkpoint(&key, start).await.unwrap();
        // Appended after the last checkpoint, spanning ten minutes with no checkpoint.
        store.append(&[record(2, start), record(3, start + chrono::Duration::minutes(10))]).await.unwrap();
        let verifying = key.verifying_key();
        let report = verify(&db, options(Some(&verifying))).await.unwrap();
        assert!(!report.ok, "{report:?}");
        assert_eq!((report.breaks, report.unsigned_tail.overdue_chains, report.unsigned_tail.records), (0, 1, 2));
        assert!(report.unsigned_tail.longest_span_seconds >= 600.0);
    }

    #[tokio::test]
    async fn verification_resumes_from_a_checkpoint() {
        let (db, _dir) = database().await;
        let key = key();
        let store = SqlAuditStore::new(db.clone()).with_signing_key(key.clone());
        let now = chrono::Utc::now();
        store.append(&[record(1, now), record(2, now)]).await.unwrap();
        store.checkpoint(&key, now).await.unwrap();
        store.append(&[record(3, now)]).await.unwrap();
        store.checkpoint(&key, now).await.unwrap();
        let rows = audit_checkpoint::Entity::find().all(&db).await.unwrap();
        let first = rows.iter().find(|c| c.sequence == 2).map(|c| c.id).unwrap();
        // Alter a record the checkpoint already vouched for: a resumed walk does not revisit it.
        db.execute_unprepared("DROP TRIGGER audit_records_no_update").await.unwrap();
        db.execute_unprepared("UPDATE audit_records SET outcome = 'x' WHERE sequence = 1").await.unwrap();
        let verifying = key.verifying_key();
        assert!(!verify(&db, options(Some(&verifying))).await.unwrap().ok);
        let resumed = VerifyOptions { from_checkpoint: Some(first), ..options(Some(&verifying)) };
        let report = verify(&db, resumed).await.unwrap();
        assert!(report.ok, "{report:?}");
        assert_eq!(report.records_checked, 1, "only what follows the checkpoint");
    }
}
