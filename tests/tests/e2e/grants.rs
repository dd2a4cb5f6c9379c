//! Grants: exactly what they name, their context constraints, revocation, and who may grant.

use keyward_e2e::{Db, Server, b64, on_both_databases};
use serde_json::json;

on_both_databases!(grants_delegate_exactly);

async fn grants_delegate_exactly(db: Db) {
    let s = Server::start(db).await;
    let olive = s.token("olive", &["payments"]);
    let carol = s.token("carol", &[]);
    let bob = s.token("bob", &["payments"]);
    let key = s.call("POST", "/v1/keys", &olive, Some(json!({"namespace": "payments"}))).await.s("key_id");
    let other = s.call("POST", "/v1/keys", &olive, Some(json!({"namespace": "payments"}))).await.s("key_id");
    let encrypt = |k: &str, ctx: serde_json::Value| {
        (format!("/v1/keys/{k}/encrypt"), json!({"plaintext": b64(b"secret"), "encryption_context": ctx}))
    };
    let (path, body) = encrypt(&key, json!({}));
    assert_eq!(s.call("POST", &path, &carol, Some(body.clone())).await.code(), "AccessDenied");

    // Only principals allowed CreateGrant on the key may grant (bob uses the key but does not manage it).
    let grant = json!({"grantee": "Keyward::User::\"carol\"", "operations": ["Encrypt"]});
    let grants = format!("/v1/keys/{key}/grants");
    assert_eq!(s.call("POST", &grants, &bob, Some(grant.clone())).await.code(), "AccessDenied");
    // Bad grants are refused with reasons.
    for bad in [
        json!({"grantee": "Keyward::User::\"carol\"", "operations": ["ScheduleKeyDeletion"]}),
        json!({"grantee": "carol", "operations": ["Encrypt"]}),
        json!({"grantee": "Keyward::User::\"carol\"", "operations": []}),
        json!({"grantee": "Keyward::User::\"carol\"", "operations": ["Encrypt"],
               "constraints": {"encryption_context_equals": {}, "encryption_context_subset": {"a": "b"}}}),
    ] {
        let r = s.call("POST", &grants, &olive, Some(bad.clone())).await;
        assert_eq!((r.status, r.code()), (400, "InvalidRequest"), "{bad}: {}", r.body);
    }
    // A dry run creates nothing.
    let mut dry = grant.clone();
    dry["dry_run"] = json!(true);
    assert_eq!(s.call("POST", &grants, &olive, Some(dry)).await.body["decision"], "Allow");
    assert_eq!(s.call("GET", &grants, &olive, None).await.body["grants"], json!([]));

    let r = s.call("POST", &grants, &olive, Some(grant)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let encrypt_grant = r.s("grant_id");
    // Exactly what it names: Encrypt on this key, by carol.
    let r = s.call("POST", &path, &carol, Some(body.clone())).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let blob = r.s("ciphertext_blob");
    let decrypt = json!({"ciphertext_blob": blob});
    assert_eq!(s.call("POST", "/v1/decrypt", &carol, Some(decrypt.clone())).await.code(), "AccessDenied");
    let (other_path, other_body) = encrypt(&other, json!({}));
    assert_eq!(s.call("POST", &other_path, &carol, Some(other_body)).await.code(), "AccessDenied");
    let dave = s.token("dave", &[]);
    assert_eq!(s.call("POST", &path, &dave, Some(body.clone())).await.code(), "AccessDenied");

    // A constrained grant applies only to matching encryption contexts.
    let constrained = json!({"grantee": "Keyward::User::\"carol\"", "operations": ["Decrypt"],
                             "constraints": {"encryption_context_subset": {"tenant": "acme"}}});
    let r = s.call("POST", &grants, &olive, Some(constrained)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let (p, b) = encrypt(&key, json!({"tenant": "acme", "order": "7"}));
    let acme_blob = s.call("POST", &p, &olive, Some(b)).await.s("ciphertext_blob");
    let (p, b) = encrypt(&key, json!({"tenant": "globex"}));
    let globex_blob = s.call("POST", &p, &olive, Some(b)).await.s("ciphertext_blob");
    let r = s
        .call(
            "POST",
            "/v1/decrypt",
            &carol,
            Some(json!({"ciphertext_blob": acme_blob, "encryption_context": {"tenant": "acme", "order": "7"}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.s("plaintext"), b64(b"secret"));
    let r = s
        .call(
            "POST",
            "/v1/decrypt",
            &carol,
            Some(json!({"ciphertext_blob": globex_blob, "encryption_context": {"tenant": "globex"}})),
        )
        .await;
    assert_eq!(r.code(), "AccessDenied");
    // The equals kind refuses extra pairs.
    let equals = json!({"grantee": "Keyward::Group::\"auditors\"", "operations": ["Decrypt"],
                        "constraints": {"encryption_context_equals": {"tenant": "acme"}}});
    assert_eq!(s.call("POST", &grants, &olive, Some(equals)).await.status, 201);
    let auditor = s.token("ada", &["auditors"]);
    let r = s
        .call(
            "POST",
            "/v1/decrypt",
            &auditor,
            Some(json!({"ciphertext_blob": acme_blob, "encryption_context": {"tenant": "acme", "order": "7"}})),
        )
        .await;
    assert_eq!(r.code(), "AccessDenied", "extra pair");

    // Listing, then revocation stops the grant.
    let listed = s.call("GET", &grants, &olive, None).await;
    assert_eq!(listed.body["grants"].as_array().unwrap().len(), 3, "{}", listed.body);
    assert_eq!(listed.body["grants"][0]["grant_id"], encrypt_grant);
    assert_eq!(listed.body["grants"][0]["operations"], json!(["Encrypt"]));
    assert_eq!(listed.body["grants"][0]["granted_by"], "Keyward::User::\"olive\"");
    assert_eq!(s.call("DELETE", &format!("/v1/grants/{encrypt_grant}"), &bob, None).await.code(), "AccessDenied");
    let r = s.call("DELETE", &format!("/v1/grants/{encrypt_grant}"), &olive, None).await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(s.call("POST", &path, &carol, Some(body)).await.code(), "AccessDenied", "revoked");
    assert_eq!(s.call("DELETE", &format!("/v1/grants/{encrypt_grant}"), &olive, None).await.code(), "NotFound");

    // Grants survive a restart (they live in the database).
    let mut s = s;
    s.restart();
    let r = s
        .call(
            "POST",
            "/v1/decrypt",
            &carol,
            Some(json!({"ciphertext_blob": acme_blob, "encryption_context": {"tenant": "acme", "order": "7"}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_are_bounded_per_grantee() {
    let s = Server::start(Db::Sqlite).await;
    let key = s.create_key("bounded").await;
    let grants = format!("/v1/keys/{key}/grants");
    let grant = |who: &str| json!({"grantee": format!("Keyward::User::\"{who}\""), "operations": ["Encrypt"]});
    for _ in 0..keyward_core::service::MAX_GRANTS_PER_GRANTEE {
        assert_eq!(s.call("POST", &grants, &s.admin, Some(grant("carol"))).await.status, 201);
    }
    let r = s.call("POST", &grants, &s.admin, Some(grant("carol"))).await;
    assert_eq!((r.status, r.code()), (409, "Conflict"), "{}", r.body);
    assert_eq!(
        s.call("POST", &grants, &s.admin, Some(grant("dave"))).await.status,
        201,
        "other grantees may still get one"
    );
    let listed = s.call("GET", &grants, &s.admin, None).await;
    assert_eq!(listed.body["grants"].as_array().unwrap().len(), keyward_core::service::MAX_GRANTS_PER_GRANTEE + 1);
}
