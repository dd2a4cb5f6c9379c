//! Time-driven behaviour with a manual clock: destruction of due keys, scheduled rotation.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use keyward_core::ErrorCode;
use keyward_core::model::ids::KeyRef;
use keyward_core::model::key::KeyState;
use keyward_core::operation::Operation;
use keyward_core::ports::clock::ManualClock;
use keyward_core::service::{EncryptInput, RotateAfterUpdate, RotationUpdate, TagUpdate, UpdateKeyInput};
use keyward_e2e::inproc::Rig;
use keyward_e2e::{Db, on_both_databases};
use zeroize::Zeroizing;

on_both_databases!(destroys_due_keys_and_rotates_on_schedule);

async fn destroys_due_keys_and_rotates_on_schedule(db: Db) {
    let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()));
    let rig = Rig::new(db, clock.clone()).await;
    let svc = &rig.service;
    let create = || Rig::key_input("m");
    let doomed =
        svc.audited(rig.admin(Operation::CreateKey), async |s| svc.create_key(s, create()).await).await.unwrap();
    let kept = svc.audited(rig.admin(Operation::CreateKey), async |s| svc.create_key(s, create()).await).await.unwrap();
    let doomed_ref = KeyRef::Id(doomed.key.id);
    let encrypt = async || {
        let input = EncryptInput {
            key: doomed_ref.clone(),
            plaintext: Zeroizing::new(b"x".to_vec()),
            context: Default::default(),
        };
        svc.audited(rig.admin(Operation::Encrypt), async |s| svc.encrypt(s, input).await).await
    };
    let blob = encrypt().await.unwrap();
    assert!(!blob.ciphertext_blob.is_empty());
    svc.audited(rig.admin(Operation::ScheduleKeyDeletion), async |s| {
        svc.schedule_key_deletion(s, &doomed_ref, Some(7)).await
    })
    .await
    .unwrap();
    let kept_ref = KeyRef::Id(kept.key.id);
    let update = UpdateKeyInput {
        description: None,
        tags: TagUpdate::Keep,
        rotation: RotationUpdate::Every(30),
        rotate_after: RotateAfterUpdate::Keep,
        on_use_while_pending: None,
    };
    svc.audited(rig.admin(Operation::UpdateKey), async |s| svc.update_key(s, &kept_ref, update).await).await.unwrap();

    // Nothing is due yet.
    let r = svc.run_maintenance().await.unwrap();
    assert_eq!((r.destroyed, r.rotated), (0, 0));
    clock.advance(Duration::days(6));
    assert_eq!(svc.run_maintenance().await.unwrap().destroyed, 0, "not before the deletion date");

    clock.advance(Duration::days(2));
    let r = svc.run_maintenance().await.unwrap();
    assert_eq!((r.destroyed, r.rotated, r.failed), (1, 0, 0));
    let m =
        svc.audited(rig.admin(Operation::DescribeKey), async |s| svc.describe_key(s, &doomed_ref).await).await.unwrap();
    assert_eq!(m.key.state, KeyState::Destroyed, "metadata kept as Destroyed");
    let versions = svc
        .audited(rig.admin(Operation::ListKeyVersions), async |s| svc.list_key_versions(s, &doomed_ref).await)
        .await
        .unwrap();
    assert!(versions.iter().all(|v| v.state.as_str() == "Destroyed"));
    let e = encrypt().await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::KeyDisabled);
    // Destruction is audited as the system principal.
    let records = rig.records().await;
    let destroy = records.iter().find(|r| r.action == "DestroyKey").expect("audited");
    assert_eq!(
        (destroy.principal.as_str(), destroy.outcome.as_str()),
        ("Keyward::Service::\"keyward:system\"", "Success")
    );
    assert_eq!(destroy.key_id, Some(doomed.key.id));

    // Scheduled rotation once the period has elapsed (8 days so far).
    clock.advance(Duration::days(23));
    let r = svc.run_maintenance().await.unwrap();
    assert_eq!(r.rotated, 1);
    let m =
        svc.audited(rig.admin(Operation::DescribeKey), async |s| svc.describe_key(s, &kept_ref).await).await.unwrap();
    assert_eq!(m.key.primary_version, 2);
    assert_eq!(m.key.next_rotation_at, Some(clock_now(&clock) + Duration::days(30)));
    assert_eq!(svc.run_maintenance().await.unwrap().rotated, 0, "not again until the next period");
}

fn clock_now(c: &ManualClock) -> chrono::DateTime<Utc> {
    use keyward_core::ports::clock::Clock;
    c.now()
}

/// The software backend, whose `destroy` stops at a gate until released.
#[derive(Debug)]
struct GatedDestroy {
    inner: Arc<dyn keyward_core::ports::backend::DynBackend>,
    entered: Arc<tokio::sync::Notify>,
    release: Arc<tokio::sync::Notify>,
    destroyed: Arc<std::sync::atomic::AtomicUsize>,
    /// Instead of waiting at the gate, fail this many destroy calls.
    failures: Arc<std::sync::atomic::AtomicUsize>,
}

