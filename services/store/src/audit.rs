//! The audit trail's storage: batched inserts in one transaction, and filtered reads.

use keyward_core::ports::audit::{
    AuditError, AuditFilter, AuditReader, AuditRecord, AuditStore, StoredAuditRecord, VerifyOutcome,
};
use sea_orm::ActiveValue::{NotSet, Set};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};

use std::sync::Arc;

use sea_orm::Condition;

use crate::chain::{GENESIS, SigningKey, VerifyingKey, checkpoint_statement, record_hash};
use crate::convert::micros;
use crate::entity::{audit_checkpoint, audit_record};

/// Audit rows in a SQL database, chained per writer (see [`crate::chain`]).
#[derive(Debug, Clone)]
pub struct SqlAuditStore {
    db: DatabaseConnection,
    head: Arc<tokio::sync::Mutex<Head>>,
    connection: Arc<crate::audit_pg::LaneConnection>,
}

/// The head of this writer's chain.
#[derive(Debug, Clone)]
struct Head {
    chain_id: String,
    sequence: i64,
    hash: String,
}

impl Head {
    fn fresh() -> Self {
        Self { chain_id: uuid::Uuid::now_v7().to_string(), sequence: 0, hash: GENESIS.to_owned() }
    }
}

/// The outcome of walking every chain and checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    /// Whether nothing was found broken.
    pub ok: bool,
    /// Chained records checked.
    pub records_checked: u64,
    /// Checkpoints checked.
    pub checkpoints_checked: u64,
    /// Records written before chaining existed (not verifiable).
    pub unchained_records: u64,
    /// The first problem found.
    pub first_break: Option<Break>,
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

/// Filters for reading the trail.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only this principal uid.
    pub principal: Option<String>,
    /// Only this key id.
    pub key_id: Option<String>,
    /// Only this action.
    pub action: Option<String>,
    /// Only records at or after this time.
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    /// Only records before this time.
    pub to: Option<chrono::DateTime<chrono::Utc>>,
    /// Only `Allow` (`true`) or `Deny` (`false`) decisions.
    pub decision: Option<bool>,
    /// Rows after this id.
    pub after_id: Option<i64>,
    /// At most this many.
    pub limit: u64,
}

