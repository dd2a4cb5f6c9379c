//! A grant sync that read its snapshot before a concurrent revoke must not apply it after the
//! revoke's own sync: the revoked grant would work again on this replica.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use keyward_core::model::access_key::AccessKeyRecord;
use keyward_core::model::approval::{ApprovalRecord, ApprovalState};
use keyward_core::model::grant::{GrantConstraints, GrantRecord};
use keyward_core::model::ids::{AliasName, KeyId, KeyRef, Namespace};
use keyward_core::model::key::KeyRecord;
use keyward_core::model::principal::{Principal, PrincipalKind};
use keyward_core::model::version::{Usage, VersionRecord};
use keyward_core::operation::Operation;
use keyward_core::ports::audit::AuditRecord;
use keyward_core::ports::clock::SystemClock;
use keyward_core::ports::store::{AliasRecord, Change, Committed, KeyStore, StoreError};
use keyward_core::service::{CreateGrantInput, EncryptInput, RequestMeta, RequestStart};
use keyward_e2e::Db;
use keyward_e2e::inproc::Rig;
use uuid::Uuid;
use zeroize::Zeroizing;

/// The real store, with a gate that can hold one snapshot read.
#[derive(Debug)]
struct GatedStore {
    inner: Arc<dyn KeyStore>,
    armed: AtomicBool,
    entered: tokio::sync::Notify,
    release: tokio::sync::Notify,
}

