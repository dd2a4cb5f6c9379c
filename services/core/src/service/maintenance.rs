//! Background work: destroying keys whose deletion date has passed, deleting imported material
//! past its expiry, and scheduled rotation.
//! Runs as the system principal; every change is audited like a request.

use super::admin::changed_concurrently;
use super::{KeyService, RequestMeta, store_err};
use crate::error::{Error, Result};
use crate::gate::Permit;
use crate::model::key::{KeyRecord, KeyState};
use crate::model::principal::Principal;
use crate::operation::{Action, Operation};
use crate::ports::backend::DynBackend as _;
use crate::ports::backend::VersionHandle;
use crate::ports::store::Write;

/// What one maintenance pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaintenanceReport {
    /// Keys destroyed.
    pub destroyed: usize,
    /// Keys rotated.
    pub rotated: usize,
    /// Keys whose imported material expired and was deleted.
    pub expired: usize,
    /// Keys that failed and will be retried next pass.
    pub failed: usize,
    /// Approval requests that expired undecided.
    pub approvals_expired: usize,
}

impl KeyService {
    /// One pass: destroys due keys, rotates keys whose period has elapsed.
    pub async fn run_maintenance(&self) -> Result<MaintenanceReport> {
        let now = self.clock.now();
        let mut report = MaintenanceReport::default();
        // Keys marked Destroyed whose material a failed pass left behind.
        for key in self.store.destroyed_keys_with_material().await.map_err(store_err)? {
            match self.system(Operation::DestroyKey, async |s, scope| s.destroy_material(scope, key).await).await {
                Ok(()) => report.destroyed += 1,
                Err(e) => {
                    tracing::warn!(code = %e.code(), reason = e.reason().unwrap_or(""), "key material destruction failed; will retry");
                    report.failed += 1;
                }
            }
        }
        for key in self.store.keys_due_for_deletion(now).await.map_err(store_err)? {
            // First the revision-checked change to `Destroyed`, committed with its record (a
            // concurrent CancelKeyDeletion either wins before it, and nothing is destroyed, or
            // loses after it); then, as its own audited step, the material.
            let id = key.id;
            let marked = self.system(Operation::DestroyKey, async |s, scope| s.mark_destroyed(scope, key)).await;
            let result = match marked {
                Ok(()) => match self.store.key_current(id).await.map_err(store_err)? {
                    Some(key) => {
                        self.system(Operation::DestroyKey, async |s, scope| s.destroy_material(scope, key).await).await
                    }
                    None => Err(Error::internal(format!("key {id} vanished after being marked destroyed"))),
                },
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => report.destroyed += 1,
                Err(e) => {
                    tracing::warn!(code = %e.code(), reason = e.reason().unwrap_or(""), "key destruction failed; will retry");
                    report.failed += 1;
                }
            }
        }
        for key in self.store.keys_with_expired_material(now).await.map_err(store_err)? {
            let op = Operation::DeleteImportedKeyMaterial;
            match self.system(op, async |s, scope| s.expire_material(scope, key).await).await {
                Ok(()) => report.expired += 1,
                Err(e) => {
                    tracing::warn!(code = %e.code(), reason = e.reason().unwrap_or(""), "expired key material not deleted; will retry");
                    report.failed += 1;
                }
            }
        }
        for key in self.store.keys_due_for_rotation(now).await.map_err(store_err)? {
            let result = self
                .system(Operation::RotateKey, async |s, scope| {
                    scope.note_key(key.id, None);
                    let permit = Permit::new(Action::Op(Operation::RotateKey), Some(key.id));
                    s.rotate(scope, permit, key).await.map(|_| ())
                })
                .await;
            match result {
                Ok(()) => report.rotated += 1,
                Err(e) => {
                    tracing::warn!(code = %e.code(), reason = e.reason().unwrap_or(""), "scheduled rotation failed; will retry");
                    report.failed += 1;
                }
            }
        }
        report.approvals_expired = self.expire_approvals().await?;
        Ok(report)
    }

    pub(super) async fn system<T>(
        &self,
        op: Operation,
        f: impl AsyncFnOnce(&Self, &mut super::Scope) -> Result<T>,
    ) -> Result<T> {
        let meta = RequestMeta {
            request_id: uuid::Uuid::new_v4().to_string(),
            trace_id: uuid::Uuid::new_v4().simple().to_string(),
            ..RequestMeta::default()
        };
        let start = super::RequestStart { meta, principal: Ok(Principal::system()), operation: op };
        self.audited(start, async |scope| f(self, scope).await).await
    }

    /// Stages a due key's change to `Destroyed`.
    fn mark_destroyed(&self, scope: &mut super::Scope, mut key: KeyRecord) -> Result<()> {
        scope.note_key(key.id, None);
        if key.state != KeyState::PendingDeletion {
            return Err(Error::conflict("key is no longer pending deletion"));
        }
        let permit = Permit::new(Action::Op(Operation::DestroyKey), Some(key.id));
        key.state = KeyState::Destroyed;
        key.updated_at = self.clock.now();
        key.revision += 1;
        self.stage(scope, permit, Write::UpdateKey(key), changed_concurrently())
    }

    /// Destroys the material of a key already marked `Destroyed` (idempotently: a failure
    /// is retried next pass), then records every version destroyed.
    async fn destroy_material(&self, scope: &mut super::Scope, mut key: KeyRecord) -> Result<()> {
        scope.note_key(key.id, None);
        if key.state != KeyState::Destroyed {
            return Err(Error::conflict("key is not marked destroyed"));
        }
        let permit = Permit::new(Action::Op(Operation::DestroyKey), Some(key.id));
        let backend = self.backend_for(&permit, &key)?.clone();
        for version in self.store.versions(key.id).await.map_err(store_err)? {
            if version.destroyed {
                continue;
            }
            let handle = VersionHandle { key_id: key.id, version: version.version, material: &version.material };
            backend.destroy(handle).await.map_err(super::backend_err)?;
        }
        key.updated_at = self.clock.now();
        key.revision += 1;
        self.stage(scope, permit, Write::DestroyKey(key), changed_concurrently())
    }
}