impl SqlAuditStore {
    /// Storage over an open (migrated) connection; starts a new chain.
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db, head: Arc::new(tokio::sync::Mutex::new(Head::fresh())), connection: Arc::default() }
    }

    /// This writer's chain id.
    pub async fn chain_id(&self) -> String {
        self.head.lock().await.chain_id.clone()
    }

    /// Multi-row inserts in one transaction (SQLite; any database).
    async fn insert_generic(&self, models: Vec<audit_record::Model>) -> Result<(), AuditError> {
        let txn = self.db.begin().await.map_err(unavailable)?;
        // Stay under SQLite's bound-parameter limit: 26 columns per row.
        let mut rows = models
            .into_iter()
            .map(|m| {
                let mut active = audit_record::ActiveModel::from(m).reset_all();
                active.id = NotSet;
                active
            })
            .peekable();
        while rows.peek().is_some() {
            let chunk: Vec<_> = rows.by_ref().take(500).collect();
            audit_record::Entity::insert_many(chunk).exec_without_returning(&txn).await.map_err(unavailable)?;
        }
        txn.commit().await.map_err(unavailable)
    }

    /// Signs and stores a checkpoint of this writer's chain head (also when idle).
    pub async fn checkpoint(&self, key: &SigningKey, now: chrono::DateTime<chrono::Utc>) -> Result<(), AuditError> {
        let head = self.head.lock().await;
        let time = micros(now);
        let statement = checkpoint_statement(&head.chain_id, head.sequence, &head.hash, time);
        let row = audit_checkpoint::ActiveModel {
            id: NotSet,
            chain_id: Set(head.chain_id.clone()),
            sequence: Set(head.sequence),
            head_hash: Set(head.hash.clone()),
            time: Set(time),
            key_id: Set(key.key_id().to_owned()),
            signature: Set(key.sign(&statement)),
        };
        audit_checkpoint::Entity::insert(row).exec_without_returning(&self.db).await.map_err(unavailable)?;
        Ok(())
    }

    /// Walks every chain in sequence order and every checkpoint; reports the first break.
    /// Without a key, checkpoint signatures are not checked (their heads still are).
    pub async fn verify(&self, key: Option<&VerifyingKey>) -> Result<VerifyReport, AuditError> {
        let mut report = VerifyReport {
            ok: true,
            records_checked: 0,
            checkpoints_checked: 0,
            unchained_records: audit_record::Entity::find()
                .filter(audit_record::Column::ChainId.is_null())
                .count(&self.db)
                .await
                .map_err(unavailable)?,
            first_break: None,
        };
        // Per chain: (last sequence, hash by sequence for checkpoint heads).
        let mut heads: std::collections::HashMap<String, (i64, std::collections::HashMap<i64, String>)> =
            std::collections::HashMap::new();
        let mut cursor: Option<(String, i64)> = None;
        let mut state: Option<(String, i64, String, i64)> = None; // chain, sequence, hash, row id
        let fail = |report: &mut VerifyReport, b: Break| {
            if report.first_break.is_none() {
                report.ok = false;
                report.first_break = Some(b);
            }
        };
        'pages: loop {
            let mut find = audit_record::Entity::find()
                .filter(audit_record::Column::ChainId.is_not_null())
                .order_by_asc(audit_record::Column::ChainId)
                .order_by_asc(audit_record::Column::Sequence)
                .limit(5000);
            if let Some((c, seq)) = &cursor {
                find = find.filter(
                    Condition::any().add(audit_record::Column::ChainId.gt(c.as_str())).add(
                        Condition::all()
                            .add(audit_record::Column::ChainId.eq(c.as_str()))
                            .add(audit_record::Column::Sequence.gt(*seq)),
                    ),
                );
            }
            let page = find.all(&self.db).await.map_err(unavailable)?;
            let Some(last) = page.last() else { break 'pages };
            cursor = Some((last.chain_id.clone().unwrap_or_default(), last.sequence.unwrap_or(0)));
            for row in &page {
                report.records_checked += 1;
                let chain = row.chain_id.clone().unwrap_or_default();
                let sequence = row.sequence.unwrap_or(0);
                let (expected, prev, prev_id) = match &state {
                    Some((c, s, h, id)) if *c == chain => (s + 1, h.clone(), Some(*id)),
                    _ => (1, GENESIS.to_owned(), None),
                };
                let at = |reason: String| Break {
                    chain_id: chain.clone(),
                    sequence,
                    record_id: Some(row.id),
                    checkpoint_id: None,
                    reason,
                };
                if sequence != expected {
                    fail(
                        &mut report,
                        at(format!(
                            "sequence {sequence} follows {}: records missing (deleted) or reordered",
                            expected - 1
                        )),
                    );
                } else if row.prev_hash.as_deref() != Some(prev.as_str()) {
                    fail(
                        &mut report,
                        at("prev_hash does not match the previous record: records reordered or replaced".into()),
                    );
                } else if row.hash.as_deref() != Some(record_hash(&prev, row).as_str()) {
                    fail(&mut report, at("hash does not match the record's contents: the record was altered".into()));
                } else if prev_id.is_some_and(|p| row.id <= p) {
                    fail(&mut report, at("row ids are out of sequence order: rows were swapped".into()));
                }
                let hash = row.hash.clone().unwrap_or_default();
                let entry = heads.entry(chain.clone()).or_default();
                entry.0 = sequence;
                entry.1.insert(sequence, hash.clone());
                state = Some((chain, sequence, hash, row.id));
            }
        }
        let checkpoints = audit_checkpoint::Entity::find()
            .order_by_asc(audit_checkpoint::Column::Id)
            .all(&self.db)
            .await
            .map_err(unavailable)?;
        for c in &checkpoints {
            report.checkpoints_checked += 1;
            let at = |reason: String| Break {
                chain_id: c.chain_id.clone(),
                sequence: c.sequence,
                record_id: None,
                checkpoint_id: Some(c.id),
                reason,
            };
            if let Some(key) = key
                && !key.verifies(c)
            {
                fail(&mut report, at("checkpoint signature is not valid: forged or altered checkpoint".into()));
                continue;
            }
            if c.sequence == 0 {
                continue;
            }
            match heads.get(&c.chain_id) {
                Some((last, _)) if *last < c.sequence => fail(
                    &mut report,
                    at(format!(
                        "a checkpoint covers sequence {} but the chain ends at {last}: the tail was deleted",
                        c.sequence
                    )),
                ),
                Some((_, hashes)) if hashes.get(&c.sequence) != Some(&c.head_hash) => {
                    fail(&mut report, at("the checkpoint's head hash differs from the record's".into()));
                }
                None => {
                    fail(&mut report, at("a checkpoint names a chain with no records: the records were deleted".into()))
                }
                Some(_) => {}
            }
        }
        Ok(report)
    }

    /// Reads rows matching a query, oldest first.
    pub async fn query(&self, q: &AuditQuery) -> Result<Vec<audit_record::Model>, AuditError> {
        let mut find = audit_record::Entity::find().order_by_asc(audit_record::Column::Id).limit(q.limit);
        if let Some(p) = &q.principal {
            find = find.filter(audit_record::Column::Principal.eq(p.as_str()));
        }
        if let Some(k) = &q.key_id {
            find = find.filter(audit_record::Column::KeyId.eq(k.as_str()));
        }
        if let Some(a) = &q.action {
            find = find.filter(audit_record::Column::Action.eq(a.as_str()));
        }
        if let Some(from) = q.from {
            find = find.filter(audit_record::Column::Time.gte(micros(from)));
        }
        if let Some(to) = q.to {
            find = find.filter(audit_record::Column::Time.lt(micros(to)));
        }
        if let Some(allowed) = q.decision {
            find = find.filter(audit_record::Column::Decision.eq(if allowed { "Allow" } else { "Deny" }));
        }
        if let Some(after) = q.after_id {
            find = find.filter(audit_record::Column::Id.gt(after));
        }
        find.all(&self.db).await.map_err(|e| AuditError(e.to_string()))
    }

    /// Counts all rows.
    pub async fn count(&self) -> Result<u64, AuditError> {
        audit_record::Entity::find().count(&self.db).await.map_err(|e| AuditError(e.to_string()))
    }
}

