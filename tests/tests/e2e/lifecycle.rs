//! Key lifecycle over HTTP: create, describe, list, update, enable/disable, deletion, restart.

use keyward_e2e::{Db, Server, b64, on_both_databases};
use serde_json::json;

on_both_databases!(lifecycle, deletion_window, pagination, idempotent_create, state_survives_restart);

async fn lifecycle(db: Db) {
    let s = Server::start(db).await;
    let r = s
        .post(
            "/v1/keys",
            json!({"namespace": "payments", "description": "db key", "tags": {"env": "prod"}, "alias": "alias/pay-db"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.s("key_id");
    assert_eq!(r.body["key_state"], "Enabled");
    assert_eq!(r.body["key_spec"], "AES_256");
    assert_eq!(r.body["key_usage"], "ENCRYPT_DECRYPT");
    assert_eq!(r.body["protection"], "software");
    assert_eq!(r.body["primary_version"], 1);
    assert_eq!(r.body["owner"], "Keyward::User::\"admin\"");
    assert_eq!(r.body["aliases"], json!(["alias/pay-db"]));
    assert!(r.headers.contains_key("x-request-id"));
    assert!(r.headers.get("traceparent").is_some_and(|v| v.to_str().unwrap().starts_with("00-")));

    // Describe by id and by alias.
    assert_eq!(s.get(&format!("/v1/keys/{id}")).await.s("key_id"), id);
    assert_eq!(s.get("/v1/keys/alias%2Fpay-db").await.s("key_id"), id);
    assert_eq!(s.get("/v1/keys/alias%2Fnope").await.code(), "NotFound");
    assert_eq!(s.get(&format!("/v1/keys/{}", uuid::Uuid::new_v4())).await.status, 404);
    assert_eq!(s.get("/v1/keys/not-a-key").await.code(), "InvalidRequest");

    // Update: description, tags, rotation period; null turns rotation off.
    let r = s
        .call(
            "PATCH",
            &format!("/v1/keys/{id}"),
            &s.admin,
            Some(json!({"description": "new", "tags": {"team": "a"}, "rotation_period_days": 90})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["description"], "new");
    assert_eq!(r.body["tags"], json!({"team": "a"}));
    assert_eq!(r.body["rotation_period_days"], 90);
    assert!(r.body["next_rotation_at"].is_string());
    let r = s.call("PATCH", &format!("/v1/keys/{id}"), &s.admin, Some(json!({"rotation_period_days": null}))).await;
    assert_eq!(r.body["rotation_period_days"], json!(null));
    assert_eq!(r.body["description"], "new", "absent fields are left alone");
    let r = s.call("PATCH", &format!("/v1/keys/{id}"), &s.admin, Some(json!({"rotation_period_days": 0}))).await;
    assert_eq!((r.status, r.code()), (400, "InvalidRequest"));
    let r = s.call("PATCH", &format!("/v1/keys/{id}"), &s.admin, Some(json!({"colour": "red"}))).await;
    assert_eq!((r.status, r.code()), (400, "InvalidRequest"), "unknown fields are refused");

    // Disable refuses crypto with 409 KeyDisabled; enable restores it.
    let pt = json!({"plaintext": b64(b"hello")});
    assert_eq!(s.post(&format!("/v1/keys/{id}/disable"), json!({})).await.body["key_state"], "Disabled");
    let r = s.post(&format!("/v1/keys/{id}/encrypt"), pt.clone()).await;
    assert_eq!((r.status, r.code()), (409, "KeyDisabled"));
    let r = s.post(&format!("/v1/keys/{id}/generate-data-key"), json!({})).await;
    assert_eq!((r.status, r.code()), (409, "KeyDisabled"));
    assert_eq!(s.post(&format!("/v1/keys/{id}/enable"), json!({})).await.body["key_state"], "Enabled");
    assert_eq!(s.post(&format!("/v1/keys/{id}/encrypt"), pt).await.status, 200);

    // Validation at the edge.
    let r = s.post("/v1/keys", json!({"namespace": "Bad Name"})).await;
    assert_eq!((r.status, r.code()), (400, "InvalidRequest"));
    let r = s.post("/v1/keys", json!({"namespace": "x", "key_spec": "RSA_9"})).await;
    assert_eq!((r.status, r.code()), (400, "InvalidRequest"));
    let r = s.post("/v1/keys", json!({"namespace": "x", "backend": "nope"})).await;
    assert_eq!((r.status, r.code()), (400, "InvalidRequest"));
    assert!(r.body["detail"].as_str().unwrap().contains("software"), "lists configured backends: {}", r.body);
    let r = s.post("/v1/keys", json!({"namespace": "x", "alias": "alias/pay-db"})).await;
    assert_eq!((r.status, r.code()), (409, "Conflict"), "alias taken");
    let r = s.call("POST", "/v1/keys", &s.admin, None).await;
    assert_eq!((r.status, r.code()), (400, "InvalidRequest"));
    let r = s.get("/v1/nowhere").await;
    assert_eq!((r.status, r.code()), (404, "NotFound"));
}

async fn deletion_window(db: Db) {
    let s = Server::start(db).await;
    let id = s.create_key("payments").await;
    for days in [0, 6, 31, 365] {
        let r = s.post(&format!("/v1/keys/{id}/schedule-deletion"), json!({"pending_window_days": days})).await;
        assert_eq!((r.status, r.code()), (400, "InvalidRequest"), "window {days}");
    }
    let r = s.post(&format!("/v1/keys/{id}/schedule-deletion"), json!({"pending_window_days": 7})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["key_state"], "PendingDeletion");
    let date = chrono::DateTime::parse_from_rfc3339(&r.s("deletion_date")).unwrap();
    let days = (date.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_hours();
    assert!((7 * 24 - 1..=7 * 24).contains(&days), "deletion in 7 days, got {days} h");

    // Pending keys refuse crypto with a distinct code, and cannot be re-scheduled or enabled.
    let r = s.post(&format!("/v1/keys/{id}/encrypt"), json!({"plaintext": b64(b"x")})).await;
    assert_eq!((r.status, r.code()), (409, "KeyPendingDeletion"));
    let r = s.post(&format!("/v1/keys/{id}/schedule-deletion"), json!({})).await;
    assert_eq!((r.status, r.code()), (409, "Conflict"));
    let r = s.post(&format!("/v1/keys/{id}/enable"), json!({})).await;
    assert_eq!((r.status, r.code()), (409, "KeyPendingDeletion"));

    // Cancel leaves the key Disabled, as in AWS KMS.
    let r = s.post(&format!("/v1/keys/{id}/cancel-deletion"), json!({})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["key_state"], "Disabled");
    assert_eq!(r.body["deletion_date"], json!(null));
    let r = s.post(&format!("/v1/keys/{id}/cancel-deletion"), json!({})).await;
    assert_eq!((r.status, r.code()), (409, "Conflict"));

    // Default window is 30 days; an empty body is fine.
    let r = s.call("POST", &format!("/v1/keys/{id}/schedule-deletion"), &s.admin, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let date = chrono::DateTime::parse_from_rfc3339(&r.s("deletion_date")).unwrap();
    assert!((date.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_days() >= 29);
}

async fn pagination(db: Db) {
    let s = Server::start(db).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(s.create_key("pages").await);
    }
    s.create_key("other").await;
    let mut seen = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let q = match &next {
            Some(t) => format!("/v1/keys?namespace=pages&limit=2&next_token={t}"),
            None => "/v1/keys?namespace=pages&limit=2".to_owned(),
        };
        let r = s.get(&q).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let page = r.body["keys"].as_array().unwrap();
        assert!(page.len() <= 2);
        seen.extend(page.iter().map(|k| k["key_id"].as_str().unwrap().to_owned()));
        match r.body["next_token"].as_str() {
            Some(t) => next = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ids, "every key once, in creation order");
    assert_eq!(s.get("/v1/keys").await.body["keys"].as_array().unwrap().len(), 6);
    assert_eq!(s.get("/v1/keys?limit=0").await.code(), "InvalidRequest");
    assert_eq!(s.get("/v1/keys?limit=1001").await.code(), "InvalidRequest");
    assert_eq!(s.get("/v1/keys?next_token=zzz").await.code(), "InvalidRequest");
}

async fn idempotent_create(db: Db) {
    let s = Server::start(db).await;
    let body = json!({"namespace": "idem", "description": "once"});
    let hdr = [("Idempotency-Key", "create-1")];
    let a = s.call_with("POST", "/v1/keys", &s.admin, Some(body.clone()), &hdr).await;
    let b = s.call_with("POST", "/v1/keys", &s.admin, Some(body), &hdr).await;
    assert_eq!((a.status, b.status), (201, 201));
    assert_eq!(a.s("key_id"), b.s("key_id"), "a replay returns the first answer");
    assert_eq!(s.get("/v1/keys?namespace=idem").await.body["keys"].as_array().unwrap().len(), 1, "and creates nothing");
    let c = s
        .call_with("POST", "/v1/keys", &s.admin, Some(json!({"namespace": "idem", "description": "other"})), &hdr)
        .await;
    assert_eq!((c.status, c.code()), (409, "Conflict"));
    // Idempotency keys are per principal.
    let bob = s.token("bob", &["idem"]);
    let d =
        s.call_with("POST", "/v1/keys", &bob, Some(json!({"namespace": "idem", "description": "once"})), &hdr).await;
    assert_eq!(d.status, 201);
    assert_ne!(d.s("key_id"), a.s("key_id"));
}

async fn state_survives_restart(db: Db) {
    let mut s = Server::start(db).await;
    let id = s.create_key("durable").await;
    let r = s.call("PUT", "/v1/aliases/alias%2Fdurable", &s.admin, Some(json!({"target_key_id": id}))).await;
    assert_eq!(r.status, 201);
    let enc = s
        .post(
            &format!("/v1/keys/{id}/encrypt"),
            json!({"plaintext": b64(b"persist me"), "encryption_context": {"a": "b"}}),
        )
        .await;
    s.post(&format!("/v1/keys/{id}/rotate"), json!({})).await;
    s.restart();
    let r = s.get("/v1/keys/alias%2Fdurable").await;
    assert_eq!((r.s("key_id"), r.body["primary_version"].as_u64()), (id.clone(), Some(2)));
    let r = s
        .post("/v1/decrypt", json!({"ciphertext_blob": enc.s("ciphertext_blob"), "encryption_context": {"a": "b"}}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(keyward_e2e::unb64(&r.s("plaintext")), b"persist me");
    let versions = s.get(&format!("/v1/keys/{id}/versions")).await;
    assert_eq!(versions.body["versions"][0]["encryptions"], 1, "usage counters survive: {}", versions.body);
    assert_eq!(versions.body["versions"][0]["decryptions"], 1);
}
