//! Signing and MAC keys through the REST API: every spec's signatures verify with `openssl`
//! given only GetPublicKey's PEM, RAW and DIGEST agree, MACs verify and refuse tampering, usage
//! and algorithms are enforced, tag-pinned algorithms are refused by the default policies, and
//! every call is audited with the algorithm and the message's SHA-256, never the message.

use std::process::Command;

use keyward_e2e::{Db, Server, b64, unb64};
use serde_json::{Value, json};
use sha2::Digest as _;

async fn create(s: &Server, spec: &str, extra: Value) -> (String, Value) {
    let mut body = json!({"namespace": "signing", "key_spec": spec});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let r = s.post("/v1/keys", body).await;
    assert_eq!(r.status, 201, "{spec}: {}", r.body);
    (r.s("key_id"), r.body)
}

fn hash(alg: &str, m: &[u8]) -> Vec<u8> {
    match alg {
        a if a.ends_with("256") => sha2::Sha256::digest(m).to_vec(),
        a if a.ends_with("384") => sha2::Sha384::digest(m).to_vec(),
        _ => sha2::Sha512::digest(m).to_vec(),
    }
}

/// `openssl` verifies the signature with the PEM alone.
fn openssl_verifies(dir: &std::path::Path, pem: &str, alg: &str, message: &[u8], signature: &[u8]) -> bool {
    let (key, msg, sig) = (dir.join("pub.pem"), dir.join("msg"), dir.join("sig"));
    std::fs::write(&key, pem).unwrap();
    std::fs::write(&msg, message).unwrap();
    std::fs::write(&sig, signature).unwrap();
    let mut cmd = Command::new("openssl");
    if alg == "ED25519_SHA_512" {
        cmd.args(["pkeyutl", "-verify", "-pubin", "-inkey"]).arg(&key).arg("-rawin").arg("-in").arg(&msg);
        cmd.arg("-sigfile").arg(&sig);
    } else {
        let bits = &alg[alg.len() - 3..];
        cmd.arg("dgst").arg(format!("-sha{bits}")).arg("-verify").arg(&key).arg("-signature").arg(&sig);
        if alg.starts_with("RSASSA_PSS") {
            // AWS KMS's PSS: MGF1 with the same hash, salt as long as the hash.
            cmd.args(["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"]);
        }
        cmd.arg(&msg);
    }
    let out = cmd.output().expect("openssl");
    out.status.success()
}

async fn every_spec_signs_and_openssl_verifies_with_the_pem_alone(db: Db) {
    let s = Server::start(db).await;
    let dir = tempfile::tempdir().unwrap();
    let message = b"release v1.2.3: sha256 of the tarball".as_slice();
    for spec in
        ["RSA_2048", "RSA_3072", "RSA_4096", "ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521", "ECC_NIST_EDWARDS25519"]
    {
        let (key, meta) = create(&s, spec, json!({})).await;
        assert_eq!(meta["key_usage"], "SIGN_VERIFY", "{meta}");
        let algs: Vec<String> =
            meta["signing_algorithms"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_owned()).collect();
        assert!(!algs.is_empty());
        let pk = s.get(&format!("/v1/keys/{key}/public-key")).await;
        assert_eq!(pk.status, 200, "{}", pk.body);
        assert_eq!(pk.body["key_spec"], spec);
        assert_eq!(pk.body["signing_algorithms"], meta["signing_algorithms"]);
        let pem = pk.s("public_key_pem");
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{pem}");
        // The PEM is the DER, wrapped.
        let inner: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        assert_eq!(unb64(&inner), unb64(&pk.s("public_key")));
        for alg in &algs {
            let mut forms = vec![("RAW", message.to_vec())];
            if alg != "ED25519_SHA_512" {
                forms.push(("DIGEST", hash(alg, message)));
            }
            for (kind, bytes) in forms {
                let r = s
                    .post(
                        &format!("/v1/keys/{key}/sign"),
                        json!({"message": b64(&bytes), "message_type": kind, "signing_algorithm": alg}),
                    )
                    .await;
                assert_eq!(r.status, 200, "{spec} {alg} {kind}: {}", r.body);
                assert_eq!(r.s("key_id"), key);
                let sig = unb64(&r.s("signature"));
                assert!(openssl_verifies(dir.path(), &pem, alg, message, &sig), "{spec} {alg} {kind}: openssl refused");
                assert!(!openssl_verifies(dir.path(), &pem, alg, b"another message", &sig), "{spec} {alg}");
                let verify = |m: &[u8], kind: &str, sig: &[u8]| json!({"message": b64(m), "message_type": kind, "signature": b64(sig), "signing_algorithm": alg});
                let r = s.post(&format!("/v1/keys/{key}/verify"), verify(message, "RAW", &sig)).await;
                assert_eq!((r.status, &r.body["signature_valid"]), (200, &json!(true)), "{}", r.body);
                // An invalid signature is an answer, not an error.
                let mut bad = sig.clone();
                bad[sig.len() / 2] ^= 0x01;
                let r = s.post(&format!("/v1/keys/{key}/verify"), verify(message, "RAW", &bad)).await;
                assert_eq!((r.status, &r.body["signature_valid"]), (200, &json!(false)), "{}", r.body);
            }
        }
    }
}