impl keyward_core::ports::backend::Backend for GatedDestroy {
    fn kind(&self) -> &'static str {
        "gated"
    }
    fn capabilities(&self) -> &keyward_core::ports::backend::Capabilities {
        self.inner.capabilities()
    }
    async fn create_key(
        &self,
        key_id: keyward_core::model::ids::KeyId,
        version: u32,
        spec: keyward_core::model::key::KeySpec,
        usage: keyward_core::model::key::KeyUsage,
    ) -> Result<Zeroizing<Vec<u8>>, keyward_core::ports::backend::BackendError> {
        self.inner.create_key(key_id, version, spec, usage).await
    }
    async fn encrypt(
        &self,
        key: keyward_core::ports::backend::VersionHandle<'_>,
        plaintext: &[u8],
        context: &keyward_core::model::context::EncryptionContext,
        aad: keyward_core::ports::backend::AadFn<'_>,
    ) -> Result<keyward_core::ports::backend::Sealed, keyward_core::ports::backend::BackendError> {
        self.inner.encrypt(key, plaintext, context, aad).await
    }
    async fn decrypt(
        &self,
        key: keyward_core::ports::backend::VersionHandle<'_>,
        algorithm: u8,
        params: &[u8],
        ciphertext: &[u8],
        context: &keyward_core::model::context::EncryptionContext,
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, keyward_core::ports::backend::BackendError> {
        self.inner.decrypt(key, algorithm, params, ciphertext, context, aad).await
    }
    async fn generate_random(
        &self,
        len: usize,
    ) -> Result<Zeroizing<Vec<u8>>, keyward_core::ports::backend::BackendError> {
        self.inner.generate_random(len).await
    }
    async fn destroy(
        &self,
        key: keyward_core::ports::backend::VersionHandle<'_>,
    ) -> Result<(), keyward_core::ports::backend::BackendError> {
        use std::sync::atomic::Ordering;
        if self.failures.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            return Err(keyward_core::ports::backend::BackendError::Unavailable("injected".into()));
        }
        self.entered.notify_one();
        self.release.notified().await;
        self.destroyed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.destroy(key).await
    }
    async fn health(&self) -> Result<(), keyward_core::ports::backend::BackendError> {
        self.inner.health().await
    }
}

impl GatedDestroy {
    /// The software backend behind a destroy gate that first fails `failures` calls.
    fn new(root: u8, failures: usize) -> Self {
        use keyward_backend_software::{RootKey, SoftwareBackend};
        Self {
            inner: Arc::new(SoftwareBackend::new(RootKey::from_bytes([root; 32]))),
            entered: Arc::new(tokio::sync::Notify::new()),
            release: Arc::new(tokio::sync::Notify::new()),
            destroyed: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            failures: Arc::new(std::sync::atomic::AtomicUsize::new(failures)),
        }
    }
}

/// A rig on `backend` with one key scheduled for deletion and a clock past its date.
async fn key_due_for_deletion(backend: GatedDestroy) -> (Rig, KeyRef) {
    let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()));
    let rig = Rig::with_backend(Db::Sqlite, clock.clone(), Arc::new(backend)).await;
    let svc = rig.service.clone();
    let m = svc
        .audited(rig.admin(Operation::CreateKey), async |s| svc.create_key(s, Rig::key_input("m")).await)
        .await
        .unwrap();
    let key = KeyRef::Id(m.key.id);
    svc.audited(rig.admin(Operation::ScheduleKeyDeletion), async |s| svc.schedule_key_deletion(s, &key, Some(7)).await)
        .await
        .unwrap();
    clock.advance(Duration::days(8));
    (rig, key)
}

/// A CancelKeyDeletion racing the maintenance pass either wins before the key is marked
/// destroyed (and nothing is destroyed) or is refused: it never returns a key whose material
/// is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_racing_destruction_never_returns_a_key_without_material() {
    let gated = GatedDestroy::new(5, 0);
    let (entered, release, destroyed) = (gated.entered.clone(), gated.release.clone(), gated.destroyed.clone());
    let (rig, key) = key_due_for_deletion(gated).await;
    let svc = rig.service.clone();
    let pass = tokio::spawn({
        let svc = svc.clone();
        async move { svc.run_maintenance().await }
    });
    entered.notified().await; // the pass is destroying material now
    let cancel =
        svc.audited(rig.admin(Operation::CancelKeyDeletion), async |s| svc.cancel_key_deletion(s, &key).await).await;
    release.notify_one();
    let report = pass.await.unwrap().unwrap();
    match cancel {
        Ok(k) => panic!("cancel returned {:?} while its material was being destroyed", k.key.state),
        Err(e) => assert_eq!(e.code(), ErrorCode::Conflict, "{e}"),
    }
    assert_eq!((report.destroyed, destroyed.load(std::sync::atomic::Ordering::SeqCst)), (1, 1));
    let m = svc.audited(rig.admin(Operation::DescribeKey), async |s| svc.describe_key(s, &key).await).await.unwrap();
    assert_eq!(m.key.state, KeyState::Destroyed);
}

/// A pass that fails while destroying material leaves the key Destroyed (unusable at once) and
/// the next pass finishes the job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn material_left_by_a_failed_pass_is_destroyed_by_the_next() {
    let gated = GatedDestroy::new(6, 1);
    let release = gated.release.clone();
    let (rig, key) = key_due_for_deletion(gated).await;
    let svc = rig.service.clone();
    let first = svc.run_maintenance().await.unwrap();
    assert_eq!((first.destroyed, first.failed), (0, 1), "the injected failure");
    let m = svc.audited(rig.admin(Operation::DescribeKey), async |s| svc.describe_key(s, &key).await).await.unwrap();
    assert_eq!(m.key.state, KeyState::Destroyed, "unusable from the first pass on");
    release.notify_one(); // the next destroy call may pass the gate
    // The failure marked the backend down; the server's probe brings it back (here by hand).
    assert_eq!(svc.probe_backends(false).await, 0);
    let second = svc.run_maintenance().await.unwrap();
    assert_eq!((second.destroyed, second.failed), (1, 0), "the leftover material is destroyed");
    let third = svc.run_maintenance().await.unwrap();
    assert_eq!((third.destroyed, third.failed), (0, 0), "and nothing is left");
}
