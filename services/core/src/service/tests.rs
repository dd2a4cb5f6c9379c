//! Unit tests of every operation on the in-memory ports (no HTTP, no database), and the
//! model-based lifecycle test.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::collections::BTreeMap;

use proptest::prelude::*;
use zeroize::Zeroizing;

use super::*;
use crate::model::context::EncryptionContext;
use crate::model::grant::GrantConstraints;
use crate::model::ids::AliasName;
use crate::model::import::KeyOrigin;
use crate::model::key::{KeySpec, KeyState};
use crate::model::principal::{Principal, PrincipalKind};
use crate::ports::audit::AuditRecord;
use crate::testing::lifecycle::{Run, steps};
use crate::testing::{Harness, RuleAuthorizer};

fn start(op: Operation, who: &str) -> RequestStart {
    RequestStart {
        meta: RequestMeta { request_id: uuid::Uuid::new_v4().to_string(), ..RequestMeta::default() },
        principal: Ok(Principal { kind: PrincipalKind::User, id: who.into(), groups: vec![] }),
        operation: op,
    }
}

fn input(namespace: &str) -> CreateKeyInput {
    CreateKeyInput {
        namespace: Namespace::parse(namespace).unwrap(),
        description: String::new(),
        spec: KeySpec::Aes256,
        usage: None,
        tags: BTreeMap::new(),
        backend: None,
        alias: None,
        external_key_id: None,
        origin: KeyOrigin::Keyward,
        idempotency: None,
    }
}

/// A harness where `mallory` may do nothing and everyone else everything.
fn harness() -> Harness {
    Harness::new(RuleAuthorizer::new(|r| r.principal.id != "mallory"))
}

async fn create(h: &Harness) -> KeyRef {
    let svc = &h.service;
    let m = svc.audited(start(Operation::CreateKey, "alice"), async |s| svc.create_key(s, input("ns")).await);
    KeyRef::Id(m.await.unwrap().key.id)
}

fn last(h: &Harness, action: &str) -> AuditRecord {
    h.records().into_iter().rev().find(|r| r.action == action).expect("recorded")
}

#[tokio::test]
async fn create_describe_list_and_update() {
    let h = harness();
    let svc = &h.service;
    let k = create(&h).await;
    let d = svc.audited(start(Operation::DescribeKey, "alice"), async |s| svc.describe_key(s, &k).await).await.unwrap();
    assert_eq!(
        (d.key.state, d.key.primary_version, d.key.owner.as_str()),
        (KeyState::Enabled, 1, "Keyward::User::\"alice\"")
    );
    let ns = Namespace::parse("ns").unwrap();
    let listed = svc.audited(start(Operation::ListKeys, "alice"), async |s| svc.list_keys(s, Some(ns), None, 10).await);
    assert_eq!(listed.await.unwrap().keys.len(), 1);
    let update = UpdateKeyInput {
        description: Some("d".into()),
        tags: TagUpdate::Keep,
        rotation: RotationUpdate::Every(90),
        rotate_after: RotateAfterUpdate::Keep,
        on_use_while_pending: None,
    };
    let u =
        svc.audited(start(Operation::UpdateKey, "alice"), async |s| svc.update_key(s, &k, update).await).await.unwrap();
    assert_eq!((u.key.description.as_str(), u.key.rotation_period_days, u.key.revision), ("d", Some(90), 2));
    assert_eq!(last(&h, "UpdateKey").outcome, "Success");
}

#[tokio::test]
async fn a_denied_request_changes_nothing_and_is_recorded() {
    let h = harness();
    let svc = &h.service;
    let k = create(&h).await;
    let e =
        svc.audited(start(Operation::DisableKey, "mallory"), async |s| svc.disable_key(s, &k).await).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::AccessDenied);
    let r = last(&h, "DisableKey");
    assert_eq!((r.decision, r.outcome.as_str()), (Some(false), "AccessDenied"));
    let d = svc.audited(start(Operation::DescribeKey, "alice"), async |s| svc.describe_key(s, &k).await).await.unwrap();
    assert_eq!(d.key.state, KeyState::Enabled);
}

#[tokio::test]
async fn a_change_that_cannot_commit_with_its_record_does_not_happen() {
    let h = harness();
    let svc = &h.service;
    let k = create(&h).await;
    h.store.set_failing(true);
    let e =
        svc.audited(start(Operation::DisableKey, "alice"), async |s| svc.disable_key(s, &k).await).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::AuditUnavailable);
    h.store.set_failing(false);
    let d = svc.audited(start(Operation::DescribeKey, "alice"), async |s| svc.describe_key(s, &k).await).await.unwrap();
    assert_eq!(d.key.state, KeyState::Enabled, "the change did not land");
    assert!(h.records().iter().all(|r| !(r.action == "DisableKey" && r.outcome == "Success")));
}