async fn macs_verify_and_refuse_tampering(db: Db) {
    let s = Server::start(db).await;
    for (spec, alg, len) in
        [("HMAC_256", "HMAC_SHA_256", 32), ("HMAC_384", "HMAC_SHA_384", 48), ("HMAC_512", "HMAC_SHA_512", 64)]
    {
        let (key, meta) = create(&s, spec, json!({})).await;
        assert_eq!(meta["key_usage"], "GENERATE_VERIFY_MAC");
        assert_eq!(meta["mac_algorithms"], json!([alg]));
        let body = json!({"message": b64(b"webhook body"), "mac_algorithm": alg});
        let r = s.post(&format!("/v1/keys/{key}/generate-mac"), body.clone()).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let mac = unb64(&r.s("mac"));
        assert_eq!(mac.len(), len);
        // The design's first path answers the same.
        let again = s.post(&format!("/v1/keys/{key}/mac"), body).await;
        assert_eq!(unb64(&again.s("mac")), mac, "HMAC is deterministic");
        let check = |m: &[u8], mac: &[u8]| json!({"message": b64(m), "mac": b64(mac), "mac_algorithm": alg});
        let r = s.post(&format!("/v1/keys/{key}/verify-mac"), check(b"webhook body", &mac)).await;
        assert_eq!(r.body["mac_valid"], true, "{}", r.body);
        for (m, t) in [(b"webhook bodY".as_slice(), mac.clone()), (b"webhook body", mac[..len - 1].to_vec())] {
            let r = s.post(&format!("/v1/keys/{key}/verify-mac"), check(m, &t)).await;
            assert_eq!((r.status, &r.body["mac_valid"]), (200, &json!(false)), "{}", r.body);
        }
        let r = s.get(&format!("/v1/keys/{key}/public-key")).await;
        assert_eq!((r.status, r.code()), (400, "InvalidKeyUsage"), "an HMAC key has no public key");
    }
}

