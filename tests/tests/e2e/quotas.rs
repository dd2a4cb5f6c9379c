//! Request quotas over HTTP: a principal over its limit gets `429 RateLimited` with the
//! `Retry-After` its bucket needs, on the REST and the AWS-compatible API; the refusal is
//! audited and runs nothing; other principals are not held back; a bad `[quotas]` table stops
//! the server from starting.

use keyward_e2e::{Db, Server, b64, on_both_databases};
use serde_json::json;

const CONFIG: &str = "[quotas]\nper_principal = { rate = 0.2, burst = 3 }\n";

on_both_databases!(a_principal_over_its_quota_is_refused_with_retry_after_and_audited);

async fn a_principal_over_its_quota_is_refused_with_retry_after_and_audited(db: Db) {
    let s = Server::start_with_config(db, CONFIG, &[]).await;
    let ops = s.token("ops", &["admins"]);
    // CreateKey spends one of ops's three.
    let created = s.call("POST", "/v1/keys", &ops, Some(json!({"namespace": "quota"}))).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let key = created.s("key_id");
    let path = format!("/v1/keys/{key}/encrypt");
    let encrypt = async |token: &str| s.call("POST", &path, token, Some(json!({"plaintext": b64(b"q")}))).await;
    assert_eq!(encrypt(&ops).await.status, 200);
    assert_eq!(encrypt(&ops).await.status, 200);
    let refused = encrypt(&ops).await;
    assert_eq!((refused.status, refused.code()), (429, "RateLimited"), "{}", refused.body);
    // One token refills in 5 s at 0.2/s.
    let retry = refused.headers.get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u32>().ok());
    assert!(retry.is_some_and(|r| (1..=5).contains(&r)), "{:?}", refused.headers);
    assert!(!refused.body.to_string().contains("principal quota"), "the bucket's name stays in the audit trail");
    // Another principal has its own bucket.
    let other = s.token("ops2", &["admins"]);
    assert_eq!(encrypt(&other).await.status, 200);
    // The refusal is in the trail as an allowed decision that did not run.
    let trail = s.get(&format!("/v1/audit?action=Encrypt&principal={}", urlencode("Keyward::User::\"ops\""))).await;
    assert_eq!(trail.status, 200, "{}", trail.body);
    let records = trail.body["records"].as_array().cloned().unwrap_or_default();
    let outcomes: Vec<_> = records.iter().filter_map(|r| r["outcome"].as_str()).collect();
    assert_eq!(outcomes.iter().filter(|o| **o == "Success").count(), 2, "{outcomes:?}");
    let limited: Vec<_> = records.iter().filter(|r| r["outcome"] == "RateLimited").collect();
    assert_eq!(limited.len(), 1, "{records:?}");
    assert_eq!(limited[0]["decision"].as_str(), Some("Allow"));
    // The private reason names the bucket (the trail keeps it; the API does not show it).
    let stored = s.audit_store().await.query(&keyward_store::AuditQuery { limit: 10_000, ..Default::default() }).await;
    let stored = stored.unwrap_or_else(|e| panic!("{e}"));
    let reasons: Vec<_> = stored.iter().filter(|r| r.outcome == "RateLimited").map(|r| r.reason.clone()).collect();
    assert_eq!(reasons, vec![Some("principal quota exhausted".to_owned())]);
    // Nothing was encrypted for the refused request: two by ops and one by ops2.
    let versions = s.call("GET", &format!("/v1/keys/{key}/versions"), &s.admin, None).await;
    assert_eq!(versions.body["versions"][0]["encryptions"], 3, "{}", versions.body);
    // Missing credentials are refused before any quota (and spend none).
    assert_eq!(encrypt("").await.status, 401);
}

#[tokio::test]
async fn the_aws_api_answers_throttling() {
    use aws_sdk_kms::error::ProvideErrorMetadata;
    let s = Server::start_with_config(Db::Sqlite, "[quotas]\nper_key = { rate = 0.1, burst = 1 }\n", &[]).await;
    let key = s.create_key("quota").await;
    assert_eq!(s.post(&format!("/v1/keys/{key}/encrypt"), json!({"plaintext": b64(b"q")})).await.status, 200);
    let access = s
        .post(
            "/v1/access-keys",
            json!({"principal": "Keyward::User::\"ops\"", "groups": ["admins"], "default_namespace": "quota"}),
        )
        .await;
    assert_eq!(access.status, 201, "{}", access.body);
    let kms = keyward_e2e::kms_client(&s, &access.body);
    let err = kms.encrypt().key_id(&key).plaintext(aws_sdk_kms::primitives::Blob::new(b"q".to_vec())).send().await;
    let err = err.expect_err("the key's one request per 10 s is spent");
    assert_eq!(err.code(), Some("ThrottlingException"), "{err:?}");
}

#[test]
fn a_bad_quota_table_stops_the_server() {
    for (toml, expected) in [
        ("[quotas]\nper_key = { rate = 0 }\n", "quotas.per_key"),
        ("[quotas]\nper_principal = { rate = 5, burst = 0.5 }\n", "quotas.per_principal"),
        ("[quotas]\nreplicas = 0\n", "quotas.replicas"),
        ("[quotas]\nper_tenant = { rate = 5 }\n", "per_tenant"),
    ] {
        let stderr = keyward_e2e::refuses_to_start(toml);
        assert!(stderr.contains(expected), "{toml}: {stderr}");
    }
}

fn urlencode(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}
