//! Aliases work wherever a key id does.

use keyward_e2e::{Db, Server, b64, on_both_databases};
use serde_json::json;

on_both_databases!(aliases_everywhere);

async fn aliases_everywhere(db: Db) {
    let s = Server::start(db).await;
    let a = s.create_key("al").await;
    let b = s.create_key("al").await;
    let put = async |name: &str, target: &str| {
        let path = format!("/v1/aliases/{}", name.replace('/', "%2F"));
        s.call("PUT", &path, &s.admin, Some(json!({"target_key_id": target}))).await
    };
    let r = put("alias/app", &a).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body, json!({"alias_name": "alias/app", "target_key_id": a}));
    assert_eq!(put("alias/app", &a).await.status, 200, "idempotent");
    assert_eq!(put("alias/bad name", &a).await.code(), "InvalidRequest");
    assert_eq!(put("nope", &a).await.code(), "InvalidRequest");
    assert_eq!(put("alias/x", &uuid::Uuid::new_v4().to_string()).await.code(), "NotFound");
    // An alias may name the target too.
    assert_eq!(put("alias/app2", "alias/app").await.body["target_key_id"], a);

    // In paths and in bodies.
    let r = s.post("/v1/keys/alias%2Fapp/encrypt", json!({"plaintext": b64(b"hi")})).await;
    assert_eq!(r.s("key_id"), a);
    let blob = r.s("ciphertext_blob");
    let r = s.post("/v1/decrypt", json!({"ciphertext_blob": blob, "key_id": "alias/app"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = s.post("/v1/re-encrypt", json!({"ciphertext_blob": blob, "destination_key_id": "alias/app2"})).await;
    assert_eq!(r.s("key_id"), a);
    assert_eq!(s.post("/v1/keys/alias%2Fapp/generate-data-key", json!({})).await.status, 200);
    assert_eq!(s.post("/v1/keys/alias%2Fapp/rotate", json!({})).await.body["primary_version"], 2);

    // Repoint: the alias follows, old blobs still decrypt under their own key.
    assert_eq!(put("alias/app", &b).await.status, 200);
    assert_eq!(s.post("/v1/keys/alias%2Fapp/encrypt", json!({"plaintext": b64(b"hi")})).await.s("key_id"), b);
    assert_eq!(s.post("/v1/decrypt", json!({"ciphertext_blob": blob})).await.s("key_id"), a);

    // Listing, filtered by key.
    let all = s.get("/v1/aliases").await;
    assert_eq!(all.body["aliases"].as_array().unwrap().len(), 2);
    let of_b = s.get(&format!("/v1/aliases?key_id={b}")).await;
    assert_eq!(of_b.body["aliases"], json!([{"alias_name": "alias/app", "target_key_id": b}]));
    let page = s.get("/v1/aliases?limit=1").await;
    let next = page.s("next_token");
    let rest = s.get(&format!("/v1/aliases?limit=1&next_token={}", next.replace('/', "%2F"))).await;
    assert_eq!(rest.body["aliases"][0]["alias_name"], "alias/app2");
    assert_eq!(s.get(&format!("/v1/keys/{b}")).await.body["aliases"], json!(["alias/app"]));

    // Delete.
    let r = s.call("DELETE", "/v1/aliases/alias%2Fapp", &s.admin, None).await;
    assert_eq!(r.status, 204);
    assert_eq!(s.call("DELETE", "/v1/aliases/alias%2Fapp", &s.admin, None).await.code(), "NotFound");
    assert_eq!(s.post("/v1/keys/alias%2Fapp/encrypt", json!({"plaintext": b64(b"hi")})).await.code(), "NotFound");
    assert_eq!(s.get(&format!("/v1/keys/{b}")).await.body["key_state"], "Enabled", "the key is untouched");
}

/// Two principals race to create the same alias on their own keys: one creates it, the other
/// gets a conflict (or, if it came second, a refusal to repoint a key it cannot manage). It
/// never silently repoints the other's alias.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_creates_never_repoint_an_alias_without_a_decision() {
    let s = Server::start(Db::Sqlite).await;
    let (ann, ben) = (s.token("ann", &["ns-ann"]), s.token("ben", &["ns-ben"]));
    let key_of = async |token: &str, ns: &str| {
        let r = s.call("POST", "/v1/keys", token, Some(json!({"namespace": ns}))).await;
        assert_eq!(r.status, 201, "{}", r.body);
        r.s("key_id")
    };
    let (a, b) = (key_of(&ann, "ns-ann").await, key_of(&ben, "ns-ben").await);
    for round in 0..40 {
        let path = format!("/v1/aliases/alias%2Frace-{round}");
        let (ra, rb) = tokio::join!(
            s.call("PUT", &path, &ann, Some(json!({"target_key_id": a}))),
            s.call("PUT", &path, &ben, Some(json!({"target_key_id": b}))),
        );
        let ok = [ra.status, rb.status].iter().filter(|st| (200..300).contains(*st)).count();
        assert_eq!(ok, 1, "round {round}: exactly one wins ({} {}, {} {})", ra.status, ra.body, rb.status, rb.body);
        for loser in [&ra, &rb].into_iter().filter(|r| !(200..300).contains(&r.status)) {
            assert!(["Conflict", "AccessDenied"].contains(&loser.code()), "{}", loser.body);
        }
        let winner_key = if (200..300).contains(&ra.status) { &a } else { &b };
        let now = s.get(&format!("/v1/aliases?key_id={winner_key}")).await;
        assert!(now.body.to_string().contains(&format!("race-{round}")), "the winner's key holds the alias");
    }
}
