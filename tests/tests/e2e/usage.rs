//! GetKeyUsage: per version, the counters and what the audit trail recorded in the window
//! (recent decryptions, principals, first use), which versions are safe to retire, and the
//! minimum decryption version that would refuse nothing seen; and its refusals.

use keyward_e2e::{Db, Server, b64, on_both_databases};
use serde_json::{Value, json};

on_both_databases!(usage_by_version_and_safe_retirement, usage_refusals, namespace_usage_pages_through_its_keys);

async fn usage(s: &Server, key: &str, token: &str, query: &str) -> keyward_e2e::Resp {
    s.call("GET", &format!("/v1/keys/{key}/usage{query}"), token, None).await
}

fn version(body: &Value, v: u64) -> Value {
    body["versions"].as_array().and_then(|vs| vs.iter().find(|x| x["version"] == v)).cloned().unwrap_or(Value::Null)
}

async fn usage_by_version_and_safe_retirement(db: Db) {
    let s = Server::start(db).await;
    let ops = s.token("ops", &["admins"]);
    let key = s.create_key("usage").await;
    let encrypt = async |token: &str| {
        let r = s.call("POST", &format!("/v1/keys/{key}/encrypt"), token, Some(json!({"plaintext": b64(b"u")}))).await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.s("ciphertext_blob")
    };
    let blob = encrypt(&s.admin).await;
    encrypt(&s.admin).await;
    encrypt(&ops).await;
    let decrypted = s.call("POST", "/v1/decrypt", &ops, Some(json!({"ciphertext_blob": blob}))).await;
    assert_eq!(decrypted.status, 200, "{}", decrypted.body);
    // A dry run is no use, and a refused request neither.
    let dry = s.call("POST", "/v1/decrypt", &ops, Some(json!({"ciphertext_blob": blob, "dry_run": true}))).await;
    assert_eq!(dry.status, 200, "{}", dry.body);
    let stranger = s.token("stranger", &[]);
    assert_eq!(s.call("POST", "/v1/decrypt", &stranger, Some(json!({"ciphertext_blob": blob}))).await.status, 403);
    assert_eq!(s.call("POST", &format!("/v1/keys/{key}/rotate"), &s.admin, None).await.status, 200);
    encrypt(&s.admin).await;

    let r = usage(&s, &key, &s.admin, "?days=30").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!((r.s("key_id"), r.body["days"].as_u64()), (key.clone(), Some(30)));
    let v1 = version(&r.body, 1);
    assert_eq!(
        (&v1["encryptions"], &v1["decryptions"], &v1["recent_decryptions"], &v1["principals"]),
        (&json!(3), &json!(1), &json!(1), &json!(2)),
        "{}",
        r.body
    );
    assert_eq!(v1["safe_to_retire"], false, "v1 decrypted in the window");
    assert!(v1["first_used_at"].is_string() && v1["last_used_at"].is_string(), "{v1}");
    let v2 = version(&r.body, 2);
    assert_eq!((&v2["encryptions"], &v2["principals"], &v2["safe_to_retire"]), (&json!(1), &json!(1), &json!(false)));
    assert_eq!(r.body["recommended_min_decryption_version"], 1, "v1 is still decrypting");

    // A key whose first version only ever encrypted: safe to retire once rotated.
    let quiet = s.create_key("usage").await;
    let r = s.call("POST", &format!("/v1/keys/{quiet}/encrypt"), &s.admin, Some(json!({"plaintext": b64(b"q")}))).await;
    assert_eq!(r.status, 200);
    assert_eq!(s.call("POST", &format!("/v1/keys/{quiet}/rotate"), &s.admin, None).await.status, 200);
    let r = usage(&s, &quiet, &s.admin, "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["days"], 30, "the default window");
    assert_eq!(
        (version(&r.body, 1)["safe_to_retire"].clone(), version(&r.body, 2)["safe_to_retire"].clone()),
        (json!(true), json!(false))
    );
    assert_eq!(r.body["recommended_min_decryption_version"], 2);
    // The recommendation is SetMinDecryptionVersion's input.
    let set = s.post(&format!("/v1/keys/{quiet}/min-decryption-version"), json!({"version": 2})).await;
    assert_eq!(set.status, 200, "{}", set.body);
    assert_eq!(usage(&s, &quiet, &s.admin, "").await.body["recommended_min_decryption_version"], 2);
}

async fn usage_refusals(db: Db) {
    let s = Server::start(db).await;
    let key = s.create_key("usage").await;
    for bad in ["?days=0", "?days=367", "?days=many", "?days=-1", "?window=7"] {
        let r = usage(&s, &key, &s.admin, bad).await;
        assert_eq!((r.status, r.code()), (400, "InvalidRequest"), "{bad}: {}", r.body);
    }
    assert_eq!(usage(&s, &key, "", "").await.status, 401);
    assert_eq!(usage(&s, &key, "not-a-token", "").await.status, 401);
    let stranger = s.token("stranger", &[]);
    let denied = usage(&s, &key, &stranger, "").await;
    assert_eq!((denied.status, denied.code()), (403, "AccessDenied"));
    // An unknown key answers as a forbidden one would, to a stranger.
    let unknown = usage(&s, "00000000-0000-4000-8000-000000000000", &stranger, "").await;
    assert_eq!(unknown.status, 403);
    let trail = s.get("/v1/audit?action=GetKeyUsage&decision=Deny").await;
    assert_eq!(trail.status, 200, "{}", trail.body);
    assert!(trail.body["records"].as_array().is_some_and(|r| r.len() >= 2), "{}", trail.body);
    // A dry run answers the decision only.
    let dry = usage(&s, &key, &s.admin, "?dry_run=true").await;
    assert_eq!(dry.status, 200, "{}", dry.body);
    assert!(dry.body.get("versions").is_none(), "{}", dry.body);
}

async fn namespace_usage_pages_through_its_keys(db: Db) {
    let s = Server::start(db).await;
    let mut keys = Vec::new();
    for _ in 0..3 {
        let k = s.create_key("census").await;
        let r = s.call("POST", &format!("/v1/keys/{k}/encrypt"), &s.admin, Some(json!({"plaintext": b64(b"c")}))).await;
        assert_eq!(r.status, 200);
        keys.push(k);
    }
    let other = s.create_key("elsewhere").await;
    keys.sort();
    let first = s.get("/v1/namespaces/census/usage?days=7&limit=2").await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!((first.s("namespace"), first.body["days"].as_u64()), ("census".to_owned(), Some(7)));
    let token = first.s("next_token");
    let second = s.get(&format!("/v1/namespaces/census/usage?days=7&limit=2&next_token={token}")).await;
    assert_eq!(second.status, 200, "{}", second.body);
    assert!(second.body.get("next_token").is_none(), "{}", second.body);
    let mut seen: Vec<String> = [&first, &second]
        .iter()
        .flat_map(|p| p.body["keys"].as_array().cloned().unwrap_or_default())
        .map(|k| k["key_id"].as_str().unwrap_or_default().to_owned())
        .collect();
    seen.sort();
    assert_eq!(seen, keys, "every key of the namespace once, no other namespace's");
    assert!(!seen.contains(&other));
    let one = &first.body["keys"][0];
    assert_eq!((&one["versions"][0]["encryptions"], &one["versions"][0]["principals"]), (&json!(1), &json!(1)));
    // Refusals: bad window or page size, a bad cursor or namespace, strangers, no credentials.
    for bad in ["?days=0", "?limit=0", "?limit=101", "?next_token=nope", "?cursor=1"] {
        let r = s.get(&format!("/v1/namespaces/census/usage{bad}")).await;
        assert_eq!((r.status, r.code()), (400, "InvalidRequest"), "{bad}: {}", r.body);
    }
    assert_eq!(s.get("/v1/namespaces/Not%20A%20Namespace/usage").await.status, 400);
    let stranger = s.token("stranger", &[]);
    let denied = s.call("GET", "/v1/namespaces/census/usage", &stranger, None).await;
    assert_eq!((denied.status, denied.code()), (403, "AccessDenied"));
    assert_eq!(s.call("GET", "/v1/namespaces/census/usage", "", None).await.status, 401);
}
