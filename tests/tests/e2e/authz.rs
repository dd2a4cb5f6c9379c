//! Authentication, the default policies end to end, and one audit record per request.

use keyward_e2e::{Db, Server, b64, on_both_databases};
use serde_json::json;

on_both_databases!(principals_and_audit);

async fn principals_and_audit(db: Db) {
    let s = Server::start(db).await;
    let before = s.audit_count().await;
    let mut requests = 0u64;

    // Unauthenticated and bad tokens: 401 with one body, audited.
    let r = s.call("GET", "/v1/keys", "", None).await;
    requests += 1;
    assert_eq!((r.status, r.code()), (401, "Unauthenticated"));
    assert_eq!(r.headers.get("www-authenticate").map(|v| v.to_str().unwrap()), Some("Bearer"));
    // Change a signature character that carries only signature bits (the last one also
    // carries unused padding bits, which decoders ignore).
    let mut forged = s.admin.clone().into_bytes();
    let at = forged.len() - 10;
    forged[at] = if forged[at] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    for bad in ["garbage", "a.b.c", forged.as_str()] {
        let r = s.call("POST", "/v1/keys", bad, Some(json!({"namespace": "x"}))).await;
        requests += 1;
        assert_eq!((r.status, r.code()), (401, "Unauthenticated"), "token {bad}");
    }
    // A malformed body from an anonymous caller is still 401: authentication comes first.
    let r = s.call("POST", "/v1/keys", "", Some(json!("not an object"))).await;
    requests += 1;
    assert_eq!(r.status, 401);

    // Namespace members create and use keys in their namespace only.
    let bob = s.token("bob", &["payments"]);
    let r = s.call("POST", "/v1/keys", &bob, Some(json!({"namespace": "payments"}))).await;
    requests += 1;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["owner"], "Keyward::User::\"bob\"");
    let r = s.call("POST", "/v1/keys", &bob, Some(json!({"namespace": "billing"}))).await;
    requests += 1;
    assert_eq!((r.status, r.code()), (403, "AccessDenied"));

    let billing = s.create_key("billing").await;
    requests += 1;
    let payments = s.create_key("payments").await;
    requests += 1;
    let enc = |k: &str| format!("/v1/keys/{k}/encrypt");
    let r = s.call("POST", &enc(&payments), &bob, Some(json!({"plaintext": b64(b"x")}))).await;
    requests += 1;
    assert_eq!(r.status, 200, "members use keys of their namespace: {}", r.body);
    let r = s.call("POST", &enc(&billing), &bob, Some(json!({"plaintext": b64(b"x")}))).await;
    requests += 1;
    assert_eq!((r.status, r.code()), (403, "AccessDenied"));
    // Members use but do not manage keys they do not own.
    let r = s.call("POST", &format!("/v1/keys/{payments}/disable"), &bob, None).await;
    requests += 1;
    assert_eq!(r.code(), "AccessDenied");
    // Listing shows only namespaces the caller may list.
    let r = s.call("GET", "/v1/keys", &bob, None).await;
    requests += 1;
    let namespaces: std::collections::BTreeSet<_> =
        r.body["keys"].as_array().unwrap().iter().map(|k| k["namespace"].as_str().unwrap().to_owned()).collect();
    assert_eq!(namespaces.into_iter().collect::<Vec<_>>(), ["payments"]);
    let r = s.call("GET", "/v1/keys?namespace=billing", &bob, None).await;
    requests += 1;
    assert_eq!(r.code(), "AccessDenied");

    // Protected keys need a justification to be scheduled for deletion, even by admins.
    let r = s.post("/v1/keys", json!({"namespace": "billing", "tags": {"protected": "true"}})).await;
    requests += 1;
    let protected = r.s("key_id");
    let r = s.post(&format!("/v1/keys/{protected}/schedule-deletion"), json!({"pending_window_days": 7})).await;
    requests += 1;
    assert_eq!((r.status, r.code()), (403, "AccessDenied"));
    let r = s
        .call_with(
            "POST",
            &format!("/v1/keys/{protected}/schedule-deletion"),
            &s.admin,
            Some(json!({})),
            &[("x-keyward-justification", "INC-7 decommission")],
        )
        .await;
    requests += 1;
    assert_eq!(r.body["key_state"], "PendingDeletion", "{}", r.body);

    // Exactly one committed record per request, allowed or denied, authenticated or not.
    assert_eq!(s.audit_count().await - before, requests);
    let records =
        s.audit_store().await.query(&keyward_store::AuditQuery { limit: 1000, ..Default::default() }).await.unwrap();
    let denied =
        records.iter().find(|r| r.action == "Encrypt" && r.outcome == "AccessDenied").expect("denied encrypt recorded");
    assert_eq!(denied.principal, "Keyward::User::\"bob\"");
    assert_eq!(denied.decision.as_deref(), Some("Deny"));
    assert_eq!(denied.key_id.as_deref(), Some(billing.as_str()));
    let allowed = records.iter().find(|r| r.action == "Encrypt" && r.outcome == "Success").unwrap();
    assert_eq!(allowed.determining_policies, "[\"namespace-members-use\"]");
    assert!(allowed.policy_version.as_deref().unwrap().starts_with("sha256:"));
    let anon = records.iter().filter(|r| r.principal == "anonymous").count();
    assert_eq!(anon, 5);
    let forbid = records.iter().find(|r| r.action == "ScheduleKeyDeletion" && r.outcome == "AccessDenied").unwrap();
    assert_eq!(forbid.determining_policies, "[\"protected-keys-need-justification\"]");
    // No secrets in the trail: no token and no plaintext.
    let dump = format!("{records:?}");
    assert!(!dump.contains(&s.admin) && !dump.contains(&bob));
}

