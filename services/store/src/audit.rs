//! The audit trail's storage: batched inserts in one transaction, and filtered reads.

use keyward_core::model::ids::KeyId;
use keyward_core::ports::audit::{
    AuditError, AuditFilter, AuditReader, AuditRecord, AuditStore, StoredAuditRecord, VerifyOutcome, VersionActivity,
};
use sea_orm::ActiveValue::{NotSet, Set};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait,
};

use std::sync::Arc;

use crate::chain::{GENESIS, SigningKey, VerifyingKey, checkpoint_statement, genesis_statement, record_hash};
use crate::convert::micros;
use crate::entity::{audit_checkpoint, audit_record};
use crate::verify::{VerifyOptions, VerifyReport};

/// Audit rows in a SQL database, chained per writer (see [`crate::chain`]).
#[derive(Debug, Clone)]
pub struct SqlAuditStore {
    db: DatabaseConnection,
    head: Arc<tokio::sync::Mutex<Head>>,
    connection: Arc<crate::audit_pg::LaneConnection>,
    signer: Option<Arc<SigningKey>>,
}

/// The head of this writer's chain.
#[derive(Debug, Clone)]
pub(crate) struct Head {
    chain_id: String,
    sequence: i64,
    hash: String,
    /// The chain this one follows (`chain:sequence:hash`), for its genesis checkpoint.
    previous: String,
    /// Whether the genesis checkpoint is committed.
    started: bool,
}

impl Head {
    /// A writer's first chain.
    fn first() -> Self {
        Self {
            chain_id: uuid::Uuid::now_v7().to_string(),
            sequence: 0,
            hash: GENESIS.to_owned(),
            previous: String::new(),
            started: false,
        }
    }

    /// The chain that replaces `self` once its state is uncertain (a failed or abandoned
    /// commit): its genesis names the last head known to be committed.
    fn successor(&self) -> Self {
        let previous = if self.sequence > 0 {
            format!("{}:{}:{}", self.chain_id, self.sequence, self.hash)
        } else {
            self.previous.clone()
        };
        Self { previous, ..Self::first() }
    }

    /// Chains records after this head: their rows, and the head after them.
    fn extend<'a>(&self, records: impl IntoIterator<Item = &'a AuditRecord>) -> (Vec<audit_record::Model>, Self) {
        let mut next = self.clone();
        let models = records
            .into_iter()
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
        next.started = true;
        (models, next)
    }
}

/// A chain's head held for one commit. Until [`HeldHead::committed`], the writer's head is
/// already the successor chain: a commit that fails, or is abandoned at a timeout while its
/// outcome is unknown, never leaves a head that a later commit could fork.
pub(crate) struct HeldHead<'a> {
    guard: tokio::sync::MutexGuard<'a, Head>,
    current: Head,
}

