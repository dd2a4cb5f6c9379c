//! The domain's key store on sea-orm.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use keyward_core::model::access_key::AccessKeyRecord;
use keyward_core::model::approval::{ApprovalRecord, ApprovalState};
use keyward_core::model::grant::GrantRecord;
use keyward_core::model::ids::{AliasName, KeyId, Namespace};
use keyward_core::model::key::{KeyRecord, KeyState};
use keyward_core::model::version::{Usage, VersionRecord};
use keyward_core::ports::audit::AuditRecord;
use keyward_core::ports::store::{AliasRecord, Change, Committed, KeyStore, StoreError};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, SqlErr,
    TransactionTrait,
};

use crate::SqlAuditStore;
use crate::cache::KeyCache;
use crate::convert::{self, micros};
use crate::entity::{alias, idempotency_key, key, key_version};
use crate::usage::UsageBuffer;
use uuid::Uuid;

/// Keys, versions and aliases in a SQL database.
#[derive(Debug, Clone)]
pub struct SqlStore {
    db: DatabaseConnection,
    usage: Arc<UsageBuffer>,
    cache: Arc<KeyCache>,
    grant_changes: Arc<tokio::sync::Notify>,
    /// The chain this process's state changes are recorded on, each record in its change's
    /// transaction.
    changes: SqlAuditStore,
}

/// How long a cached key record is trusted: the time another replica's change (a disable, say)
/// takes to be seen here. Local changes are seen at once.
pub const DEFAULT_KEY_CACHE_TTL: Duration = Duration::from_secs(1);

pub(crate) fn db_err(e: DbErr) -> StoreError {
    match e.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(m)) => StoreError::Conflict(m),
        _ => StoreError::Backend(e.to_string()),
    }
}

impl SqlStore {
    /// A store over an open (migrated) connection.
    pub fn new(db: DatabaseConnection) -> Self {
        Self::with_cache_ttl(db, DEFAULT_KEY_CACHE_TTL)
    }

    /// A store whose key cache trusts records for `ttl` (zero disables caching).
    pub fn with_cache_ttl(db: DatabaseConnection, ttl: Duration) -> Self {
        let changes = SqlAuditStore::new(db.clone());
        Self { db, usage: Arc::default(), cache: Arc::new(KeyCache::new(ttl)), grant_changes: Arc::default(), changes }
    }

    /// Signs the genesis checkpoint of each chain of change records with `key`.
    #[must_use]
    pub fn with_signing_key(mut self, key: Arc<crate::chain::SigningKey>) -> Self {
        self.changes = self.changes.with_signing_key(key);
        self
    }

    /// The chain state changes are recorded on (checkpointed like the writer's lanes).
    pub fn change_chain(&self) -> &SqlAuditStore {
        &self.changes
    }

    /// The connection.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Writes buffered usage counters. Counts that fail to write are kept for the next try,
    /// and so are counts whose flush is abandoned midway (a cancelled request or task): the
    /// taken counts go back unless the commit returned, so none is lost.
    pub async fn flush_usage(&self) -> Result<(), StoreError> {
        self.flush_usage_totals().await.map(|_| ())
    }

    /// Flushes the usage counters, and answers, for each version that had encryptions in this
    /// batch, its total encryptions as the database now counts them (every replica's) and how
    /// many this batch added.
    pub async fn flush_usage_totals(&self) -> Result<Vec<EncryptionTotal>, StoreError> {
        let pending = self.usage.take();
        if pending.is_empty() {
            return Ok(Vec::new());
        }
        let guard = crate::usage::Restore::new(&self.usage, pending);
        let mut totals = Vec::new();
        let result = async {
            let txn = self.db.begin().await?;
            for ((id, version), p) in guard.pending() {
                let mut update = key_version::Entity::update_many()
                    .col_expr(
                        key_version::Column::Encryptions,
                        Expr::col(key_version::Column::Encryptions).add(p.encryptions),
                    )
                    .col_expr(
                        key_version::Column::Decryptions,
                        Expr::col(key_version::Column::Decryptions).add(p.decryptions),
                    );
                if let Some(t) = p.last_used_at {
                    update = update.col_expr(key_version::Column::LastUsedAt, Expr::value(micros(t)));
                }
                update
                    .filter(key_version::Column::KeyId.eq(id.to_string()))
                    .filter(key_version::Column::Version.eq(i64::from(*version)))
                    .exec(&txn)
                    .await?;
                if p.encryptions > 0 {
                    let row = key_version::Entity::find_by_id((id.to_string(), i64::from(*version))).one(&txn).await?;
                    if let Some(row) = row {
                        totals.push(EncryptionTotal {
                            key: *id,
                            version: *version,
                            total: u64::try_from(row.encryptions).unwrap_or(0),
                            batch: u64::try_from(p.encryptions).unwrap_or(0),
                        });
                    }
                }
            }
            txn.commit().await
        }
        .await;
        match result {
            Ok(()) => {
                guard.written();
                Ok(totals)
            }
            // The guard puts the counts back.
            Err(e) => Err(db_err(e)),
        }
    }