/// Reads and verifies the trail for QueryAudit and VerifyAudit.
#[derive(Debug, Clone)]
pub struct SqlAuditReader {
    store: SqlAuditStore,
    key: Option<VerifyingKey>,
}

impl SqlAuditReader {
    /// A reader checking checkpoint signatures with `key`.
    pub fn new(store: SqlAuditStore, key: Option<VerifyingKey>) -> Self {
        Self { store, key }
    }
}

fn from_row(m: audit_record::Model) -> StoredAuditRecord {
    let list = |s: &str| serde_json::from_str::<Vec<String>>(s).unwrap_or_default();
    let record = AuditRecord {
        time: chrono::DateTime::from_timestamp_micros(m.time).unwrap_or_default(),
        request_id: m.request_id,
        trace_id: m.trace_id,
        principal: m.principal,
        principal_groups: list(&m.principal_groups),
        action: m.action,
        resource: m.resource,
        key_id: m.key_id.as_deref().and_then(|k| k.parse().ok()),
        key_version: m.key_version.and_then(|v| u32::try_from(v).ok()),
        decision: m.decision.as_deref().map(|d| d == "Allow"),
        determining_policies: list(&m.determining_policies),
        policy_version: m.policy_version,
        policy_errors: list(&m.policy_errors),
        outcome: m.outcome,
        reason: m.reason,
        encryption_context: serde_json::from_str(&m.encryption_context).unwrap_or_default(),
        source_ip: m.source_ip,
        user_agent: m.user_agent,
        justification: m.justification,
        dry_run: m.dry_run,
        duration_us: u64::try_from(m.duration_us).unwrap_or(0),
        interface: m.interface,
    };
    StoredAuditRecord { id: m.id, record, chain_id: m.chain_id, sequence: m.sequence, hash: m.hash }
}

#[async_trait::async_trait]
impl AuditReader for SqlAuditReader {
    async fn query(&self, f: &AuditFilter) -> Result<Vec<StoredAuditRecord>, AuditError> {
        let q = AuditQuery {
            principal: f.principal.clone(),
            key_id: f.key_id.map(|k| k.to_string()),
            action: f.action.clone(),
            from: f.from,
            to: f.to,
            decision: f.decision,
            after_id: f.after_id,
            limit: f.limit,
        };
        Ok(self.store.query(&q).await?.into_iter().map(from_row).collect())
    }

    async fn verify(&self) -> Result<VerifyOutcome, AuditError> {
        let r = self.store.verify(self.key.as_ref()).await?;
        let first_break = r.first_break.map(|b| match (b.record_id, b.checkpoint_id) {
            (Some(id), _) => format!("record {id} (chain {}, sequence {}): {}", b.chain_id, b.sequence, b.reason),
            (None, Some(id)) => {
                format!("checkpoint {id} (chain {}, sequence {}): {}", b.chain_id, b.sequence, b.reason)
            }
            (None, None) => format!("chain {}, sequence {}: {}", b.chain_id, b.sequence, b.reason),
        });
        Ok(VerifyOutcome { ok: r.ok, records_checked: r.records_checked, first_break })
    }
}

