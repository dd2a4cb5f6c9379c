//! Approval requests on sea-orm.

use chrono::{DateTime, Utc};
use keyward_core::model::approval::{ApprovalRecord, ApprovalState};
use keyward_core::ports::store::StoreError;
use sea_orm::ActiveValue::Set;
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use crate::convert::{self, micros};
use crate::entity::approval;
use crate::keys::db_err;

fn corrupt(detail: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("corrupt approval row: {detail}"))
}

fn from_row(m: approval::Model) -> Result<ApprovalRecord, StoreError> {
    Ok(ApprovalRecord {
        id: m.id.parse().map_err(corrupt)?,
        request: serde_json::from_str(&m.request).map_err(corrupt)?,
        resource: m.resource,
        requested_by: m.requested_by,
        requester_groups: serde_json::from_str(&m.requester_groups).map_err(corrupt)?,
        required: u32::try_from(m.required).map_err(corrupt)?,
        approvals: serde_json::from_str(&m.votes).map_err(corrupt)?,
        state: ApprovalState::parse(&m.state).map_err(corrupt)?,
        rejected_by: m.rejected_by,
        created_at: convert::time(m.created_at)?,
        expires_at: convert::time(m.expires_at)?,
        result: m.result.map(|r| serde_json::from_str(&r)).transpose().map_err(corrupt)?,
        revision: m.revision,
    })
}

fn to_active(a: &ApprovalRecord) -> Result<approval::ActiveModel, StoreError> {
    Ok(approval::ActiveModel {
        id: Set(a.id.to_string()),
        request: Set(serde_json::to_string(&a.request).map_err(corrupt)?),
        resource: Set(a.resource.clone()),
        key_id: Set(a.request.key_id().map(|k| k.to_string())),
        requested_by: Set(a.requested_by.clone()),
        requester_groups: Set(serde_json::to_string(&a.requester_groups).map_err(corrupt)?),
        required: Set(i64::from(a.required)),
        votes: Set(serde_json::to_string(&a.approvals).map_err(corrupt)?),
        state: Set(a.state.as_str().to_owned()),
        rejected_by: Set(a.rejected_by.clone()),
        created_at: Set(micros(a.created_at)),
        expires_at: Set(micros(a.expires_at)),
        result: Set(a.result.as_ref().map(ToString::to_string)),
        revision: Set(a.revision),
    })
}

pub(crate) async fn insert<C: ConnectionTrait>(db: &C, a: &ApprovalRecord) -> Result<(), StoreError> {
    approval::Entity::insert(to_active(a)?).exec_without_returning(db).await.map_err(db_err)?;
    Ok(())
}

/// Writes a changed request if its stored revision is the one before; else `Conflict`.
pub(crate) async fn update<C: ConnectionTrait>(db: &C, a: &ApprovalRecord) -> Result<(), StoreError> {
    let result = approval::Entity::update_many()
        .set(to_active(a)?)
        .filter(approval::Column::Id.eq(a.id.to_string()))
        .filter(approval::Column::Revision.eq(a.revision - 1))
        .exec(db)
        .await
        .map_err(db_err)?;
    if result.rows_affected == 1 {
        Ok(())
    } else {
        Err(StoreError::Conflict(format!("approval {} changed concurrently", a.id)))
    }
}

pub(crate) async fn get(db: &DatabaseConnection, id: Uuid) -> Result<Option<ApprovalRecord>, StoreError> {
    approval::Entity::find_by_id(id.to_string()).one(db).await.map_err(db_err)?.map(from_row).transpose()
}

pub(crate) async fn list(
    db: &DatabaseConnection,
    state: Option<ApprovalState>,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<ApprovalRecord>, StoreError> {
    let mut find = approval::Entity::find();
    if let Some(a) = after {
        find = find.filter(approval::Column::Id.gt(a.to_string()));
    }
    if let Some(s) = state {
        find = find.filter(approval::Column::State.eq(s.as_str()));
    }
    let rows = find.order_by_asc(approval::Column::Id).limit(limit).all(db).await.map_err(db_err)?;
    rows.into_iter().map(from_row).collect()
}

pub(crate) async fn expired(db: &DatabaseConnection, now: DateTime<Utc>) -> Result<Vec<ApprovalRecord>, StoreError> {
    let rows = approval::Entity::find()
        .filter(approval::Column::State.eq(ApprovalState::Pending.as_str()))
        .filter(approval::Column::ExpiresAt.lte(micros(now)))
        .limit(1000)
        .all(db)
        .await
        .map_err(db_err)?;
    rows.into_iter().map(from_row).collect()
}