    /// Flushes usage counters every `period` until `stop` is notified; a flush in progress
    /// finishes first (await the handle after notifying). Each flush's totals go to `flushed`
    /// (rotation by usage).
    pub fn spawn_usage_flusher(
        &self,
        period: Duration,
        stop: Arc<tokio::sync::Notify>,
        flushed: impl Fn(Vec<EncryptionTotal>) + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        let store = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = stop.notified() => return,
                }
                match store.flush_usage_totals().await {
                    Ok(totals) if !totals.is_empty() => flushed(totals),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "usage counters not flushed; will retry"),
                }
            }
        })
    }

    /// Up to 100 keys in `state` whose `when` column has passed; later passes take the rest.
    /// At most 100 keys whose state passes `states` and whose `when` time has come.
    async fn keys_due(
        &self,
        states: sea_orm::sea_query::SimpleExpr,
        when: key::Column,
        now: DateTime<Utc>,
    ) -> Result<Vec<KeyRecord>, StoreError> {
        key::Entity::find()
            .filter(states)
            .filter(when.lte(micros(now)))
            .limit(100)
            .all(&self.db)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(convert::key_from_row)
            .collect()
    }

    pub(crate) async fn write_key<C: ConnectionTrait>(db: &C, k: &KeyRecord) -> Result<(), StoreError> {
        let result = key::Entity::update_many()
            .set(convert::key_to_active(k))
            .filter(key::Column::Id.eq(k.id.to_string()))
            .filter(key::Column::Revision.eq(k.revision - 1))
            .exec(db)
            .await
            .map_err(db_err)?;
        if result.rows_affected != 1 {
            return Err(StoreError::Conflict(format!("key {} changed concurrently", k.id)));
        }
        // Other replicas drop their cached copy when this commits (see `spawn_change_listener`).
        if db.get_database_backend() == sea_orm::DbBackend::Postgres {
            db.execute_unprepared(&format!("NOTIFY {KEY_CHANNEL}, '{}'", k.id)).await.map_err(db_err)?;
        }
        Ok(())
    }

    /// Woken when another replica announces a grant change (or the announcements may have
    /// been missed): the server's grant sync waits on it besides its timer.
    pub fn grant_changes(&self) -> Arc<tokio::sync::Notify> {
        self.grant_changes.clone()
    }

    /// On Postgres, listens for other replicas' key changes and drops the cached records at
    /// once, so a disabled or destroyed key is refused everywhere within milliseconds rather
    /// than the cache TTL. After a lost connection (notifications may have been missed) the
    /// whole key cache is dropped and grants are re-read, every second until it is back. `None` on SQLite (one process).
    pub fn spawn_change_listener(&self, url: &str) -> Option<tokio::task::JoinHandle<()>> {
        if self.db.get_database_backend() != sea_orm::DbBackend::Postgres {
            return None;
        }
        let (cache, grants, url) = (self.cache.clone(), self.grant_changes.clone(), url.to_owned());
        Some(tokio::spawn(async move {
            loop {
                match sqlx::postgres::PgListener::connect(&url).await {
                    Ok(mut listener) => match listener.listen_all([KEY_CHANNEL, GRANT_CHANNEL]).await {
                        Ok(()) => {
                            cache.clear_keys();
                            grants.notify_one();
                            // `None`: the connection dropped; the next call reconnects.
                            while let Ok(next) = listener.try_recv().await {
                                match next {
                                    Some(n) if n.channel() == GRANT_CHANNEL => grants.notify_one(),
                                    Some(n) => {
                                        if let Ok(id) = n.payload().parse::<KeyId>() {
                                            cache.forget_key(id);
                                            cache.forget_versions(id);
                                        }
                                    }
                                    // Reconnected: announcements may have been missed.
                                    None => {
                                        cache.clear_keys();
                                        grants.notify_one();
                                    }
                                }
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "cannot listen for key changes; relying on the cache TTL"),
                    },
                    Err(e) => tracing::warn!(error = %e, "cannot listen for key changes; relying on the cache TTL"),
                }
                cache.clear_keys();
                grants.notify_one();
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }))
    }
}

/// A version's encryptions after a flush of usage counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncryptionTotal {
    /// The key.
    pub key: KeyId,
    /// The version.
    pub version: u32,
    /// Its encryptions, every replica's flushed counts included.
    pub total: u64,
    /// How many this flush added (this replica's since its last flush).
    pub batch: u64,
}