/// A stored record as the API and exports show it (DESIGN's AuditRecord, plus the row id).
pub fn audit_json(m: &audit_record::Model) -> serde_json::Value {
    let json = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap_or(serde_json::Value::Null);
    let time = chrono::DateTime::from_timestamp_micros(m.time)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .unwrap_or_default();
    serde_json::json!({
        "id": m.id,
        "time": time,
        "request_id": m.request_id,
        "trace_id": m.trace_id,
        "principal": m.principal,
        "principal_groups": json(&m.principal_groups),
        "action": m.action,
        "resource": m.resource,
        "key_id": m.key_id,
        "key_version": m.key_version,
        "decision": m.decision,
        "determining_policies": json(&m.determining_policies),
        "policy_errors": json(&m.policy_errors),
        "policy_version": m.policy_version,
        "outcome": m.outcome,
        "encryption_context": json(&m.encryption_context),
        "source_ip": m.source_ip,
        "user_agent": m.user_agent,
        "justification": m.justification,
        "dry_run": m.dry_run,
        "duration_us": m.duration_us,
        "interface": m.interface,
        "chain_id": m.chain_id,
        "sequence": m.sequence,
        "prev_hash": m.prev_hash,
        "hash": m.hash,
    })
}

fn unavailable(e: sea_orm::DbErr) -> AuditError {
    AuditError(e.to_string())
}

/// The stored form of a record, before its chain fields are set.
fn to_model(r: &AuditRecord) -> audit_record::Model {
    audit_record::Model {
        id: 0,
        time: micros(r.time),
        request_id: r.request_id.clone(),
        trace_id: r.trace_id.clone(),
        principal: r.principal.clone(),
        action: r.action.clone(),
        resource: r.resource.clone(),
        key_id: r.key_id.map(|k| k.to_string()),
        key_version: r.key_version.map(i64::from),
        decision: r.decision.map(|a| if a { "Allow" } else { "Deny" }.to_owned()),
        determining_policies: serde_json::to_string(&r.determining_policies).unwrap_or_else(|_| "[]".into()),
        policy_version: r.policy_version.clone(),
        outcome: r.outcome.clone(),
        reason: r.reason.clone(),
        encryption_context: serde_json::to_string(&r.encryption_context).unwrap_or_else(|_| "{}".into()),
        source_ip: r.source_ip.clone(),
        user_agent: r.user_agent.clone(),
        dry_run: r.dry_run,
        duration_us: i64::try_from(r.duration_us).unwrap_or(i64::MAX),
        principal_groups: serde_json::to_string(&r.principal_groups).unwrap_or_else(|_| "[]".into()),
        justification: r.justification.clone(),
        policy_errors: serde_json::to_string(&r.policy_errors).unwrap_or_else(|_| "[]".into()),
        chain_id: None,
        sequence: None,
        prev_hash: None,
        hash: None,
        interface: r.interface.clone(),
    }
}

#[async_trait::async_trait]
impl AuditStore for SqlAuditStore {
    async fn append(&self, records: &[AuditRecord]) -> Result<(), AuditError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut head = self.head.lock().await;
        let mut next = head.clone();
        let models: Vec<audit_record::Model> = records
            .iter()
            .map(|r| {
                let mut model = to_model(r);
                next.sequence += 1;
                model.chain_id = Some(next.chain_id.clone());
                model.sequence = Some(next.sequence);
                model.prev_hash = Some(next.hash.clone());
                next.hash = record_hash(&next.hash, &model);
                model.hash = Some(next.hash.clone());
                model
            })
            .collect();
        let result = if self.db.get_database_backend() == sea_orm::DbBackend::Postgres {
            self.connection
                .insert(self.db.get_postgres_connection_pool(), &models)
                .await
                .map_err(|e| AuditError(e.to_string()))
        } else {
            self.insert_generic(models).await
        };
        match &result {
            Ok(()) => *head = next,
            // Whether the batch landed is unknown: continue on a new chain rather than fork this one.
            Err(_) => *head = Head::fresh(),
        }
        result
    }

    async fn ping(&self) -> Result<(), AuditError> {
        self.db.ping().await.map_err(unavailable)
    }
}
