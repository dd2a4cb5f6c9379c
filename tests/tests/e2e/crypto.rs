//! Envelope encryption over HTTP: Encrypt/Decrypt limits, tampering, contexts, rotation,
//! data keys, ReEncrypt, random bytes.

use keyward_e2e::{Db, Server, b64, on_both_databases, unb64};
use serde_json::{Value, json};

on_both_databases!(encrypt_limits_and_failures, rotation_and_retirement, data_keys_and_reencrypt);

fn blob_of(r: &keyward_e2e::Resp) -> String {
    assert_eq!(r.status, 200, "{}", r.body);
    r.s("ciphertext_blob")
}

async fn decrypt(s: &Server, blob: &str, ctx: Value) -> keyward_e2e::Resp {
    s.post("/v1/decrypt", json!({"ciphertext_blob": blob, "encryption_context": ctx})).await
}

async fn encrypt_limits_and_failures(db: Db) {
    let s = Server::start(db).await;
    let id = s.create_key("crypto").await;
    let enc = format!("/v1/keys/{id}/encrypt");

    // 4096 bytes is the limit; 4097 is 413 and names data keys.
    let max = vec![0xA5u8; 4096];
    let r = s.post(&enc, json!({"plaintext": b64(&max)})).await;
    let big_blob = blob_of(&r);
    assert_eq!(r.s("key_id"), id);
    assert_eq!(r.body["key_version"], 1);
    let back = decrypt(&s, &big_blob, json!({})).await;
    assert_eq!(unb64(&back.s("plaintext")), max);
    let r = s.post(&enc, json!({"plaintext": b64(&[0u8; 4097])})).await;
    assert_eq!((r.status, r.code()), (413, "PayloadTooLarge"));
    assert!(r.body["detail"].as_str().unwrap().contains("GenerateDataKey"));
    let r = s.post(&enc, json!({"plaintext": ""})).await;
    assert_eq!((r.status, r.code()), (400, "InvalidRequest"));
    let r = s.post(&enc, json!({"plaintext": "not base64!"})).await;
    assert_eq!((r.status, r.code()), (400, "InvalidRequest"));

    // Context must match exactly.
    let ctx = json!({"tenant": "acme", "purpose": "db"});
    let blob = blob_of(&s.post(&enc, json!({"plaintext": b64(b"secret"), "encryption_context": ctx})).await);
    assert_eq!(unb64(&decrypt(&s, &blob, ctx.clone()).await.s("plaintext")), b"secret");
    let wrong = [
        json!({}),
        json!({"tenant": "acme"}),
        json!({"tenant": "acme", "purpose": "db", "x": ""}),
        json!({"tenant": "evil", "purpose": "db"}),
    ];
    for w in wrong {
        let r = decrypt(&s, &blob, w.clone()).await;
        assert_eq!((r.status, r.code()), (400, "InvalidCiphertext"), "context {w}");
    }
    let missing = s.post("/v1/decrypt", json!({"ciphertext_blob": blob})).await;
    assert_eq!(missing.code(), "InvalidCiphertext");

    // Every byte of the blob is protected: flip each one.
    let bytes = unb64(&blob);
    let mut bodies = std::collections::BTreeSet::new();
    for i in 0..bytes.len() {
        let mut t = bytes.clone();
        t[i] ^= 0x01;
        let r = decrypt(&s, &b64(&t), ctx.clone()).await;
        assert_eq!((r.status, r.code()), (400, "InvalidCiphertext"), "flipped byte {i}");
        bodies.insert(r.body["detail"].to_string());
    }
    assert_eq!(bodies.len(), 1, "every decrypt failure looks the same to the caller");
    // Truncations, extensions and garbage.
    for t in [&bytes[..bytes.len() - 1], &bytes[..10], &[][..]] {
        assert_eq!(decrypt(&s, &b64(t), ctx.clone()).await.code(), "InvalidCiphertext");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(decrypt(&s, &b64(&longer), ctx.clone()).await.code(), "InvalidCiphertext");
    for garbage in ["", "!!!", "AAAA", &b64(&[0x4B, 0x57, 1, 0, 0]), &b64(&vec![0xFFu8; 300])] {
        let r = decrypt(&s, garbage, json!({})).await;
        assert_eq!((r.status, r.code()), (400, "InvalidCiphertext"), "garbage {garbage:?}");
    }
    // A blob of another key does not pass for this one.
    let other = s.create_key("crypto").await;
    let r = s.post("/v1/decrypt", json!({"ciphertext_blob": blob, "encryption_context": ctx, "key_id": other})).await;
    assert_eq!(r.code(), "InvalidCiphertext");
    let r = s.post("/v1/decrypt", json!({"ciphertext_blob": blob, "encryption_context": ctx, "key_id": id})).await;
    assert_eq!(r.status, 200);

    // A blob written by a key in another server (another root key) is refused cleanly.
    let s2 = Server::start(Db::Sqlite).await;
    let r = s2.post("/v1/decrypt", json!({"ciphertext_blob": blob, "encryption_context": ctx})).await;
    assert_eq!((r.status, r.code()), (400, "InvalidCiphertext"));
}

async fn rotation_and_retirement(db: Db) {
    let s = Server::start(db).await;
    let id = s.create_key("rot").await;
    let enc = format!("/v1/keys/{id}/encrypt");
    let v1 = blob_of(&s.post(&enc, json!({"plaintext": b64(b"one")})).await);
    let r = s.post(&format!("/v1/keys/{id}/rotate"), json!({})).await;
    assert_eq!(r.body["primary_version"], 2);
    let r = s.post(&enc, json!({"plaintext": b64(b"two")})).await;
    assert_eq!(r.body["key_version"], 2);
    let v2 = blob_of(&r);
    s.post(&format!("/v1/keys/{id}/rotate"), json!({})).await;

    // Old versions keep decrypting.
    let r = decrypt(&s, &v1, json!({})).await;
    assert_eq!((unb64(&r.s("plaintext")), r.body["key_version"].as_u64()), (b"one".to_vec(), Some(1)));
    assert_eq!(unb64(&decrypt(&s, &v2, json!({})).await.s("plaintext")), b"two");

    // Retire version 1.
    let mdv = format!("/v1/keys/{id}/min-decryption-version");
    for bad in [0, 4] {
        assert_eq!(s.post(&mdv, json!({"version": bad})).await.code(), "InvalidRequest", "version {bad}");
    }
    let r = s.post(&mdv, json!({"version": 2})).await;
    assert_eq!(r.body["min_decryption_version"], 2);
    assert_eq!(decrypt(&s, &v1, json!({})).await.code(), "InvalidCiphertext");
    assert_eq!(decrypt(&s, &v2, json!({})).await.status, 200);
    let versions = s.get(&format!("/v1/keys/{id}/versions")).await;
    let states: Vec<_> =
        versions.body["versions"].as_array().unwrap().iter().map(|v| v["state"].as_str().unwrap().to_owned()).collect();
    assert_eq!(states, ["Retired", "Enabled", "Enabled"]);
    assert_eq!(versions.body["versions"][1]["encryptions"], 1);
    assert!(versions.body["versions"][0]["created_at"].is_string());
    // Lowering it again brings version 1 back: retired, not destroyed.
    s.post(&mdv, json!({"version": 1})).await;
    assert_eq!(decrypt(&s, &v1, json!({})).await.status, 200);
}

async fn data_keys_and_reencrypt(db: Db) {
    let s = Server::start(db).await;
    let a = s.create_key("dk").await;
    let b = s.create_key("dk").await;
    let ctx = json!({"bucket": "logs"});

    let r = s.post(&format!("/v1/keys/{a}/generate-data-key"), json!({"encryption_context": ctx})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let dk = unb64(&r.s("plaintext"));
    assert_eq!(dk.len(), 32);
    assert_eq!(unb64(&decrypt(&s, &r.s("ciphertext_blob"), ctx.clone()).await.s("plaintext")), dk);

    let r = s.post(&format!("/v1/keys/{a}/generate-data-key"), json!({"key_spec": "AES_128"})).await;
    assert_eq!(unb64(&r.s("plaintext")).len(), 16);
    let r = s.post(&format!("/v1/keys/{a}/generate-data-key"), json!({"number_of_bytes": 64})).await;
    assert_eq!(unb64(&r.s("plaintext")).len(), 64);
    for bad in [
        json!({"number_of_bytes": 0}),
        json!({"number_of_bytes": 1025}),
        json!({"key_spec": "AES_256", "number_of_bytes": 8}),
        json!({"key_spec": "DES"}),
    ] {
        let r = s.post(&format!("/v1/keys/{a}/generate-data-key"), bad.clone()).await;
        assert_eq!((r.status, r.code()), (400, "InvalidRequest"), "{bad}");
    }

    let r =
        s.post(&format!("/v1/keys/{a}/generate-data-key-without-plaintext"), json!({"encryption_context": ctx})).await;
    assert_eq!(r.status, 200);
    assert!(r.body.get("plaintext").is_none(), "no plaintext: {}", r.body);
    let wrapped = r.s("ciphertext_blob");
    assert_eq!(unb64(&decrypt(&s, &wrapped, ctx.clone()).await.s("plaintext")).len(), 32);

    // ReEncrypt moves a blob to another key and context without exposing the plaintext.
    let r = s
        .post("/v1/re-encrypt", json!({"ciphertext_blob": wrapped, "source_encryption_context": ctx, "destination_key_id": b, "destination_encryption_context": {"bucket": "archive"}}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!((r.s("source_key_id"), r.s("key_id")), (a.clone(), b.clone()));
    assert!(r.body.get("plaintext").is_none());
    let moved = r.s("ciphertext_blob");
    let back = decrypt(&s, &moved, json!({"bucket": "archive"})).await;
    assert_eq!(back.s("key_id"), b);
    assert_eq!(unb64(&back.s("plaintext")), unb64(&decrypt(&s, &wrapped, ctx.clone()).await.s("plaintext")));
    let r = s
        .post(
            "/v1/re-encrypt",
            json!({"ciphertext_blob": wrapped, "source_encryption_context": {}, "destination_key_id": b}),
        )
        .await;
    assert_eq!(r.code(), "InvalidCiphertext");

    // Random bytes.
    let r = s.post("/v1/random", json!({"number_of_bytes": 32, "namespace": "dk"})).await;
    assert_eq!(unb64(&r.s("plaintext")).len(), 32);
    for n in [0, 1025] {
        assert_eq!(
            s.post("/v1/random", json!({"number_of_bytes": n, "namespace": "dk"})).await.code(),
            "InvalidRequest"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_blobs_and_bodies_never_reach_a_backend() {
    let s = Server::start(Db::Sqlite).await;
    let id = s.create_key("crypto").await;
    let r = s.post(&format!("/v1/keys/{id}/encrypt"), json!({"plaintext": b64(b"x")})).await;
    let mut blob = unb64(&blob_of(&r));
    let backend_decrypts = async || {
        let text = reqwest::get(format!("{}/metrics", s.base)).await.unwrap().text().await.unwrap();
        text.lines()
            .find(|l| l.starts_with("keyward_backend_seconds_count") && l.contains("call=\"decrypt\""))
            .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    assert_eq!(decrypt(&s, &b64(&blob), json!({})).await.status, 200);
    let before = backend_decrypts().await;
    assert!(before >= 1, "the backend's decrypts are counted");
    // A well-formed header with a ciphertext longer than any backend writes.
    blob.extend(std::iter::repeat_n(0u8, 8 * 1024));
    let r = decrypt(&s, &b64(&blob), json!({})).await;
    assert_eq!((r.status, r.code()), (400, "InvalidCiphertext"), "{}", r.body);
    let r = s.post("/v1/re-encrypt", json!({"ciphertext_blob": b64(&blob), "destination_key_id": id})).await;
    assert_eq!((r.status, r.code()), (400, "InvalidCiphertext"), "{}", r.body);
    assert_eq!(backend_decrypts().await, before, "the backend was not called");
    // A body far over the largest legitimate one is refused unread.
    let huge = "A".repeat(700 * 1024);
    let r = s.post("/v1/decrypt", json!({"ciphertext_blob": huge})).await;
    assert_eq!(r.status, 413, "{}", r.body);
    let records =
        s.audit_store().await.query(&keyward_store::AuditQuery { limit: 1000, ..Default::default() }).await.unwrap();
    let refused = records.iter().filter(|r| r.action == "Decrypt" && r.outcome == "InvalidCiphertext").count();
    assert_eq!(refused, 1, "the oversized blob was audited");
    assert!(records.iter().any(|r| r.reason.as_deref().is_some_and(|x| x.contains("longer than any blob"))));
}