#[tokio::test]
async fn a_lost_race_records_the_refusal_and_changes_nothing() {
    let h = harness();
    let svc = &h.service;
    let k = create(&h).await;
    let name = AliasName::parse("alias/race").unwrap();
    // The decision saw no alias; a concurrent request creates it before this one commits.
    let other = create(&h).await;
    let e = svc
        .audited(start(Operation::CreateAlias, "alice"), async |s| {
            let out = svc.create_alias(s, name.clone(), &k, AliasWrite::Upsert).await;
            let winner = svc.audited(start(Operation::CreateAlias, "bob"), async |s2| {
                svc.create_alias(s2, name.clone(), &other, AliasWrite::CreateOnly).await
            });
            winner.await.unwrap();
            out
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Conflict);
    let records: Vec<_> = h.records().into_iter().filter(|r| r.action == "CreateAlias").collect();
    assert_eq!(records.iter().map(|r| r.outcome.as_str()).collect::<Vec<_>>(), vec!["Success", "Conflict"]);
    let alias = svc.audited(start(Operation::DescribeKey, "alice"), async |s| svc.describe_key(s, &other).await);
    assert_eq!(alias.await.unwrap().aliases, vec![name], "the winner's alias stands");
}

#[tokio::test]
async fn lifecycle_enable_disable_schedule_cancel_rotate_and_min_version() {
    let h = harness();
    let svc = &h.service;
    let k = create(&h).await;
    let encrypt = async |k: &KeyRef| {
        let i = EncryptInput {
            key: k.clone(),
            plaintext: Zeroizing::new(b"p".to_vec()),
            context: EncryptionContext::default(),
        };
        svc.audited(start(Operation::Encrypt, "alice"), async |s| svc.encrypt(s, i).await).await
    };
    let decrypt = async |blob: Vec<u8>| {
        let i = DecryptInput { ciphertext_blob: blob, context: EncryptionContext::default(), key: None };
        svc.audited(start(Operation::Decrypt, "alice"), async |s| svc.decrypt(s, i).await).await
    };
    let v1 = encrypt(&k).await.unwrap();
    svc.audited(start(Operation::DisableKey, "alice"), async |s| svc.disable_key(s, &k).await).await.unwrap();
    assert_eq!(encrypt(&k).await.unwrap_err().code(), ErrorCode::KeyDisabled);
    svc.audited(start(Operation::EnableKey, "alice"), async |s| svc.enable_key(s, &k).await).await.unwrap();
    let m = svc.audited(start(Operation::RotateKey, "alice"), async |s| svc.rotate_key(s, &k).await).await.unwrap();
    assert_eq!(m.key.primary_version, 2);
    assert_eq!(encrypt(&k).await.unwrap().key_version, 2);
    assert_eq!(decrypt(v1.ciphertext_blob.clone()).await.unwrap().plaintext.as_slice(), b"p", "old versions decrypt");
    svc.audited(start(Operation::SetMinDecryptionVersion, "alice"), async |s| {
        svc.set_min_decryption_version(s, &k, 2).await
    })
    .await
    .unwrap();
    assert_eq!(decrypt(v1.ciphertext_blob.clone()).await.unwrap_err().code(), ErrorCode::InvalidCiphertext);
    let m = svc.audited(start(Operation::ScheduleKeyDeletion, "alice"), async |s| {
        svc.schedule_key_deletion(s, &k, Some(7)).await
    });
    assert_eq!(m.await.unwrap().key.state, KeyState::PendingDeletion);
    assert_eq!(encrypt(&k).await.unwrap_err().code(), ErrorCode::KeyPendingDeletion);
    let m = svc.audited(start(Operation::CancelKeyDeletion, "alice"), async |s| svc.cancel_key_deletion(s, &k).await);
    assert_eq!(m.await.unwrap().key.state, KeyState::Disabled, "cancelled keys come back disabled");
    let versions =
        svc.audited(start(Operation::ListKeyVersions, "alice"), async |s| svc.list_key_versions(s, &k).await);
    assert_eq!(versions.await.unwrap().iter().map(|v| v.encryptions).collect::<Vec<_>>(), vec![1, 1]);
}

#[tokio::test]
async fn maintenance_destroys_due_keys_and_retries_material() {
    let h = harness();
    let svc = &h.service;
    let k = create(&h).await;
    let KeyRef::Id(id) = k else { unreachable!() };
    svc.audited(start(Operation::ScheduleKeyDeletion, "alice"), async |s| {
        svc.schedule_key_deletion(s, &k, Some(7)).await
    })
    .await
    .unwrap();
    h.clock.advance(chrono::Duration::days(8));
    h.backend.set_failing_destroy(true);
    let r = svc.run_maintenance().await.unwrap();
    assert_eq!((r.destroyed, r.failed), (0, 1));
    let d = svc.audited(start(Operation::DescribeKey, "alice"), async |s| svc.describe_key(s, &k).await).await.unwrap();
    assert_eq!(d.key.state, KeyState::Destroyed, "marked first: a cancel can no longer win");
    assert!(!h.backend.is_destroyed(id, 1));
    h.backend.set_failing_destroy(false);
    // The failure marked the backend down; the background probe brings it back.
    assert_eq!(svc.probe_backends(false).await, 0);
    let r = svc.run_maintenance().await.unwrap();
    assert_eq!(r.destroyed, 1, "the next pass destroys the material: {r:?}");
    assert!(h.backend.is_destroyed(id, 1));
    assert_eq!(svc.run_maintenance().await.unwrap().destroyed, 0);
}

/// Imports `material` (the memory backend's stand-in wrapping) with fresh parameters.
async fn import_material(
    h: &Harness,
    k: &KeyRef,
    material: &[u8; 32],
    valid_to: Option<chrono::DateTime<chrono::Utc>>,
) -> crate::Result<crate::model::key::KeyMetadata> {
    let svc = &h.service;
    let algorithm = crate::model::import::WrappingAlgorithm::RsaesOaepSha256;
    let params = svc
        .audited(start(Operation::GetParametersForImport, "alice"), async |s| {
            svc.get_parameters_for_import(s, k, algorithm, KeySpec::Rsa2048).await
        })
        .await?;
    let input = ImportInput {
        key: k.clone(),
        import_token: params.import_token,
        encrypted_key_material: material.iter().map(|b| b ^ crate::testing::MEMORY_WRAP).collect(),
        valid_to,
    };
    svc.audited(start(Operation::ImportKeyMaterial, "alice"), async |s| svc.import_key_material(s, input).await).await
}

#[tokio::test]
async fn imported_material_expires_comes_back_only_as_itself_and_tokens_expire() {
    let h = harness();
    let svc = &h.service;
    let input = CreateKeyInput { origin: KeyOrigin::External, ..input("ns") };
    let created =
        svc.audited(start(Operation::CreateKey, "alice"), async |s| svc.create_key(s, input).await).await.unwrap();
    assert_eq!(created.key.state, KeyState::PendingImport);
    let k = KeyRef::Id(created.key.id);
    let encrypt = async || {
        let i = EncryptInput {
            key: k.clone(),
            plaintext: Zeroizing::new(b"byok".to_vec()),
            context: EncryptionContext::default(),
        };
        svc.audited(start(Operation::Encrypt, "alice"), async |s| svc.encrypt(s, i).await).await
    };
    assert_eq!(encrypt().await.unwrap_err().code(), ErrorCode::Conflict, "no material yet");
    let material = [7u8; 32];
    let expires = h.clock.now() + chrono::Duration::days(1);
    let m = import_material(&h, &k, &material, Some(expires)).await.unwrap();
    assert_eq!((m.key.state, m.key.valid_to), (KeyState::Enabled, Some(expires)));
    let blob = encrypt().await.unwrap().ciphertext_blob;

    // Past `valid_to`: refused at once, then the maintenance pass deletes the material.
    h.clock.advance(chrono::Duration::days(2));
    assert_eq!(encrypt().await.unwrap_err().code(), ErrorCode::Conflict);
    let r = svc.run_maintenance().await.unwrap();
    assert_eq!((r.expired, r.failed), (1, 0), "{r:?}");
    let KeyRef::Id(id) = k else { unreachable!() };
    assert!(h.backend.is_destroyed(id, 1));
    let d = svc.audited(start(Operation::DescribeKey, "alice"), async |s| svc.describe_key(s, &k).await).await.unwrap();
    assert_eq!((d.key.state, d.key.valid_to), (KeyState::PendingImport, None));
    let system = h
        .records()
        .into_iter()
        .any(|r| r.action == "DeleteImportedKeyMaterial" && r.principal.contains("system") && r.key_id == Some(id));
    assert!(system, "the expiry is on the trail as the system's deletion");
    assert_eq!(svc.run_maintenance().await.unwrap().expired, 0, "once");

    // Other material is refused; the same material comes back and old ciphertexts decrypt.
    let err = import_material(&h, &k, &[8u8; 32], None).await.unwrap_err();
    assert_eq!(err.detail(), Some(crate::error::Detail::IncorrectKeyMaterial));
    import_material(&h, &k, &material, None).await.unwrap();
    let i = DecryptInput { ciphertext_blob: blob, context: EncryptionContext::default(), key: None };
    let plain = svc.audited(start(Operation::Decrypt, "alice"), async |s| svc.decrypt(s, i).await).await.unwrap();
    assert_eq!(plain.plaintext.as_slice(), b"byok");

    // A token works for 24 hours.
    let deleted = svc
        .audited(start(Operation::DeleteImportedKeyMaterial, "alice"), async |s| {
            svc.delete_imported_key_material(s, &k).await
        })
        .await
        .unwrap();
    assert_eq!(deleted.key.state, KeyState::PendingImport);
    let algorithm = crate::model::import::WrappingAlgorithm::RsaesOaepSha256;
    let params = svc
        .audited(start(Operation::GetParametersForImport, "alice"), async |s| {
            svc.get_parameters_for_import(s, &k, algorithm, KeySpec::Rsa2048).await
        })
        .await
        .unwrap();
    h.clock.advance(chrono::Duration::hours(25));
    let input = ImportInput {
        key: k.clone(),
        import_token: params.import_token,
        encrypted_key_material: material.iter().map(|b| b ^ crate::testing::MEMORY_WRAP).collect(),
        valid_to: None,
    };
    let err = svc
        .audited(start(Operation::ImportKeyMaterial, "alice"), async |s| svc.import_key_material(s, input).await)
        .await
        .unwrap_err();
    assert_eq!(err.detail(), Some(crate::error::Detail::ExpiredImportToken));
    // Mallory may do nothing, imports included.
    let err = svc
        .audited(start(Operation::DeleteImportedKeyMaterial, "mallory"), async |s| {
            svc.delete_imported_key_material(s, &k).await
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::AccessDenied);
}

#[tokio::test]
async fn aliases_grants_and_access_keys() {
    let h = harness();
    let svc = &h.service;
    let k = create(&h).await;
    let name = AliasName::parse("alias/app").unwrap();
    let (_, created) = svc
        .audited(start(Operation::CreateAlias, "alice"), async |s| {
            svc.create_alias(s, name.clone(), &k, AliasWrite::CreateOnly).await
        })
        .await
        .unwrap();
    assert!(created);
    let e = svc
        .audited(start(Operation::CreateAlias, "alice"), async |s| {
            svc.create_alias(s, name.clone(), &k, AliasWrite::CreateOnly).await
        })
        .await
        .unwrap_err();
    assert_eq!(e.detail(), Some(crate::Detail::AlreadyExists));
    svc.audited(start(Operation::DeleteAlias, "alice"), async |s| svc.delete_alias(s, &name).await).await.unwrap();
    let grant = CreateGrantInput {
        key: k.clone(),
        grantee: "Keyward::User::\"gus\"".into(),
        operations: vec!["Encrypt".into()],
        constraints: GrantConstraints::default(),
        retiring_principal: None,
    };
    let g =
        svc.audited(start(Operation::CreateGrant, "alice"), async |s| svc.create_grant(s, grant).await).await.unwrap();
    svc.audited(start(Operation::RevokeGrant, "alice"), async |s| svc.revoke_grant(s, g.grant_id).await).await.unwrap();
    let e = svc.audited(start(Operation::RevokeGrant, "alice"), async |s| svc.revoke_grant(s, g.grant_id).await).await;
    assert_eq!(e.unwrap_err().code(), ErrorCode::NotFound, "a revoked grant is gone");
    let access = CreateAccessKeyInput {
        principal: Principal { kind: PrincipalKind::Service, id: "ci".into(), groups: vec![] },
        default_namespace: Namespace::parse("ns").unwrap(),
    };
    let (info, secret) = svc
        .audited(start(Operation::CreateAccessKey, "alice"), async |s| svc.create_access_key(s, access).await)
        .await
        .unwrap();
    let unsealed = svc.access_key_secret_for_authentication(&info.access_key_id).await.unwrap();
    assert_eq!(unsealed.map(|s| s.secret.to_string()), Some(secret.to_string()), "the secret unseals");
    let id = info.access_key_id.clone();
    svc.audited(start(Operation::DeleteAccessKey, "alice"), async |s| svc.delete_access_key(s, &id).await)
        .await
        .unwrap();
    assert!(!svc.access_key_exists(&id).await.unwrap());
}

#[tokio::test]
async fn data_keys_re_encryption_and_dry_runs() {
    let h = harness();
    let svc = &h.service;
    let (a, b) = (create(&h).await, create(&h).await);
    let input = DataKeyInput { key: a.clone(), size: DataKeySize::Aes256, context: EncryptionContext::default() };
    let dk =
        svc.audited(start(Operation::GenerateDataKey, "alice"), async |s| svc.generate_data_key(s, input, true).await);
    let dk = dk.await.unwrap();
    let plaintext = dk.plaintext.clone().unwrap();
    assert_eq!(plaintext.len(), 32);
    let re = ReEncryptInput {
        ciphertext_blob: dk.ciphertext_blob.clone(),
        source_context: EncryptionContext::default(),
        source_key: None,
        destination: b.clone(),
        destination_context: EncryptionContext::default(),
    };
    let moved = svc.audited(start(Operation::ReEncrypt, "alice"), async |s| svc.re_encrypt(s, re).await).await.unwrap();
    let back = DecryptInput {
        ciphertext_blob: moved.ciphertext_blob,
        context: EncryptionContext::default(),
        key: Some(b.clone()),
    };
    let out = svc.audited(start(Operation::Decrypt, "alice"), async |s| svc.decrypt(s, back).await).await.unwrap();
    assert_eq!(out.plaintext.as_slice(), plaintext.as_slice());
    // A dry run decides and records, and does nothing.
    let answer =
        svc.dry_run(start(Operation::DisableKey, "mallory"), async |s| svc.disable_key(s, &a).await).await.unwrap();
    assert!(!answer.allowed);
    let answer =
        svc.dry_run(start(Operation::DisableKey, "alice"), async |s| svc.disable_key(s, &a).await).await.unwrap();
    assert!(answer.allowed);
    let d = svc.audited(start(Operation::DescribeKey, "alice"), async |s| svc.describe_key(s, &a).await).await.unwrap();
    assert_eq!(d.key.state, KeyState::Enabled);
    assert!(last(&h, "DisableKey").dry_run);
}

proptest! {
    // Fast on the in-memory ports: the full 10,000 sequences on every `cargo test`.
    #![proptest_config(ProptestConfig { cases: 10_000, ..ProptestConfig::default() })]

    #[test]
    fn the_lifecycle_follows_the_model(sequence in steps(1..40)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let outcome = runtime.block_on(async {
            let h = Harness::new(RuleAuthorizer::allow_all());
            let trail = h.trail();
            Run::new(&h.service, &h.clock, &trail).steps(&sequence).await
        });
        prop_assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
    }
}

fn limit(rate: f64, burst: f64) -> crate::service::Limit {
    crate::service::Limit::new(rate, burst).unwrap()
}

fn quota_harness(config: crate::service::QuotaConfig) -> Harness {
    Harness::configured(RuleAuthorizer::new(|r| r.principal.id != "mallory"), |s| {
        s.with_quotas(crate::service::Quotas::new(config))
    })
}

async fn svc_versions(h: &Harness, who: &str, k: &KeyRef) -> u64 {
    let svc = &h.service;
    let v = svc.audited(start(Operation::ListKeyVersions, who), async |s| svc.list_key_versions(s, k).await);
    v.await.unwrap().iter().map(|v| v.encryptions).sum()
}

async fn encrypt_as(h: &Harness, who: &str, k: &KeyRef) -> Result<crate::service::EncryptOutput, crate::Error> {
    let svc = &h.service;
    let i = EncryptInput {
        key: k.clone(),
        plaintext: Zeroizing::new(b"q".to_vec()),
        context: EncryptionContext::default(),
    };
    svc.audited(start(Operation::Encrypt, who), async |s| svc.encrypt(s, i).await).await
}

#[tokio::test]
async fn a_principal_over_its_quota_is_refused_audited_and_nothing_runs() {
    let config =
        crate::service::QuotaConfig { per_principal: Some(limit(1.0, 2.0)), replicas: 1, ..Default::default() };
    let h = quota_harness(config);
    // CreateKey is charged too: alice starts with one token of two left.
    let k = create(&h).await;
    assert!(encrypt_as(&h, "alice", &k).await.is_ok());
    let e = encrypt_as(&h, "alice", &k).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::RateLimited);
    assert_eq!(e.detail(), Some(crate::error::Detail::RetryAfter(1)));
    let r = last(&h, "Encrypt");
    assert_eq!((r.decision, r.outcome.as_str()), (Some(true), "RateLimited"), "the refusal is audited");
    assert_eq!(r.reason.as_deref(), Some("principal quota exhausted"));
    // Another principal has its own bucket; a denied one spends nothing.
    assert!(encrypt_as(&h, "bob", &k).await.is_ok());
    let versions = svc_versions(&h, "bob", &k).await;
    assert_eq!(versions, 2, "the refused request never encrypted");
    assert_eq!(encrypt_as(&h, "mallory", &k).await.unwrap_err().code(), ErrorCode::AccessDenied);
    // A second later alice has a token again.
    h.clock.advance(chrono::Duration::seconds(1));
    assert!(encrypt_as(&h, "alice", &k).await.is_ok());
}

#[tokio::test]
async fn key_and_namespace_quotas_and_a_key_tag_override() {
    let config = crate::service::QuotaConfig {
        per_key: Some(limit(100.0, 3.0)),
        per_namespace: Some(limit(0.01, 6.0)),
        replicas: 1,
        ..Default::default()
    };
    let h = quota_harness(config);
    let svc = &h.service;
    let a = create(&h).await;
    // The key's own limit: three, from alice and bob together.
    for who in ["alice", "bob", "alice"] {
        assert!(encrypt_as(&h, who, &a).await.is_ok());
    }
    let e = encrypt_as(&h, "bob", &a).await.unwrap_err();
    assert_eq!((e.code(), e.reason()), (ErrorCode::RateLimited, Some("key quota exhausted")));
    // A tag gives key b a stricter limit (one request, then one per 10 s).
    let mut tagged = input("ns");
    tagged.tags = BTreeMap::from([(crate::service::RATE_TAG.to_owned(), "0.1".to_owned())]);
    let m = svc.audited(start(Operation::CreateKey, "alice"), async |s| svc.create_key(s, tagged).await);
    let b = KeyRef::Id(m.await.unwrap().key.id);
    assert!(encrypt_as(&h, "alice", &b).await.is_ok());
    let e = encrypt_as(&h, "alice", &b).await.unwrap_err();
    assert_eq!(e.detail(), Some(crate::error::Detail::RetryAfter(10)));
    // 20 ms later key a has two tokens again, but the namespace's six are spent (two
    // CreateKeys, three on a, one on b: refused requests spent nothing) and refill slowly.
    h.clock.advance(chrono::Duration::milliseconds(20));
    let e = encrypt_as(&h, "alice", &a).await.unwrap_err();
    assert_eq!(e.reason(), Some("namespace quota exhausted"));
}

#[tokio::test]
async fn a_key_rotates_once_its_primary_version_is_worn() {
    let limits =
        crate::service::RotationLimits { default: 1_000, namespaces: BTreeMap::from([("ns".to_owned(), 100)]) };
    let h =
        Harness::configured(RuleAuthorizer::new(|r| r.principal.id != "mallory"), |s| s.with_rotation_limits(limits));
    let svc = &h.service;
    let k = create(&h).await;
    let KeyRef::Id(id) = k else { unreachable!("created keys are named by id") };
    let describe = async || {
        svc.audited(start(Operation::DescribeKey, "alice"), async |s| svc.describe_key(s, &k).await).await.unwrap()
    };
    assert_eq!(describe().await.rotate_after_encryptions, 100, "the namespace's limit");
    // Below the limit, even with the batch: nothing.
    assert!(!svc.rotate_if_worn(id, 1, 80, 10).await.unwrap());
    // The count plus the batch reaches it: one rotation, by the system, audited.
    assert!(svc.rotate_if_worn(id, 1, 92, 10).await.unwrap());
    assert_eq!(describe().await.key.primary_version, 2);
    let r = last(&h, "RotateKey");
    assert_eq!((r.principal.as_str(), r.outcome.as_str()), ("Keyward::Service::\"keyward:system\"", "Success"));
    assert_eq!(r.details.get("trigger").map(String::as_str), Some("rotate_after_encryptions"));
    // A late report about the old version (another replica's flush) rotates nothing more.
    assert!(!svc.rotate_if_worn(id, 1, 500, 10).await.unwrap());
    assert_eq!(describe().await.key.primary_version, 2);
    // The key's own limit wins over its namespace's.
    let update = UpdateKeyInput {
        description: None,
        tags: TagUpdate::Keep,
        rotation: RotationUpdate::Keep,
        rotate_after: crate::service::RotateAfterUpdate::After(10_000),
        on_use_while_pending: None,
    };
    let u = svc.audited(start(Operation::UpdateKey, "alice"), async |s| svc.update_key(s, &k, update).await);
    assert_eq!(u.await.unwrap().rotate_after_encryptions, 10_000);
    assert!(!svc.rotate_if_worn(id, 2, 500, 10).await.unwrap());
    // A disabled key is not rotated.
    svc.audited(start(Operation::DisableKey, "alice"), async |s| svc.disable_key(s, &k).await).await.unwrap();
    assert!(!svc.rotate_if_worn(id, 2, 20_000, 10).await.unwrap());
}

/// Keeps the deletion canaries it is sent.
#[derive(Debug, Default)]
struct Notified(std::sync::Mutex<Vec<crate::ports::notifier::CanaryEvent>>);

impl crate::ports::notifier::Notifier for Notified {
    fn deletion_canary(&self, event: crate::ports::notifier::CanaryEvent) {
        self.0.lock().unwrap().push(event);
    }
}

#[tokio::test]
async fn using_a_key_pending_deletion_raises_its_canary_and_can_cancel_the_deletion() {
    let notified = std::sync::Arc::new(Notified::default());
    let sink = notified.clone();
    let h = Harness::configured(RuleAuthorizer::new(|r| r.principal.id != "mallory"), |s| s.with_notifier(sink));
    let svc = &h.service;
    let k = create(&h).await;
    let KeyRef::Id(id) = k else { unreachable!("created keys are named by id") };
    let encrypt = async |who: &str| {
        let i = EncryptInput {
            key: k.clone(),
            plaintext: Zeroizing::new(b"p".to_vec()),
            context: EncryptionContext::default(),
        };
        svc.audited(start(Operation::Encrypt, who), async |s| svc.encrypt(s, i).await).await
    };
    let describe = async || {
        svc.audited(start(Operation::DescribeKey, "alice"), async |s| svc.describe_key(s, &k).await).await.unwrap()
    };
    let canaries = || h.records().into_iter().filter(|r| r.action == "DeletionCanary").collect::<Vec<_>>();
    let schedule = async || {
        let s = svc.audited(start(Operation::ScheduleKeyDeletion, "alice"), async |s| {
            svc.schedule_key_deletion(s, &k, Some(7)).await
        });
        s.await.unwrap();
    };
    // Before the deletion is scheduled, use raises nothing.
    encrypt("bob").await.unwrap();
    assert!(canaries().is_empty());
    schedule().await;
    assert_eq!(describe().await.key.on_use_while_pending, crate::model::key::OnUseWhilePending::Alert);

    // Alert: refused as before, recorded as a canary naming who tried, counted, notified.
    assert_eq!(encrypt("bob").await.unwrap_err().code(), ErrorCode::KeyPendingDeletion);
    let c = canaries();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].principal, "Keyward::User::\"bob\"");
    assert_eq!(c[0].key_id, Some(id));
    assert_eq!(c[0].details.get("kind").map(String::as_str), Some("deletion_canary"));
    assert_eq!(c[0].details.get("attempted_action").map(String::as_str), Some("Encrypt"));
    assert_eq!(c[0].outcome, "Success");
    let refused = last(&h, "Encrypt");
    assert_eq!(
        (refused.outcome.as_str(), refused.request_id.as_str()),
        ("KeyPendingDeletion", c[0].request_id.as_str())
    );
    let d = describe().await;
    assert_eq!((d.key.state, d.key.deletion_canary_count), (KeyState::PendingDeletion, 1));
    assert_eq!(d.key.deletion_canary_last_at, Some(h.clock.now()));
    {
        let sent = notified.0.lock().unwrap();
        assert_eq!(sent.len(), 1);
        assert_eq!((sent[0].key_id, sent[0].count, sent[0].deletion_cancelled), (id, 1, false));
        assert_eq!(sent[0].action, "Encrypt");
    }

    // A caller the policies refuse trips nothing: no canary, no cancellation by strangers.
    assert_eq!(encrypt("mallory").await.unwrap_err().code(), ErrorCode::AccessDenied);
    assert_eq!(canaries().len(), 1);
    assert_eq!(describe().await.key.deletion_canary_count, 1);

    // Cancel: the attempt is still refused, and the system cancels the deletion (audited).
    let update = UpdateKeyInput {
        description: None,
        tags: TagUpdate::Keep,
        rotation: RotationUpdate::Keep,
        rotate_after: RotateAfterUpdate::Keep,
        on_use_while_pending: Some(crate::model::key::OnUseWhilePending::Cancel),
    };
    svc.audited(start(Operation::UpdateKey, "alice"), async |s| svc.update_key(s, &k, update).await).await.unwrap();
    assert_eq!(encrypt("carol").await.unwrap_err().code(), ErrorCode::KeyPendingDeletion);
    let d = describe().await;
    assert_eq!((d.key.state, d.key.deletion_canary_count, d.key.deletion_date), (KeyState::Disabled, 2, None));
    let cancel = last(&h, "CancelKeyDeletion");
    assert_eq!(cancel.principal, "Keyward::Service::\"keyward:system\"");
    assert_eq!(cancel.details.get("trigger").map(String::as_str), Some("deletion_canary"));
    assert_eq!(cancel.details.get("canary_request_id"), Some(&canaries()[1].request_id));
    assert!(notified.0.lock().unwrap()[1].deletion_cancelled);
    // Disabled, not pending: use is refused without a canary.
    assert_eq!(encrypt("carol").await.unwrap_err().code(), ErrorCode::KeyDisabled);
    assert_eq!(canaries().len(), 2);
}

