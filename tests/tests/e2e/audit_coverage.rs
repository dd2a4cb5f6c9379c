//! Every request kind leaves exactly one audit record, with the right principal, action, key,
//! decision, determining policies, outcome and encryption context, and no secret anywhere in
//! the table (plaintext, data keys, random bytes, tokens).

use std::collections::BTreeMap;

use keyward_e2e::{Db, Server, b64, on_both_databases};
use serde_json::{Value, json};

on_both_databases!(every_request_kind_leaves_one_record);

/// What one request must leave in the trail.
struct Expect {
    request_id: String,
    status: u16,
    action: &'static str,
    principal: String,
    key: Option<String>,
    /// `Some(true)` Allow, `Some(false)` Deny, `None` no decision reached.
    decision: Option<bool>,
    outcome: &'static str,
    context: BTreeMap<String, String>,
}

struct Run<'a> {
    s: &'a Server,
    expected: Vec<Expect>,
}

impl Run<'_> {
    /// Sends a request, checks its status and notes the record it must leave.
    #[allow(clippy::too_many_arguments, reason = "one row of the expectation table")]
    async fn call(
        &mut self,
        (method, path, token): (&str, &str, &str),
        body: Option<Value>,
        status: u16,
        action: &'static str,
        principal: &str,
        key: Option<&str>,
        (decision, outcome): (Option<bool>, &'static str),
    ) -> Value {
        let r = self.s.call(method, path, token, body.clone()).await;
        assert_eq!(r.status, status, "{method} {path}: {}", r.body);
        let request_id = r.headers["x-request-id"].to_str().unwrap().to_owned();
        let context = body
            .as_ref()
            .and_then(|b| b.get("encryption_context").or_else(|| b.get("source_encryption_context")))
            .and_then(|c| serde_json::from_value(c.clone()).ok())
            .unwrap_or_default();
        self.expected.push(Expect {
            request_id,
            status,
            action,
            principal: principal.to_owned(),
            key: key.map(str::to_owned),
            decision,
            outcome,
            context,
        });
        r.body
    }
}

const ADMIN: &str = r#"Keyward::User::"admin""#;
const OK: (Option<bool>, &str) = (Some(true), "Success");