/// A caller who may not use a key gets the same answer whether the key exists or not; an
/// admin, whom the policies would allow, learns that it does not exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_and_forbidden_keys_look_the_same() {
    let s = keyward_e2e::Server::start(keyward_e2e::Db::Sqlite).await;
    let hidden = s.create_key("hidden").await;
    let put =
        s.call("PUT", "/v1/aliases/alias%2Fhidden", &s.admin, Some(serde_json::json!({"target_key_id": hidden}))).await;
    assert_eq!(put.status, 201);
    let blob = s
        .post(&format!("/v1/keys/{hidden}/encrypt"), serde_json::json!({"plaintext": keyward_e2e::b64(b"x")}))
        .await
        .s("ciphertext_blob");
    let bob = s.token("bob", &["elsewhere"]);
    let missing = uuid::Uuid::new_v4().to_string();
    // A blob that names a key that does not exist, with a valid header.
    let mut forged = keyward_e2e::unb64(&blob);
    forged[3..19].copy_from_slice(uuid::Uuid::parse_str(&missing).unwrap().as_bytes());
    let forged = keyward_e2e::b64(&forged);
    let ask = async |token: &str, method: &str, path: String, body: Option<serde_json::Value>| {
        let r = s.call(method, &path, token, body).await;
        (r.status, r.code().to_owned(), r.body["detail"].clone())
    };
    let pairs = [
        ("GET", format!("/v1/keys/{hidden}"), format!("/v1/keys/{missing}"), None),
        ("GET", "/v1/keys/alias%2Fhidden".into(), "/v1/keys/alias%2Fnope".into(), None),
        (
            "POST",
            format!("/v1/keys/{hidden}/encrypt"),
            format!("/v1/keys/{missing}/encrypt"),
            Some(serde_json::json!({"plaintext": keyward_e2e::b64(b"x")})),
        ),
        ("POST", format!("/v1/keys/{hidden}/disable"), format!("/v1/keys/{missing}/disable"), None),
        ("DELETE", "/v1/aliases/alias%2Fhidden".into(), "/v1/aliases/alias%2Fnope".into(), None),
    ];
    for (method, real, fake, body) in pairs {
        let a = ask(&bob, method, real.clone(), body.clone()).await;
        let b = ask(&bob, method, fake.clone(), body.clone()).await;
        assert_eq!(a.0, 403, "{method} {real}: {a:?}");
        assert_eq!(a, b, "{method}: {real} and {fake} answer alike");
        let admin = ask(&s.admin, method, fake.clone(), body).await;
        assert_eq!((admin.0, admin.1.as_str()), (404, "NotFound"), "{method} {fake} to an admin");
    }
    let d = |b: &str| serde_json::json!({"ciphertext_blob": b});
    let a = ask(&bob, "POST", "/v1/decrypt".into(), Some(d(&blob))).await;
    let b = ask(&bob, "POST", "/v1/decrypt".into(), Some(d(&forged))).await;
    assert_eq!((a.0, &a), (403, &b), "Decrypt of a blob naming a missing key answers like a forbidden one");
    let admin = ask(&s.admin, "POST", "/v1/decrypt".into(), Some(d(&forged))).await;
    assert_eq!((admin.0, admin.1.as_str()), (400, "InvalidCiphertext"));
}
