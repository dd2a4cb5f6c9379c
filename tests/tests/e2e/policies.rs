//! Policy-as-code end to end: tag and context conditions, forbid over permit, an erroring
//! forbid, dry runs, Authorize, GetPolicies, reload (API and SIGHUP) with a broken file, and
//! the cross-namespace matrix.

use std::time::Duration;

use keyward_e2e::{Db, Server, b64, repo_root};
use serde_json::{Value, json};

const EXTRA: &[(&str, &str)] = &[
    (
        "tags.cedar",
        r#"@id("sre-use-prod")
permit (principal in Keyward::Group::"sre", action in Keyward::Action::"UseKey", resource is Keyward::Key)
when { resource.hasTag("env") && resource.getTag("env") == "prod" };"#,
    ),
    (
        "tenants.cedar",
        r#"@id("acme-encrypts-its-own")
permit (principal in Keyward::Group::"tenant-acme", action == Keyward::Action::"Encrypt", resource is Keyward::Key)
when { context.encryption_context.hasTag("tenant") && context.encryption_context.getTag("tenant") == "acme" };"#,
    ),
    (
        "frozen.cedar",
        r#"@id("frozen-keys")
forbid (principal, action in Keyward::Action::"UseKey", resource is Keyward::Key)
when { resource.hasTag("frozen") };"#,
    ),
    (
        "managers.cedar",
        r#"@id("key-managers-grant")
permit (principal in Keyward::Group::"key-managers", action in [Keyward::Action::"CreateGrant", Keyward::Action::"Decrypt"], resource is Keyward::Key);"#,
    ),
    (
        "broken-forbid.cedar",
        r#"@id("overflowing-forbid")
forbid (principal, action, resource is Keyward::Key)
when { resource.hasTag("legacy") && 9223372036854775807 + 1 > 0 };"#,
    ),
];