async fn usage_algorithms_and_inputs_are_enforced_and_each_refusal_audited(db: Db) {
    let s = Server::start(db).await;
    let (ec, _) = create(&s, "ECC_NIST_P256", json!({})).await;
    let (hmac, _) = create(&s, "HMAC_256", json!({})).await;
    let aes = s.create_key("signing").await;
    let sign =
        |alg: &str, m: &[u8], kind: &str| json!({"message": b64(m), "message_type": kind, "signing_algorithm": alg});
    let cases: Vec<(&str, String, Value, u16, &str)> = vec![
        (
            "encrypt with a signing key",
            format!("/v1/keys/{ec}/encrypt"),
            json!({"plaintext": b64(b"x")}),
            400,
            "InvalidKeyUsage",
        ),
        ("data key under a MAC key", format!("/v1/keys/{hmac}/generate-data-key"), json!({}), 400, "InvalidKeyUsage"),
        (
            "sign with an AES key",
            format!("/v1/keys/{aes}/sign"),
            sign("ECDSA_SHA_256", b"m", "RAW"),
            400,
            "InvalidKeyUsage",
        ),
        (
            "MAC with a signing key",
            format!("/v1/keys/{ec}/generate-mac"),
            json!({"message": b64(b"m"), "mac_algorithm": "HMAC_SHA_256"}),
            400,
            "InvalidKeyUsage",
        ),
        (
            "a wrong-size MAC algorithm",
            format!("/v1/keys/{hmac}/generate-mac"),
            json!({"message": b64(b"m"), "mac_algorithm": "HMAC_SHA_512"}),
            400,
            "InvalidKeyUsage",
        ),
        (
            "an RSA algorithm on an EC key",
            format!("/v1/keys/{ec}/sign"),
            sign("RSASSA_PSS_SHA_256", b"m", "RAW"),
            400,
            "InvalidKeyUsage",
        ),
        (
            "a digest of the wrong length",
            format!("/v1/keys/{ec}/sign"),
            sign("ECDSA_SHA_256", &[0; 20], "DIGEST"),
            400,
            "InvalidRequest",
        ),
        (
            "an unknown algorithm",
            format!("/v1/keys/{ec}/sign"),
            sign("ECDSA_SHA_1", b"m", "RAW"),
            400,
            "InvalidRequest",
        ),
        (
            "an unknown message type",
            format!("/v1/keys/{ec}/sign"),
            sign("ECDSA_SHA_256", b"m", "HASHED"),
            400,
            "InvalidRequest",
        ),
        ("an empty message", format!("/v1/keys/{ec}/sign"), sign("ECDSA_SHA_256", b"", "RAW"), 400, "InvalidRequest"),
        (
            "a message over 4096 bytes",
            format!("/v1/keys/{ec}/sign"),
            sign("ECDSA_SHA_256", &[7; 4097], "RAW"),
            413,
            "PayloadTooLarge",
        ),
        (
            "bad base64",
            format!("/v1/keys/{ec}/sign"),
            json!({"message": "***", "signing_algorithm": "ECDSA_SHA_256"}),
            400,
            "InvalidRequest",
        ),
        (
            "an unknown field",
            format!("/v1/keys/{ec}/sign"),
            json!({"message": "bQ==", "signing_algorithm": "ECDSA_SHA_256", "key": 1}),
            400,
            "InvalidRequest",
        ),
        (
            "an empty signature",
            format!("/v1/keys/{ec}/verify"),
            json!({"message": "bQ==", "signature": "", "signing_algorithm": "ECDSA_SHA_256"}),
            400,
            "InvalidRequest",
        ),
        ("rotating a signing key", format!("/v1/keys/{ec}/rotate"), json!({}), 422, "UnsupportedOperation"),
        (
            "an ECC key for encryption",
            "/v1/keys".into(),
            json!({"namespace": "signing", "key_spec": "ECC_NIST_P256", "key_usage": "ENCRYPT_DECRYPT"}),
            400,
            "InvalidRequest",
        ),
        (
            "an HMAC key that signs",
            "/v1/keys".into(),
            json!({"namespace": "signing", "key_spec": "HMAC_256", "key_usage": "SIGN_VERIFY"}),
            400,
            "InvalidRequest",
        ),
        (
            "an unknown spec",
            "/v1/keys".into(),
            json!({"namespace": "signing", "key_spec": "ECC_SECG_P256K1"}),
            400,
            "InvalidRequest",
        ),
    ];
    let before = s.audit_count().await;
    let keys_before = s.get("/v1/keys?namespace=signing").await.body["keys"].as_array().unwrap().len();
    for (what, path, body, status, code) in &cases {
        let r = s.post(path, body.clone()).await;
        assert_eq!((r.status, r.code()), (*status, *code), "{what}: {}", r.body);
    }
    let r = s.call("PATCH", &format!("/v1/keys/{ec}"), &s.admin, Some(json!({"rotation_period_days": 90}))).await;
    assert_eq!((r.status, r.code()), (422, "UnsupportedOperation"), "{}", r.body);
    // No token, another namespace's member, a disabled key.
    let r = s.call("POST", &format!("/v1/keys/{ec}/sign"), "", Some(sign("ECDSA_SHA_256", b"m", "RAW"))).await;
    assert_eq!(r.status, 401);
    let eve = s.token("eve", &["elsewhere"]);
    for path in ["sign", "verify"] {
        let body = json!({"message": b64(b"m"), "signature": b64(&[1; 70]), "signing_algorithm": "ECDSA_SHA_256"});
        let body = if path == "sign" { sign("ECDSA_SHA_256", b"m", "RAW") } else { body };
        let r = s.call("POST", &format!("/v1/keys/{ec}/{path}"), &eve, Some(body)).await;
        assert_eq!((r.status, r.code()), (403, "AccessDenied"), "{}", r.body);
    }
    let r = s.call("GET", &format!("/v1/keys/{ec}/public-key"), &eve, None).await;
    assert_eq!((r.status, r.code()), (403, "AccessDenied"), "{}", r.body);
    assert_eq!(s.post(&format!("/v1/keys/{ec}/disable"), json!({})).await.status, 200);
    let r = s.post(&format!("/v1/keys/{ec}/sign"), sign("ECDSA_SHA_256", b"m", "RAW")).await;
    assert_eq!((r.status, r.code()), (409, "KeyDisabled"), "{}", r.body);
    // Each refusal (and the disable) is one record; nothing was created or rotated.
    let expected = cases.len() as u64 + 1 + 1 + 3 + 1 + 1 + 1;
    assert_eq!(s.audit_count().await, before + expected);
    let keys_after = s.get("/v1/keys?namespace=signing").await.body["keys"].as_array().unwrap().len();
    assert_eq!(keys_after, keys_before);
    assert_eq!(s.get(&format!("/v1/keys/{ec}")).await.body["primary_version"], 1);
}

