//! The pkcs11 backend through the HTTP API, on SoftHSM2: keys live in the token and never leave
//! it, the software backend's root key can be held by the token, and a lost token makes only its
//! own keys unavailable, fast, until it returns.

use std::time::{Duration, Instant};

use keyward_e2e::{Db, Hsm, Server, b64, keyward_bin, on_both_databases, unb64};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

on_both_databases!(hsm_keys_do_everything_and_never_leave_the_token);

fn config(hsm: &Hsm, extra: &str) -> String {
    format!(
        "default_backend = \"software\"\nmaintenance_interval_seconds = 1\n{extra}\n[[backends]]\nname = \"software\"\nkind = \"software\"\n{}",
        hsm.backend_toml("hsm")
    )
}

async fn encrypt(s: &Server, key: &str, plaintext: &[u8]) -> String {
    let r = s
        .post(
            &format!("/v1/keys/{key}/encrypt"),
            json!({"plaintext": b64(plaintext), "encryption_context": {"app": "vault"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.s("ciphertext_blob")
}

async fn decrypt(s: &Server, blob: &str) -> Vec<u8> {
    let r = s.post("/v1/decrypt", json!({"ciphertext_blob": blob, "encryption_context": {"app": "vault"}})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    unb64(&r.s("plaintext"))
}

/// Rows of one key's versions: (version, material).
async fn materials(s: &Server, key: &str) -> Vec<(i64, Vec<u8>)> {
    let db = keyward_store::connect(&s.db_url()).await.unwrap();
    let sql = format!("SELECT version, material FROM key_versions WHERE key_id = '{key}' ORDER BY version");
    let rows = db.query_all_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap();
    rows.iter().map(|r| (r.try_get("", "version").unwrap(), r.try_get("", "material").unwrap())).collect()
}

fn object_id(key: &str, version: u32) -> Vec<u8> {
    let id = keyward_core::model::ids::KeyId(key.parse().unwrap());
    keyward_backend_pkcs11::object_id(id, version)
}

async fn hsm_keys_do_everything_and_never_leave_the_token(db: Db) {
    let Some(hsm) = Hsm::shared() else { return };
    let namespaces = "[namespaces.sealed]\ndefault_backend = \"hsm\"\n";
    let s = Server::start_with_config(db, &config(&hsm, namespaces), &[]).await;
    let r = s.post("/v1/keys", json!({"namespace": "vault", "backend": "hsm"})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!((r.body["backend"].as_str(), r.body["protection"].as_str()), (Some("hsm"), Some("hsm")), "{}", r.body);
    let key = r.s("key_id");
    let soft = s.create_key("vault").await;
    assert_eq!(s.get(&format!("/v1/keys/{soft}")).await.body["backend"], "software", "the server's default");
    // A namespace can name its own default backend.
    let r = s.post("/v1/keys", json!({"namespace": "sealed"})).await;
    assert_eq!(r.body["backend"], "hsm", "{}", r.body);

    // Encrypt, Decrypt, GenerateDataKey.
    let blob = encrypt(&s, &key, b"held by the token").await;
    assert_eq!(decrypt(&s, &blob).await, b"held by the token");
    let r = s.post(&format!("/v1/keys/{key}/generate-data-key"), json!({"encryption_context": {"app": "vault"}})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(decrypt(&s, &r.s("ciphertext_blob")).await, unb64(&r.s("plaintext")));

    // ReEncrypt to and from a software key; the plaintext never leaves the service.
    let reencrypt = async |blob: &str, to: &str| {
        let r = s
            .post(
                "/v1/re-encrypt",
                json!({"ciphertext_blob": blob, "source_encryption_context": {"app": "vault"},
                       "destination_key_id": to, "destination_encryption_context": {"app": "vault"}}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.body.get("plaintext").is_none());
        r.s("ciphertext_blob")
    };
    let on_soft = reencrypt(&blob, &soft).await;
    assert_eq!(decrypt(&s, &on_soft).await, b"held by the token");
    let soft_blob = encrypt(&s, &soft, b"from software").await;
    let on_hsm = reencrypt(&soft_blob, &key).await;
    assert_eq!(decrypt(&s, &on_hsm).await, b"from software");

    // Rotation makes a new token key; old blobs still decrypt with theirs.
    let r = s.post(&format!("/v1/keys/{key}/rotate"), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v2_blob = encrypt(&s, &key, b"second version").await;
    assert_eq!(decrypt(&s, &v2_blob).await, b"second version");
    assert_eq!(decrypt(&s, &blob).await, b"held by the token");

    // The database holds references, no key bytes; the token refuses to reveal the keys.
    let rows = materials(&s, &key).await;
    assert_eq!(rows.len(), 2);
    for (version, material) in &rows {
        let id = object_id(&key, u32::try_from(*version).unwrap());
        assert_eq!(material[0], 1, "reference format");
        assert_eq!(&material[1..], id.as_slice(), "the stored material is the object's CKA_ID, nothing else");
        let facts = hsm.inspect(&id);
        assert!(facts.found, "version {version} lives in the token");
        assert!(!facts.value_readable, "CKA_VALUE of version {version} is refused");
        assert_eq!((facts.sensitive, facts.extractable), (Some(true), Some(false)));
    }

    // Scheduled destruction: once the window has passed, the token objects are destroyed.
    s.destroy_now(&[&key]).await;
    for version in [1, 2] {
        assert!(!hsm.inspect(&object_id(&key, version)).found, "version {version} destroyed in the token");
    }
    let r = s.post("/v1/decrypt", json!({"ciphertext_blob": blob, "encryption_context": {"app": "vault"}})).await;
    assert_eq!(r.status / 100, 4, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_can_hold_the_root_key() {
    let Some(hsm) = Hsm::shared() else { return };
    let label = format!("root-{}", uuid::Uuid::new_v4());
    let toml = format!(
        "default_backend = \"software\"\n[[backends]]\nname = \"software\"\nkind = \"software\"\nroot_key_backend = \"hsm\"\n{}root_key_label = \"{label}\"\n",
        hsm.backend_toml("hsm")
    );
    let mut s = Server::start_with_config(Db::Sqlite, &toml, &[]).await;
    let key = s.create_key("vault").await;
    let blob = encrypt(&s, &key, b"sealed by the token").await;
    assert_eq!(decrypt(&s, &blob).await, b"sealed by the token");
    let state = s.state_args();
    let data_dir = std::path::PathBuf::from(&state[1]);
    assert!(!data_dir.join("root.key").exists(), "no root key file: the token holds it");
    // The material names the token's root key and is sealed by it.
    let (_, material) = materials(&s, &key).await.remove(0);
    let root = hsm.inspect_label(&label);
    assert_eq!(&material[1..9], root.as_slice(), "wrapped under the token's root key");

    // Restart: the material unwraps through the token.
    s.restart();
    assert_eq!(decrypt(&s, &blob).await, b"sealed by the token");
    assert_eq!(s.stop(), Some(0));

    // Without the token the server refuses to start, and says why.
    let missing = toml.replace(&format!("token_label = \"{}\"", hsm.label), "token_label = \"no-such-token\"");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyward.toml");
    std::fs::write(&path, missing).unwrap();
    let out = std::process::Command::new(keyward_bin())
        .arg("serve")
        .args(&state)
        .args(["--listen", "127.0.0.1:0", "--config"])
        .arg(&path)
        .current_dir(keyward_e2e::repo_root())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no token labelled `no-such-token`"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_token_fails_fast_and_recovers_without_a_restart() {
    let Some(hsm) = Hsm::private() else { return };
    let env = hsm.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let s = Server::start_with_config_env(Db::Sqlite, &config(&hsm, ""), &[], &env).await;
    let r = s.post("/v1/keys", json!({"namespace": "vault", "backend": "hsm"})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let key = r.s("key_id");
    let soft = s.create_key("vault").await;
    let blob = encrypt(&s, &key, b"before").await;
    let hsm_encrypt = async || {
        s.post(
            &format!("/v1/keys/{key}/encrypt"),
            json!({"plaintext": b64(b"x"), "encryption_context": {"app": "vault"}}),
        )
        .await
    };

    hsm.take_away();
    let lost = Instant::now();
    let refused: Value = loop {
        let r = hsm_encrypt().await;
        if r.status == 503 {
            assert_eq!(r.code(), "KeyUnavailable", "{}", r.body);
            assert_eq!(r.headers["retry-after"], "1");
            break r.body;
        }
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(lost.elapsed() < Duration::from_secs(2), "still served 2 s after the token went away");
    };
    assert!(lost.elapsed() < Duration::from_secs(2), "{refused}");
    // While it is gone: its keys fail fast, software keys keep working at the same time.
    for _ in 0..5 {
        let started = Instant::now();
        let (h, soft_blob) = tokio::join!(hsm_encrypt(), encrypt(&s, &soft, b"unaffected"));
        assert_eq!(h.status, 503, "{}", h.body);
        assert!(started.elapsed() < Duration::from_millis(500), "fail fast: {:?}", started.elapsed());
        assert_eq!(decrypt(&s, &soft_blob).await, b"unaffected");
    }
    let ready = s.call("GET", "/readyz", "", None).await;
    assert_eq!(ready.status, 503);
    assert!(ready.body["failing"].as_array().unwrap().contains(&json!("backend:hsm")), "{}", ready.body);
    assert_eq!(ready.body["backends"], json!({"hsm": "down", "software": "up"}));

    hsm.bring_back();
    let back = Instant::now();
    loop {
        if hsm_encrypt().await.status == 200 {
            break;
        }
        assert!(back.elapsed() < Duration::from_secs(10), "hsm keys did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(decrypt(&s, &blob).await, b"before");
    let ready = s.call("GET", "/readyz", "", None).await;
    assert_eq!((ready.status, &ready.body["backends"]), (200, &json!({"hsm": "up", "software": "up"})));
}

/// A token absent at start does not keep the server, or software keys, from starting: the
/// instance starts down (503 for its keys, `/readyz` names it) and comes back without a
/// restart once the token does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_absent_at_start_degrades_instead_of_refusing_to_start() {
    let Some(hsm) = Hsm::private() else { return };
    hsm.take_away();
    let env = hsm.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let s = Server::start_with_config_env(Db::Sqlite, &config(&hsm, ""), &[], &env).await;
    let soft = s.create_key("vault").await;
    let blob = encrypt(&s, &soft, b"software keys work").await;
    assert_eq!(decrypt(&s, &blob).await, b"software keys work");
    let r = s.post("/v1/keys", json!({"namespace": "vault", "backend": "hsm"})).await;
    assert_eq!((r.status, r.code()), (503, "KeyUnavailable"), "{}", r.body);
    let mut ready = s.call("GET", "/readyz", "", None).await;
    for _ in 0..30 {
        if ready.status == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        ready = s.call("GET", "/readyz", "", None).await;
    }
    assert_eq!((ready.status, &ready.body["backends"]), (503, &json!({"hsm": "down", "software": "up"})));

    hsm.bring_back();
    let back = Instant::now();
    let key = loop {
        let r = s.post("/v1/keys", json!({"namespace": "vault", "backend": "hsm"})).await;
        if r.status == 201 {
            break r.s("key_id");
        }
        assert!(back.elapsed() < Duration::from_secs(10), "the token was not picked up: {}", r.body);
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let blob = encrypt(&s, &key, b"in the token").await;
    assert_eq!(decrypt(&s, &blob).await, b"in the token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_and_mac_keys_live_in_the_token_and_sign_there() {
    let Some(hsm) = Hsm::shared() else { return };
    let s = Server::start_with_config(Db::Sqlite, &config(&hsm, ""), &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let message = b"signed inside the HSM".as_slice();
    let mut ids = Vec::new();
    for (spec, alg, digest) in [
        ("ECC_NIST_P256", "ECDSA_SHA_256", "-sha256"),
        ("RSA_2048", "RSASSA_PKCS1_V1_5_SHA_256", "-sha256"),
        ("ECC_NIST_EDWARDS25519", "ED25519_SHA_512", ""),
    ] {
        let r = s.post("/v1/keys", json!({"namespace": "vault", "backend": "hsm", "key_spec": spec})).await;
        assert_eq!((r.status, r.body["protection"].as_str()), (201, Some("hsm")), "{}", r.body);
        let key = r.s("key_id");
        let r =
            s.post(&format!("/v1/keys/{key}/sign"), json!({"message": b64(message), "signing_algorithm": alg})).await;
        assert_eq!(r.status, 200, "{spec}: {}", r.body);
        let sig = unb64(&r.s("signature"));
        // openssl verifies the token's signature with the PEM alone.
        let pem = s.get(&format!("/v1/keys/{key}/public-key")).await.s("public_key_pem");
        let (pem_file, msg_file, sig_file) = (dir.path().join("p.pem"), dir.path().join("m"), dir.path().join("s"));
        std::fs::write(&pem_file, pem).unwrap();
        std::fs::write(&msg_file, message).unwrap();
        std::fs::write(&sig_file, &sig).unwrap();
        let mut cmd = std::process::Command::new("openssl");
        if digest.is_empty() {
            cmd.args(["pkeyutl", "-verify", "-pubin", "-rawin", "-inkey"]).arg(&pem_file).arg("-in").arg(&msg_file);
            cmd.arg("-sigfile").arg(&sig_file);
        } else {
            cmd.args(["dgst", digest, "-verify"]).arg(&pem_file).arg("-signature").arg(&sig_file).arg(&msg_file);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{spec}: {}", String::from_utf8_lossy(&out.stderr));
        let body = |sig: &[u8]| json!({"message": b64(message), "signature": b64(sig), "signing_algorithm": alg});
        assert_eq!(s.post(&format!("/v1/keys/{key}/verify"), body(&sig)).await.body["signature_valid"], true);
        let mut bad = sig.clone();
        bad[4] ^= 0x40;
        assert_eq!(s.post(&format!("/v1/keys/{key}/verify"), body(&bad)).await.body["signature_valid"], false);
        // The private half is in the token, sensitive, never extractable; the database holds
        // only its reference.
        let id = object_id(&key, 1);
        let facts = hsm.inspect_private(&id);
        assert!(facts.found && hsm.has_public(&id), "{spec}: both halves live in the token");
        assert!(!facts.value_readable, "{spec}: the private key is refused");
        assert_eq!((facts.sensitive, facts.extractable), (Some(true), Some(false)), "{spec}");
        assert_eq!(materials(&s, &key).await[0].1[1..], id[..], "{spec}: the stored material is the reference");
        ids.push(key);
    }
    let r = s.post("/v1/keys", json!({"namespace": "vault", "backend": "hsm", "key_spec": "HMAC_384"})).await;
    let hmac = r.s("key_id");
    let mac = s
        .post(
            &format!("/v1/keys/{hmac}/generate-mac"),
            json!({"message": b64(message), "mac_algorithm": "HMAC_SHA_384"}),
        )
        .await;
    let mac = unb64(&mac.s("mac"));
    assert_eq!(mac.len(), 48);
    let check = s
        .post(
            &format!("/v1/keys/{hmac}/verify-mac"),
            json!({"message": b64(message), "mac": b64(&mac), "mac_algorithm": "HMAC_SHA_384"}),
        )
        .await;
    assert_eq!(check.body["mac_valid"], true, "{}", check.body);
    let facts = hsm.inspect(&object_id(&hmac, 1));
    assert!(
        facts.found && !facts.value_readable && facts.extractable == Some(false),
        "the HMAC secret stays in the token"
    );
    // Destruction removes both halves of every key pair.
    ids.push(hmac.clone());
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    s.destroy_now(&refs).await;
    for key in &ids {
        let id = object_id(key, 1);
        assert!(!hsm.inspect_private(&id).found && !hsm.has_public(&id) && !hsm.inspect(&id).found, "{key} destroyed");
    }
}

/// Bring your own key into the token: material wrapped with `openssl` is unwrapped inside it
/// (`C_UnwrapKey`), so the database holds only a reference; ciphertexts made outside with the
/// same material decrypt, MACs equal openssl's, an imported RSA key decrypts what openssl
/// encrypted. What the token cannot do (RSA-OAEP with SHA-256 on SoftHSM2 2.6, EC private keys)
/// is refused up front as unsupported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_material_is_unwrapped_inside_the_token() {
    use crate::import::{external_key, import, open_outside, openssl, path, seal_outside_token, to_pkcs8, wrap};
    let Some(hsm) = Hsm::shared() else { return };
    let s = Server::start_with_config(Db::Sqlite, &config(&hsm, ""), &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let on_hsm = json!({"backend": "hsm"});
    let caps = s.get("/v1/keys").await;
    assert_eq!(caps.status, 200);

    // AES-256 with RSA-AES key wrap (SHA-1: what SoftHSM2's RSA-OAEP takes).
    let key = external_key(&s, "AES_256", on_hsm.clone()).await;
    let r = s
        .post(
            &format!("/v1/keys/{key}/import-parameters"),
            json!({"wrapping_algorithm": "RSA_AES_KEY_WRAP_SHA_256", "wrapping_key_spec": "RSA_2048"}),
        )
        .await;
    let sha256 = r.status == 200;
    if !sha256 {
        assert_eq!((r.status, r.code()), (422, "UnsupportedOperation"), "{}", r.body);
    }
    let material = openssl(&["rand", "32"]);
    let (token, wrapped) = wrap(&s, d, &key, "RSA_AES_KEY_WRAP_SHA_1", "RSA_2048", &material).await;
    let r = import(&s, &key, &token, &wrapped).await;
    assert_eq!((r.status, r.s("protection")), (200, "hsm".to_owned()), "{}", r.body);
    let stored = materials(&s, &key).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].1.len(), 21, "the database holds a token reference, never the material");
    let ctx = json!({"app": "ledger"});
    let context = [("app", "ledger")];
    let r = s
        .post(&format!("/v1/keys/{key}/encrypt"), json!({"plaintext": b64(b"in the token"), "encryption_context": ctx}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(open_outside(&material, &unb64(&r.s("ciphertext_blob")), &context), b"in the token");
    let outside = seal_outside_token(&material, &key, b"from outside", &context);
    let r = s.post("/v1/decrypt", json!({"ciphertext_blob": b64(&outside), "encryption_context": ctx})).await;
    assert_eq!(unb64(&r.s("plaintext")), b"from outside", "{}", r.body);
    // Deleted and re-imported: the token object is replaced, old ciphertexts decrypt again.
    let r = s.call("DELETE", &format!("/v1/keys/{key}/import"), &s.admin, None).await;
    assert_eq!(r.s("key_state"), "PendingImport");
    let (token, wrapped) = wrap(&s, d, &key, "RSA_AES_KEY_WRAP_SHA_1", "RSA_2048", &material).await;
    assert_eq!(import(&s, &key, &token, &wrapped).await.status, 200);
    let r = s.post("/v1/decrypt", json!({"ciphertext_blob": b64(&outside), "encryption_context": ctx})).await;
    assert_eq!(unb64(&r.s("plaintext")), b"from outside", "{}", r.body);

    // HMAC: openssl's MAC over the same key.
    let key = external_key(&s, "HMAC_256", on_hsm.clone()).await;
    let secret = openssl(&["rand", "32"]);
    let (token, wrapped) = wrap(&s, d, &key, "RSAES_OAEP_SHA_1", "RSA_2048", &secret).await;
    let r = import(&s, &key, &token, &wrapped).await;
    if r.status != 200 {
        // SoftHSM2 records no length for an unwrapped secret: only key wrap shows it.
        assert_eq!((r.status, r.code()), (400, "InvalidRequest"), "{}", r.body);
        let (token, wrapped) = wrap(&s, d, &key, "RSA_AES_KEY_WRAP_SHA_1", "RSA_2048", &secret).await;
        assert_eq!(import(&s, &key, &token, &wrapped).await.status, 200);
    }
    let msg = d.join("msg");
    std::fs::write(&msg, b"hook").unwrap();
    let mac = s
        .post(
            &format!("/v1/keys/{key}/generate-mac"),
            json!({"message": b64(b"hook"), "mac_algorithm": "HMAC_SHA_256"}),
        )
        .await;
    let hexkey = format!("hexkey:{}", hex::encode(&secret));
    assert_eq!(
        unb64(&mac.s("mac")),
        openssl(&["dgst", "-sha256", "-mac", "HMAC", "-macopt", &hexkey, "-binary", path(&msg)])
    );

    // An RSA private key, unwrapped in the token; its public half is read back from it.
    let key = external_key(&s, "RSA_2048", json!({"backend": "hsm", "key_usage": "ENCRYPT_DECRYPT"})).await;
    let pkcs8 = to_pkcs8(d, &openssl(&["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]));
    let private = d.join("rsa.der");
    std::fs::write(&private, &pkcs8).unwrap();
    let (token, wrapped) = wrap(&s, d, &key, "RSA_AES_KEY_WRAP_SHA_1", "RSA_2048", &pkcs8).await;
    let r = import(&s, &key, &token, &wrapped).await;
    let trail = s.get(&format!("/v1/audit?limit=5&action=ImportKeyMaterial&key_id={key}")).await;
    assert_eq!(r.status, 200, "{} {}", r.body, trail.body);
    let spki = openssl(&["pkey", "-inform", "DER", "-in", path(&private), "-pubout", "-outform", "DER"]);
    assert_eq!(unb64(&s.get(&format!("/v1/keys/{key}/public-key")).await.s("public_key")), spki);
    let secret_file = d.join("secret");
    std::fs::write(&secret_file, b"pin 1234").unwrap();
    let theirs = openssl(&[
        "pkeyutl",
        "-encrypt",
        "-keyform",
        "DER",
        "-inkey",
        path(&private),
        "-in",
        path(&secret_file),
        "-pkeyopt",
        "rsa_padding_mode:oaep",
        "-pkeyopt",
        "rsa_oaep_md:sha1",
    ]);
    let r = s
        .post(
            "/v1/decrypt",
            json!({"ciphertext_blob": b64(&theirs), "key_id": key, "encryption_algorithm": "RSAES_OAEP_SHA_1"}),
        )
        .await;
    assert_eq!(unb64(&r.s("plaintext")), b"pin 1234", "{}", r.body);

    // What the token cannot import is refused before anything is made.
    let r = s
        .post(
            "/v1/keys",
            json!({"namespace": "byok", "backend": "hsm", "key_spec": "ECC_NIST_P256", "origin": "EXTERNAL"}),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "UnsupportedOperation"), "{}", r.body);
}
