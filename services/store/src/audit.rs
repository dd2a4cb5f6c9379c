//! The audit trail's storage: batched inserts in one transaction, and filtered reads.

use keyward_core::ports::audit::{AuditError, AuditRecord, AuditStore};
use sea_orm::ActiveValue::{NotSet, Set};
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};

use crate::convert::micros;
use crate::entity::audit_record;

/// Audit rows in a SQL database.
#[derive(Debug, Clone)]
pub struct SqlAuditStore {
    db: DatabaseConnection,
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
    /// Rows after this id.
    pub after_id: Option<i64>,
    /// At most this many.
    pub limit: u64,
}

impl SqlAuditStore {
    /// Storage over an open (migrated) connection.
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
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

fn to_row(r: &AuditRecord) -> audit_record::ActiveModel {
    audit_record::ActiveModel {
        id: NotSet,
        time: Set(micros(r.time)),
        request_id: Set(r.request_id.clone()),
        trace_id: Set(r.trace_id.clone()),
        principal: Set(r.principal.clone()),
        action: Set(r.action.clone()),
        resource: Set(r.resource.clone()),
        key_id: Set(r.key_id.map(|k| k.to_string())),
        key_version: Set(r.key_version.map(i64::from)),
        decision: Set(r.decision.map(|a| if a { "Allow" } else { "Deny" }.to_owned())),
        determining_policies: Set(serde_json::to_string(&r.determining_policies).unwrap_or_else(|_| "[]".into())),
        policy_version: Set(r.policy_version.clone()),
        outcome: Set(r.outcome.clone()),
        reason: Set(r.reason.clone()),
        encryption_context: Set(serde_json::to_string(&r.encryption_context).unwrap_or_else(|_| "{}".into())),
        source_ip: Set(r.source_ip.clone()),
        user_agent: Set(r.user_agent.clone()),
        dry_run: Set(r.dry_run),
        duration_us: Set(i64::try_from(r.duration_us).unwrap_or(i64::MAX)),
        principal_groups: Set(serde_json::to_string(&r.principal_groups).unwrap_or_else(|_| "[]".into())),
        justification: Set(r.justification.clone()),
        policy_errors: Set(serde_json::to_string(&r.policy_errors).unwrap_or_else(|_| "[]".into())),
    }
}

#[async_trait::async_trait]
impl AuditStore for SqlAuditStore {
    async fn append(&self, records: &[AuditRecord]) -> Result<(), AuditError> {
        if records.is_empty() {
            return Ok(());
        }
        let txn = self.db.begin().await.map_err(|e| AuditError(e.to_string()))?;
        // Stay under SQLite's bound-parameter limit: 22 columns per row.
        for chunk in records.chunks(500) {
            audit_record::Entity::insert_many(chunk.iter().map(to_row))
                .exec_without_returning(&txn)
                .await
                .map_err(|e| AuditError(e.to_string()))?;
        }
        txn.commit().await.map_err(|e| AuditError(e.to_string()))
    }
}