#[tokio::test]
async fn a_namespace_default_key_is_made_on_first_encryption_and_managed_by_the_service() {
    let h = harness();
    let svc = &h.service;
    let alias = |s: &str| KeyRef::Alias(AliasName::parse(s).unwrap());
    let encrypt = async |who: &str, key: KeyRef| {
        let i = EncryptInput { key, plaintext: Zeroizing::new(b"p".to_vec()), context: EncryptionContext::default() };
        svc.audited(start(Operation::Encrypt, who), async |s| svc.encrypt(s, i).await).await
    };
    let creations = || h.records().into_iter().filter(|r| r.action == "CreateKey").collect::<Vec<_>>();

    // A caller the policies refuse makes nothing, and learns nothing.
    let denied = encrypt("mallory", alias("alias/keyward/payments")).await.unwrap_err();
    assert_eq!(denied.code(), ErrorCode::AccessDenied);
    assert!(creations().is_empty());

    // First use: the key is made by the system, named after the requester, then used.
    let first = encrypt("alice", alias("alias/keyward/payments")).await.unwrap();
    let created = creations();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].principal, "Keyward::Service::\"keyward:system\"");
    assert_eq!(created[0].details.get("trigger").map(String::as_str), Some("namespace_default_key"));
    assert_eq!(created[0].details.get("requested_by").map(String::as_str), Some("Keyward::User::\"alice\""));
    assert_eq!(created[0].key_id, Some(first.key_id));
    assert_eq!(last(&h, "Encrypt").principal, "Keyward::User::\"alice\"");
    let k = KeyRef::Id(first.key_id);
    let m = svc.audited(start(Operation::DescribeKey, "bob"), async |s| svc.describe_key(s, &k).await).await.unwrap();
    assert_eq!(m.key.namespace.as_str(), "payments");
    assert_eq!(m.key.owner, "Keyward::Service::\"keyward:system\"");
    assert_eq!(m.key.rotation_period_days, Some(365));
    assert_eq!(m.aliases, vec![AliasName::parse("alias/keyward/payments").unwrap()]);
    // Later uses, by anyone allowed, use the same key.
    assert_eq!(encrypt("bob", alias("alias/keyward/payments")).await.unwrap().key_id, first.key_id);
    assert_eq!(creations().len(), 1);

    // Decrypting never makes one; neither does a dry run.
    let d = DecryptInput {
        ciphertext_blob: first.ciphertext_blob.clone(),
        context: EncryptionContext::default(),
        key: Some(alias("alias/keyward/other")),
    };
    assert!(svc.audited(start(Operation::Decrypt, "alice"), async |s| svc.decrypt(s, d).await).await.is_err());
    let i = EncryptInput {
        key: alias("alias/keyward/other"),
        plaintext: Zeroizing::new(b"p".to_vec()),
        context: EncryptionContext::default(),
    };
    let dry = svc.dry_run(start(Operation::Encrypt, "alice"), async |s| svc.encrypt(s, i).await).await;
    assert!(dry.unwrap().allowed, "a dry run answers the decision the first use would get");
    assert_eq!(creations().len(), 1, "a dry run makes no key");

    // The lifecycle is the service's: no disabling, deleting, reconfiguring, or reserved aliases.
    let disable = svc.audited(start(Operation::DisableKey, "alice"), async |s| svc.disable_key(s, &k).await).await;
    assert_eq!(disable.unwrap_err().code(), ErrorCode::UnsupportedOperation);
    let delete = svc.audited(start(Operation::ScheduleKeyDeletion, "alice"), async |s| {
        svc.schedule_key_deletion(s, &k, Some(7)).await
    });
    assert_eq!(delete.await.unwrap_err().code(), ErrorCode::UnsupportedOperation);
    let name = AliasName::parse("alias/keyward/payments").unwrap();
    let mine = create(&h).await;
    let repoint = svc.audited(start(Operation::CreateAlias, "alice"), async |s| {
        svc.create_alias(s, name.clone(), &mine, AliasWrite::Upsert).await
    });
    assert_eq!(repoint.await.unwrap_err().code(), ErrorCode::InvalidRequest);
    let remove = svc.audited(start(Operation::DeleteAlias, "alice"), async |s| svc.delete_alias(s, &name).await);
    assert_eq!(remove.await.unwrap_err().code(), ErrorCode::InvalidRequest);
    // On-demand rotation stays available.
    let rotated = svc.audited(start(Operation::RotateKey, "alice"), async |s| svc.rotate_key(s, &k).await).await;
    assert_eq!(rotated.unwrap().key.primary_version, 2);
}

