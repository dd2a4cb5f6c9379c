//! Namespace default keys over HTTP: `alias/keyward/<namespace>` is made on first use by
//! Encrypt or GenerateDataKey (REST and the AWS API), by the system, for callers the policies
//! let use the namespace's keys; it is then an ordinary key to use and a managed one to
//! administer. Refused callers make nothing; replicas racing to make it end with one key.

use keyward_e2e::{Db, Server, b64, on_both_databases};
use serde_json::{Value, json};

on_both_databases!(the_default_key_is_made_on_first_use_and_managed_by_keyward, refused_callers_make_no_default_key);

const ALIAS: &str = "alias%2Fkeyward%2Fpayments";

async fn audit(s: &Server, query: &str) -> Vec<Value> {
    let r = s.get(&format!("/v1/audit?{query}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["records"].as_array().cloned().unwrap_or_default()
}

async fn the_default_key_is_made_on_first_use_and_managed_by_keyward(db: Db) {
    let s = Server::start(db).await;
    // A member of the namespace's group: the default policies let it use the namespace's keys.
    let app = s.token("app", &["payments"]);
    let dk = s.call("POST", &format!("/v1/keys/{ALIAS}/generate-data-key"), &app, Some(json!({}))).await;
    assert_eq!(dk.status, 200, "{}", dk.body);
    let key = dk.s("key_id");
    // Made once, by the system, naming who asked.
    let made = audit(&s, "action=CreateKey").await;
    assert_eq!(made.len(), 1, "{made:?}");
    assert_eq!(made[0]["principal"], "Keyward::Service::\"keyward:system\"");
    assert_eq!(made[0]["details"]["trigger"], "namespace_default_key");
    assert_eq!(made[0]["details"]["requested_by"], "Keyward::User::\"app\"");
    assert_eq!(made[0]["key_id"], key.as_str());
    let d = s.get(&format!("/v1/keys/{key}")).await.body;
    assert_eq!(
        (d["namespace"].as_str(), d["owner"].as_str()),
        (Some("payments"), Some("Keyward::Service::\"keyward:system\""))
    );
    assert_eq!((d["rotation_period_days"].as_u64(), d["key_spec"].as_str()), (Some(365), Some("AES_256")));
    assert_eq!(d["aliases"], json!(["alias/keyward/payments"]));
    // Another member encrypts under the same key; the data key decrypts.
    let other = s.token("billing", &["payments"]);
    let enc = s.call("POST", &format!("/v1/keys/{ALIAS}/encrypt"), &other, Some(json!({"plaintext": b64(b"x")}))).await;
    assert_eq!((enc.status, enc.s("key_id")), (200, key.clone()), "{}", enc.body);
    let back = s.call("POST", "/v1/decrypt", &app, Some(json!({"ciphertext_blob": dk.s("ciphertext_blob")}))).await;
    assert_eq!((back.status, back.s("plaintext")), (200, dk.s("plaintext")), "{}", back.body);
    assert_eq!(audit(&s, "action=CreateKey").await.len(), 1);

    // The AWS API makes another namespace's default key the same way.
    let access = s
        .post(
            "/v1/access-keys",
            json!({"principal": "Keyward::Service::\"ledger\"", "groups": ["ledger"], "default_namespace": "ledger"}),
        )
        .await;
    assert_eq!(access.status, 201, "{}", access.body);
    let kms = keyward_e2e::kms_client(&s, &access.body);
    let out = kms
        .generate_data_key()
        .key_id("alias/keyward/ledger")
        .key_spec(aws_sdk_kms::types::DataKeySpec::Aes256)
        .send()
        .await
        .expect("GenerateDataKey makes the ledger default key");
    assert!(out.key_id().is_some_and(|arn| arn.contains(":key/")), "{out:?}");
    assert_eq!(audit(&s, "action=CreateKey").await.len(), 2);

    // Administration is Keyward's: 422 UnsupportedOperation even for admins; the reserved
    // aliases cannot be made, repointed or deleted.
    for (method, path) in [
        ("POST", format!("/v1/keys/{key}/disable")),
        ("POST", format!("/v1/keys/{key}/schedule-deletion")),
        ("PATCH", format!("/v1/keys/{key}")),
    ] {
        let r = s.call(method, &path, &s.admin, Some(json!({}))).await;
        assert_eq!((r.status, r.code()), (422, "UnsupportedOperation"), "{method} {path}: {}", r.body);
    }
    let mine = s.create_key("payments").await;
    let r = s.call("PUT", &format!("/v1/aliases/{ALIAS}"), &s.admin, Some(json!({"target_key_id": mine}))).await;
    assert_eq!((r.status, r.code()), (400, "InvalidRequest"), "{}", r.body);
    let r = s.call("DELETE", &format!("/v1/aliases/{ALIAS}"), &s.admin, None).await;
    assert_eq!((r.status, r.code()), (400, "InvalidRequest"), "{}", r.body);
    let r = s.post("/v1/keys", json!({"namespace": "payments", "alias": "alias/keyward/other"})).await;
    assert_eq!((r.status, r.code()), (400, "InvalidRequest"), "{}", r.body);
    assert_eq!(s.get(&format!("/v1/keys/{key}")).await.body["key_state"], "Enabled");
    // Every refusal is in the trail.
    let refused = audit(&s, "action=DisableKey").await;
    assert_eq!(refused[0]["outcome"], "UnsupportedOperation", "{refused:?}");
}

async fn refused_callers_make_no_default_key(db: Db) {
    let s = Server::start(db).await;
    let stranger = s.token("mallory", &["elsewhere"]);
    let path = format!("/v1/keys/{ALIAS}/encrypt");
    let body = || Some(json!({"plaintext": b64(b"x")}));
    let r = s.call("POST", &path, &stranger, body()).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(s.call("POST", &path, "", body()).await.status, 401);
    assert_eq!(s.call("POST", &path, "bogus", body()).await.status, 401);
    // Read operations never make one (an unknown key answers as a forbidden one).
    let member = s.token("app", &["payments"]);
    let r = s.call("GET", &format!("/v1/keys/{ALIAS}"), &member, None).await;
    assert_eq!(r.status, 403, "{}", r.body);
    // An invalid namespace in the alias is an unknown alias, not a key.
    let r = s.call("POST", "/v1/keys/alias%2Fkeyward%2FNOT_A_NAMESPACE/encrypt", &s.admin, body()).await;
    assert_eq!(r.status, 404, "{}", r.body);
    // A dry run answers the decision the first use would get, without making the key.
    let dry = async |token: &str| {
        let r = s.call("POST", &path, token, Some(json!({"plaintext": b64(b"x"), "dry_run": true}))).await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.s("decision")
    };
    assert_eq!(dry(&member).await, "Allow");
    assert_eq!(dry(&stranger).await, "Deny");
    assert!(audit(&s, "action=CreateKey").await.is_empty());
    let listed = s.get("/v1/keys").await;
    assert_eq!(listed.body["keys"].as_array().map(Vec::len), Some(0), "{}", listed.body);
    // The denied attempt is audited as such.
    let denied = audit(&s, "action=Encrypt&decision=Deny").await;
    assert!(!denied.is_empty());
}
