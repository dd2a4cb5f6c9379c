//! State changes committed with their audit records: one transaction holds the change (in a
//! savepoint, so a failed condition undoes only it) and the request's record on this process's
//! change chain. Either both commit or neither does.

use keyward_core::ports::audit::AuditRecord;
use keyward_core::ports::store::{AliasRecord, Change, Committed, StoreError, Write};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, TransactionTrait,
};

use crate::SqlAuditStore;
use crate::convert::{self, micros};
use crate::entity::{alias, idempotency_key, key, key_version};
use crate::keys::{GRANT_CHANNEL, SqlStore, db_err};

/// Commits `change` with `applied`, or (its condition failing) only `refused`.
pub(crate) async fn commit(
    db: &DatabaseConnection,
    chain: &SqlAuditStore,
    change: &Change,
    applied: &AuditRecord,
    refused: &AuditRecord,
) -> Result<Committed, StoreError> {
    let held = chain.hold().await;
    let txn = db.begin().await.map_err(db_err)?;
    let savepoint = txn.begin().await.map_err(db_err)?;
    let outcome = match apply(&savepoint, change.write()).await {
        Ok(()) => {
            savepoint.commit().await.map_err(db_err)?;
            Committed::Applied
        }
        Err(StoreError::Conflict(reason)) => {
            tracing::debug!(%reason, "a change's condition failed; recording the refusal");
            savepoint.rollback().await.map_err(db_err)?;
            Committed::Refused
        }
        Err(e) => return Err(e),
    };
    let record = if outcome == Committed::Applied { applied } else { refused };
    let (genesis, rows, next) = held.rows(chain, [record]);
    SqlAuditStore::insert_rows(&txn, genesis, rows).await.map_err(db_err)?;
    txn.commit().await.map_err(db_err)?;
    held.committed(next);
    Ok(outcome)
}

