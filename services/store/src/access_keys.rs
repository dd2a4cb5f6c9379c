//! Access keys on sea-orm.

use keyward_core::model::access_key::AccessKeyRecord;
use keyward_core::model::ids::Namespace;
use keyward_core::model::principal::Principal;
use keyward_core::ports::backend::Sealed;
use keyward_core::ports::store::StoreError;
use sea_orm::ActiveValue::Set;
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use zeroize::Zeroizing;

use crate::convert::{self, micros};
use crate::entity::access_key;
use crate::keys::db_err;

fn corrupt(detail: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("corrupt access key row: {detail}"))
}

fn from_row(m: access_key::Model) -> Result<AccessKeyRecord, StoreError> {
    let groups: Vec<String> = serde_json::from_str(&m.groups).map_err(corrupt)?;
    Ok(AccessKeyRecord {
        principal: Principal::from_uid(&m.principal, groups).map_err(corrupt)?,
        default_namespace: Namespace::parse(&m.default_namespace).map_err(corrupt)?,
        created_at: convert::time(m.created_at)?,
        created_by: m.created_by,
        backend: m.backend,
        seal_key_id: convert::key_id(&m.seal_key_id)?,
        material: Zeroizing::new(m.material),
        sealed: Sealed {
            algorithm: u8::try_from(m.sealed_algorithm).map_err(corrupt)?,
            params: m.sealed_params,
            ciphertext: m.sealed_secret,
        },
        id: m.id,
    })
}

pub(crate) async fn insert<C: ConnectionTrait>(db: &C, k: &AccessKeyRecord) -> Result<(), StoreError> {
    let row = access_key::ActiveModel {
        id: Set(k.id.clone()),
        principal: Set(k.principal.to_string()),
        groups: Set(serde_json::to_string(&k.principal.groups).map_err(corrupt)?),
        default_namespace: Set(k.default_namespace.to_string()),
        created_at: Set(micros(k.created_at)),
        created_by: Set(k.created_by.clone()),
        backend: Set(k.backend.clone()),
        seal_key_id: Set(k.seal_key_id.to_string()),
        material: Set(k.material.to_vec()),
        sealed_algorithm: Set(i32::from(k.sealed.algorithm)),
        sealed_params: Set(k.sealed.params.clone()),
        sealed_secret: Set(k.sealed.ciphertext.clone()),
    };
    access_key::Entity::insert(row).exec_without_returning(db).await.map_err(db_err)?;
    Ok(())
}

pub(crate) async fn get(db: &DatabaseConnection, id: &str) -> Result<Option<AccessKeyRecord>, StoreError> {
    let row = access_key::Entity::find_by_id(id.to_owned()).one(db).await.map_err(db_err)?;
    row.map(from_row).transpose()
}

pub(crate) async fn list(
    db: &DatabaseConnection,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<AccessKeyRecord>, StoreError> {
    let mut find = access_key::Entity::find();
    if let Some(a) = after {
        find = find.filter(access_key::Column::Id.gt(a));
    }
    let rows = find.order_by_asc(access_key::Column::Id).limit(limit).all(db).await.map_err(db_err)?;
    rows.into_iter().map(from_row).collect()
}

/// Deletes an access key; `Conflict` when it does not exist (any more).
pub(crate) async fn delete<C: ConnectionTrait>(db: &C, id: &str) -> Result<(), StoreError> {
    let result = access_key::Entity::delete_by_id(id.to_owned()).exec(db).await.map_err(db_err)?;
    if result.rows_affected == 1 { Ok(()) } else { Err(StoreError::Conflict(format!("access key {id} is gone"))) }
}
