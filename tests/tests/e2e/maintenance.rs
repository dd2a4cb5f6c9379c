//! Time-driven behaviour with a manual clock: destruction of due keys, scheduled rotation.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use keyward_core::ErrorCode;
use keyward_core::model::ids::KeyRef;
use keyward_core::model::key::KeyState;
use keyward_core::operation::Operation;
use keyward_core::ports::clock::ManualClock;
use keyward_core::service::{EncryptInput, RotationUpdate, TagUpdate, UpdateKeyInput};
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
    let update = UpdateKeyInput { description: None, tags: TagUpdate::Keep, rotation: RotationUpdate::Every(30) };
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
    let records = rig.audit.records();
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
