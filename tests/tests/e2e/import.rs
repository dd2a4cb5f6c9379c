//! Bring your own key through the REST API, done as a user does it: key material made with the
//! `openssl` command line, wrapped with `openssl pkeyutl -encrypt` (RSA-OAEP) and `openssl enc
//! -id-aes256-wrap-pad` (RSA-AES key wrap) under GetParametersForImport's public key, then
//! imported. Ciphertexts made outside with the same material (from the open blob format, with
//! independent AES-GCM and HKDF code) decrypt in Keyward and the other way round; imported MACs
//! equal `openssl`'s; imported private keys sign and decrypt as `openssl` expects. The abuse
//! cases (bad tokens, tampered and wrong material, replay, other tenants, missing credentials)
//! are refused, audited, and change nothing.

use std::path::Path;
use std::process::Command;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use keyward_e2e::{Db, Server, b64, unb64};
use serde_json::{Value, json};
use sha2::Digest as _;

pub(crate) fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl").args(args).output().expect("openssl");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

pub(crate) fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

pub(crate) async fn external_key(s: &Server, spec: &str, extra: Value) -> String {
    let mut body = json!({"namespace": "byok", "key_spec": spec, "origin": "EXTERNAL"});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let r = s.post("/v1/keys", body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!((r.s("key_state"), r.s("origin")), ("PendingImport".to_owned(), "EXTERNAL".to_owned()));
    r.s("key_id")
}

/// GetParametersForImport, then the material wrapped with `openssl` as its algorithm says.
/// Returns the import token and the wrapped material.
pub(crate) async fn wrap(
    s: &Server,
    dir: &Path,
    key: &str,
    algorithm: &str,
    spec: &str,
    material: &[u8],
) -> (String, Vec<u8>) {
    let p = s
        .post(
            &format!("/v1/keys/{key}/import-parameters"),
            json!({"wrapping_algorithm": algorithm, "wrapping_key_spec": spec}),
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.body);
    let (public, input) = (dir.join("wrapping.pem"), dir.join("material.bin"));
    std::fs::write(&public, p.s("public_key_pem")).unwrap();
    std::fs::write(&input, material).unwrap();
    let md = if algorithm.ends_with("SHA_256") { "sha256" } else { "sha1" };
    let oaep = |input: &Path| {
        let (md, mgf) = (format!("rsa_oaep_md:{md}"), format!("rsa_mgf1_md:{md}"));
        openssl(&[
            "pkeyutl",
            "-encrypt",
            "-pubin",
            "-inkey",
            path(&public),
            "-in",
            path(input),
            "-pkeyopt",
            "rsa_padding_mode:oaep",
            "-pkeyopt",
            &md,
            "-pkeyopt",
            &mgf,
        ])
    };
    let wrapped = if algorithm.starts_with("RSA_AES_KEY_WRAP") {
        let aes = dir.join("ephemeral.bin");
        let aes_key: [u8; 32] = std::array::from_fn(|i| (i as u8).wrapping_mul(73).wrapping_add(material.len() as u8));
        std::fs::write(&aes, aes_key).unwrap();
        let mut out = oaep(&aes);
        out.extend(openssl(&[
            "enc",
            "-id-aes256-wrap-pad",
            "-K",
            &hex::encode(aes_key),
            "-iv",
            "A65959A6",
            "-in",
            path(&input),
        ]));
        out
    } else {
        oaep(&input)
    };
    (p.s("import_token"), wrapped)
}

/// A PEM private key as PKCS#8 DER, the way AWS's import guide has users convert it.
pub(crate) fn to_pkcs8(dir: &Path, pem: &[u8]) -> Vec<u8> {
    let file = dir.join("private.pem");
    std::fs::write(&file, pem).unwrap();
    openssl(&["pkcs8", "-topk8", "-nocrypt", "-outform", "DER", "-in", path(&file)])
}

pub(crate) async fn import(s: &Server, key: &str, token: &str, wrapped: &[u8]) -> keyward_e2e::Resp {
    s.post(&format!("/v1/keys/{key}/import"), json!({"import_token": token, "encrypted_key_material": b64(wrapped)}))
        .await
}

/// The canonical encoding of an encryption context (docs/ciphertext-format.md).
fn context_aad(context: &[(&str, &str)]) -> Vec<u8> {
    let mut out = (context.len() as u32).to_be_bytes().to_vec();
    let mut sorted = context.to_vec();
    sorted.sort();
    for (k, v) in sorted {
        out.extend((k.len() as u32).to_be_bytes());
        out.extend(k.as_bytes());
        out.extend((v.len() as u32).to_be_bytes());
        out.extend(v.as_bytes());
    }
    out
}

fn message_keys(material: &[u8], salt: &[u8]) -> ([u8; 32], [u8; 12], [u8; 32]) {
    let mut okm = [0u8; 76];
    hkdf::Hkdf::<sha2::Sha256>::new(Some(salt), material)
        .expand(b"keyward/v1/aes-256-gcm/hkdf-sha256/commit", &mut okm)
        .unwrap();
    (okm[..32].try_into().unwrap(), okm[32..44].try_into().unwrap(), okm[44..].try_into().unwrap())
}

/// Opens a format-1 blob with the raw material, as any implementation of the documented format
/// would: algorithm 1 (software: HKDF per-message keys with a commitment) or 2 (a token's
/// AES-GCM with the nonce in the params).
pub(crate) fn open_outside(material: &[u8], blob: &[u8], context: &[(&str, &str)]) -> Vec<u8> {
    assert_eq!(&blob[..3], b"KW\x01");
    let p = u16::from_be_bytes([blob[24], blob[25]]) as usize;
    let (header, ciphertext) = blob.split_at(26 + p);
    let (key, nonce) = match blob[23] {
        1 => {
            let (salt, commitment) = header[26..].split_at(32);
            let (key, nonce, expected) = message_keys(material, salt);
            assert_eq!(commitment, expected, "the commitment is the material's");
            (key, nonce)
        }
        2 => (material.try_into().unwrap(), header[26..].try_into().unwrap()),
        other => panic!("algorithm {other}"),
    };
    let mut aad = header.to_vec();
    aad.extend(context_aad(context));
    Aes256Gcm::new(&key.into()).decrypt(&Nonce::from(nonce), Payload { msg: ciphertext, aad: &aad }).unwrap()
}

/// Seals an algorithm-2 blob (a token's format) outside Keyward with the raw material.
pub(crate) fn seal_outside_token(material: &[u8], key_id: &str, plaintext: &[u8], context: &[(&str, &str)]) -> Vec<u8> {
    let nonce: [u8; 12] = sha2::Sha256::digest(plaintext)[..12].try_into().unwrap();
    let mut header = b"KW\x01".to_vec();
    header.extend(uuid::Uuid::parse_str(key_id).unwrap().as_bytes());
    header.extend(1u32.to_be_bytes());
    header.push(2);
    header.extend(12u16.to_be_bytes());
    header.extend(nonce);
    let mut aad = header.clone();
    aad.extend(context_aad(context));
    let key: [u8; 32] = material.try_into().unwrap();
    let sealed =
        Aes256Gcm::new(&key.into()).encrypt(&Nonce::from(nonce), Payload { msg: plaintext, aad: &aad }).unwrap();
    header.extend(sealed);
    header
}

/// Seals a blob outside Keyward with the raw material.
pub(crate) fn seal_outside(material: &[u8], key_id: &str, plaintext: &[u8], context: &[(&str, &str)]) -> Vec<u8> {
    let salt: [u8; 32] = sha2::Sha256::digest(plaintext).into();
    let (key, nonce, commitment) = message_keys(material, &salt);
    let mut header = b"KW\x01".to_vec();
    header.extend(uuid::Uuid::parse_str(key_id).unwrap().as_bytes());
    header.extend(1u32.to_be_bytes());
    header.push(1);
    header.extend(64u16.to_be_bytes());
    header.extend(salt);
    header.extend(commitment);
    let mut aad = header.clone();
    aad.extend(context_aad(context));
    let sealed =
        Aes256Gcm::new(&key.into()).encrypt(&Nonce::from(nonce), Payload { msg: plaintext, aad: &aad }).unwrap();
    header.extend(sealed);
    header
}

async fn aes_material_made_with_openssl_works_both_ways_and_only_it_comes_back(db: Db) {
    let s = Server::start(db).await;
    let dir = tempfile::tempdir().unwrap();
    let key = external_key(&s, "AES_256", json!({})).await;
    let context = [("tenant", "acme"), ("purpose", "byok")];
    let ctx = json!({"tenant": "acme", "purpose": "byok"});
    // No material yet: no cryptography.
    let r = s.post(&format!("/v1/keys/{key}/encrypt"), json!({"plaintext": b64(b"x")})).await;
    assert_eq!((r.status, r.code()), (409, "Conflict"), "{}", r.body);

    let material = openssl(&["rand", "32"]);
    // The default wrapping key is RSA-4096.
    let (token, wrapped) = wrap(&s, dir.path(), &key, "RSAES_OAEP_SHA_256", "RSA_4096", &material).await;
    let r = import(&s, &key, &token, &wrapped).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.s("key_state"), "Enabled");

    // Keyward's ciphertext opens outside with the material...
    let r = s
        .post(&format!("/v1/keys/{key}/encrypt"), json!({"plaintext": b64(b"from keyward"), "encryption_context": ctx}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let blob = unb64(&r.s("ciphertext_blob"));
    assert_eq!(open_outside(&material, &blob, &context), b"from keyward");
    // ...and a ciphertext made outside decrypts in Keyward.
    let outside = seal_outside(&material, &key, b"from outside", &context);
    let r = s.post("/v1/decrypt", json!({"ciphertext_blob": b64(&outside), "encryption_context": ctx})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(unb64(&r.s("plaintext")), b"from outside");

    // A replayed token finds the key holding material.
    let r = import(&s, &key, &token, &wrapped).await;
    assert_eq!((r.status, r.code()), (409, "Conflict"), "{}", r.body);
    // Imported keys do not rotate.
    let r = s.post(&format!("/v1/keys/{key}/rotate"), json!({})).await;
    assert_eq!((r.status, r.code()), (422, "UnsupportedOperation"), "{}", r.body);

    // Deleted: the key waits for material again and refuses use.
    let r = s.call("DELETE", &format!("/v1/keys/{key}/import"), &s.admin, None).await;
    assert_eq!((r.status, r.s("key_state")), (200, "PendingImport".to_owned()), "{}", r.body);
    let r = s.post("/v1/decrypt", json!({"ciphertext_blob": b64(&blob), "encryption_context": ctx})).await;
    assert_eq!(r.status, 409, "{}", r.body);
    // Other material is refused; the same material, wrapped the other way, comes back.
    let other = openssl(&["rand", "32"]);
    let (token, wrapped) = wrap(&s, dir.path(), &key, "RSA_AES_KEY_WRAP_SHA_256", "RSA_2048", &other).await;
    let r = import(&s, &key, &token, &wrapped).await;
    assert_eq!((r.status, r.code()), (400, "InvalidRequest"), "{}", r.body);
    let (token, wrapped) = wrap(&s, dir.path(), &key, "RSA_AES_KEY_WRAP_SHA_256", "RSA_2048", &material).await;
    let r = import(&s, &key, &token, &wrapped).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = s.post("/v1/decrypt", json!({"ciphertext_blob": b64(&blob), "encryption_context": ctx})).await;
    assert_eq!(unb64(&r.s("plaintext")), b"from keyward", "old ciphertexts decrypt again");
}

async fn hmac_and_private_keys_made_with_openssl_import_and_agree_with_it(db: Db) {
    let s = Server::start(db).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // HMAC: the MAC is openssl's over the same key.
    let key = external_key(&s, "HMAC_256", json!({})).await;
    let secret = openssl(&["rand", "48"]);
    let (token, wrapped) = wrap(&s, d, &key, "RSAES_OAEP_SHA_1", "RSA_2048", &secret).await;
    assert_eq!(import(&s, &key, &token, &wrapped).await.status, 200);
    let message = b"webhook payload";
    let msg = d.join("msg");
    std::fs::write(&msg, message).unwrap();
    let mac = s
        .post(
            &format!("/v1/keys/{key}/generate-mac"),
            json!({"message": b64(message), "mac_algorithm": "HMAC_SHA_256"}),
        )
        .await;
    let hexkey = format!("hexkey:{}", hex::encode(&secret));
    let theirs = openssl(&["dgst", "-sha256", "-mac", "HMAC", "-macopt", &hexkey, "-binary", path(&msg)]);
    assert_eq!(unb64(&mac.s("mac")), theirs);

    // EC and Ed25519 signing keys: the public key is openssl's, and openssl verifies.
    let (private, pubkey, sigfile) = (d.join("private.der"), d.join("pub.pem"), d.join("sig"));
    for (spec, genpkey, alg) in [
        ("ECC_NIST_P256", vec!["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"], "ECDSA_SHA_256"),
        ("ECC_NIST_EDWARDS25519", vec!["-algorithm", "ED25519"], "ED25519_SHA_512"),
    ] {
        let key = external_key(&s, spec, json!({})).await;
        let mut args = vec!["genpkey"];
        args.extend(&genpkey);
        let pkcs8 = to_pkcs8(d, &openssl(&args));
        std::fs::write(&private, &pkcs8).unwrap();
        let (token, wrapped) = wrap(&s, d, &key, "RSA_AES_KEY_WRAP_SHA_256", "RSA_2048", &pkcs8).await;
        let r = import(&s, &key, &token, &wrapped).await;
        assert_eq!(r.status, 200, "{spec}: {}", r.body);
        let spki = openssl(&["pkey", "-inform", "DER", "-in", path(&private), "-pubout", "-outform", "DER"]);
        let pk = s.get(&format!("/v1/keys/{key}/public-key")).await;
        assert_eq!(unb64(&pk.s("public_key")), spki, "{spec}");
        let sig =
            s.post(&format!("/v1/keys/{key}/sign"), json!({"message": b64(message), "signing_algorithm": alg})).await;
        assert_eq!(sig.status, 200, "{}", sig.body);
        std::fs::write(&sigfile, unb64(&sig.s("signature"))).unwrap();
        std::fs::write(&pubkey, pk.s("public_key_pem")).unwrap();
        let status = if alg == "ED25519_SHA_512" {
            Command::new("openssl")
                .args(["pkeyutl", "-verify", "-pubin", "-inkey", path(&pubkey), "-rawin", "-in", path(&msg)])
                .args(["-sigfile", path(&sigfile)])
                .status()
        } else {
            Command::new("openssl")
                .args(["dgst", "-sha256", "-verify", path(&pubkey), "-signature", path(&sigfile), path(&msg)])
                .status()
        };
        assert!(status.unwrap().success(), "{spec}: openssl refused the signature");
    }

    // An RSA encryption key: openssl encrypts, Keyward decrypts, and the other way round.
    let key = external_key(&s, "RSA_2048", json!({"key_usage": "ENCRYPT_DECRYPT"})).await;
    let pkcs8 = to_pkcs8(d, &openssl(&["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]));
    std::fs::write(&private, &pkcs8).unwrap();
    let (token, wrapped) = wrap(&s, d, &key, "RSA_AES_KEY_WRAP_SHA_256", "RSA_2048", &pkcs8).await;
    assert_eq!(import(&s, &key, &token, &wrapped).await.status, 200);
    let (secret_file, ct_file) = (d.join("secret"), d.join("ct"));
    std::fs::write(&secret_file, b"database password").unwrap();
    let oaep =
        ["-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256", "-pkeyopt", "rsa_mgf1_md:sha256"];
    let mut args = vec!["pkeyutl", "-encrypt", "-keyform", "DER", "-inkey", path(&private), "-in", path(&secret_file)];
    args.extend(oaep);
    let theirs = openssl(&args);
    let r = s
        .post(
            "/v1/decrypt",
            json!({"ciphertext_blob": b64(&theirs), "key_id": key, "encryption_algorithm": "RSAES_OAEP_SHA_256"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(unb64(&r.s("plaintext")), b"database password");
    let r = s
        .post(
            &format!("/v1/keys/{key}/encrypt"),
            json!({"plaintext": b64(b"to openssl"), "encryption_algorithm": "RSAES_OAEP_SHA_256"}),
        )
        .await;
    std::fs::write(&ct_file, unb64(&r.s("ciphertext_blob"))).unwrap();
    let mut args = vec!["pkeyutl", "-decrypt", "-keyform", "DER", "-inkey", path(&private), "-in", path(&ct_file)];
    args.extend(oaep);
    assert_eq!(openssl(&args), b"to openssl");
}

async fn import_abuse_is_refused_audited_and_changes_nothing(db: Db) {
    let s = Server::start(db).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = external_key(&s, "AES_256", json!({})).await;
    let other = external_key(&s, "AES_256", json!({})).await;
    let native = s.post("/v1/keys", json!({"namespace": "byok"})).await.s("key_id");
    let rsa = external_key(&s, "RSA_2048", json!({})).await;
    let material = openssl(&["rand", "32"]);
    let (token, wrapped) = wrap(&s, d, &key, "RSA_AES_KEY_WRAP_SHA_256", "RSA_2048", &material).await;
    let raw_token = unb64(&token);
    let mut flipped = wrapped.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    // The expiry in the token's header moved a day later: the token no longer opens.
    let mut later = raw_token.clone();
    later[21] ^= 0x01;
    let (short_token, short) = wrap(&s, d, &key, "RSA_AES_KEY_WRAP_SHA_256", "RSA_2048", &material[..31]).await;
    let at = |k: &str| format!("/v1/keys/{k}/import");
    let body = |t: &str, m: &[u8]| json!({"import_token": t, "encrypted_key_material": b64(m)});
    let before = s.audit_count().await;
    let cases: Vec<(&str, String, Value, u16, &str)> = vec![
        ("tampered material", at(&key), body(&token, &flipped), 400, "InvalidCiphertext"),
        ("material that is not an AES-256 key", at(&key), body(&short_token, &short), 400, "InvalidRequest"),
        ("a token for another key", at(&other), body(&token, &wrapped), 400, "InvalidRequest"),
        ("an edited token", at(&key), body(&b64(&later), &wrapped), 400, "InvalidRequest"),
        ("a truncated token", at(&key), body(&b64(&raw_token[..20]), &wrapped), 400, "InvalidRequest"),
        ("a token that is not base64", at(&key), body("%%%", &wrapped), 400, "InvalidRequest"),
        ("oversized material", at(&key), body(&token, &vec![0u8; 9000]), 413, "PayloadTooLarge"),
        ("empty material", at(&key), body(&token, &[]), 400, "InvalidRequest"),
        (
            "an unknown field",
            at(&key),
            json!({"import_token": token, "encrypted_key_material": "", "x": 1}),
            400,
            "InvalidRequest",
        ),
        (
            "an expiry in the past",
            at(&key),
            json!({"import_token": token, "encrypted_key_material": b64(&wrapped), "valid_to": "2020-01-01T00:00:00Z"}),
            400,
            "InvalidRequest",
        ),
        ("a key of Keyward's own material", at(&native), body(&token, &wrapped), 422, "UnsupportedOperation"),
        (
            "an unknown wrapping algorithm",
            format!("/v1/keys/{key}/import-parameters"),
            json!({"wrapping_algorithm": "RSAES_PKCS1_V1_5"}),
            400,
            "InvalidRequest",
        ),
        (
            "a wrapping key spec that is not RSA",
            format!("/v1/keys/{key}/import-parameters"),
            json!({"wrapping_key_spec": "ECC_NIST_P256"}),
            400,
            "InvalidRequest",
        ),
        (
            "RSA-OAEP alone for an RSA private key",
            format!("/v1/keys/{rsa}/import-parameters"),
            json!({"wrapping_algorithm": "RSAES_OAEP_SHA_256", "wrapping_key_spec": "RSA_2048"}),
            400,
            "InvalidRequest",
        ),
        (
            "import parameters for a key of Keyward's own material",
            format!("/v1/keys/{native}/import-parameters"),
            json!({"wrapping_key_spec": "RSA_2048"}),
            422,
            "UnsupportedOperation",
        ),
    ];
    let n = cases.len() as u64;
    for (what, path, body, status, code) in cases {
        let r = s.post(&path, body).await;
        assert_eq!((r.status, r.code()), (status, code), "{what}: {}", r.body);
    }
    // Another tenant, and no credentials at all.
    let eve = s.token("eve", &["elsewhere"]);
    let r = s.call("POST", &at(&key), &eve, Some(body(&token, &wrapped))).await;
    assert_eq!((r.status, r.code()), (403, "AccessDenied"), "{}", r.body);
    let r = s.call("DELETE", &at(&key), &eve, None).await;
    assert_eq!((r.status, r.code()), (403, "AccessDenied"), "{}", r.body);
    let r = s.call("POST", &format!("/v1/keys/{key}/import-parameters"), &eve, Some(json!({}))).await;
    assert_eq!((r.status, r.code()), (403, "AccessDenied"), "{}", r.body);
    let r = s.call("POST", &at(&key), "not-a-token", Some(body(&token, &wrapped))).await;
    assert_eq!((r.status, r.code()), (401, "Unauthenticated"), "{}", r.body);
    // Every refusal with credentials is on the trail (the unauthenticated one too).
    assert!(s.audit_count().await >= before + n + 4, "each refusal is recorded");
    let records = s.get(&format!("/v1/audit?limit=1000&action=ImportKeyMaterial&key_id={key}")).await;
    let refused = records.body["records"].as_array().unwrap().iter().filter(|r| r["outcome"] != "Success").count();
    assert!(refused >= 4, "{}", records.body);
    // Nothing changed: both keys still wait for material, and the untouched token still works.
    for k in [&key, &other] {
        assert_eq!(s.get(&format!("/v1/keys/{k}")).await.s("key_state"), "PendingImport");
    }
    let r = import(&s, &key, &token, &wrapped).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let named = s.get(&format!("/v1/audit?limit=1000&action=ImportKeyMaterial&key_id={key}")).await;
    let ok = named.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["outcome"] == "Success" && r["details"]["wrapping_algorithm"] == "RSA_AES_KEY_WRAP_SHA_256");
    assert!(ok, "{}", named.body);
    let text = named.body.to_string();
    assert!(!text.contains(&b64(&wrapped)) && !text.contains(&token), "no material or token in the trail");
}

keyward_e2e::on_both_databases!(
    aes_material_made_with_openssl_works_both_ways_and_only_it_comes_back,
    hmac_and_private_keys_made_with_openssl_import_and_agree_with_it,
    import_abuse_is_refused_audited_and_changes_nothing,
);
