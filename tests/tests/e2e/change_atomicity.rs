//! No state change is ever visible without a committed record naming it: each change commits
//! in the same transaction as its audit record. With audit inserts failing in the database,
//! every state-changing operation answers `AuditUnavailable` and changes nothing; once they
//! succeed again, each change lands with exactly one record.

use std::sync::Arc;

use keyward_core::ErrorCode;
use keyward_core::model::grant::GrantConstraints;
use keyward_core::model::ids::{AliasName, KeyRef, Namespace};
use keyward_core::model::key::KeyState;
use keyward_core::model::principal::{Principal, PrincipalKind};
use keyward_core::operation::Operation;
use keyward_core::ports::clock::SystemClock;
use keyward_core::service::{
    AliasWrite, CreateAccessKeyInput, CreateGrantInput, RotateAfterUpdate, RotationUpdate, TagUpdate, UpdateKeyInput,
};
use keyward_e2e::inproc::Rig;
use keyward_e2e::{Db, on_both_databases};
use sea_orm::ConnectionTrait;

on_both_databases!(a_change_whose_record_cannot_commit_does_not_happen);

/// Makes every insert into the audit table fail inside the database.
async fn audit_inserts_fail(rig: &Rig, failing: bool) {
    let db = rig.db.as_ref().expect("a database-backed rig");
    let sql: &[&str] = match (db.get_database_backend(), failing) {
        (sea_orm::DbBackend::Sqlite, true) => {
            &["CREATE TRIGGER audit_down BEFORE INSERT ON audit_records BEGIN SELECT RAISE(ABORT, 'audit down'); END"]
        }
        (sea_orm::DbBackend::Sqlite, false) => &["DROP TRIGGER audit_down"],
        (_, true) => &[
            "CREATE FUNCTION audit_down() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'audit down'; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER audit_down BEFORE INSERT ON audit_records FOR EACH ROW EXECUTE FUNCTION audit_down()",
        ],
        (_, false) => &["DROP TRIGGER audit_down ON audit_records", "DROP FUNCTION audit_down()"],
    };
    for s in sql {
        db.execute_unprepared(s).await.expect("toggle the audit fault");
    }
}