/// The Postgres channel key changes are announced on (payload: the key id).
const KEY_CHANNEL: &str = "keyward_keys";
/// The Postgres channel grant changes are announced on.
pub(crate) const GRANT_CHANNEL: &str = "keyward_grants";

#[async_trait::async_trait]
impl KeyStore for SqlStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.db.ping().await.map_err(db_err)
    }

    async fn commit(
        &self,
        change: &Change,
        applied: &AuditRecord,
        refused: &AuditRecord,
    ) -> Result<Committed, StoreError> {
        let key = change.write().key();
        let result = crate::changes::commit(&self.db, &self.changes, change, applied, refused).await;
        // After the commit; a read of the old row still in flight will not put it back.
        if let Some(id) = key {
            self.cache.forget_key(id);
            self.cache.forget_versions(id);
        }
        result
    }

    async fn idempotent_key(&self, principal: &str, key: &str) -> Result<Option<(KeyId, String)>, StoreError> {
        let row = idempotency_key::Entity::find_by_id((principal.to_owned(), key.to_owned()))
            .one(&self.db)
            .await
            .map_err(db_err)?;
        row.map(|r| Ok((convert::key_id(&r.key_id)?, r.request_hash))).transpose()
    }

    async fn key(&self, id: KeyId) -> Result<Option<KeyRecord>, StoreError> {
        if let Some(k) = self.cache.key(id) {
            return Ok(Some(k));
        }
        self.key_current(id).await
    }

    async fn key_current(&self, id: KeyId) -> Result<Option<KeyRecord>, StoreError> {
        let seen = self.cache.epoch();
        let row = key::Entity::find_by_id(id.to_string()).one(&self.db).await.map_err(db_err)?;
        let key = row.map(convert::key_from_row).transpose()?;
        if let Some(k) = &key {
            self.cache.put_key(k, seen);
        }
        Ok(key)
    }

    async fn list_keys(
        &self,
        namespace: Option<&Namespace>,
        after: Option<KeyId>,
        limit: u64,
    ) -> Result<Vec<KeyRecord>, StoreError> {
        let mut q = key::Entity::find().order_by_asc(key::Column::Id).limit(limit);
        if let Some(ns) = namespace {
            q = q.filter(key::Column::Namespace.eq(ns.as_str()));
        }
        if let Some(after) = after {
            q = q.filter(key::Column::Id.gt(after.to_string()));
        }
        q.all(&self.db).await.map_err(db_err)?.into_iter().map(convert::key_from_row).collect()
    }

    async fn version(&self, id: KeyId, version: u32) -> Result<Option<VersionRecord>, StoreError> {
        if let Some(v) = self.cache.version(id, version) {
            return Ok(Some(v));
        }
        let seen = self.cache.epoch();
        let row = key_version::Entity::find_by_id((id.to_string(), i64::from(version)))
            .one(&self.db)
            .await
            .map_err(db_err)?;
        let v = row.map(convert::version_from_row).transpose()?;
        if let Some(v) = &v {
            self.cache.put_version(id, v, seen);
        }
        Ok(v)
    }

    async fn versions(&self, id: KeyId) -> Result<Vec<VersionRecord>, StoreError> {
        // Include counts not yet flushed, so readers see current numbers.
        self.flush_usage().await?;
        key_version::Entity::find()
            .filter(key_version::Column::KeyId.eq(id.to_string()))
            .order_by_asc(key_version::Column::Version)
            .all(&self.db)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(convert::version_from_row)
            .collect()
    }

    fn record_usage(&self, id: KeyId, version: u32, usage: Usage, at: DateTime<Utc>) {
        self.usage.add(id, version, usage, at);
    }

    async fn alias(&self, name: &AliasName) -> Result<Option<AliasRecord>, StoreError> {
        let row = alias::Entity::find_by_id(name.to_string()).one(&self.db).await.map_err(db_err)?;
        row.map(convert::alias_from_row).transpose()
    }

    async fn aliases_of(&self, id: KeyId) -> Result<Vec<AliasName>, StoreError> {
        let rows = alias::Entity::find()
            .filter(alias::Column::KeyId.eq(id.to_string()))
            .order_by_asc(alias::Column::Name)
            .all(&self.db)
            .await
            .map_err(db_err)?;
        rows.into_iter().map(|r| convert::alias_from_row(r).map(|a| a.name)).collect()
    }

    async fn list_aliases(
        &self,
        key: Option<KeyId>,
        after: Option<&AliasName>,
        limit: u64,
    ) -> Result<Vec<AliasRecord>, StoreError> {
        let mut q = alias::Entity::find().order_by_asc(alias::Column::Name).limit(limit);
        if let Some(id) = key {
            q = q.filter(alias::Column::KeyId.eq(id.to_string()));
        }
        if let Some(after) = after {
            q = q.filter(alias::Column::Name.gt(after.to_string()));
        }
        q.all(&self.db).await.map_err(db_err)?.into_iter().map(convert::alias_from_row).collect()
    }

    async fn keys_due_for_deletion(&self, now: DateTime<Utc>) -> Result<Vec<KeyRecord>, StoreError> {
        self.keys_due(key::Column::State.eq(KeyState::PendingDeletion.as_str()), key::Column::DeletionDate, now).await
    }

    async fn destroyed_keys_with_material(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let destroyed_keys = sea_orm::sea_query::Query::select()
            .column(key::Column::Id)
            .from(key::Entity)
            .and_where(key::Column::State.eq(KeyState::Destroyed.as_str()))
            .to_owned();
        let pending: Vec<String> = key_version::Entity::find()
            .filter(key_version::Column::Destroyed.eq(false))
            .filter(key_version::Column::KeyId.in_subquery(destroyed_keys))
            .limit(100)
            .all(&self.db)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(|v| v.key_id)
            .collect();
        let mut keys = Vec::new();
        for id in pending.iter().collect::<std::collections::BTreeSet<_>>() {
            if let Some(row) = key::Entity::find_by_id(id.clone()).one(&self.db).await.map_err(db_err)? {
                keys.push(convert::key_from_row(row)?);
            }
        }
        Ok(keys)
    }

    async fn keys_with_expired_material(&self, now: DateTime<Utc>) -> Result<Vec<KeyRecord>, StoreError> {
        let holding = key::Column::State.is_not_in([KeyState::PendingImport.as_str(), KeyState::Destroyed.as_str()]);
        self.keys_due(holding, key::Column::ValidTo, now).await
    }

    async fn keys_due_for_rotation(&self, now: DateTime<Utc>) -> Result<Vec<KeyRecord>, StoreError> {
        self.keys_due(key::Column::State.eq(KeyState::Enabled.as_str()), key::Column::NextRotationAt, now).await
    }

    async fn grant(&self, id: Uuid) -> Result<Option<GrantRecord>, StoreError> {
        crate::grants::get(&self.db, id).await
    }

    async fn grants(&self, key: Option<KeyId>) -> Result<Vec<GrantRecord>, StoreError> {
        crate::grants::list(&self.db, key).await
    }

    async fn grants_revision(&self) -> Result<i64, StoreError> {
        crate::grants::revision(&self.db).await
    }

    async fn access_key(&self, id: &str) -> Result<Option<AccessKeyRecord>, StoreError> {
        crate::access_keys::get(&self.db, id).await
    }

    async fn list_access_keys(&self, after: Option<&str>, limit: u64) -> Result<Vec<AccessKeyRecord>, StoreError> {
        crate::access_keys::list(&self.db, after, limit).await
    }

    async fn approval(&self, id: Uuid) -> Result<Option<ApprovalRecord>, StoreError> {
        crate::approvals::get(&self.db, id).await
    }

    async fn list_approvals(
        &self,
        state: Option<ApprovalState>,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<ApprovalRecord>, StoreError> {
        crate::approvals::list(&self.db, state, after, limit).await
    }

    async fn approvals_expired(&self, now: DateTime<Utc>) -> Result<Vec<ApprovalRecord>, StoreError> {
        crate::approvals::expired(&self.db, now).await
    }
}