async fn every_request_kind_leaves_one_record(db: Db) {
    let s = Server::start(db).await;
    let bob = s.token("bob", &[]);
    let mut run = Run { s: &s, expected: Vec::new() };
    let admin = s.admin.as_str();
    let secret = b"the-plaintext-that-must-never-be-stored-7f3a";
    let context = json!({"tenant": "acme", "purpose": "coverage"});

    let k1 = run
        .call(("POST", "/v1/keys", admin), Some(json!({"namespace": "cov"})), 201, "CreateKey", ADMIN, None, OK)
        .await["key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // CreateKey names the new key in its record.
    run.expected.last_mut().unwrap().key = Some(k1.clone());
    let k2 = s.create_key("cov").await;
    let key_path = format!("/v1/keys/{k1}");
    let on = |suffix: &str| format!("{key_path}{suffix}");
    let k = Some(k1.as_str());

    run.call(("GET", &key_path, admin), None, 200, "DescribeKey", ADMIN, k, OK).await;
    run.call(("GET", "/v1/keys?namespace=cov", admin), None, 200, "ListKeys", ADMIN, None, OK).await;
    run.call(("PATCH", &key_path, admin), Some(json!({"description": "d"})), 200, "UpdateKey", ADMIN, k, OK).await;
    run.call(("POST", &on("/rotate"), admin), None, 200, "RotateKey", ADMIN, k, OK).await;
    run.call(("GET", &on("/versions"), admin), None, 200, "ListKeyVersions", ADMIN, k, OK).await;
    run.call(("GET", &on("/usage?days=7"), admin), None, 200, "GetKeyUsage", ADMIN, k, OK).await;
    run.call(("GET", "/v1/namespaces/cov/usage", admin), None, 200, "GetNamespaceUsage", ADMIN, None, OK).await;
    let mdv = Some(json!({"version": 1}));
    run.call(("POST", &on("/min-decryption-version"), admin), mdv, 200, "SetMinDecryptionVersion", ADMIN, k, OK).await;
    run.call(("POST", &on("/disable"), admin), None, 200, "DisableKey", ADMIN, k, OK).await;
    run.call(("POST", &on("/enable"), admin), None, 200, "EnableKey", ADMIN, k, OK).await;

    let body = json!({"plaintext": b64(secret), "encryption_context": context});
    let blob =
        run.call(("POST", &on("/encrypt"), admin), Some(body), 200, "Encrypt", ADMIN, k, OK).await["ciphertext_blob"]
            .as_str()
            .unwrap()
            .to_owned();
    let body = json!({"ciphertext_blob": blob, "encryption_context": context});
    run.call(("POST", "/v1/decrypt", admin), Some(body), 200, "Decrypt", ADMIN, k, OK).await;
    let body = json!({"ciphertext_blob": blob, "source_encryption_context": context, "destination_key_id": k2});
    run.call(("POST", "/v1/re-encrypt", admin), Some(body), 200, "ReEncrypt", ADMIN, k, OK).await;
    let body = Some(json!({"key_spec": "AES_256", "encryption_context": context}));
    let data_key = run
        .call(("POST", &on("/generate-data-key"), admin), body, 200, "GenerateDataKey", ADMIN, k, OK)
        .await["plaintext"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = Some(json!({"key_spec": "AES_256"}));
    let path = on("/generate-data-key-without-plaintext");
    run.call(("POST", &path, admin), body, 200, "GenerateDataKeyWithoutPlaintext", ADMIN, k, OK).await;
    let body = Some(json!({"number_of_bytes": 32, "namespace": "cov"}));
    let random =
        run.call(("POST", "/v1/random", admin), body, 200, "GenerateRandom", ADMIN, None, OK).await["plaintext"]
            .as_str()
            .unwrap()
            .to_owned();

    let alias = "/v1/aliases/alias%2Fcov";
    let body = Some(json!({"target_key_id": k1}));
    run.call(("PUT", alias, admin), body, 201, "CreateAlias", ADMIN, k, OK).await;
    // A listing across namespaces is filtered per namespace: no single decision is the request's.
    run.call(("GET", "/v1/aliases", admin), None, 200, "ListAliases", ADMIN, None, (None, "Success")).await;
    run.call(("DELETE", alias, admin), None, 204, "DeleteAlias", ADMIN, k, OK).await;

    let body = Some(json!({"grantee": "Keyward::User::\"carol\"", "operations": ["Encrypt"]}));
    let grant = run.call(("POST", &on("/grants"), admin), body, 201, "CreateGrant", ADMIN, k, OK).await["grant_id"]
        .as_str()
        .unwrap()
        .to_owned();
    run.call(("GET", &on("/grants"), admin), None, 200, "ListGrants", ADMIN, k, OK).await;
    run.call(("DELETE", &format!("/v1/grants/{grant}"), admin), None, 204, "RevokeGrant", ADMIN, k, OK).await;

    let body = Some(json!({"action": "Encrypt", "resource": format!("Keyward::Key::\"{k1}\"")}));
    run.call(("POST", "/v1/authorize", admin), body, 200, "Authorize", ADMIN, k, OK).await;
    run.call(("GET", "/v1/policies", admin), None, 200, "GetPolicies", ADMIN, None, OK).await;
    run.call(("POST", "/v1/policies/reload", admin), None, 200, "ReloadPolicies", ADMIN, None, OK).await;
    run.call(("GET", "/v1/audit?limit=1", admin), None, 200, "QueryAudit", ADMIN, None, OK).await;
    run.call(("POST", "/v1/audit/verify", admin), None, 200, "VerifyAudit", ADMIN, None, OK).await;

    let k2p = format!("/v1/keys/{k2}");
    let body = Some(json!({"pending_window_days": 7}));
    let k2k = Some(k2.as_str());
    run.call(("POST", &format!("{k2p}/schedule-deletion"), admin), body, 200, "ScheduleKeyDeletion", ADMIN, k2k, OK)
        .await;
    run.call(("POST", &format!("{k2p}/cancel-deletion"), admin), None, 200, "CancelKeyDeletion", ADMIN, k2k, OK).await;

    // Refusals: denied by policy, unauthenticated, invalid input, unknown key, a dry run.
    let bob_id = r#"Keyward::User::"bob""#;
    let body = json!({"plaintext": b64(secret), "encryption_context": context});
    let denied = (Some(false), "AccessDenied");
    run.call(("POST", &on("/encrypt"), &bob), Some(body.clone()), 403, "Encrypt", bob_id, k, denied).await;
    // Signing, MAC and key-pair operations: the records name the algorithm and the message's
    // hash (checked in signing.rs); here, one record each and no message or private key.
    let create = |spec: &str| json!({"namespace": "cov", "key_spec": spec});
    let ec = s.post("/v1/keys", create("ECC_NIST_P256")).await.s("key_id");
    let hmac = s.post("/v1/keys", create("HMAC_256")).await.s("key_id");
    let (ec_at, hmac_at) = (|x: &str| format!("/v1/keys/{ec}{x}"), |x: &str| format!("/v1/keys/{hmac}{x}"));
    let sign = json!({"message": b64(secret), "signing_algorithm": "ECDSA_SHA_256"});
    let signature = run
        .call(("POST", &ec_at("/sign"), admin), Some(sign), 200, "Sign", ADMIN, Some(ec.as_str()), OK)
        .await["signature"]
        .as_str()
        .unwrap()
        .to_owned();
    let verify = json!({"message": b64(secret), "signature": signature, "signing_algorithm": "ECDSA_SHA_256"});
    run.call(("POST", &ec_at("/verify"), admin), Some(verify), 200, "Verify", ADMIN, Some(ec.as_str()), OK).await;
    run.call(("GET", &ec_at("/public-key"), admin), None, 200, "GetPublicKey", ADMIN, Some(ec.as_str()), OK).await;
    let mac = json!({"message": b64(secret), "mac_algorithm": "HMAC_SHA_256"});
    let h = Some(hmac.as_str());
    let tag =
        run.call(("POST", &hmac_at("/generate-mac"), admin), Some(mac), 200, "GenerateMac", ADMIN, h, OK).await["mac"]
            .as_str()
            .unwrap()
            .to_owned();
    let check = json!({"message": b64(secret), "mac": tag, "mac_algorithm": "HMAC_SHA_256"});
    run.call(("POST", &hmac_at("/verify-mac"), admin), Some(check), 200, "VerifyMac", ADMIN, h, OK).await;
    let pair = Some(json!({"key_pair_spec": "ECC_NIST_P256", "encryption_context": context}));
    let private_key = run
        .call(("POST", &on("/generate-data-key-pair"), admin), pair, 200, "GenerateDataKeyPair", ADMIN, k, OK)
        .await["private_key_plaintext"]
        .as_str()
        .unwrap()
        .to_owned();
    let pair = Some(json!({"key_pair_spec": "ECC_NIST_P256"}));
    let path = on("/generate-data-key-pair-without-plaintext");
    run.call(("POST", &path, admin), pair, 200, "GenerateDataKeyPairWithoutPlaintext", ADMIN, k, OK).await;

    // Imported material: parameters, import and deletion, each one record; neither the
    // material nor the token is recorded.
    let byok = s.post("/v1/keys", json!({"namespace": "cov", "origin": "EXTERNAL"})).await.s("key_id");
    let (byok_at, b) = (|x: &str| format!("/v1/keys/{byok}{x}"), Some(byok.as_str()));
    let params = json!({"wrapping_algorithm": "RSAES_OAEP_SHA_256", "wrapping_key_spec": "RSA_2048"});
    let p = run
        .call(
            ("POST", &byok_at("/import-parameters"), admin),
            Some(params),
            200,
            "GetParametersForImport",
            ADMIN,
            b,
            OK,
        )
        .await;
    let import_token = p["import_token"].as_str().unwrap().to_owned();
    let material = crate::import::openssl(&["rand", "32"]);
    let dir = tempfile::tempdir().unwrap();
    let (pem, input) = (dir.path().join("w.pem"), dir.path().join("m"));
    std::fs::write(&pem, p["public_key_pem"].as_str().unwrap()).unwrap();
    std::fs::write(&input, &material).unwrap();
    let wrapped = crate::import::openssl(&[
        "pkeyutl",
        "-encrypt",
        "-pubin",
        "-inkey",
        pem.to_str().unwrap(),
        "-in",
        input.to_str().unwrap(),
        "-pkeyopt",
        "rsa_padding_mode:oaep",
        "-pkeyopt",
        "rsa_oaep_md:sha256",
        "-pkeyopt",
        "rsa_mgf1_md:sha256",
    ]);
    let import = json!({"import_token": import_token, "encrypted_key_material": b64(&wrapped)});
    run.call(("POST", &byok_at("/import"), admin), Some(import), 200, "ImportKeyMaterial", ADMIN, b, OK).await;
    run.call(("DELETE", &byok_at("/import"), admin), None, 200, "DeleteImportedKeyMaterial", ADMIN, b, OK).await;

    let anon = (None, "Unauthenticated");
    run.call(("POST", &on("/encrypt"), ""), Some(body), 401, "Encrypt", "anonymous", None, anon).await;
    // An unauthenticated body is never read, so its context is not recorded.
    run.expected.last_mut().unwrap().context.clear();
    let invalid = (None, "InvalidRequest");
    let body = Some(json!({"plaintext": "not base64 !"}));
    run.call(("POST", &on("/encrypt"), admin), body, 400, "Encrypt", ADMIN, None, invalid).await;
    let missing = "00000000-0000-7000-8000-000000000000";
    let body = Some(json!({"plaintext": b64(b"x")}));
    let path = format!("/v1/keys/{missing}/encrypt");
    run.call(("POST", &path, admin), body, 404, "Encrypt", ADMIN, None, (None, "NotFound")).await;
    let body = Some(json!({"plaintext": b64(b"x"), "dry_run": true}));
    run.call(("POST", &on("/encrypt"), admin), body, 200, "Encrypt", ADMIN, k, OK).await;

    // Operations without an audit record by design: probes and metrics.
    let before = s.audit_count().await;
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(s.call("GET", path, "", None).await.status, 200, "{path}");
    }
    assert_eq!(s.audit_count().await, before, "probes and metrics are not key operations");

    let rows =
        s.audit_store().await.query(&keyward_store::AuditQuery { limit: 10_000, ..Default::default() }).await.unwrap();
    for e in &run.expected {
        let mine: Vec<_> = rows.iter().filter(|r| r.request_id == e.request_id).collect();
        let what = format!("{} ({}, request {})", e.action, e.status, e.request_id);
        assert_eq!(mine.len(), 1, "{what}: exactly one record, got {mine:#?}");
        let r = mine[0];
        assert_eq!(r.action, e.action, "{what}");
        assert_eq!(r.principal, e.principal, "{what}");
        assert_eq!(r.outcome, e.outcome, "{what}");
        let decision = r.decision.as_deref().map(|d| d == "Allow");
        assert_eq!(decision, e.decision, "{what}");
        if let Some(key) = &e.key {
            assert_eq!(r.key_id.as_deref(), Some(key.as_str()), "{what}");
        }
        if e.decision.is_some() {
            let policies: Vec<String> = serde_json::from_str(&r.determining_policies).unwrap();
            assert_eq!(policies.is_empty(), e.decision == Some(false), "{what}: determining policies {policies:?}");
            assert!(r.policy_version.is_some(), "{what}");
        }
        let recorded: BTreeMap<String, String> = serde_json::from_str(&r.encryption_context).unwrap();
        assert_eq!(recorded, e.context, "{what}");
        assert!(!r.trace_id.is_empty() && r.hash.is_some(), "{what}");
    }
    let dry = rows.iter().find(|r| r.request_id == run.expected.last().unwrap().request_id).unwrap();
    assert!(dry.dry_run, "the dry run is marked");

    // No secret anywhere: every column of every row, as stored.
    let table = format!("{rows:?}");
    let secrets = [
        ("plaintext", String::from_utf8_lossy(secret).into_owned()),
        ("plaintext (base64)", b64(secret)),
        ("data key", data_key),
        ("random bytes", random),
        ("admin token", s.admin.clone()),
        ("bob's token", bob.clone()),
        ("ciphertext", blob),
        ("data key pair's private key", private_key),
        ("imported material", b64(&material)),
        ("imported material (hex)", hex::encode(&material)),
        ("import token", import_token),
        ("wrapped material", b64(&wrapped)),
    ];
    for (what, value) in secrets {
        assert!(!table.contains(&value), "the audit table holds the {what}");
    }
}