/// The repository's policies plus `EXTRA`, in a fresh directory.
fn policy_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(repo_root().join("policies")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    std::fs::create_dir(dir.path().join("tests")).unwrap();
    for entry in std::fs::read_dir(repo_root().join("policies/tests")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join("tests").join(path.file_name().unwrap())).unwrap();
    }
    for (name, text) in EXTRA {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

async fn key_with_tags(s: &Server, tags: Value) -> String {
    let r = s.post("/v1/keys", json!({"namespace": "payments", "tags": tags})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.s("key_id")
}

fn enc(key: &str) -> String {
    format!("/v1/keys/{key}/encrypt")
}

async fn latest_record(s: &Server) -> keyward_store::entity::audit_record::Model {
    let records =
        s.audit_store().await.query(&keyward_store::AuditQuery { limit: 100_000, ..Default::default() }).await.unwrap();
    records.last().cloned().expect("a record")
}

#[tokio::test]
async fn conditions_forbids_dry_runs_and_reloads() {
    let dir = policy_dir();
    let dir_arg = dir.path().display().to_string();
    // The set holds a forbid that errors on purpose (an error must deny): reloads are not
    // proved here, so it can be reloaded (policy_proofs.rs covers the proofs).
    let s = Server::start_with_config(Db::Sqlite, "policy_proofs = \"off\"\n", &["--policies", &dir_arg]).await;
    let plaintext = json!({"plaintext": b64(b"hello")});

    // Tag-based condition.
    let prod = key_with_tags(&s, json!({"env": "prod"})).await;
    let dev = key_with_tags(&s, json!({"env": "dev"})).await;
    let sre = s.token("sam", &["sre"]);
    assert_eq!(s.call("POST", &enc(&prod), &sre, Some(plaintext.clone())).await.status, 200);
    assert_eq!(s.call("POST", &enc(&dev), &sre, Some(plaintext.clone())).await.code(), "AccessDenied");

    // Encryption-context condition.
    let acme = s.token("ann", &["tenant-acme"]);
    let with_ctx = |t: &str| json!({"plaintext": b64(b"x"), "encryption_context": {"tenant": t}});
    assert_eq!(s.call("POST", &enc(&dev), &acme, Some(with_ctx("acme"))).await.status, 200);
    assert_eq!(s.call("POST", &enc(&dev), &acme, Some(with_ctx("globex"))).await.code(), "AccessDenied");
    assert_eq!(s.call("POST", &enc(&dev), &acme, Some(plaintext.clone())).await.code(), "AccessDenied");

    // A forbid beats any permit, even admins-all.
    let frozen = key_with_tags(&s, json!({"frozen": "yes"})).await;
    let r = s.post(&enc(&frozen), plaintext.clone()).await;
    assert_eq!((r.status, r.code()), (403, "AccessDenied"));
    let record = latest_record(&s).await;
    assert_eq!(record.determining_policies, r#"["frozen-keys"]"#);

    // An erroring forbid denies, and the error is on record.
    let legacy = key_with_tags(&s, json!({"legacy": "1"})).await;
    assert_eq!(s.post(&enc(&legacy), plaintext.clone()).await.code(), "AccessDenied");
    let record = latest_record(&s).await;
    assert_eq!(record.decision.as_deref(), Some("Deny"));
    assert!(record.policy_errors.contains("overflowing-forbid"), "{}", record.policy_errors);

    // A granter never gives more than it holds: key managers may grant Decrypt, not Encrypt.
    let manager = s.token("mia", &["key-managers"]);
    let grants = format!("/v1/keys/{dev}/grants");
    let grant = |op: &str| json!({"grantee": "Keyward::User::\"carl\"", "operations": [op]});
    let r = s.call("POST", &grants, &manager, Some(grant("Encrypt"))).await;
    assert_eq!((r.status, r.code()), (403, "AccessDenied"), "{}", r.body);
    assert_eq!(s.call("POST", &grants, &manager, Some(grant("Decrypt"))).await.status, 201);

    // Dry runs answer the decision, do nothing, and are audited as dry runs.
    let mut dry = plaintext.clone();
    dry["dry_run"] = json!(true);
    let r = s.post(&enc(&prod), dry.clone()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["decision"], "Allow");
    assert_eq!(r.body["determining_policies"], json!(["admins-all", "owner-user"]), "every satisfied permit");
    assert!(r.body.get("ciphertext_blob").is_none());
    assert!(r.body["policy_version"].as_str().unwrap().starts_with("sha256:"));
    let record = latest_record(&s).await;
    assert!(record.dry_run && record.decision.as_deref() == Some("Allow"));
    let versions = s.get(&format!("/v1/keys/{prod}/versions")).await;
    let encryptions = versions.body["versions"][0]["encryptions"].as_u64().unwrap();
    let r = s.call("POST", &enc(&dev), &sre, Some(dry.clone())).await;
    assert_eq!((r.status, r.body["decision"].as_str()), (200, Some("Deny")), "a denied dry run is still 200");
    let r = s.post(&enc(&legacy), dry.clone()).await;
    assert_eq!(r.body["decision"], "Deny");
    assert!(!r.body["errors"].as_array().unwrap().is_empty());
    let before = s.get("/v1/keys?namespace=payments").await.body["keys"].as_array().unwrap().len();
    let r = s.post("/v1/keys", json!({"namespace": "payments", "dry_run": true})).await;
    assert_eq!(r.body["decision"], "Allow");
    let r = s.call("POST", &format!("/v1/keys/{prod}/disable?dry_run=true"), &s.admin, None).await;
    assert_eq!(r.body["decision"], "Allow");
    assert_eq!(s.get(&format!("/v1/keys/{prod}")).await.body["key_state"], "Enabled", "dry run changed nothing");
    // A listing across namespaces filters by many decisions: its dry run is a clear 400.
    let r = s.get("/v1/keys?dry_run=true").await;
    assert_eq!((r.status, r.code()), (400, "InvalidRequest"), "{}", r.body);
    let r = s.get("/v1/keys?namespace=payments&dry_run=true").await;
    assert_eq!((r.status, r.body["decision"].as_str()), (200, Some("Allow")), "{}", r.body);
    assert_eq!(s.get("/v1/keys?namespace=payments").await.body["keys"].as_array().unwrap().len(), before);
    tokio::time::sleep(Duration::from_millis(1200)).await; // usage counters flush every second
    let versions = s.get(&format!("/v1/keys/{prod}/versions")).await;
    assert_eq!(versions.body["versions"][0]["encryptions"].as_u64().unwrap(), encryptions, "no use counted");

    // Authorize: about oneself freely; about others only when a policy allows it.
    let ask = |principal: Option<&str>, groups: &[&str]| {
        let mut b = json!({"action": "Encrypt", "resource": format!("Keyward::Key::\"{prod}\"")});
        if let Some(p) = principal {
            b["principal"] = json!(p);
            b["groups"] = json!(groups);
        }
        b
    };
    let r = s.call("POST", "/v1/authorize", &sre, Some(ask(None, &[]))).await;
    assert_eq!((r.status, r.body["decision"].as_str()), (200, Some("Allow")), "{}", r.body);
    assert_eq!(r.body["determining_policies"], json!(["sre-use-prod"]));
    let r = s.call("POST", "/v1/authorize", &sre, Some(ask(Some(r#"Keyward::User::"ann""#), &[]))).await;
    assert_eq!((r.status, r.code()), (403, "AccessDenied"), "asking about others needs Authorize");
    // Asking "about oneself" with made-up groups, address or justification is asking about
    // someone else: it needs Authorize, or it would reveal decisions on keys one cannot see.
    let self_uid = r#"Keyward::User::"sam""#;
    let r = s.call("POST", "/v1/authorize", &sre, Some(ask(Some(self_uid), &["sre", "admins"]))).await;
    assert_eq!((r.status, r.code()), (403, "AccessDenied"), "made-up groups: {}", r.body);
    let mut forged = ask(None, &[]);
    forged["context"] = json!({"justification": "made up"});
    assert_eq!(s.call("POST", "/v1/authorize", &sre, Some(forged)).await.code(), "AccessDenied");
    let mut forged = ask(None, &[]);
    forged["context"] = json!({"source_ip": "10.9.8.7"});
    assert_eq!(s.call("POST", "/v1/authorize", &sre, Some(forged)).await.code(), "AccessDenied");
    let r = s.call("POST", "/v1/authorize", &sre, Some(ask(Some(self_uid), &["sre"]))).await;
    assert_eq!((r.status, r.body["decision"].as_str()), (200, Some("Allow")), "one's real attributes: {}", r.body);
    let r = s.post("/v1/authorize", ask(Some(r#"Keyward::User::"zoe""#), &["sre"])).await;
    assert_eq!(r.body["decision"], "Allow", "{}", r.body);
    let r = s.post("/v1/authorize", ask(Some(r#"Keyward::User::"zoe""#), &[])).await;
    assert_eq!(r.body["decision"], "Deny");
    let r = s
        .post(
            "/v1/authorize",
            json!({"action": "Encrypt", "resource": format!("Keyward::Key::\"{dev}\""), "principal": "Keyward::User::\"ann\"",
                   "groups": ["tenant-acme"], "context": {"encryption_context": {"tenant": "acme"}}}),
        )
        .await;
    assert_eq!(r.body["decision"], "Allow", "{}", r.body);
    assert_eq!(s.post("/v1/authorize", json!({"action": "Fly", "resource": "x"})).await.code(), "InvalidRequest");

    // GetPolicies shows the active set.
    let r = s.get("/v1/policies").await;
    let version = r.s("policy_version");
    let ids: Vec<&str> = r.body["policies"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap()).collect();
    for id in ["admins-all", "frozen-keys", "overflowing-forbid", "protected-keys-need-justification"] {
        assert!(ids.contains(&id), "{id} in {ids:?}");
    }
    assert!(r.s("schema").contains("entity Key"));
    assert_eq!(s.call("GET", "/v1/policies", &sre, None).await.code(), "AccessDenied");

    // A broken file: reload refuses with the validator's reasons and the old set stays.
    std::fs::write(
        dir.path().join("zz-broken.cedar"),
        r#"@id("typo") permit(principal, action, resource) when { resource.colour == "red" };"#,
    )
    .unwrap();
    let r = s.call("POST", "/v1/policies/reload", &s.admin, None).await;
    assert_eq!((r.status, r.code()), (400, "InvalidRequest"), "{}", r.body);
    assert!(r.s("detail").contains("colour"), "{}", r.body);
    assert_eq!(s.get("/v1/policies").await.s("policy_version"), version);
    assert_eq!(s.call("POST", &enc(&prod), &sre, Some(plaintext.clone())).await.status, 200, "old set in force");

    // A fixed set loads by API...
    std::fs::remove_file(dir.path().join("zz-broken.cedar")).unwrap();
    std::fs::remove_file(dir.path().join("tags.cedar")).unwrap();
    let r = s.call("POST", "/v1/policies/reload", &s.admin, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let reloaded = r.s("policy_version");
    assert_ne!(reloaded, version);
    assert_eq!(s.call("POST", &enc(&prod), &sre, Some(plaintext.clone())).await.code(), "AccessDenied");
    // ...and on SIGHUP.
    std::fs::write(dir.path().join("tags.cedar"), EXTRA[0].1).unwrap();
    s.signal("HUP");
    let mut now = String::new();
    for _ in 0..50 {
        now = s.get("/v1/policies").await.s("policy_version");
        if now != reloaded {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(now, version, "SIGHUP reloaded the original set");
    assert_eq!(s.call("POST", &enc(&prod), &sre, Some(plaintext)).await.status, 200);
}

#[tokio::test]
async fn an_invalid_policy_directory_refuses_to_start() {
    let dir = policy_dir();
    std::fs::write(dir.path().join("bad.cedar"), "permit(principal, action, resource);").unwrap();
    let data = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(keyward_e2e::keyward_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--policies"])
        .arg(dir.path())
        .arg("--data-dir")
        .arg(data.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("@id"), "{stderr}");
}

/// Every action on another namespace's keys, by every role, is denied and audited.
#[tokio::test]
async fn cross_namespace_matrix() {
    let s = Server::start(Db::Sqlite).await;
    let namespaces = ["ns-a", "ns-b", "ns-c"];
    let mut keys = Vec::new();
    let mut blobs = Vec::new();
    let mut principals = Vec::new();
    for ns in namespaces {
        let owner = s.token(&format!("{ns}-owner"), &[ns]);
        let r = s.call("POST", "/v1/keys", &owner, Some(json!({"namespace": ns}))).await;
        assert_eq!(r.status, 201);
        let key = r.s("key_id");
        let blob = s.call("POST", &enc(&key), &owner, Some(json!({"plaintext": b64(b"x")}))).await.s("ciphertext_blob");
        principals.push((ns, "owner", owner));
        principals.push((ns, "member", s.token(&format!("{ns}-member"), &[ns])));
        principals.push((ns, "service", service_token(&s, &format!("{ns}-svc"), ns)));
        keys.push(key);
        blobs.push(blob);
    }
    let before = s.audit_count().await;
    let mut attempts = 0u64;
    for (own, role, token) in &principals {
        let own_index = namespaces.iter().position(|n| n == own).unwrap();
        for (i, ns) in namespaces.iter().enumerate().filter(|(i, _)| *i != own_index) {
            let k = &keys[i];
            let calls: Vec<(&str, String, Option<Value>)> = vec![
                ("GET", format!("/v1/keys/{k}"), None),
                ("PATCH", format!("/v1/keys/{k}"), Some(json!({"description": "x"}))),
                ("POST", format!("/v1/keys/{k}/enable"), None),
                ("POST", format!("/v1/keys/{k}/disable"), None),
                ("POST", format!("/v1/keys/{k}/schedule-deletion"), Some(json!({}))),
                ("POST", format!("/v1/keys/{k}/cancel-deletion"), None),
                ("POST", format!("/v1/keys/{k}/rotate"), None),
                ("GET", format!("/v1/keys/{k}/versions"), None),
                ("POST", format!("/v1/keys/{k}/min-decryption-version"), Some(json!({"version": 1}))),
                ("POST", enc(k), Some(json!({"plaintext": b64(b"x")}))),
                ("POST", "/v1/decrypt".into(), Some(json!({"ciphertext_blob": blobs[i]}))),
                (
                    "POST",
                    "/v1/re-encrypt".into(),
                    Some(json!({"ciphertext_blob": blobs[i], "destination_key_id": keys[own_index]})),
                ),
                ("POST", format!("/v1/keys/{k}/generate-data-key"), Some(json!({}))),
                ("POST", format!("/v1/keys/{k}/generate-data-key-without-plaintext"), Some(json!({}))),
                ("PUT", format!("/v1/aliases/alias%2F{own}-{role}-{i}"), Some(json!({"target_key_id": k}))),
                ("GET", format!("/v1/keys/{k}/grants"), None),
                (
                    "POST",
                    format!("/v1/keys/{k}/grants"),
                    Some(json!({"grantee": "Keyward::User::\"x\"", "operations": ["Encrypt"]})),
                ),
                ("POST", "/v1/keys".into(), Some(json!({"namespace": ns}))),
                ("GET", format!("/v1/keys?namespace={ns}"), None),
                ("POST", "/v1/random".into(), Some(json!({"number_of_bytes": 8, "namespace": ns}))),
                ("GET", format!("/v1/aliases?key_id={k}"), None),
            ];
            for (method, path, body) in calls {
                let r = s.call(method, &path, token, body).await;
                attempts += 1;
                assert_eq!((r.status, r.code()), (403, "AccessDenied"), "{role} of {own}: {method} {path}: {}", r.body);
            }
        }
    }
    let records =
        s.audit_store().await.query(&keyward_store::AuditQuery { limit: 100_000, ..Default::default() }).await.unwrap();
    let denials = records.iter().skip(before as usize).filter(|r| r.outcome == "AccessDenied").count() as u64;
    assert_eq!(denials, attempts, "every denial audited");
    assert_eq!(s.audit_count().await - before, attempts);
}

fn service_token(s: &Server, sub: &str, group: &str) -> String {
    let out = std::process::Command::new(keyward_e2e::keyward_bin())
        .arg("token")
        .args(s.state_args())
        .args(["--sub", sub, "--group", group, "--service"])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn keyward(args: &[&str]) -> (bool, String) {
    let out =
        std::process::Command::new(keyward_e2e::keyward_bin()).args(args).current_dir(repo_root()).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[test]
fn the_repository_policies_pass_their_tests_and_cover_every_policy() {
    let (ok, out) = keyward(&["policy", "validate", "policies"]);
    assert!(ok, "{out}");
    let (ok, out) = keyward(&["policy", "test", "policies"]);
    assert!(ok && out.contains("0 failed"), "{out}");
}

#[test]
fn policy_test_fails_with_a_readable_difference() {
    let dir = policy_dir();
    let case = r#"{"name": "frozen keys are usable", "principal": "Keyward::User::\"bob\"", "groups": ["payments"],
        "action": "Encrypt", "resource": {"key": {"namespace": "payments", "tags": {"frozen": "yes"}}},
        "expect": {"decision": "Allow", "determining_policies": ["namespace-members-use"]}}"#;
    std::fs::write(dir.path().join("tests/frozen.json"), case).unwrap();
    let (ok, out) = keyward(&["policy", "test", dir.path().to_str().unwrap()]);
    assert!(!ok, "{out}");
    assert!(out.contains("FAIL frozen.json: frozen keys are usable"), "{out}");
    assert!(out.contains(r#"got:      Deny ["frozen-keys"]"#), "{out}");
    // Policies no case determines are reported as a failure too.
    assert!(out.contains("policies no case determines: ") && out.contains("sre-use-prod"), "{out}");
}

#[tokio::test]
async fn policy_diff_lists_changed_cases_and_recorded_requests() {
    let s = Server::start(Db::Sqlite).await;
    let bob = s.token("bob", &["payments"]);
    let r = s.call("POST", "/v1/keys", &bob, Some(json!({"namespace": "payments", "tags": {"frozen": "yes"}}))).await;
    let frozen = r.s("key_id");
    let plain = s.call("POST", "/v1/keys", &bob, Some(json!({"namespace": "payments"}))).await.s("key_id");
    for key in [&frozen, &plain, &frozen] {
        assert_eq!(s.call("POST", &enc(key), &bob, Some(json!({"plaintext": b64(b"x")}))).await.status, 200);
    }
    let new = policy_dir();
    let mut args = vec!["policy", "diff", "policies"];
    let new_path = new.path().display().to_string();
    args.push(&new_path);
    let state = s.state_args();
    args.extend(["--audit-since", "1h", "--fail-on-change"]);
    args.extend(state.iter().map(String::as_str));
    let (ok, out) = keyward(&args);
    assert!(!ok, "changes fail with --fail-on-change: {out}");
    let frozen_line = out
        .lines()
        .find(|l| l.contains("CHANGED request") && l.contains(frozen.as_str()))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(frozen_line.contains("Encrypt") && frozen_line.contains("(x2)"), "{frozen_line}");
    assert!(
        frozen_line.contains(r#"Allow ["namespace-members-use", "owner-user"] -> Deny ["frozen-keys"]"#),
        "{frozen_line}"
    );
    assert!(!out.contains(plain.as_str()), "unchanged requests are not listed: {out}");
    let (ok, out) = keyward(&["policy", "diff", "policies", "policies"]);
    assert!(ok && out.contains("0 changed"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dry_run_spelling_is_a_dry_run_and_unknown_ones_run_nothing() {
    let s = Server::start(Db::Sqlite).await;
    let key = s.create_key("dry").await;
    let state = async || s.get(&format!("/v1/keys/{key}")).await.s("key_state");
    let disable = format!("/v1/keys/{key}/disable");
    for (path, body) in [
        (format!("{disable}?dry_run=true"), None),
        (format!("{disable}?dry_run=1"), None),
        (disable.clone(), Some(json!({"dry_run": true}))),
    ] {
        let r = s.call("POST", &path, &s.admin, body.clone()).await;
        assert_eq!((r.status, r.body["decision"].as_str()), (200, Some("Allow")), "{path} {body:?}: {}", r.body);
        assert_eq!(state().await, "Enabled", "{path} {body:?} ran");
    }
    for (path, body) in [
        (format!("{disable}?dry_run=yes"), None),
        (format!("{disable}?dry_run="), None),
        (disable.clone(), Some(json!({"dry_run": "true"}))),
        (disable.clone(), Some(json!({"dry_run": 1}))),
    ] {
        let r = s.call("POST", &path, &s.admin, body.clone()).await;
        assert_eq!((r.status, r.code()), (400, "InvalidRequest"), "{path} {body:?}: {}", r.body);
        assert_eq!(state().await, "Enabled", "{path} {body:?} ran");
    }
    // A body that mentions the flag but is not JSON is refused too.
    let raw = reqwest::Client::new()
        .post(format!("{}{disable}", s.base))
        .bearer_auth(&s.admin)
        .body(r#"{"dry_run": tru"#)
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    assert_eq!(state().await, "Enabled");
    // The other body-less operations honour a body flag as well.
    let put = s.call("PUT", "/v1/aliases/alias%2Fdry", &s.admin, Some(json!({"target_key_id": key}))).await;
    assert_eq!(put.status, 201);
    let r = s.call("DELETE", "/v1/aliases/alias%2Fdry", &s.admin, Some(json!({"dry_run": true}))).await;
    assert_eq!(r.body["decision"], "Allow", "{}", r.body);
    let r = s.call("POST", &format!("/v1/keys/{key}/rotate"), &s.admin, Some(json!({"dry_run": true}))).await;
    assert_eq!(r.body["decision"], "Allow", "{}", r.body);
    let described = s.get(&format!("/v1/keys/{key}")).await;
    assert_eq!(
        (described.body["aliases"].clone(), described.body["primary_version"].clone()),
        (json!(["alias/dry"]), json!(1))
    );
    // And a real run still runs.
    assert_eq!(s.call("POST", &format!("{disable}?dry_run=false"), &s.admin, None).await.status, 200);
    assert_eq!(state().await, "Disabled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_cursors_never_name_what_the_caller_cannot_see() {
    let s = Server::start(Db::Sqlite).await;
    let mut mine = Vec::new();
    let mut hidden = Vec::new();
    for i in 0..6 {
        let (ns, list) = if i % 2 == 0 { ("seen", &mut mine) } else { ("unseen", &mut hidden) };
        let key = s.create_key(ns).await;
        let alias = format!("alias/{ns}-{i}");
        let put = s
            .call(
                "PUT",
                &format!("/v1/aliases/{}", alias.replace('/', "%2F")),
                &s.admin,
                Some(json!({"target_key_id": key})),
            )
            .await;
        assert_eq!(put.status, 201);
        list.push((key, alias));
    }
    let bob = s.token("bob", &["seen"]);
    for (path, field, id) in [("/v1/keys", "keys", "key_id"), ("/v1/aliases", "aliases", "alias_name")] {
        let mut shown = Vec::new();
        let mut tokens = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let url = match &next {
                Some(t) => format!("{path}?limit=1&next_token={}", t.replace('/', "%2F")),
                None => format!("{path}?limit=1"),
            };
            let r = s.call("GET", &url, &bob, None).await;
            assert_eq!(r.status, 200, "{}", r.body);
            shown.extend(r.body[field].as_array().unwrap().iter().map(|k| k[id].as_str().unwrap().to_owned()));
            match r.body["next_token"].as_str() {
                Some(t) => {
                    tokens.push(t.to_owned());
                    next = Some(t.to_owned());
                }
                None => break,
            }
        }
        for (key, alias) in &hidden {
            let secret = if field == "keys" { key } else { alias };
            assert!(!tokens.contains(secret) && !shown.contains(secret), "{path} revealed {secret}");
        }
        assert_eq!(shown.len(), mine.len(), "{path}: every visible row, once: {shown:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_key_policies_see_the_backend_and_external_link() {
    let dir = policy_dir();
    std::fs::write(
        dir.path().join("zz-backends.cedar"),
        r#"@id("interns-no-software") forbid (principal in Keyward::Group::"interns", action == Keyward::Action::"CreateKey", resource)
           when { context has backend && context.backend == "software" && context has external && !context.external };"#,
    )
    .unwrap();
    let dir_arg = dir.path().display().to_string();
    let s = Server::start_with(Db::Sqlite, &["--policies", &dir_arg]).await;
    let intern = s.token("ivy", &["payments", "interns"]);
    let r = s.call("POST", "/v1/keys", &intern, Some(json!({"namespace": "payments"}))).await;
    assert_eq!((r.status, r.code()), (403, "AccessDenied"), "{}", r.body);
    let r = s.call("POST", "/v1/keys", &intern, Some(json!({"namespace": "payments", "dry_run": true}))).await;
    assert_eq!(
        (r.body["decision"].as_str(), r.body["determining_policies"].clone()),
        (Some("Deny"), json!(["interns-no-software"]))
    );
    let member = s.token("max", &["payments"]);
    let r = s.call("POST", "/v1/keys", &member, Some(json!({"namespace": "payments"}))).await;
    assert_eq!(r.status, 201, "{}", r.body);
}
