//! The aws-kms backend through the HTTP API, against a local KMS server: created and linked
//! keys do everything under Keyward's policies and audit trail, the external KMS sees (and
//! enforces) the encryption context, and a stopped KMS makes only its own keys unavailable,
//! fast, until it returns.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_kms::primitives::Blob as ExternalBlob;
use aws_sdk_kms::types::KeyState;
use base64::Engine as _;
use keyward_core::blob::Blob;
use keyward_core::model::context::EncryptionContext;
use keyward_e2e::{Db, Hsm, KMS_CREDENTIALS, Kms, Server, b64, on_both_databases, unb64};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

on_both_databases!(aws_keys_do_everything_under_policies_and_audit);

fn config(kms: &Kms, hsm: Option<&Hsm>) -> String {
    format!(
        "default_backend = \"software\"\nmaintenance_interval_seconds = 1\n[[backends]]\nname = \"software\"\nkind = \"software\"\n{}{}",
        kms.backend_toml("aws"),
        hsm.map(|h| h.backend_toml("hsm")).unwrap_or_default()
    )
}

async fn start(db: Db, toml: &str) -> Server {
    Server::start_with_config_env(db, toml, &[], &KMS_CREDENTIALS).await
}

const CONTEXT: &str = "vault";

async fn encrypt(s: &Server, key: &str, plaintext: &[u8]) -> String {
    let r = s
        .post(
            &format!("/v1/keys/{key}/encrypt"),
            json!({"plaintext": b64(plaintext), "encryption_context": {"app": CONTEXT}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.s("ciphertext_blob")
}

async fn decrypt(s: &Server, blob: &str) -> Vec<u8> {
    let r = s.post("/v1/decrypt", json!({"ciphertext_blob": blob, "encryption_context": {"app": CONTEXT}})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    unb64(&r.s("plaintext"))
}

async fn re_encrypt(s: &Server, blob: &str, to: &str) -> String {
    let r = s
        .post(
            "/v1/re-encrypt",
            json!({"ciphertext_blob": blob, "source_encryption_context": {"app": CONTEXT},
                   "destination_key_id": to, "destination_encryption_context": {"app": CONTEXT}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.get("plaintext").is_none());
    r.s("ciphertext_blob")
}

/// The external key ARNs of a key's versions, from the database.
async fn arns(s: &Server, key: &str) -> Vec<String> {
    let db = keyward_store::connect(&s.db_url()).await.unwrap();
    let sql = format!("SELECT material FROM key_versions WHERE key_id = '{key}' ORDER BY version");
    let rows = db.query_all_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap();
    rows.iter()
        .map(|r| {
            let m: Vec<u8> = r.try_get("", "material").unwrap();
            keyward_backend_aws_kms::external_arn(&m).expect("an external key reference, nothing else").to_owned()
        })
        .collect()
}

async fn external_state(kms: &Kms, arn: &str) -> KeyState {
    let out = kms.inspector().client().describe_key().key_id(arn).send().await.unwrap();
    out.key_metadata().unwrap().key_state().unwrap().clone()
}

/// Asks the external KMS itself to decrypt a Keyward blob's inner ciphertext under `context`
/// (with Keyward's binding entry computed for that context).
async fn external_decrypt(kms: &Kms, blob: &str, context: &[(&str, &str)]) -> Result<Vec<u8>, String> {
    let blob = Blob::parse(&unb64(blob)).unwrap();
    let map: BTreeMap<String, String> = context.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let aad = blob.header.associated_data(&EncryptionContext::new(map.clone()).unwrap());
    let mut external: std::collections::HashMap<String, String> = map.into_iter().collect();
    external.insert(
        keyward_backend_aws_kms::AAD_ENTRY.into(),
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&aad)),
    );
    kms.inspector()
        .client()
        .decrypt()
        .ciphertext_blob(ExternalBlob::new(blob.ciphertext))
        .set_encryption_context(Some(external))
        .send()
        .await
        .map(|out| out.plaintext.unwrap().into_inner())
        .map_err(|e| format!("{e:?}"))
}

async fn aws_keys_do_everything_under_policies_and_audit(db: Db) {
    let (Some(kms), Some(hsm)) = (Kms::shared(), Hsm::shared()) else { return };
    let s = start(db, &config(&kms, Some(&hsm))).await;

    // A created key: Keyward makes the external key.
    let r = s.post("/v1/keys", json!({"namespace": "vault", "backend": "aws"})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!((r.body["backend"].as_str(), r.body["protection"].as_str()), (Some("aws"), Some("external")));
    let created = r.s("key_id");
    // A linked key: a team's existing external key, by key id.
    let external = kms.inspector().client().create_key().description("payments team key").send().await.unwrap();
    let external = external.key_metadata().unwrap().clone();
    let r =
        s.post("/v1/keys", json!({"namespace": "vault", "backend": "aws", "external_key_id": external.key_id()})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let linked = r.s("key_id");
    assert_eq!(arns(&s, &linked).await, [external.arn().unwrap()], "the database holds the external key's ARN");
    let soft = s.create_key("vault").await;
    let r = s.post("/v1/keys", json!({"namespace": "vault", "backend": "hsm"})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let on_hsm = r.s("key_id");

    for key in [&created, &linked] {
        let blob = encrypt(&s, key, b"external secret").await;
        assert_eq!(decrypt(&s, &blob).await, b"external secret");
        // The Keyward header names the Keyward key and version; the external blob rides inside.
        let parsed = Blob::parse(&unb64(&blob)).unwrap();
        assert_eq!(parsed.header.key_id.to_string(), *key);
        assert_eq!(parsed.header.algorithm, keyward_backend_aws_kms::ALG_EXTERNAL_KMS);

        let r =
            s.post(&format!("/v1/keys/{key}/generate-data-key"), json!({"encryption_context": {"app": CONTEXT}})).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let data_key = unb64(&r.s("plaintext"));
        assert_eq!(data_key.len(), 32);
        assert_eq!(decrypt(&s, &r.s("ciphertext_blob")).await, data_key);
        // The external KMS made this data key: it opens the inner blob itself.
        assert_eq!(external_decrypt(&kms, &r.s("ciphertext_blob"), &[("app", CONTEXT)]).await.unwrap(), data_key);
        let r = s
            .post(
                &format!("/v1/keys/{key}/generate-data-key-without-plaintext"),
                json!({"number_of_bytes": 64, "encryption_context": {"app": CONTEXT}}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.body.get("plaintext").is_none(), "{}", r.body);
        assert_eq!(decrypt(&s, &r.s("ciphertext_blob")).await.len(), 64);

        // The external KMS saw the encryption context and enforces it.
        assert_eq!(external_decrypt(&kms, &blob, &[("app", CONTEXT)]).await.unwrap(), b"external secret");
        assert!(external_decrypt(&kms, &blob, &[("app", "other")]).await.is_err(), "another context");
        assert!(external_decrypt(&kms, &blob, &[]).await.is_err(), "no context");

        // ReEncrypt to and from software and hsm keys, and between the two aws keys.
        for other in [&soft, &on_hsm, if *key == created { &linked } else { &created }] {
            let there = re_encrypt(&s, &blob, other).await;
            assert_eq!(decrypt(&s, &there).await, b"external secret");
            let from_there = encrypt(&s, other, b"from another backend").await;
            let here = re_encrypt(&s, &from_there, key).await;
            assert_eq!(decrypt(&s, &here).await, b"from another backend");
        }
    }

    // The reserved binding entry cannot be set by callers on external keys.
    let r = s
        .post(
            &format!("/v1/keys/{created}/encrypt"),
            json!({"plaintext": b64(b"x"), "encryption_context": {"keyward:aad": "forged"}}),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "InvalidRequest"), "{}", r.body);

    // Policies apply as to any key: a member of the namespace's group may use it, others not.
    let alice = s.token("alice", &["vault"]);
    let bob = s.token("bob", &["payments"]);
    let body = json!({"plaintext": b64(b"x"), "encryption_context": {"app": CONTEXT}});
    let path = format!("/v1/keys/{created}/encrypt");
    assert_eq!(s.call("POST", &path, &alice, Some(body.clone())).await.status, 200);
    let denied = s.call("POST", &path, &bob, Some(body)).await;
    assert_eq!((denied.status, denied.code()), (403, "AccessDenied"), "{}", denied.body);
    // ...and the audit trail records both, with the key and the context.
    let records = s.get(&format!("/v1/audit?key_id={created}&action=Encrypt&limit=1000")).await;
    assert_eq!(records.status, 200, "{}", records.body);
    let records = records.body["records"].as_array().unwrap().clone();
    let by = |who: &str, decision: &str| {
        records.iter().any(|r: &Value| {
            r["principal"].as_str().is_some_and(|p| p.contains(who))
                && r["decision"] == decision
                && r["encryption_context"]["app"] == CONTEXT
        })
    };
    assert!(by("alice", "Allow") && by("bob", "Deny"), "{records:?}");

    // Rotation: a created key gets a new external key; a linked key rotates externally only.
    let before = encrypt(&s, &created, b"version one").await;
    let r = s.post(&format!("/v1/keys/{created}/rotate"), json!({})).await;
    assert_eq!((r.status, r.body["primary_version"].as_u64()), (200, Some(2)), "{}", r.body);
    let versions = arns(&s, &created).await;
    assert_eq!(versions.len(), 2);
    assert_ne!(versions[0], versions[1], "each version is its own external key");
    assert_eq!(decrypt(&s, &before).await, b"version one");
    let r = s.post(&format!("/v1/keys/{linked}/rotate"), json!({})).await;
    assert_eq!((r.status, r.code()), (422, "UnsupportedOperation"), "{}", r.body);
    let r = s
        .call(
            "PATCH",
            &format!("/v1/keys/{linked}"),
            &s.token("admin", &["admins"]),
            Some(json!({"rotation_period_days": 90})),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "UnsupportedOperation"), "{}", r.body);

    // Bad links are refused with a clear error; other backends cannot link.
    let missing = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000";
    let r = s.post("/v1/keys", json!({"namespace": "vault", "backend": "aws", "external_key_id": missing})).await;
    assert_eq!((r.status, r.code()), (400, "InvalidRequest"), "{}", r.body);
    let r = s.post("/v1/keys", json!({"namespace": "vault", "external_key_id": external.key_id()})).await;
    assert_eq!((r.status, r.code()), (422, "UnsupportedOperation"), "{}", r.body);

    // Deletion: a created key's external keys are scheduled for deletion there; a linked key
    // is only unlinked.
    s.destroy_now(&[&created, &linked]).await;
    for arn in &versions {
        assert_eq!(external_state(&kms, arn).await, KeyState::PendingDeletion, "{arn}");
    }
    assert_eq!(external_state(&kms, external.arn().unwrap()).await, KeyState::Enabled, "a linked key is left as it is");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_kms_fails_fast_and_recovers_without_a_restart() {
    let Some(kms) = Kms::private() else { return };
    let s = start(Db::Sqlite, &config(&kms, None)).await;
    let r = s.post("/v1/keys", json!({"namespace": "vault", "backend": "aws"})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let key = r.s("key_id");
    let soft = s.create_key("vault").await;
    let blob = encrypt(&s, &key, b"before").await;
    let aws_encrypt = async |key: &str| {
        s.post(
            &format!("/v1/keys/{key}/encrypt"),
            json!({"plaintext": b64(b"x"), "encryption_context": {"app": CONTEXT}}),
        )
        .await
    };
    let ensure_fails_fast = async |key: &str| {
        let stopped = Instant::now();
        loop {
            let r = aws_encrypt(key).await;
            if r.status == 503 {
                assert_eq!(r.code(), "KeyUnavailable", "{}", r.body);
                assert_eq!(r.headers["retry-after"], "1");
                break;
            }
            assert_eq!(r.status, 200, "{}", r.body);
            assert!(stopped.elapsed() < Duration::from_secs(2), "still served 2 s after the KMS stopped");
        }
        assert!(stopped.elapsed() < Duration::from_secs(2), "the first refusal took {:?}", stopped.elapsed());
        // While it is down: its keys fail fast, software keys keep working at the same time.
        for _ in 0..5 {
            let started = Instant::now();
            let (a, soft_blob) = tokio::join!(aws_encrypt(key), encrypt(&s, &soft, b"unaffected"));
            assert_eq!(a.status, 503, "{}", a.body);
            assert!(started.elapsed() < Duration::from_millis(500), "fail fast: {:?}", started.elapsed());
            assert_eq!(decrypt(&s, &soft_blob).await, b"unaffected");
        }
        let ready = s.call("GET", "/readyz", "", None).await;
        assert_eq!(ready.status, 503);
        assert_eq!(ready.body["backends"], json!({"aws": "down", "software": "up"}));
    };
    let ensure_recovers = async |key: &str| {
        let back = Instant::now();
        while aws_encrypt(key).await.status != 200 {
            assert!(back.elapsed() < Duration::from_secs(10), "aws keys did not recover");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let ready = s.call("GET", "/readyz", "", None).await;
        assert_eq!((ready.status, &ready.body["backends"]), (200, &json!({"aws": "up", "software": "up"})));
    };

    // Frozen: requests hang until the call deadline cuts them.
    kms.pause();
    ensure_fails_fast(&key).await;
    kms.resume();
    ensure_recovers(&key).await;
    assert_eq!(decrypt(&s, &blob).await, b"before", "old blobs decrypt after recovery");

    // Gone: connections are refused. A fresh server (moto keeps keys in memory only) serves
    // new keys once it is back.
    kms.kill();
    ensure_fails_fast(&key).await;
    kms.start_again();
    let new_key = loop {
        let r = s.post("/v1/keys", json!({"namespace": "vault", "backend": "aws"})).await;
        if r.status == 201 {
            break r.s("key_id");
        }
        assert_eq!(r.status, 503, "{}", r.body);
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    ensure_recovers(&new_key).await;
}