impl HeldHead<'_> {
    /// Rows for `records` on this chain, preceded (on a new chain) by its genesis checkpoint.
    pub(crate) fn rows<'r>(
        &self,
        store: &SqlAuditStore,
        records: impl IntoIterator<Item = &'r AuditRecord>,
    ) -> (Option<audit_checkpoint::ActiveModel>, Vec<audit_record::Model>, Head) {
        let genesis = (!self.current.started).then(|| store.genesis_row(&self.current)).flatten();
        let (models, next) = self.current.extend(records);
        (genesis, models, next)
    }

    /// Records that the commit landed: the chain goes on from `next`.
    pub(crate) fn committed(mut self, next: Head) {
        *self.guard = next;
    }
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
        Self { db, head: Arc::new(tokio::sync::Mutex::new(Head::first())), connection: Arc::default(), signer: None }
    }

    /// Signs each chain's genesis checkpoint with `key`.
    #[must_use]
    pub fn with_signing_key(mut self, key: Arc<SigningKey>) -> Self {
        self.signer = Some(key);
        self
    }

    /// This writer's chain id.
    pub async fn chain_id(&self) -> String {
        self.head.lock().await.chain_id.clone()
    }

    /// Takes the head for one commit, leaving its successor in place until the commit lands.
    pub(crate) async fn hold(&self) -> HeldHead<'_> {
        let mut guard = self.head.lock().await;
        let current = std::mem::replace(&mut *guard, Head::first());
        *guard = current.successor();
        HeldHead { guard, current }
    }

    /// The signed genesis checkpoint of a new chain (none without a signing key).
    fn genesis_row(&self, head: &Head) -> Option<audit_checkpoint::ActiveModel> {
        let key = self.signer.as_ref()?;
        let time = micros(chrono::Utc::now());
        Some(audit_checkpoint::ActiveModel {
            id: NotSet,
            chain_id: Set(head.chain_id.clone()),
            sequence: Set(0),
            head_hash: Set(GENESIS.to_owned()),
            time: Set(time),
            key_id: Set(key.key_id().to_owned()),
            signature: Set(key.sign(&genesis_statement(&head.chain_id, time, &head.previous))),
            previous: Set(Some(head.previous.clone())),
        })
    }

    /// Inserts chained rows (and a genesis checkpoint) on any connection or transaction.
    pub(crate) async fn insert_rows<C: ConnectionTrait>(
        db: &C,
        genesis: Option<audit_checkpoint::ActiveModel>,
        models: Vec<audit_record::Model>,
    ) -> Result<(), sea_orm::DbErr> {
        if let Some(g) = genesis {
            audit_checkpoint::Entity::insert(g).exec_without_returning(db).await?;
        }
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
            audit_record::Entity::insert_many(chunk).exec_without_returning(db).await?;
        }
        Ok(())
    }

    /// Signs and stores a checkpoint of this writer's chain head (also when idle; a chain
    /// with no records yet has nothing to vouch for).
    pub async fn checkpoint(&self, key: &SigningKey, now: chrono::DateTime<chrono::Utc>) -> Result<(), AuditError> {
        let head = self.head.lock().await;
        if head.sequence == 0 {
            return Ok(());
        }
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
            previous: Set(None),
        };
        audit_checkpoint::Entity::insert(row).exec_without_returning(&self.db).await.map_err(unavailable)?;
        Ok(())
    }

    /// Walks every chain beside its checkpoints (see [`crate::verify`]).
    pub async fn verify(&self, options: VerifyOptions<'_>) -> Result<VerifyReport, AuditError> {
        crate::verify::verify(&self.db, options).await
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

    /// Per version of a key, its successful uses of the material since `since` (the key-id
    /// index and the time bound keep the scan to that key's recent records).
    pub async fn version_activity(
        &self,
        key: KeyId,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<VersionActivity>, AuditError> {
        use sea_orm::sea_query::Expr;
        #[derive(Debug, sea_orm::FromQueryResult)]
        struct Row {
            key_version: Option<i64>,
            uses: i64,
            decryptions: i64,
            principals: i64,
            first: Option<i64>,
            last: Option<i64>,
        }
        let uses =
            keyward_core::operation::Operation::ALL.into_iter().filter(|o| o.uses_key_material()).map(|o| o.as_str());
        let rows = audit_record::Entity::find()
            .select_only()
            .column(audit_record::Column::KeyVersion)
            .column_as(Expr::cust("COUNT(*)"), "uses")
            .column_as(Expr::cust("COUNT(CASE WHEN action = 'Decrypt' THEN 1 END)"), "decryptions")
            .column_as(Expr::cust("COUNT(DISTINCT principal)"), "principals")
            .column_as(Expr::cust("MIN(time)"), "first")
            .column_as(Expr::cust("MAX(time)"), "last")
            .filter(audit_record::Column::KeyId.eq(key.to_string()))
            .filter(audit_record::Column::Time.gte(micros(since)))
            .filter(audit_record::Column::Outcome.eq("Success"))
            .filter(audit_record::Column::DryRun.eq(false))
            .filter(audit_record::Column::KeyVersion.is_not_null())
            .filter(audit_record::Column::Action.is_in(uses))
            .group_by(audit_record::Column::KeyVersion)
            .into_model::<Row>()
            .all(&self.db)
            .await
            .map_err(|e| AuditError(e.to_string()))?;
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        let time = |t: Option<i64>| t.and_then(chrono::DateTime::from_timestamp_micros);
        let mut out: Vec<_> = rows
            .into_iter()
            .filter_map(|r| {
                Some(VersionActivity {
                    version: u32::try_from(r.key_version?).ok()?,
                    uses: count(r.uses),
                    decryptions: count(r.decryptions),
                    principals: count(r.principals),
                    first_used_at: time(r.first),
                    last_used_at: time(r.last),
                })
            })
            .collect();
        out.sort_by_key(|a| a.version);
        Ok(out)
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
    checkpoint_interval: std::time::Duration,
}

impl SqlAuditReader {
    /// A reader checking checkpoint signatures with `key`, for servers that checkpoint every
    /// minute.
    pub fn new(store: SqlAuditStore, key: Option<VerifyingKey>) -> Self {
        Self { store, key, checkpoint_interval: std::time::Duration::from_secs(60) }
    }

    /// The servers' checkpoint interval (how long an unsigned tail may span).
    #[must_use]
    pub fn with_checkpoint_interval(mut self, interval: std::time::Duration) -> Self {
        self.checkpoint_interval = interval;
        self
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
        details: m.details.as_deref().and_then(|d| serde_json::from_str(d).ok()).unwrap_or_default(),
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

    async fn version_activity(
        &self,
        key: KeyId,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<VersionActivity>, AuditError> {
        self.store.version_activity(key, since).await
    }

    async fn verify(&self) -> Result<VerifyOutcome, AuditError> {
        let options = VerifyOptions {
            key: self.key.as_ref(),
            checkpoint_interval: self.checkpoint_interval,
            from_checkpoint: None,
        };
        let r = self.store.verify(options).await?;
        let first_break = r.first_break.map(|b| match (b.record_id, b.checkpoint_id) {
            (Some(id), _) => format!("record {id} (chain {}, sequence {}): {}", b.chain_id, b.sequence, b.reason),
            (None, Some(id)) => {
                format!("checkpoint {id} (chain {}, sequence {}): {}", b.chain_id, b.sequence, b.reason)
            }
            (None, None) => format!("chain {}, sequence {}: {}", b.chain_id, b.sequence, b.reason),
        });
        Ok(VerifyOutcome {
            ok: r.ok,
            records_checked: r.records_checked,
            verified_records: r.verified_records,
            unsigned_tail_records: r.unsigned_tail.records,
            first_break,
        })
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
        "details": m.details.as_deref().map_or(serde_json::Value::Null, json),
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
        details: (!r.details.is_empty()).then(|| serde_json::to_string(&r.details).unwrap_or_else(|_| "{}".into())),
    }
}

#[async_trait::async_trait]
impl AuditStore for SqlAuditStore {
    async fn append(&self, records: &[AuditRecord]) -> Result<(), AuditError> {
        if records.is_empty() {
            return Ok(());
        }
        let held = self.hold().await;
        let (genesis, models, next) = held.rows(self, records);
        let result = if self.db.get_database_backend() == sea_orm::DbBackend::Postgres {
            let pool = self.db.get_postgres_connection_pool();
            async {
                if let Some(g) = genesis {
                    audit_checkpoint::Entity::insert(g).exec_without_returning(&self.db).await.map_err(unavailable)?;
                }
                self.connection.insert(pool, &models).await.map_err(|e| AuditError(e.to_string()))
            }
            .await
        } else {
            async {
                let txn = self.db.begin().await?;
                Self::insert_rows(&txn, genesis, models).await?;
                txn.commit().await
            }
            .await
            .map_err(unavailable)
        };
        // On failure the held head is dropped: whether the batch landed is unknown, so the
        // writer goes on with the successor chain rather than fork this one.
        if result.is_ok() {
            held.committed(next);
        }
        result
    }

    async fn ping(&self) -> Result<(), AuditError> {
        self.db.ping().await.map_err(unavailable)
    }
}
