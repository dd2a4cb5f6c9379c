//! M-of-N approvals over HTTP: with `[approvals] required = 2`, a sensitive request (here
//! ScheduleKeyDeletion, and DisableKey on a protected key) answers 202 with an approval id and
//! changes nothing; it runs as its requester once two other principals allowed to approve have
//! approved, and never once rejected. Self-approval, double approval, strangers, missing
//! credentials, bad ids and late decisions are refused and audited.

use keyward_e2e::{Db, Server, on_both_databases};
use serde_json::{Value, json};

on_both_databases!(a_sensitive_request_runs_once_two_others_approve, a_rejected_request_never_runs);

const CONFIG: &str = "[approvals]\nrequired = 2\n";

async fn approval(s: &Server, token: &str, id: &str, verb: &str) -> keyward_e2e::Resp {
    let method = if verb.is_empty() { "GET" } else { "POST" };
    s.call(method, &format!("/v1/approvals/{id}{verb}"), token, None).await
}

async fn records(s: &Server, query: &str) -> Vec<Value> {
    let r = s.get(&format!("/v1/audit?{query}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["records"].as_array().cloned().unwrap_or_default()
}

async fn a_sensitive_request_runs_once_two_others_approve(db: Db) {
    let s = Server::start_with_config(db, CONFIG, &[]).await;
    let key = s.create_key("vault").await;
    let alice = s.token("alice", &["admins"]);
    let (bob, carol) = (s.token("bob", &["approvers"]), s.token("carol", &["approvers"]));
    let asked = s
        .call("POST", &format!("/v1/keys/{key}/schedule-deletion"), &alice, Some(json!({"pending_window_days": 7})))
        .await;
    assert_eq!(asked.status, 202, "{}", asked.body);
    let id = asked.s("approval_id");
    assert_eq!(asked.s("id"), id);
    assert_eq!(
        asked.headers.get("location").and_then(|v| v.to_str().ok()),
        Some(format!("/v1/approvals/{id}").as_str())
    );
    assert_eq!((asked.body["state"].as_str(), asked.body["required"].as_u64()), (Some("Pending"), Some(2)));
    // Nothing changed yet; the request is in the trail as waiting.
    assert_eq!(s.get(&format!("/v1/keys/{key}")).await.body["key_state"], "Enabled");
    let waiting = records(&s, "action=ScheduleKeyDeletion").await;
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert_eq!(
        (waiting[0]["outcome"].as_str(), waiting[0]["details"]["approval_id"].as_str()),
        (Some("ApprovalPending"), Some(id.as_str()))
    );

    let got = approval(&s, &bob, &id, "").await;
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(
        (got.s("operation"), got.s("requested_by")),
        ("ScheduleKeyDeletion".to_owned(), "Keyward::User::\"alice\"".to_owned())
    );
    assert_eq!(got.body["request"]["pending_window_days"], 7);
    // The requester cannot approve its own request; strangers and anonymous callers are refused.
    assert_eq!(approval(&s, &alice, &id, "/approve").await.status, 403);
    let mallory = s.token("mallory", &["vault"]);
    assert_eq!(approval(&s, &mallory, &id, "/approve").await.status, 403);
    assert_eq!(approval(&s, &mallory, &id, "").await.status, 403);
    assert_eq!(approval(&s, "", &id, "/approve").await.status, 401);
    assert_eq!(approval(&s, &bob, "not-a-uuid", "/approve").await.status, 400);
    assert_eq!(approval(&s, &bob, "01a22eaa-7a8f-7824-abe6-f47835c8b706", "/approve").await.status, 404);
    // One approval of two: still pending; the same approver twice is refused.
    let first = approval(&s, &bob, &id, "/approve").await;
    assert_eq!((first.status, first.s("state")), (200, "Pending".to_owned()), "{}", first.body);
    assert_eq!(approval(&s, &bob, &id, "/approve").await.status, 409);
    assert_eq!(s.get(&format!("/v1/keys/{key}")).await.body["key_state"], "Enabled");
    // The second runs it, as alice, and answers how it ended.
    let second = approval(&s, &carol, &id, "/approve").await;
    assert_eq!((second.status, second.s("state")), (200, "Executed".to_owned()), "{}", second.body);
    assert_eq!(second.body["result"]["outcome"], "Success", "{}", second.body);
    assert_eq!(second.body["result"]["key_state"], "PendingDeletion");
    assert_eq!(s.get(&format!("/v1/keys/{key}")).await.body["key_state"], "PendingDeletion");
    let ran: Vec<Value> =
        records(&s, "action=ScheduleKeyDeletion").await.into_iter().filter(|r| r["outcome"] == "Success").collect();
    assert_eq!(ran.len(), 1, "{ran:?}");
    assert_eq!(ran[0]["principal"], "Keyward::User::\"alice\"");
    assert_eq!(ran[0]["details"]["approved_by"], "Keyward::User::\"bob\",Keyward::User::\"carol\"");
    // Decided requests take no more decisions.
    assert_eq!(approval(&s, &s.token("dave", &["approvers"]), &id, "/approve").await.status, 409);
    assert_eq!(approval(&s, &bob, &id, "/reject").await.status, 409);
    // Each approval is in the trail.
    let approvals = records(&s, "action=Approve&decision=Allow").await;
    assert!(approvals.iter().filter(|r| r["outcome"] == "Success").count() >= 2, "{approvals:?}");
    // Listing: by state, and a bad state is refused.
    let listed = s.get("/v1/approvals?state=Executed").await;
    assert_eq!(listed.body["approvals"].as_array().map(Vec::len), Some(1), "{}", listed.body);
    assert_eq!(s.get("/v1/approvals?state=Done").await.status, 400);
    assert_eq!(s.call("GET", "/v1/approvals", &mallory, None).await.status, 403);

    // Not sensitive (an unprotected key): DisableKey runs at once.
    let plain = s.create_key("vault").await;
    assert_eq!(s.call("POST", &format!("/v1/keys/{plain}/disable"), &alice, None).await.status, 200);

    // The AWS API cannot answer 202: the request is refused, naming its approval.
    let access = s
        .post(
            "/v1/access-keys",
            json!({"principal": "Keyward::User::\"alice\"", "groups": ["admins"], "default_namespace": "vault"}),
        )
        .await;
    assert_eq!(access.status, 201, "{}", access.body);
    let kms = keyward_e2e::kms_client(&s, &access.body);
    let err = kms.schedule_key_deletion().key_id(&plain).pending_window_in_days(7).send().await.expect_err("waits");
    let meta = aws_sdk_kms::error::ProvideErrorMetadata::message(&err).unwrap_or_default().to_owned();
    assert_eq!(aws_sdk_kms::error::ProvideErrorMetadata::code(&err), Some("AccessDeniedException"), "{err:?}");
    assert!(meta.contains("approval"), "{meta}");
}

async fn a_rejected_request_never_runs(db: Db) {
    let s = Server::start_with_config(db, CONFIG, &[]).await;
    let created = s.post("/v1/keys", json!({"namespace": "vault", "tags": {"protected": "true"}})).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let key = created.s("key_id");
    let alice = s.token("alice", &["admins"]);
    let asked = s.call("POST", &format!("/v1/keys/{key}/disable"), &alice, None).await;
    assert_eq!(asked.status, 202, "disabling a protected key is sensitive: {}", asked.body);
    let id = asked.s("approval_id");
    let dave = s.token("dave", &["approvers"]);
    let rejected = approval(&s, &dave, &id, "/reject").await;
    assert_eq!((rejected.status, rejected.s("state")), (200, "Rejected".to_owned()), "{}", rejected.body);
    assert_eq!(rejected.body["rejected_by"], "Keyward::User::\"dave\"");
    assert_eq!(approval(&s, &s.token("bob", &["approvers"]), &id, "/approve").await.status, 409);
    assert_eq!(s.get(&format!("/v1/keys/{key}")).await.body["key_state"], "Enabled");
    assert!(records(&s, "action=DisableKey").await.iter().all(|r| r["outcome"] != "Success"));
    let rejects = records(&s, "action=Reject").await;
    assert_eq!(rejects.len(), 1, "{rejects:?}");
    // A key's tag raises its quorum, and never waives it.
    let tag = |n: &str| json!({"tags": {"protected": "true", "approvals-required": n}});
    let path = format!("/v1/keys/{key}");
    assert_eq!(s.call("PATCH", &path, &s.admin, Some(tag("0"))).await.status, 200);
    let again = s.call("POST", &format!("{path}/disable"), &alice, None).await;
    assert_eq!((again.status, again.body["required"].as_u64()), (202, Some(2)), "{}", again.body);
    assert_eq!(s.call("PATCH", &path, &s.admin, Some(tag("3"))).await.status, 200);
    let raised = s.call("POST", &format!("{path}/disable"), &alice, None).await;
    assert_eq!((raised.status, raised.body["required"].as_u64()), (202, Some(3)), "{}", raised.body);
}

#[test]
fn a_bad_approvals_table_stops_the_server() {
    for (toml, expected) in [
        ("[approvals]\nrequired = 11\n", "approvals.required"),
        ("[approvals]\nexpires_hours = 0\n", "approvals.expires_hours"),
        ("[namespaces.vault]\napprovals_required = 99\n", "namespaces.vault.approvals_required"),
        ("[approvals]\nquorum = 2\n", "quorum"),
    ] {
        let stderr = keyward_e2e::refuses_to_start(toml);
        assert!(stderr.contains(expected), "{toml}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvals_from_the_command_line() {
    let s = Server::start_with_config(Db::Sqlite, "[approvals]\nrequired = 1\n", &[]).await;
    let key = s.create_key("vault").await;
    let alice = s.token("alice", &["admins"]);
    let asked = keyward_e2e::cli(&s, &alice, &["key", "schedule-deletion", &key, "--days", "7"]);
    let said = String::from_utf8_lossy(&asked.stdout).into_owned();
    assert!(asked.status.success() && said.starts_with("waiting for 1 approvals: keyward approval approve "), "{said}");
    let id = said.split_whitespace().nth(7).unwrap_or_default().to_owned();
    let bob = s.token("bob", &["approvers"]);
    let listed = keyward_e2e::cli(&s, &bob, &["approval", "list", "--state", "Pending"]);
    let table = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(
        listed.status.success() && table.starts_with("ID") && table.contains(&id) && table.contains("0/1"),
        "{table}"
    );
    // The requester is refused (exit 3: denied); bob's approval runs it.
    assert_eq!(keyward_e2e::cli(&s, &alice, &["approval", "approve", &id]).status.code(), Some(3));
    let approved = keyward_e2e::cli(&s, &bob, &["approval", "approve", &id, "--output", "json"]);
    assert!(approved.status.success(), "{}", String::from_utf8_lossy(&approved.stderr));
    let v: Value = serde_json::from_slice(&approved.stdout).unwrap();
    assert_eq!((v["state"].as_str(), v["result"]["outcome"].as_str()), (Some("Executed"), Some("Success")), "{v}");
    assert_eq!(
        keyward_e2e::cli(&s, &bob, &["approval", "reject", &id]).status.code(),
        Some(2),
        "409: no longer pending"
    );
}