/// The approval a deferred request waits on.
fn pending<T: std::fmt::Debug>(r: Result<T>) -> uuid::Uuid {
    let err = r.expect_err("deferred");
    assert_eq!(err.code(), ErrorCode::ApprovalPending);
    let Some(crate::error::Detail::Approval { id, required, .. }) = err.detail() else {
        unreachable!("an ApprovalPending answer names its approval: {err:?}");
    };
    assert_eq!(required, 1);
    id
}

#[tokio::test]
async fn approved_requests_run_as_their_requester_and_undecided_ones_expire() {
    let config = ApprovalConfig { required: 1, ..ApprovalConfig::default() };
    let h = Harness::configured(RuleAuthorizer::new(|r| r.principal.id != "mallory"), |s| s.with_approvals(config));
    let svc = &h.service;
    let k = create(&h).await;
    let KeyRef::Id(key_id) = k else { unreachable!("created keys are named by id") };
    let approve = async |who: &str, id: uuid::Uuid| {
        svc.audited(start(Operation::Approve, who), async |s| svc.approve(s, id).await).await
    };
    // CreateGrant waits; bob's approval runs it as alice.
    let grant = CreateGrantInput {
        key: k.clone(),
        grantee: "Keyward::User::\"erin\"".into(),
        operations: vec!["Encrypt".into()],
        constraints: GrantConstraints::default(),
        retiring_principal: None,
    };
    let id =
        pending(svc.audited(start(Operation::CreateGrant, "alice"), async |s| svc.create_grant(s, grant).await).await);
    assert!(
        svc.audited(start(Operation::ListGrants, "alice"), async |s| svc.list_grants(s, &k).await)
            .await
            .unwrap()
            .is_empty()
    );
    let done = approve("bob", id).await.unwrap();
    assert_eq!(done.state, crate::model::approval::ApprovalState::Executed);
    assert_eq!(done.result.as_ref().map(|r| r["outcome"].clone()), Some(serde_json::json!("Success")));
    let ran = last(&h, "CreateGrant");
    assert_eq!((ran.principal.as_str(), ran.outcome.as_str()), ("Keyward::User::\"alice\"", "Success"));
    assert_eq!(ran.details.get("approved_by").map(String::as_str), Some("Keyward::User::\"bob\""));
    assert_eq!(
        svc.audited(start(Operation::ListGrants, "alice"), async |s| svc.list_grants(s, &k).await).await.unwrap().len(),
        1
    );
    // ReloadPolicies waits too (its resource is the system).
    let id = pending(
        svc.audited(start(Operation::ReloadPolicies, "alice"), async |s| svc.reload_policies(s, false).await).await,
    );
    assert_eq!(approve("bob", id).await.unwrap().result.unwrap()["policy_version"], "memory");
    // Undecided past its time: expired by the maintenance pass, as the system; no decision after.
    let id = pending(
        svc.audited(start(Operation::ScheduleKeyDeletion, "alice"), async |s| {
            svc.schedule_key_deletion(s, &k, Some(7)).await
        })
        .await,
    );
    h.clock.advance(chrono::Duration::hours(25));
    let got = svc.audited(start(Operation::GetApproval, "bob"), async |s| svc.get_approval(s, id).await).await;
    assert_eq!(got.unwrap().state, crate::model::approval::ApprovalState::Expired, "reads as expired at once");
    assert_eq!(svc.run_maintenance().await.unwrap().approvals_expired, 1);
    let expiry = last(&h, "ExpireApproval");
    assert_eq!(
        (expiry.principal.as_str(), expiry.outcome.as_str()),
        ("Keyward::Service::\"keyward:system\"", "Success")
    );
    assert_eq!(approve("bob", id).await.unwrap_err().code(), ErrorCode::Conflict);
    let m = svc.audited(start(Operation::DescribeKey, "alice"), async |s| svc.describe_key(s, &k).await).await;
    assert_eq!((m.unwrap().key.state, key_id), (KeyState::Enabled, key_id), "the expired request never ran");
    // The next pass finds nothing more to expire.
    assert_eq!(svc.run_maintenance().await.unwrap().approvals_expired, 0);
}
