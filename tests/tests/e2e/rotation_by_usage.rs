//! Rotation by usage on one server: a key whose primary version has encrypted
//! `rotate_after_encryptions` times rotates by itself, as the system, once; bad limits and
//! keys that do not rotate are refused. (replicas.rs counts across two servers.)

use std::time::{Duration, Instant};

use keyward_e2e::{Db, Server, b64, on_both_databases};
use serde_json::json;

on_both_databases!(a_worn_key_rotates_by_itself_once);

async fn a_worn_key_rotates_by_itself_once(db: Db) {
    let s = Server::start(db).await;
    let key = s.create_key("worn").await;
    let path = format!("/v1/keys/{key}");
    // Refusals change nothing.
    for bad in [json!(0), json!(4_294_967_297_u64), json!("many")] {
        let r = s.call("PATCH", &path, &s.admin, Some(json!({"rotate_after_encryptions": bad}))).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
    let mac = s.post("/v1/keys", json!({"namespace": "worn", "key_spec": "HMAC_256"})).await.s("key_id");
    let r = s.call("PATCH", &format!("/v1/keys/{mac}"), &s.admin, Some(json!({"rotate_after_encryptions": 5}))).await;
    assert_eq!((r.status, r.code()), (422, "UnsupportedOperation"), "{}", r.body);
    let stranger = s.token("mallory", &["elsewhere"]);
    assert_eq!(s.call("PATCH", &path, &stranger, Some(json!({"rotate_after_encryptions": 5}))).await.status, 403);
    let described = s.get(&path).await.body;
    assert_eq!(described["rotate_after_encryptions"], 1_u64 << 30, "the default: {described}");

    let set = s.call("PATCH", &path, &s.admin, Some(json!({"rotate_after_encryptions": 5}))).await;
    assert_eq!((set.status, set.body["rotate_after_encryptions"].as_u64()), (200, Some(5)), "{}", set.body);
    let started = Instant::now();
    while s.get(&path).await.body["primary_version"] == 1 {
        assert!(started.elapsed() < Duration::from_secs(20), "the key did not rotate by usage");
        let r = s.post(&format!("{path}/encrypt"), json!({"plaintext": b64(b"w")})).await;
        assert_eq!(r.status, 200, "{}", r.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // One rotation, by the system, saying why; the new version starts its own count.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(s.get(&path).await.body["primary_version"], 2);
    let r = s.get(&format!("/v1/audit?action=RotateKey&key_id={key}")).await;
    let records = r.body["records"].as_array().cloned().unwrap_or_default();
    assert_eq!(records.len(), 1, "{}", r.body);
    assert_eq!(records[0]["principal"], "Keyward::Service::\"keyward:system\"");
    assert_eq!(records[0]["details"]["trigger"], "rotate_after_encryptions");
    // Back to the default with null.
    let reset = s.call("PATCH", &path, &s.admin, Some(json!({"rotate_after_encryptions": null}))).await;
    assert_eq!(reset.body["rotate_after_encryptions"], 1_u64 << 30, "{}", reset.body);
}
