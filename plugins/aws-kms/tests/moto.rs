//! The aws-kms backend against a local KMS server (`scripts/start-kms.sh` starts moto): the
//! conformance suite, created and linked keys, and what the external side holds. Without a
//! server these tests fail under `KEYWARD_REQUIRE_SERVICES=1` (the full suite) and are skipped
//! otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

use aws_sdk_kms::types::{KeySpec as ExternalSpec, KeyState, KeyUsageType};
use keyward_backend::{Backend, BackendError, VersionHandle};
use keyward_backend_aws_kms::{AwsKmsBackend, AwsKmsConfig, external_arn};
use keyward_core::model::ids::KeyId;
use keyward_core::model::key::{KeySpec, KeyUsage};

fn config() -> Option<AwsKmsConfig> {
    match std::env::var("KEYWARD_TEST_KMS_ENDPOINT").ok().filter(|v| !v.is_empty()) {
        Some(endpoint) => Some(AwsKmsConfig {
            region: "us-east-1".into(),
            endpoint: Some(endpoint),
            profile: None,
            timeout_ms: Some(5000),
            max_attempts: None,
            external_pending_window_days: None,
            // moto hashes DIGEST messages again.
            digest_messages: Some(false),
            // moto encrypts every key symmetrically, whatever the algorithm.
            rsa_encryption: Some(false),
        }),
        None if std::env::var("KEYWARD_REQUIRE_SERVICES").as_deref() == Ok("1") => {
            panic!("no local KMS server: run scripts/start-kms.sh (the full suite requires it)")
        }
        None => {
            eprintln!("skipped: no local KMS server (KEYWARD_TEST_KMS_ENDPOINT)");
            None
        }
    }
}

async fn state_of(backend: &AwsKmsBackend, arn: &str) -> KeyState {
    let out = backend.client().describe_key().key_id(arn).send().await.unwrap();
    out.key_metadata().unwrap().key_state().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_conformance_suite_skipping_only_by_capability() {
    let Some(config) = config() else { return };
    let backend = AwsKmsBackend::connect(&config).unwrap();
    let report = keyward_backend::conformance::run_all(&backend).await.unwrap();
    eprintln!("aws-kms conformance: {report}");
    let skipped: Vec<&str> = report.skipped.iter().map(|(check, _)| *check).collect();
    // An external KMS cannot take a fixed nonce or return a raw GCM tag, and it deletes keys
    // after a waiting period.
    // Ed25519 keys are not offered; Wycheproof needs caller-given keys.
    let expected = [
        "destroyed_version_refused",
        "raw_gcm",
        "wycheproof_aes_gcm",
        "signatures_ECC_NIST_EDWARDS25519",
        // moto encrypts RSA keys symmetrically (`rsa_encryption = false` in its settings).
        "rsa_oaep",
        "wycheproof_rsa_oaep",
        "wycheproof_signatures",
        "wycheproof_hmac",
    ];
    assert_eq!(skipped, expected, "{report}");
    assert!(report.passed.len() >= 12, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn created_keys_are_external_keys_scheduled_for_deletion_on_destroy() {
    let Some(config) = config() else { return };
    let backend = AwsKmsBackend::connect(&config).unwrap();
    let id = KeyId(uuid::Uuid::new_v4());
    let material = Backend::create_key(&backend, id, 1, KeySpec::Aes256, KeyUsage::EncryptDecrypt).await.unwrap();
    assert_eq!(material[0], 1, "created");
    let arn = external_arn(&material).unwrap().to_owned();
    assert!(arn.starts_with("arn:aws:kms:us-east-1:"), "{arn}");
    let out = backend.client().describe_key().key_id(&arn).send().await.unwrap();
    let meta = out.key_metadata().unwrap();
    assert_eq!(meta.key_spec(), Some(&ExternalSpec::SymmetricDefault));
    assert!(meta.description().unwrap_or_default().contains(&id.to_string()), "the external key names its Keyward key");
    let handle = VersionHandle { key_id: id, version: 1, material: &material };
    assert!(Backend::can_rotate(&backend, handle).is_ok());
    Backend::destroy(&backend, handle).await.unwrap();
    assert_eq!(state_of(&backend, &arn).await, KeyState::PendingDeletion);
    Backend::destroy(&backend, handle).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linked_keys_are_used_never_rotated_and_only_unlinked() {
    let Some(config) = config() else { return };
    let backend = AwsKmsBackend::connect(&config).unwrap();
    let external = backend.client().create_key().description("a team's existing key").send().await.unwrap();
    let external = external.key_metadata().unwrap();
    let id = KeyId(uuid::Uuid::new_v4());
    // Linked by bare key id; Keyward stores the ARN.
    let material = Backend::link_key(&backend, id, external.key_id()).await.unwrap();
    assert_eq!(material[0], 2, "linked");
    assert_eq!(external_arn(&material), external.arn());
    let handle = VersionHandle { key_id: id, version: 1, material: &material };
    let aad = |alg: u8, params: &[u8]| [&[alg][..], params].concat();
    let sealed = Backend::encrypt(&backend, handle, b"team secret", &Default::default(), &aad).await.unwrap();
    let back = Backend::decrypt(
        &backend,
        handle,
        sealed.algorithm,
        &[],
        &sealed.ciphertext,
        &Default::default(),
        &aad(3, &[]),
    )
    .await
    .unwrap();
    assert_eq!(back.as_slice(), b"team secret");
    assert!(matches!(Backend::can_rotate(&backend, handle), Err(BackendError::Unsupported(_))));
    Backend::destroy(&backend, handle).await.unwrap();
    assert_eq!(state_of(&backend, external.arn().unwrap()).await, KeyState::Enabled, "unlinking leaves it alone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linking_refuses_what_cannot_serve() {
    let Some(config) = config() else { return };
    let backend = AwsKmsBackend::connect(&config).unwrap();
    let id = KeyId(uuid::Uuid::new_v4());
    let missing = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000";
    assert!(matches!(Backend::link_key(&backend, id, missing).await, Err(BackendError::InvalidRequest(_))));
    assert!(matches!(Backend::link_key(&backend, id, "alias/team").await, Err(BackendError::InvalidRequest(_))));
    let signing = backend
        .client()
        .create_key()
        .key_spec(ExternalSpec::Rsa2048)
        .key_usage(KeyUsageType::SignVerify)
        .send()
        .await
        .unwrap();
    let signing = signing.key_metadata().unwrap().key_id();
    match Backend::link_key(&backend, id, signing).await {
        Err(BackendError::InvalidRequest(m)) => assert!(m.contains("symmetric"), "{m}"),
        other => panic!("an RSA signing key was linked: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_kms_is_unavailable_quickly() {
    let Some(mut config) = config() else { return };
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    config.endpoint = Some(format!("http://127.0.0.1:{port}"));
    config.timeout_ms = Some(1000);
    let backend = AwsKmsBackend::connect(&config).unwrap();
    let started = std::time::Instant::now();
    assert!(matches!(Backend::health(&backend).await, Err(BackendError::Unavailable(_))));
    assert!(started.elapsed() < std::time::Duration::from_millis(1500), "{:?}", started.elapsed());
}
