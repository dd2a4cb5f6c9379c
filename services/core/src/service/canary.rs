//! The deletion canary: an attempt to use a key pending deletion is refused, as before, and
//! also raises an alarm, since whoever tried is about to lose data. The alarm is an audit
//! record (action `DeletionCanary`, `details.kind = deletion_canary`) committed with a count
//! on the key, a metric, an operator notification (the webhook), and, when the key's
//! `on_use_while_pending` is `cancel`, the deletion cancelled by the system.

use super::{KeyService, RequestStart, Scope};
use crate::error::{Error, ErrorCode, Result};
use crate::gate::Permit;
use crate::model::key::{KeyRecord, KeyState, OnUseWhilePending};
use crate::model::principal::Principal;
use crate::operation::{Action, Operation};
use crate::ports::notifier::CanaryEvent;
use crate::ports::store::Write;

/// What the request that tripped a canary leaves for it.
#[derive(Debug)]
pub(super) struct Tripped {
    key: KeyRecord,
    meta: super::RequestMeta,
    principal: std::sync::Arc<Principal>,
    attempted: Operation,
}

impl Tripped {
    /// Takes the canary out of a finished request's scope, if it tripped one.
    pub(super) fn take(scope: &mut Scope) -> Option<Self> {
        let key = scope.canary.take()?;
        let principal = scope.principal().ok()?;
        Some(Self { key, meta: scope.meta.clone(), principal, attempted: scope.operation })
    }
}

impl KeyService {
    /// Ok when the key may do cryptography now. A key pending deletion is refused and, the
    /// attempt being allowed by policy, trips its canary (raised once the refusal is recorded).
    pub(super) fn ensure_usable(&self, scope: &mut Scope, key: &KeyRecord) -> Result<()> {
        let usable = key.ensure_usable(self.clock.now());
        if key.state == KeyState::PendingDeletion && !scope.dry_run {
            scope.canary = Some(key.clone());
        }
        usable
    }

    /// Raises a tripped canary: its record and count, the metric, the notification, and the
    /// cancellation the key asks for. Failures are logged: the attempt is refused either way.
    pub(super) async fn raise_canary(&self, tripped: Tripped) {
        let Tripped { key, meta, principal, attempted } = tripped;
        metrics::counter!("keyward_deletion_canaries_total", "action" => attempted.as_str()).increment(1);
        let at = self.clock.now();
        let cancel = key.on_use_while_pending == OnUseWhilePending::Cancel;
        let request_id = meta.request_id.clone();
        let start =
            RequestStart { meta, principal: Ok(Principal::clone(&principal)), operation: Operation::DeletionCanary };
        let noted = self
            .audited(start, async |scope| {
                scope.note_key(key.id, None);
                scope.resource = Some(crate::ports::authorizer::key_uid(key.id));
                scope.details.insert("kind".into(), "deletion_canary".into());
                scope.details.insert("attempted_action".into(), attempted.as_str().into());
                scope.details.insert("on_use_while_pending".into(), key.on_use_while_pending.as_str().into());
                let permit = Permit::new(Action::Op(Operation::DeletionCanary), Some(key.id));
                let write = Write::NoteDeletionCanary { key: key.id, at };
                self.stage(scope, permit, write, Error::conflict("the key is no longer pending deletion"))
            })
            .await;
        if let Err(e) = noted {
            // A conflict: the deletion was cancelled (or the key destroyed) meanwhile.
            if e.code() != ErrorCode::Conflict {
                tracing::error!(key = %key.id, code = %e.code(), "deletion canary not recorded");
            }
            return;
        }
        let cancelled = cancel && self.cancel_on_canary(&key, &request_id).await;
        if let Some(notifier) = &self.notifier {
            let count = match self.store.key_current(key.id).await {
                Ok(Some(k)) => k.deletion_canary_count,
                _ => key.deletion_canary_count.saturating_add(1),
            };
            notifier.deletion_canary(CanaryEvent {
                time: at,
                key_id: key.id,
                namespace: key.namespace.to_string(),
                principal: principal.to_string(),
                action: attempted.as_str().to_owned(),
                request_id,
                deletion_date: key.deletion_date,
                count,
                deletion_cancelled: cancelled,
            });
        }
    }

    /// Cancels the key's deletion as the system, naming the attempt; true when it did.
    async fn cancel_on_canary(&self, key: &KeyRecord, request_id: &str) -> bool {
        let cancelled = self
            .system(Operation::CancelKeyDeletion, async |s, scope| {
                scope.note_key(key.id, None);
                scope.details.insert("trigger".into(), "deletion_canary".into());
                scope.details.insert("canary_request_id".into(), request_id.to_owned());
                let current = s
                    .store
                    .key_current(key.id)
                    .await
                    .map_err(super::store_err)?
                    .ok_or_else(|| Error::not_found("key"))?;
                let permit = Permit::new(Action::Op(Operation::CancelKeyDeletion), Some(key.id));
                s.cancel_deletion(scope, permit, current).await.map(|_| ())
            })
            .await;
        match cancelled {
            Ok(()) => true,
            Err(e) => {
                if e.code() != ErrorCode::Conflict {
                    tracing::error!(key = %key.id, code = %e.code(), "deletion not cancelled by its canary");
                }
                false
            }
        }
    }
}