/// Makes one write; `Conflict` when its condition does not hold.
async fn apply<C: ConnectionTrait>(db: &C, write: &Write) -> Result<(), StoreError> {
    let postgres = db.get_database_backend() == sea_orm::DbBackend::Postgres;
    // Other replicas learn of the change when it commits (a NOTIFY is delivered on commit).
    let announce = async |channel: &str| -> Result<(), StoreError> {
        if postgres {
            db.execute_unprepared(&format!("NOTIFY {channel}")).await.map_err(db_err)?;
        }
        Ok(())
    };
    match write {
        Write::InsertKey { key, version, alias: name, idempotency } => {
            // Without returning: the canary's columns are left to their defaults.
            key::Entity::insert(convert::key_to_active(key)).exec_without_returning(db).await.map_err(db_err)?;
            convert::version_to_active(key.id, version).insert(db).await.map_err(db_err)?;
            if let Some(name) = name {
                insert_alias(db, &AliasRecord { name: name.clone(), key_id: key.id, updated_at: key.created_at })
                    .await?;
            }
            if let Some(idem) = idempotency {
                idempotency_key::ActiveModel {
                    principal: Set(idem.principal.clone()),
                    idem_key: Set(idem.key.clone()),
                    request_hash: Set(idem.request_hash.clone()),
                    key_id: Set(key.id.to_string()),
                    created_at: Set(micros(key.created_at)),
                }
                .insert(db)
                .await
                .map_err(db_err)?;
            }
            Ok(())
        }
        // `write_key` announces the key's change itself.
        Write::UpdateKey(key) => SqlStore::write_key(db, key).await,
        Write::AddVersion(key, version) => {
            SqlStore::write_key(db, key).await?;
            convert::version_to_active(key.id, version).insert(db).await.map_err(db_err)?;
            Ok(())
        }
        Write::SetMaterial { key, version, .. } => {
            SqlStore::write_key(db, key).await?;
            key_version::Entity::update_many()
                .col_expr(key_version::Column::Material, Expr::value(version.material.to_vec()))
                .col_expr(key_version::Column::Destroyed, Expr::value(version.destroyed))
                .filter(key_version::Column::KeyId.eq(key.id.to_string()))
                .filter(key_version::Column::Version.eq(i64::from(version.version)))
                .exec(db)
                .await
                .map_err(db_err)?;
            Ok(())
        }
        Write::DestroyKey(key) => {
            SqlStore::write_key(db, key).await?;
            key_version::Entity::update_many()
                .col_expr(key_version::Column::Material, Expr::value(Vec::<u8>::new()))
                .col_expr(key_version::Column::Destroyed, Expr::value(true))
                .filter(key_version::Column::KeyId.eq(key.id.to_string()))
                .exec(db)
                .await
                .map_err(db_err)?;
            Ok(())
        }
        Write::PutAlias { alias: a, expected: None } => {
            // Conditional on what the decision saw: a concurrent create makes this a refusal
            // instead of silently taking over an alias the caller was not authorized on.
            insert_alias(db, a).await
        }
        Write::PutAlias { alias: a, expected: Some(old) } => {
            let r = alias::Entity::update_many()
                .col_expr(alias::Column::KeyId, Expr::value(a.key_id.to_string()))
                .col_expr(alias::Column::UpdatedAt, Expr::value(micros(a.updated_at)))
                .filter(alias::Column::Name.eq(a.name.to_string()))
                .filter(alias::Column::KeyId.eq(old.to_string()))
                .exec(db)
                .await
                .map_err(db_err)?;
            one_row(r.rows_affected, || format!("alias {} moved or was deleted concurrently", a.name))
        }
        Write::DeleteAlias { name, key } => {
            // Only while it still points to the key the decision was about.
            let r = alias::Entity::delete_many()
                .filter(alias::Column::Name.eq(name.to_string()))
                .filter(alias::Column::KeyId.eq(key.to_string()))
                .exec(db)
                .await
                .map_err(db_err)?;
            one_row(r.rows_affected, || format!("alias {name} moved or was deleted concurrently"))
        }
        Write::InsertGrant(grant) => {
            crate::grants::insert(db, grant).await?;
            announce(GRANT_CHANNEL).await
        }
        Write::RevokeGrant { id, key, at } => {
            crate::grants::revoke(db, *id, *key, *at).await?;
            announce(GRANT_CHANNEL).await
        }
        Write::InsertAccessKey(k) => crate::access_keys::insert(db, k).await,
        Write::DeleteAccessKey(k) => crate::access_keys::delete(db, &k.id).await,
        Write::InsertApproval(a) => crate::approvals::insert(db, a).await,
        Write::UpdateApproval(a) => crate::approvals::update(db, a).await,
        Write::NoteDeletionCanary { key: id, at } => {
            let pending = keyward_core::model::key::KeyState::PendingDeletion.as_str();
            let result = key::Entity::update_many()
                .col_expr(key::Column::DeletionCanaryCount, Expr::col(key::Column::DeletionCanaryCount).add(1))
                .col_expr(key::Column::DeletionCanaryLastAt, Expr::value(micros(*at)))
                .filter(key::Column::Id.eq(id.to_string()))
                .filter(key::Column::State.eq(pending))
                .exec(db)
                .await
                .map_err(db_err)?;
            one_row(result.rows_affected, || format!("key {id} is no longer pending deletion"))
        }
    }
}

/// A new alias; `Conflict` when the name is taken.
async fn insert_alias<C: ConnectionTrait>(db: &C, a: &AliasRecord) -> Result<(), StoreError> {
    alias::Entity::insert(alias::ActiveModel {
        name: Set(a.name.to_string()),
        key_id: Set(a.key_id.to_string()),
        updated_at: Set(micros(a.updated_at)),
    })
    .exec_without_returning(db)
    .await
    .map_err(db_err)?;
    Ok(())
}

/// `Ok` when a conditional write touched its one row, else the conflict.
fn one_row(rows: u64, conflict: impl FnOnce() -> String) -> Result<(), StoreError> {
    if rows == 1 { Ok(()) } else { Err(StoreError::Conflict(conflict())) }
}