async fn tag_pinned_algorithms_are_refused_by_the_default_policies(db: Db) {
    let s = Server::start(db).await;
    let (key, _) = create(&s, "RSA_2048", json!({"tags": {"signing-algorithm": "RSASSA_PSS_SHA_256"}})).await;
    let bob = s.token("bob", &["signing"]);
    let sign = |alg: &str| json!({"message": b64(b"jwt header.payload"), "signing_algorithm": alg});
    let r = s.call("POST", &format!("/v1/keys/{key}/sign"), &bob, Some(sign("RSASSA_PKCS1_V1_5_SHA_256"))).await;
    assert_eq!((r.status, r.code()), (403, "AccessDenied"), "{}", r.body);
    let r = s.call("POST", &format!("/v1/keys/{key}/sign"), &bob, Some(sign("RSASSA_PSS_SHA_256"))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // A dry run answers the decision and names the policy.
    let mut dry = sign("RSASSA_PKCS1_V1_5_SHA_256");
    dry["dry_run"] = json!(true);
    let r = s.call("POST", &format!("/v1/keys/{key}/sign"), &bob, Some(dry)).await;
    assert_eq!(r.body["decision"], "Deny", "{}", r.body);
    assert_eq!(r.body["determining_policies"], json!(["signing-algorithm-pinned"]), "{}", r.body);
    // Authorize answers the same question without a request to sign.
    let ask = |alg: &str| {
        json!({"principal": "Keyward::User::\"bob\"", "groups": ["signing"], "action": "Sign",
               "resource": format!("Keyward::Key::\"{key}\""),
               "context": {"signing_algorithm": alg, "message_type": "RAW"}})
    };
    let r = s.post("/v1/authorize", ask("RSASSA_PKCS1_V1_5_SHA_256")).await;
    assert_eq!((r.status, &r.body["decision"]), (200, &json!("Deny")), "{}", r.body);
    assert_eq!(r.body["determining_policies"], json!(["signing-algorithm-pinned"]));
    let r = s.post("/v1/authorize", ask("RSASSA_PSS_SHA_256")).await;
    assert_eq!(r.body["decision"], "Allow", "{}", r.body);
    let r = s.post("/v1/authorize", ask("RSA_WITH_MD5")).await;
    assert_eq!((r.status, r.code()), (400, "InvalidRequest"));
}

async fn records_name_the_algorithm_and_the_message_hash_never_the_message(db: Db) {
    let s = Server::start(db).await;
    let (ec, _) = create(&s, "ECC_NIST_P384", json!({})).await;
    let (hmac, _) = create(&s, "HMAC_512", json!({})).await;
    let secret_message = b"top secret payroll line 42";
    let r = s
        .post(
            &format!("/v1/keys/{ec}/sign"),
            json!({"message": b64(secret_message), "signing_algorithm": "ECDSA_SHA_384"}),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = s
        .post(
            &format!("/v1/keys/{hmac}/generate-mac"),
            json!({"message": b64(secret_message), "mac_algorithm": "HMAC_SHA_512"}),
        )
        .await;
    assert_eq!(r.status, 200);
    let audit = s.get("/v1/audit?limit=1000").await;
    let records = audit.body["records"].as_array().unwrap();
    let want = hex::encode(sha2::Sha256::digest(secret_message));
    let sign = records.iter().find(|r| r["action"] == "Sign").expect("a Sign record");
    assert_eq!(
        sign["details"],
        json!({"signing_algorithm": "ECDSA_SHA_384", "message_type": "RAW", "message_sha256": want})
    );
    assert_eq!(sign["key_id"], ec.as_str());
    let mac = records.iter().find(|r| r["action"] == "GenerateMac").expect("a GenerateMac record");
    assert_eq!(mac["details"], json!({"mac_algorithm": "HMAC_SHA_512", "message_sha256": want}));
    let text = audit.body.to_string();
    assert!(!text.contains(&b64(secret_message)) && !text.contains("payroll"), "the message is never recorded");
    // Records with details keep the chain verifiable.
    let out = s.audit_verify();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

async fn data_key_pairs_come_with_their_private_key_sealed(db: Db) {
    let s = Server::start(db).await;
    let dir = tempfile::tempdir().unwrap();
    let aes = s.create_key("signing").await;
    let ctx = json!({"device": "sensor-7"});
    for spec in ["ECC_NIST_P256", "RSA_2048", "ECC_NIST_EDWARDS25519"] {
        let r = s
            .post(
                &format!("/v1/keys/{aes}/generate-data-key-pair"),
                json!({"key_pair_spec": spec, "encryption_context": ctx}),
            )
            .await;
        assert_eq!(r.status, 200, "{spec}: {}", r.body);
        assert_eq!((r.s("key_id"), r.s("key_pair_spec")), (aes.clone(), spec.to_owned()));
        let private = unb64(&r.s("private_key_plaintext"));
        // openssl derives the same public key from the PKCS#8 private key.
        let der = dir.path().join("private.der");
        std::fs::write(&der, &private).unwrap();
        let out = Command::new("openssl")
            .args(["pkey", "-inform", "DER", "-in"])
            .arg(&der)
            .args(["-pubout", "-outform", "DER"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{spec}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.stdout, unb64(&r.s("public_key")), "{spec}: the pair's halves match");
        // Decrypt of the blob, with the context, gives the private key back.
        let blob = r.s("private_key_ciphertext_blob");
        let back = s.post("/v1/decrypt", json!({"ciphertext_blob": blob, "encryption_context": ctx})).await;
        assert_eq!(unb64(&back.s("plaintext")), private, "{spec}");
        let wrong = s.post("/v1/decrypt", json!({"ciphertext_blob": blob})).await;
        assert_eq!((wrong.status, wrong.code()), (400, "InvalidCiphertext"));
    }
    let r = s
        .post(
            &format!("/v1/keys/{aes}/generate-data-key-pair-without-plaintext"),
            json!({"key_pair_spec": "ECC_NIST_P384"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.get("private_key_plaintext").is_none(), "{}", r.body);
    let back = s.post("/v1/decrypt", json!({"ciphertext_blob": r.s("private_key_ciphertext_blob")})).await;
    assert_eq!(back.status, 200);
    // Refusals: a pair spec that is not a pair, a wrapping key that is not symmetric.
    let (ec, _) = create(&s, "ECC_NIST_P256", json!({})).await;
    for (path, spec, status, code) in [
        (format!("/v1/keys/{aes}/generate-data-key-pair"), "AES_256", 400, "InvalidRequest"),
        (format!("/v1/keys/{aes}/generate-data-key-pair"), "HMAC_256", 400, "InvalidRequest"),
        (format!("/v1/keys/{ec}/generate-data-key-pair"), "ECC_NIST_P256", 400, "InvalidKeyUsage"),
    ] {
        let r = s.post(&path, json!({"key_pair_spec": spec})).await;
        assert_eq!((r.status, r.code()), (status, code), "{spec}: {}", r.body);
    }
    let eve = s.token("eve", &["elsewhere"]);
    let r = s
        .call(
            "POST",
            &format!("/v1/keys/{aes}/generate-data-key-pair"),
            &eve,
            Some(json!({"key_pair_spec": "ECC_NIST_P256"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "AccessDenied"));
}

async fn rsa_keys_encrypt_with_oaep_as_openssl_does(db: Db) {
    let s = Server::start(db).await;
    let dir = tempfile::tempdir().unwrap();
    let (key, meta) = create(&s, "RSA_2048", json!({"key_usage": "ENCRYPT_DECRYPT"})).await;
    assert_eq!(meta["key_usage"], "ENCRYPT_DECRYPT");
    assert_eq!(meta["encryption_algorithms"], json!(["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]));
    let pk = s.get(&format!("/v1/keys/{key}/public-key")).await;
    assert_eq!(pk.body["encryption_algorithms"], meta["encryption_algorithms"]);
    assert_eq!(pk.body["signing_algorithms"], json!([]));
    let pem = dir.path().join("pub.pem");
    std::fs::write(&pem, pk.s("public_key_pem")).unwrap();
    let decrypt =
        |ct: &[u8], alg: &str| json!({"ciphertext_blob": b64(ct), "key_id": key, "encryption_algorithm": alg});
    for (alg, md, max) in [("RSAES_OAEP_SHA_256", "sha256", 190usize), ("RSAES_OAEP_SHA_1", "sha1", 214)] {
        let plaintext = vec![0x42u8; max];
        let r = s
            .post(
                &format!("/v1/keys/{key}/encrypt"),
                json!({"plaintext": b64(&plaintext), "encryption_algorithm": alg}),
            )
            .await;
        assert_eq!(r.status, 200, "{alg}: {}", r.body);
        assert_eq!(r.s("encryption_algorithm"), alg);
        let ct = unb64(&r.s("ciphertext_blob"));
        assert_eq!(ct.len(), 256, "the raw RSA ciphertext");
        let back = s.post("/v1/decrypt", decrypt(&ct, alg)).await;
        assert_eq!(unb64(&back.s("plaintext")), plaintext, "{alg}");
        // A ciphertext openssl made with the PEM decrypts in Keyward.
        let (msg, out) = (dir.path().join("m"), dir.path().join("c"));
        std::fs::write(&msg, b"wrapped by openssl").unwrap();
        let made = Command::new("openssl")
            .args(["pkeyutl", "-encrypt", "-pubin", "-inkey"])
            .arg(&pem)
            .args(["-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt"])
            .arg(format!("rsa_oaep_md:{md}"))
            .arg("-pkeyopt")
            .arg(format!("rsa_mgf1_md:{md}"))
            .arg("-in")
            .arg(&msg)
            .arg("-out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
        let back = s.post("/v1/decrypt", decrypt(&std::fs::read(&out).unwrap(), alg)).await;
        assert_eq!((back.status, unb64(&back.s("plaintext"))), (200, b"wrapped by openssl".to_vec()), "{alg}");
        // Too much plaintext, tampering, the other algorithm.
        let r = s
            .post(
                &format!("/v1/keys/{key}/encrypt"),
                json!({"plaintext": b64(&vec![1u8; max + 1]), "encryption_algorithm": alg}),
            )
            .await;
        assert_eq!((r.status, r.code()), (413, "PayloadTooLarge"), "{}", r.body);
        let mut bad = ct.clone();
        bad[7] ^= 1;
        let r = s.post("/v1/decrypt", decrypt(&bad, alg)).await;
        assert_eq!((r.status, r.code()), (400, "InvalidCiphertext"), "{}", r.body);
        let other = if alg == "RSAES_OAEP_SHA_1" { "RSAES_OAEP_SHA_256" } else { "RSAES_OAEP_SHA_1" };
        let r = s.post("/v1/decrypt", decrypt(&ct, other)).await;
        assert_eq!((r.status, r.code()), (400, "InvalidCiphertext"), "{}", r.body);
    }
    let aes = s.create_key("signing").await;
    let (signer, _) = create(&s, "RSA_2048", json!({})).await;
    let enc = |alg: Option<&str>, ctx: Value| {
        let mut b = json!({"plaintext": b64(b"x"), "encryption_context": ctx});
        if let Some(a) = alg {
            b["encryption_algorithm"] = json!(a);
        }
        b
    };
    let cases = [
        ("no algorithm on an RSA key", format!("/v1/keys/{key}/encrypt"), enc(None, json!({})), 400, "InvalidKeyUsage"),
        (
            "a context with OAEP",
            format!("/v1/keys/{key}/encrypt"),
            enc(Some("RSAES_OAEP_SHA_256"), json!({"a": "b"})),
            400,
            "InvalidRequest",
        ),
        (
            "OAEP on an AES key",
            format!("/v1/keys/{aes}/encrypt"),
            enc(Some("RSAES_OAEP_SHA_256"), json!({})),
            400,
            "InvalidKeyUsage",
        ),
        (
            "OAEP on a signing key",
            format!("/v1/keys/{signer}/encrypt"),
            enc(Some("RSAES_OAEP_SHA_256"), json!({})),
            400,
            "InvalidKeyUsage",
        ),
        (
            "an unknown algorithm",
            format!("/v1/keys/{key}/encrypt"),
            enc(Some("RSAES_PKCS1_V1_5"), json!({})),
            400,
            "InvalidRequest",
        ),
        (
            "decrypt without a key",
            "/v1/decrypt".to_owned(),
            json!({"ciphertext_blob": b64(&[0; 256]), "encryption_algorithm": "RSAES_OAEP_SHA_256"}),
            400,
            "InvalidRequest",
        ),
        (
            "a ciphertext of the wrong size",
            "/v1/decrypt".to_owned(),
            decrypt(&[0; 255], "RSAES_OAEP_SHA_256"),
            400,
            "InvalidCiphertext",
        ),
    ];
    for (what, path, body, status, code) in cases {
        let r = s.post(&path, body).await;
        assert_eq!((r.status, r.code()), (status, code), "{what}: {}", r.body);
    }
    let eve = s.token("eve", &["elsewhere"]);
    let r = s.call("POST", "/v1/decrypt", &eve, Some(decrypt(&[0; 256], "RSAES_OAEP_SHA_256"))).await;
    assert_eq!((r.status, r.code()), (403, "AccessDenied"));
    // Records name the algorithm.
    let audit = s.get("/v1/audit?limit=1000&action=Encrypt").await;
    let named = audit.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["details"]["encryption_algorithm"] == "RSAES_OAEP_SHA_1");
    assert!(named, "{}", audit.body);
}

keyward_e2e::on_both_databases!(
    rsa_keys_encrypt_with_oaep_as_openssl_does,
    data_key_pairs_come_with_their_private_key_sealed,
    every_spec_signs_and_openssl_verifies_with_the_pem_alone,
    macs_verify_and_refuse_tampering,
    usage_algorithms_and_inputs_are_enforced_and_each_refusal_audited,
    tag_pinned_algorithms_are_refused_by_the_default_policies,
    records_name_the_algorithm_and_the_message_hash_never_the_message,
);