async fn a_change_whose_record_cannot_commit_does_not_happen(db: Db) {
    let rig = Rig::new(db, Arc::new(SystemClock)).await;
    let svc = &rig.service;
    let admin = |op| rig.admin(op);
    let key = svc.audited(admin(Operation::CreateKey), async |s| svc.create_key(s, Rig::key_input("a")).await);
    let key = key.await.unwrap();
    let other = svc.audited(admin(Operation::CreateKey), async |s| svc.create_key(s, Rig::key_input("a")).await);
    let other = other.await.unwrap();
    let k = KeyRef::Id(key.key.id);
    let pending = svc.audited(admin(Operation::CreateKey), async |s| svc.create_key(s, Rig::key_input("a")).await);
    let pending = KeyRef::Id(pending.await.unwrap().key.id);
    svc.audited(admin(Operation::ScheduleKeyDeletion), async |s| svc.schedule_key_deletion(s, &pending, Some(7)).await)
        .await
        .unwrap();
    let kept = AliasName::parse("alias/kept").unwrap();
    svc.audited(admin(Operation::CreateAlias), async |s| {
        svc.create_alias(s, kept.clone(), &k, AliasWrite::CreateOnly).await
    })
    .await
    .unwrap();
    let grant_input = || CreateGrantInput {
        key: k.clone(),
        grantee: "Keyward::User::\"gina\"".into(),
        operations: vec!["Encrypt".into()],
        constraints: GrantConstraints::default(),
        retiring_principal: None,
    };
    let grant = svc.audited(admin(Operation::CreateGrant), async |s| svc.create_grant(s, grant_input()).await);
    let grant = grant.await.unwrap();
    let access_input = || CreateAccessKeyInput {
        principal: Principal { kind: PrincipalKind::Service, id: "ci".into(), groups: vec![] },
        default_namespace: Namespace::parse("a").unwrap(),
    };
    let access =
        svc.audited(admin(Operation::CreateAccessKey), async |s| svc.create_access_key(s, access_input()).await);
    let access = access.await.unwrap().0;
    let changes = [
        "CreateKey",
        "UpdateKey",
        "DisableKey",
        "ScheduleKeyDeletion",
        "CancelKeyDeletion",
        "RotateKey",
        "SetMinDecryptionVersion",
        "CreateAlias",
        "DeleteAlias",
        "CreateGrant",
        "RevokeGrant",
        "CreateAccessKey",
        "DeleteAccessKey",
    ];
    let successes = |records: &[keyward_core::ports::audit::AuditRecord]| {
        records.iter().filter(|r| changes.contains(&r.action.as_str()) && r.outcome == "Success").count()
    };
    let before = successes(&rig.records().await);
    assert_eq!(before, 7, "the setup's changes are recorded");

    audit_inserts_fail(&rig, true).await;
    let fresh = AliasName::parse("alias/fresh").unwrap();
    let describe = async |r: &KeyRef| {
        svc.audited(admin(Operation::DescribeKey), async |s| svc.describe_key(s, r).await).await.unwrap()
    };
    let refused = |what: &str, r: Result<(), keyward_core::Error>| match r {
        Err(e) => assert_eq!(e.code(), ErrorCode::AuditUnavailable, "{what}: {e:?}"),
        Ok(()) => panic!("{what} succeeded although its record could not be committed"),
    };
    let update = || UpdateKeyInput {
        description: Some("changed".into()),
        tags: TagUpdate::Keep,
        rotation: RotationUpdate::Keep,
        rotate_after: RotateAfterUpdate::Keep,
        on_use_while_pending: None,
    };
    refused(
        "CreateKey",
        svc.audited(admin(Operation::CreateKey), async |s| svc.create_key(s, Rig::key_input("a")).await.map(drop))
            .await,
    );
    refused(
        "UpdateKey",
        svc.audited(admin(Operation::UpdateKey), async |s| svc.update_key(s, &k, update()).await.map(drop)).await,
    );
    refused(
        "DisableKey",
        svc.audited(admin(Operation::DisableKey), async |s| svc.disable_key(s, &k).await.map(drop)).await,
    );
    refused(
        "ScheduleKeyDeletion",
        svc.audited(admin(Operation::ScheduleKeyDeletion), async |s| {
            svc.schedule_key_deletion(s, &k, Some(7)).await.map(drop)
        })
        .await,
    );
    refused(
        "CancelKeyDeletion",
        svc.audited(admin(Operation::CancelKeyDeletion), async |s| {
            svc.cancel_key_deletion(s, &pending).await.map(drop)
        })
        .await,
    );
    refused(
        "RotateKey",
        svc.audited(admin(Operation::RotateKey), async |s| svc.rotate_key(s, &k).await.map(drop)).await,
    );
    refused(
        "SetMinDecryptionVersion",
        svc.audited(admin(Operation::SetMinDecryptionVersion), async |s| {
            svc.set_min_decryption_version(s, &k, 1).await.map(drop)
        })
        .await,
    );
    refused(
        "CreateAlias",
        svc.audited(admin(Operation::CreateAlias), async |s| {
            svc.create_alias(s, fresh.clone(), &k, AliasWrite::CreateOnly).await.map(drop)
        })
        .await,
    );
    let repoint = KeyRef::Id(other.key.id);
    refused(
        "CreateAlias (repoint)",
        svc.audited(admin(Operation::CreateAlias), async |s| {
            svc.create_alias(s, kept.clone(), &repoint, AliasWrite::Upsert).await.map(drop)
        })
        .await,
    );
    refused(
        "DeleteAlias",
        svc.audited(admin(Operation::DeleteAlias), async |s| svc.delete_alias(s, &kept).await).await,
    );
    refused(
        "CreateGrant",
        svc.audited(admin(Operation::CreateGrant), async |s| svc.create_grant(s, grant_input()).await.map(drop)).await,
    );
    refused(
        "RevokeGrant",
        svc.audited(admin(Operation::RevokeGrant), async |s| svc.revoke_grant(s, grant.grant_id).await).await,
    );
    refused(
        "CreateAccessKey",
        svc.audited(admin(Operation::CreateAccessKey), async |s| {
            svc.create_access_key(s, access_input()).await.map(drop)
        })
        .await,
    );
    refused(
        "DeleteAccessKey",
        svc.audited(admin(Operation::DeleteAccessKey), async |s| svc.delete_access_key(s, &access.access_key_id).await)
            .await,
    );

    // Nothing changed.
    let now = describe(&k).await;
    assert_eq!((now.key.state, now.key.primary_version, now.key.min_decryption_version), (KeyState::Enabled, 1, 1));
    assert_eq!(now.key.description, "", "UpdateKey did not land");
    assert_eq!(now.aliases, vec![kept.clone()], "the alias neither moved, nor was deleted, nor was another added");
    assert_eq!(describe(&pending).await.key.state, KeyState::PendingDeletion);
    let keys = svc.audited(admin(Operation::ListKeys), async |s| {
        svc.list_keys(s, Some(Namespace::parse("a").unwrap()), None, 100).await
    });
    assert_eq!(keys.await.unwrap().keys.len(), 3, "no key was created");
    let grants = svc.audited(admin(Operation::ListGrants), async |s| svc.list_grants(s, &k).await).await.unwrap();
    assert_eq!(grants.iter().map(|g| g.grant_id).collect::<Vec<_>>(), vec![grant.grant_id], "grants unchanged");
    let access_keys = svc.audited(admin(Operation::ListAccessKeys), async |s| svc.list_access_keys(s, 100, None).await);
    let access_keys = access_keys.await.unwrap().access_keys;
    assert_eq!(
        access_keys.iter().map(|a| a.access_key_id.clone()).collect::<Vec<_>>(),
        vec![access.access_key_id.clone()]
    );
    assert_eq!(successes(&rig.records().await), before, "no change was recorded as done");

    // Recovered: each change lands, with exactly one record naming it.
    audit_inserts_fail(&rig, false).await;
    let before = rig.records().await.len();
    svc.audited(admin(Operation::DisableKey), async |s| svc.disable_key(s, &k).await).await.unwrap();
    svc.audited(admin(Operation::RevokeGrant), async |s| svc.revoke_grant(s, grant.grant_id).await).await.unwrap();
    svc.audited(admin(Operation::DeleteAlias), async |s| svc.delete_alias(s, &kept).await).await.unwrap();
    assert_eq!(describe(&k).await.key.state, KeyState::Disabled);
    let records = rig.records().await;
    assert_eq!(records.len(), before + 4, "three changes and one DescribeKey, one record each");
    for action in ["DisableKey", "RevokeGrant", "DeleteAlias"] {
        let done = records.iter().filter(|r| r.action == action && r.key_id == Some(key.key.id));
        let outcomes: Vec<_> = done.map(|r| r.outcome.as_str()).collect();
        // The attempt during the fault is recorded as what it was: refused, not done.
        assert_eq!(outcomes.iter().filter(|o| **o == "Success").count(), 1, "{action}: {outcomes:?}");
        assert!(outcomes.iter().all(|o| *o == "Success" || *o == "AuditUnavailable"), "{action}: {outcomes:?}");
    }
}