#[async_trait::async_trait]
impl KeyStore for GatedStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }

    async fn commit(
        &self,
        change: &Change,
        applied: &AuditRecord,
        refused: &AuditRecord,
    ) -> Result<Committed, StoreError> {
        self.inner.commit(change, applied, refused).await
    }

    async fn idempotent_key(&self, principal: &str, key: &str) -> Result<Option<(KeyId, String)>, StoreError> {
        self.inner.idempotent_key(principal, key).await
    }

    async fn key(&self, id: KeyId) -> Result<Option<KeyRecord>, StoreError> {
        self.inner.key(id).await
    }

    async fn key_current(&self, id: KeyId) -> Result<Option<KeyRecord>, StoreError> {
        self.inner.key_current(id).await
    }

    async fn list_keys(
        &self,
        namespace: Option<&Namespace>,
        after: Option<KeyId>,
        limit: u64,
    ) -> Result<Vec<KeyRecord>, StoreError> {
        self.inner.list_keys(namespace, after, limit).await
    }

    async fn version(&self, id: KeyId, version: u32) -> Result<Option<VersionRecord>, StoreError> {
        self.inner.version(id, version).await
    }

    async fn versions(&self, id: KeyId) -> Result<Vec<VersionRecord>, StoreError> {
        self.inner.versions(id).await
    }

    fn record_usage(&self, id: KeyId, version: u32, usage: Usage, at: DateTime<Utc>) {
        self.inner.record_usage(id, version, usage, at)
    }

    async fn alias(&self, name: &AliasName) -> Result<Option<AliasRecord>, StoreError> {
        self.inner.alias(name).await
    }

    async fn aliases_of(&self, id: KeyId) -> Result<Vec<AliasName>, StoreError> {
        self.inner.aliases_of(id).await
    }

    async fn list_aliases(
        &self,
        key: Option<KeyId>,
        after: Option<&AliasName>,
        limit: u64,
    ) -> Result<Vec<AliasRecord>, StoreError> {
        self.inner.list_aliases(key, after, limit).await
    }

    async fn keys_due_for_deletion(&self, now: DateTime<Utc>) -> Result<Vec<KeyRecord>, StoreError> {
        self.inner.keys_due_for_deletion(now).await
    }

    async fn destroyed_keys_with_material(&self) -> Result<Vec<KeyRecord>, StoreError> {
        self.inner.destroyed_keys_with_material().await
    }

    async fn keys_with_expired_material(&self, now: DateTime<Utc>) -> Result<Vec<KeyRecord>, StoreError> {
        self.inner.keys_with_expired_material(now).await
    }

    async fn keys_due_for_rotation(&self, now: DateTime<Utc>) -> Result<Vec<KeyRecord>, StoreError> {
        self.inner.keys_due_for_rotation(now).await
    }

    async fn grant(&self, id: Uuid) -> Result<Option<GrantRecord>, StoreError> {
        self.inner.grant(id).await
    }

    async fn grants(&self, key: Option<KeyId>) -> Result<Vec<GrantRecord>, StoreError> {
        let read = self.inner.grants(key).await;
        // The armed gate holds one full read (a grant sync's snapshot) after it was taken.
        if key.is_none() && self.armed.swap(false, Ordering::SeqCst) {
            self.entered.notify_one();
            self.release.notified().await;
        }
        read
    }

    async fn grants_revision(&self) -> Result<i64, StoreError> {
        self.inner.grants_revision().await
    }

    async fn access_key(&self, id: &str) -> Result<Option<AccessKeyRecord>, StoreError> {
        self.inner.access_key(id).await
    }

    async fn list_access_keys(&self, after: Option<&str>, limit: u64) -> Result<Vec<AccessKeyRecord>, StoreError> {
        self.inner.list_access_keys(after, limit).await
    }

    async fn approval(&self, id: Uuid) -> Result<Option<ApprovalRecord>, StoreError> {
        self.inner.approval(id).await
    }

    async fn list_approvals(
        &self,
        state: Option<ApprovalState>,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<ApprovalRecord>, StoreError> {
        self.inner.list_approvals(state, after, limit).await
    }

    async fn approvals_expired(&self, now: DateTime<Utc>) -> Result<Vec<ApprovalRecord>, StoreError> {
        self.inner.approvals_expired(now).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_grant_snapshot_cannot_revive_a_revoked_grant() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("g.db").display());
    let conn = keyward_store::connect(&url).await.unwrap();
    keyward_store::migrate(&conn).await.unwrap();
    let gated = Arc::new(GatedStore {
        inner: Arc::new(keyward_store::SqlStore::new(conn)),
        armed: AtomicBool::new(false),
        entered: tokio::sync::Notify::new(),
        release: tokio::sync::Notify::new(),
    });
    let rig = Rig::with_store(Db::Sqlite, Arc::new(SystemClock), gated.clone()).await;
    let svc = rig.service.clone();
    let key = svc
        .audited(rig.admin(Operation::CreateKey), async |s| svc.create_key(s, Rig::key_input("g")).await)
        .await
        .unwrap();
    let key_ref = KeyRef::Id(key.key.id);
    let grant = |who: &str| CreateGrantInput {
        key: key_ref.clone(),
        grantee: format!("Keyward::User::\"{who}\""),
        operations: vec!["Encrypt".into()],
        constraints: GrantConstraints::default(),
        retiring_principal: None,
    };
    // Grant erin, then revoke it while another create's sync holds a snapshot taken before.
    let erin = svc
        .audited(rig.admin(Operation::CreateGrant), async |s| svc.create_grant(s, grant("erin")).await)
        .await
        .unwrap();
    gated.armed.store(true, Ordering::SeqCst);
    let creating = tokio::spawn({
        let (svc, start) = (svc.clone(), rig.admin(Operation::CreateGrant));
        let input = grant("finn");
        async move { svc.audited(start, async |s| svc.create_grant(s, input).await).await.map(|_| ()) }
    });
    gated.entered.notified().await; // its snapshot (erin's grant active) is read and held
    let revoking = tokio::spawn({
        let (svc, start) = (svc.clone(), rig.admin(Operation::RevokeGrant));
        let id = erin.grant_id;
        async move { svc.audited(start, async |s| svc.revoke_grant(s, id).await).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    gated.release.notify_one();
    creating.await.unwrap().unwrap();
    revoking.await.unwrap().unwrap();
    let as_erin = RequestStart {
        meta: RequestMeta { request_id: Uuid::new_v4().to_string(), ..RequestMeta::default() },
        principal: Ok(Principal { kind: PrincipalKind::User, id: "erin".into(), groups: vec![] }),
        operation: Operation::Encrypt,
    };
    let input =
        EncryptInput { key: key_ref.clone(), plaintext: Zeroizing::new(b"x".to_vec()), context: Default::default() };
    let r = svc.audited(as_erin, async |s| svc.encrypt(s, input).await).await;
    assert!(
        matches!(&r, Err(e) if e.code() == keyward_core::ErrorCode::AccessDenied),
        "the revoked grant works again: {:?}",
        r.map(|o| o.key_id)
    );
}
