//! The AWS KMS-compatible API through the AWS SDK for Rust (an unchanged AWS client): access
//! keys, the operations, the error names SDKs dispatch on, REST/AWS interchange, and the
//! audit record each request leaves. The Python, CLI, Encryption SDK and sops clients run in
//! scripts/test-aws-clients.sh.

use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::primitives::Blob;
use keyward_e2e::{Db, Server, b64, on_both_databases, unb64};
use serde_json::{Value, json};

on_both_databases!(sdk_round_trip_and_errors, access_keys_are_governed);

async fn access_key(s: &Server, principal: &str, groups: &[&str], ns: &str) -> Value {
    let r = s.post("/v1/access-keys", json!({"principal": principal, "groups": groups, "default_namespace": ns})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body
}

fn client(s: &Server, key: &Value) -> aws_sdk_kms::Client {
    keyward_e2e::kms_client(s, key)
}

async fn records(s: &Server) -> Vec<keyward_store::entity::audit_record::Model> {
    s.audit_store().await.query(&keyward_store::AuditQuery { limit: 100_000, ..Default::default() }).await.unwrap()
}

async fn sdk_round_trip_and_errors(db: Db) {
    let s = Server::start(db).await;
    let alice = access_key(&s, "Keyward::User::\"alice\"", &["payments"], "payments").await;
    let bob = access_key(&s, "Keyward::User::\"bob\"", &["other"], "other").await;
    let (kms, other) = (client(&s, &alice), client(&s, &bob));

    let meta = kms.create_key().description("sdk").send().await.unwrap().key_metadata.unwrap();
    let arn = meta.arn.clone().unwrap();
    assert!(arn.starts_with("arn:aws:kms:us-east-1:000000000000:key/"), "{arn}");
    let described = s.get(&format!("/v1/keys/{}", meta.key_id)).await;
    assert_eq!(
        (described.s("namespace"), described.s("owner")),
        ("payments".into(), "Keyward::User::\"alice\"".into())
    );

    // The `keyward:namespace` tag picks the namespace (and is not kept as a tag); policies
    // still decide: alice may create keys only where her groups allow.
    let tagged = kms
        .create_key()
        .tags(aws_sdk_kms::types::Tag::builder().tag_key("keyward:namespace").tag_value("payments").build().unwrap())
        .tags(aws_sdk_kms::types::Tag::builder().tag_key("team").tag_value("a").build().unwrap())
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    let r = s.get(&format!("/v1/keys/{}", tagged.key_id)).await;
    assert_eq!((r.s("namespace"), r.body["tags"].clone()), ("payments".into(), json!({"team": "a"})));
    let e = kms
        .create_key()
        .tags(aws_sdk_kms::types::Tag::builder().tag_key("keyward:namespace").tag_value("other").build().unwrap())
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.as_service_error().unwrap().code(), Some("AccessDeniedException"));

    // Encrypt through AWS, decrypt through REST, and back.
    let enc = kms
        .encrypt()
        .key_id(&arn)
        .plaintext(Blob::new(b"hello".to_vec()))
        .encryption_context("t", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(enc.key_id.as_deref(), Some(arn.as_str()));
    let blob = b64(enc.ciphertext_blob.unwrap().as_ref());
    let r = s.post("/v1/decrypt", json!({"ciphertext_blob": blob, "encryption_context": {"t": "1"}})).await;
    assert_eq!(unb64(&r.s("plaintext")), b"hello");
    let r = s.post(&format!("/v1/keys/{}/encrypt", meta.key_id), json!({"plaintext": b64(b"rest")})).await;
    let dec = kms.decrypt().ciphertext_blob(Blob::new(unb64(&r.s("ciphertext_blob")))).send().await.unwrap();
    assert_eq!((dec.plaintext.unwrap().as_ref(), dec.key_id.as_deref()), (b"rest".as_slice(), Some(arn.as_str())));

    // Error names and statuses.
    let code = |e: &dyn ProvideErrorMetadata| e.code().unwrap_or("").to_owned();
    let e = kms.decrypt().ciphertext_blob(Blob::new(unb64(&blob))).send().await.unwrap_err();
    assert_eq!(code(e.as_service_error().unwrap()), "InvalidCiphertextException", "the context is missing");
    let e = other.encrypt().key_id(&arn).plaintext(Blob::new(b"x".to_vec())).send().await.unwrap_err();
    assert_eq!(code(e.as_service_error().unwrap()), "AccessDeniedException");
    // A key that does not exist looks like one the caller may not use; to an admin it is absent.
    let e = kms.describe_key().key_id("alias/nope").send().await.unwrap_err();
    assert_eq!(code(e.as_service_error().unwrap()), "AccessDeniedException");
    let root = client(&s, &access_key(&s, "Keyward::User::\"root\"", &["admins"], "payments").await);
    let e = root.describe_key().key_id("alias/nope").send().await.unwrap_err();
    assert_eq!(code(e.as_service_error().unwrap()), "NotFoundException");
    kms.disable_key().key_id(&arn).send().await.unwrap();
    let e = kms.encrypt().key_id(&arn).plaintext(Blob::new(b"x".to_vec())).send().await.unwrap_err();
    assert_eq!(code(e.as_service_error().unwrap()), "DisabledException");
    let raw = e.raw_response().unwrap();
    assert_eq!(raw.status().as_u16(), 400);
    assert_eq!(raw.headers().get("content-type"), Some("application/x-amz-json-1.1"));
    assert!(raw.headers().get("x-amzn-requestid").is_some() && raw.headers().get("date").is_some());
    kms.enable_key().key_id(&arn).send().await.unwrap();
    let e = kms.encrypt().key_id(&arn).plaintext(Blob::new(b"x".to_vec())).dry_run(true).send().await.unwrap_err();
    assert_eq!(code(e.as_service_error().unwrap()), "DryRunOperationException");

    // Every request left one record, marked as coming through the AWS API, with the decision
    // the REST API would give.
    let all = records(&s).await;
    let aws: Vec<_> = all.iter().filter(|r| r.interface.as_deref() == Some("aws-kms")).collect();
    assert_eq!(aws.len(), 13, "{aws:#?}");
    let denied = aws.iter().find(|r| r.outcome == "AccessDenied" && r.action == "Encrypt").unwrap();
    assert_eq!((denied.principal.as_str(), denied.decision.as_deref()), ("Keyward::User::\"bob\"", Some("Deny")));
    let dry = aws.iter().find(|r| r.dry_run).unwrap();
    assert!(dry.determining_policies.contains("owner-user"), "alice owns the key: {}", dry.determining_policies);
    let rest_records = all.iter().filter(|r| r.interface.is_none() && r.action == "Decrypt").count();
    assert_eq!(rest_records, 1);

    // Records with an interface still chain and verify.
    let out = s.audit_verify();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_issues_lists_and_deletes_access_keys() {
    let s = Server::start(Db::Sqlite).await;
    let cli = |args: &[&str]| {
        std::process::Command::new(keyward_e2e::keyward_bin())
            .arg("access-key")
            .args(args)
            .args(["--server", &s.base])
            .env("KEYWARD_TOKEN", &s.admin)
            .output()
            .unwrap()
    };
    let out = cli(&["create", "--principal", "Keyward::User::\"ann\"", "--group", "g1", "--namespace", "ns1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = created["access_key_id"].as_str().unwrap().to_owned();
    assert_eq!(created["secret_access_key"].as_str().unwrap().len(), 40);
    let out = cli(&["list"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success()
            && table.contains(&id)
            && table.contains("Keyward::User::\"ann\"")
            && table.contains("ns1"),
        "{table}"
    );
    assert!(!table.contains(created["secret_access_key"].as_str().unwrap()), "no secret in a listing");
    assert!(cli(&["delete", &id]).status.success());
    let out = cli(&["delete", &id]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("NotFound"));
    let out = cli(&["list", "--json"]);
    assert!(out.status.success() && !String::from_utf8_lossy(&out.stdout).contains(&id));
}

async fn access_keys_are_governed(db: Db) {
    let s = Server::start(db).await;
    let key = access_key(&s, "Keyward::Service::\"ci\"", &["payments"], "payments").await;
    let id = key["access_key_id"].as_str().unwrap().to_owned();
    assert_eq!(key["secret_access_key"].as_str().unwrap().len(), 40);

    // Listed without the secret; refused to anyone but admins; bad input refused.
    let list = s.get("/v1/access-keys").await;
    assert_eq!(list.body["access_keys"][0]["access_key_id"], id.as_str());
    assert!(!list.body.to_string().contains(key["secret_access_key"].as_str().unwrap()));
    let bob = s.token("bob", &["payments"]);
    let denied = s
        .call(
            "POST",
            "/v1/access-keys",
            &bob,
            Some(json!({"principal": "Keyward::User::\"bob\"", "groups": ["admins"], "default_namespace": "x"})),
        )
        .await;
    assert_eq!(denied.code(), "AccessDenied", "nobody mints credentials for themselves");
    assert_eq!(s.call("GET", "/v1/access-keys", &bob, None).await.code(), "AccessDenied");
    assert_eq!(s.call("DELETE", &format!("/v1/access-keys/{id}"), &bob, None).await.code(), "AccessDenied");
    for bad in [
        json!({"principal": "alice", "default_namespace": "x"}),
        json!({"principal": "Keyward::User::\"a\"", "default_namespace": "Bad NS"}),
        json!({"principal": "Keyward::User::\"a\""}),
    ] {
        assert_eq!(s.post("/v1/access-keys", bad).await.code(), "InvalidRequest");
    }
    assert_eq!(s.get("/v1/access-keys?next_token=nope").await.code(), "InvalidRequest");

    // The secret is sealed in the database, never stored in clear.
    let db_bytes = std::fs::read(s.data_dir.path().join("keyward.db")).unwrap_or_default();
    let secret = key["secret_access_key"].as_str().unwrap().as_bytes();
    assert!(db_bytes.is_empty() || !db_bytes.windows(secret.len()).any(|w| w == secret));

    // It works, then stops working once deleted.
    let kms = client(&s, &key);
    kms.list_keys().send().await.unwrap();
    assert_eq!(s.call("DELETE", &format!("/v1/access-keys/{id}"), &s.admin, None).await.status, 204);
    assert_eq!(s.call("DELETE", &format!("/v1/access-keys/{id}"), &s.admin, None).await.code(), "NotFound");
    let e = kms.list_keys().send().await.unwrap_err();
    assert_eq!(e.as_service_error().unwrap().code(), Some("UnrecognizedClientException"));
    let all = records(&s).await;
    let last = all.last().unwrap();
    assert_eq!(
        (last.outcome.as_str(), last.principal.as_str(), last.interface.as_deref()),
        ("Unauthenticated", "anonymous", Some("aws-kms"))
    );
    let actions: Vec<_> = all.iter().map(|r| r.action.as_str()).collect();
    for a in ["CreateAccessKey", "ListAccessKeys", "DeleteAccessKey"] {
        assert!(actions.contains(&a), "{a} is audited: {actions:?}");
    }
}
