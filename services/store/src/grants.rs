//! Grants on sea-orm.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use keyward_core::model::grant::{GrantConstraints, GrantRecord};
use keyward_core::model::ids::KeyId;
use keyward_core::operation::Action;
use keyward_core::ports::store::StoreError;
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::convert::{self, micros};
use crate::entity::grant;
use crate::keys::db_err;

#[derive(Serialize, Deserialize, Default)]
struct StoredConstraints {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    encryption_context_equals: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    encryption_context_subset: Option<BTreeMap<String, String>>,
}

fn corrupt(detail: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("corrupt grant row: {detail}"))
}

fn from_row(m: grant::Model) -> Result<GrantRecord, StoreError> {
    let names: Vec<String> = serde_json::from_str(&m.operations).map_err(corrupt)?;
    let operations = names
        .iter()
        .map(|n| n.parse::<Action>().map_err(|()| corrupt(format!("operation `{n}`"))))
        .collect::<Result<_, _>>()?;
    let c: StoredConstraints = serde_json::from_str(&m.constraints).map_err(corrupt)?;
    Ok(GrantRecord {
        id: Uuid::parse_str(&m.id).map_err(corrupt)?,
        key_id: convert::key_id(&m.key_id)?,
        grantee: m.grantee,
        operations,
        constraints: GrantConstraints {
            encryption_context_equals: c.encryption_context_equals,
            encryption_context_subset: c.encryption_context_subset,
        },
        granted_by: m.granted_by,
        created_at: convert::time(m.created_at)?,
        retiring_principal: m.retiring_principal,
    })
}

pub(crate) async fn insert<C: ConnectionTrait>(db: &C, g: &GrantRecord) -> Result<(), StoreError> {
    let names: Vec<&str> = g.operations.iter().map(|a| a.as_str()).collect();
    let constraints = StoredConstraints {
        encryption_context_equals: g.constraints.encryption_context_equals.clone(),
        encryption_context_subset: g.constraints.encryption_context_subset.clone(),
    };
    let row = grant::ActiveModel {
        id: Set(g.id.to_string()),
        key_id: Set(g.key_id.to_string()),
        grantee: Set(g.grantee.clone()),
        operations: Set(serde_json::to_string(&names).map_err(corrupt)?),
        constraints: Set(serde_json::to_string(&constraints).map_err(corrupt)?),
        granted_by: Set(g.granted_by.clone()),
        created_at: Set(micros(g.created_at)),
        revoked_at: Set(None),
        retiring_principal: Set(g.retiring_principal.clone()),
    };
    grant::Entity::insert(row).exec_without_returning(db).await.map_err(db_err)?;
    Ok(())
}

pub(crate) async fn get(db: &DatabaseConnection, id: Uuid) -> Result<Option<GrantRecord>, StoreError> {
    let row = grant::Entity::find_by_id(id.to_string())
        .filter(grant::Column::RevokedAt.is_null())
        .one(db)
        .await
        .map_err(db_err)?;
    row.map(from_row).transpose()
}

pub(crate) async fn list(db: &DatabaseConnection, key: Option<KeyId>) -> Result<Vec<GrantRecord>, StoreError> {
    let mut find = grant::Entity::find().filter(grant::Column::RevokedAt.is_null());
    if let Some(k) = key {
        find = find.filter(grant::Column::KeyId.eq(k.to_string()));
    }
    let rows =
        find.order_by_asc(grant::Column::CreatedAt).order_by_asc(grant::Column::Id).all(db).await.map_err(db_err)?;
    rows.into_iter().map(from_row).collect()
}

/// Revokes a grant still active on `key`; `Conflict` when it is not.
pub(crate) async fn revoke<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    key: KeyId,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let result = grant::Entity::update_many()
        .col_expr(grant::Column::RevokedAt, Expr::value(micros(at)))
        .filter(grant::Column::Id.eq(id.to_string()))
        .filter(grant::Column::KeyId.eq(key.to_string()))
        .filter(grant::Column::RevokedAt.is_null())
        .exec(db)
        .await
        .map_err(db_err)?;
    if result.rows_affected == 1 { Ok(()) } else { Err(StoreError::Conflict(format!("grant {id} is not active"))) }
}

/// Rows plus revoked rows: both only grow, so the sum moves on every create and revoke.
pub(crate) async fn revision(db: &DatabaseConnection) -> Result<i64, StoreError> {
    let all = grant::Entity::find().count(db).await.map_err(db_err)?;
    let revoked =
        grant::Entity::find().filter(grant::Column::RevokedAt.is_not_null()).count(db).await.map_err(db_err)?;
    i64::try_from(all + revoked).map_err(corrupt)
}
