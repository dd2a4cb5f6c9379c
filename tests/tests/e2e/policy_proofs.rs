//! Policy proofs with cvc5: `keyward policy prove` proves the repository's set (no policy can
//! error; admins are not locked out), finds a counterexample for a set that breaks either, for
//! a declared property in `proofs/*.json`, and for a change that widens access (`--implies`);
//! ReloadPolicies refuses an unsafe set unless an admin forces it (audited).

use std::path::Path;

use keyward_e2e::{Db, Server, on_both_databases, repo_root, solver_present};
use serde_json::json;

/// A copy of the repository's policies with `extra` files.
fn policy_dir(extra: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(repo_root().join("policies")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    for (name, text) in extra {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

fn prove(dir: &Path, extra: &[&str]) -> (bool, String) {
    let mut args = vec!["policy", "prove", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = std::process::Command::new(keyward_e2e::keyward_bin()).args(&args).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// Admins can no longer schedule deletions: a lockout.
const LOCKOUT: (&str, &str) = (
    "freeze.cedar",
    "@id(\"no-deletions\")\nforbid (principal, action == Keyward::Action::\"ScheduleKeyDeletion\", resource);\n",
);

/// Errors when the request time is the last representable instant (the offset overflows).
const ERRORING: (&str, &str) = (
    "clock.cedar",
    "@id(\"tomorrow\")\nforbid (principal, action == Keyward::Action::\"Decrypt\", resource)\nwhen { context.request_time.offset(duration(\"1d\")) < datetime(\"2000-01-01\") };\n",
);

const PROTECTED: &str = r#"{"name": "protected keys decrypt only for security, with a justification",
  "never_allows": "permit (principal, action == Keyward::Action::\"Decrypt\", resource is Keyward::Key) when { resource.hasTag(\"protected\") && !(principal in Keyward::Group::\"security\") && !(context has justification) };"}"#;

const PROTECTED_GUARD: (&str, &str) = (
    "guard.cedar",
    "@id(\"protected-decrypt\")\nforbid (principal, action == Keyward::Action::\"Decrypt\", resource is Keyward::Key)\nwhen { resource.hasTag(\"protected\") }\nunless { principal in Keyward::Group::\"security\" && context has justification };\n",
);

#[test]
fn the_repository_policies_are_proved_safe() {
    if !solver_present() {
        return;
    }
    let (ok, out) = prove(&repo_root().join("policies"), &[]);
    assert!(ok, "{out}");
    assert!(out.contains("proved  lockout") && out.contains("proved  never-errors:admins-all"), "{out}");
    assert!(out.contains("proved  only admins reload policies"), "the declared properties in policies/proofs: {out}");
    assert!(out.contains(" 0 failed"), "{out}");
}

#[test]
fn a_lockout_and_an_erroring_policy_fail_with_counterexamples() {
    if !solver_present() {
        return;
    }
    let dir = policy_dir(&[LOCKOUT, ERRORING]);
    let (ok, out) = prove(dir.path(), &[]);
    assert!(!ok, "{out}");
    assert!(out.contains("FAILED  lockout"), "{out}");
    assert!(out.contains("FAILED  never-errors:tomorrow"), "{out}");
    assert!(out.contains("proved  never-errors:admins-all"), "{out}");
    // Each counterexample names a concrete request.
    assert!(out.contains("action: Keyward::Action::\"ScheduleKeyDeletion\""), "{out}");
    assert!(out.contains("action: Keyward::Action::\"Decrypt\""), "{out}");
    assert!(out.contains("2 failed"), "{out}");
}

#[test]
fn declared_properties_and_narrowing_changes_are_proved() {
    if !solver_present() {
        return;
    }
    // The default set lets namespace members decrypt protected keys without a justification.
    let open = policy_dir(&[("proofs/protected.json", PROTECTED)]);
    let (ok, out) = prove(open.path(), &[]);
    assert!(!ok, "{out}");
    assert!(out.contains("FAILED  protected keys decrypt only for security"), "{out}");
    assert!(out.contains("counterexample"), "{out}");
    // With the guard the property holds, and the change only narrows access.
    let guarded = policy_dir(&[("proofs/protected.json", PROTECTED), PROTECTED_GUARD]);
    let (ok, out) = prove(guarded.path(), &["--implies", open.path().to_str().unwrap()]);
    assert!(ok, "{out}");
    assert!(out.contains("proved  protected keys decrypt only for security"), "{out}");
    assert!(out.contains("proved  implies:"), "{out}");
    // Removing the guard widens access: the reverse implication fails with a request.
    let (ok, out) = prove(open.path(), &["--implies", guarded.path().to_str().unwrap()]);
    assert!(!ok, "{out}");
    assert!(out.contains("FAILED  implies:"), "{out}");
    // A malformed property is an error, not a silent pass.
    let broken = policy_dir(&[(
        "proofs/bad.json",
        r#"{"name": "x", "never_allows": "permit (principal, action == Keyward::Action::\"Nope\", resource);"}"#,
    )]);
    let (ok, out) = prove(broken.path(), &[]);
    assert!(!ok && out.contains("bad.json"), "{out}");
}

on_both_databases!(reload_refuses_an_unsafe_set_unless_an_admin_forces_it);

async fn reload_refuses_an_unsafe_set_unless_an_admin_forces_it(db: Db) {
    if !solver_present() {
        return;
    }
    // Operators may reload; only admins may force.
    let operators = (
        "operators.cedar",
        "@id(\"operators-reload\")\npermit (principal in Keyward::Group::\"policy-operators\", action == Keyward::Action::\"ReloadPolicies\", resource);\n",
    );
    let dir = policy_dir(&[operators]);
    let dir_arg = dir.path().display().to_string();
    let s = Server::start_with(db, &["--policies", &dir_arg]).await;
    let r = s.call("POST", "/v1/policies/reload", &s.admin, None).await;
    assert_eq!((r.status, r.body["proofs"].as_str()), (200, Some("proved")), "{}", r.body);
    let version = r.s("policy_version");
    std::fs::write(dir.path().join(LOCKOUT.0), LOCKOUT.1).unwrap();
    // Refused: the active set stays, and the answer names the property and a request.
    let r = s.call("POST", "/v1/policies/reload", &s.admin, None).await;
    assert_eq!((r.status, r.code()), (400, "InvalidRequest"), "{}", r.body);
    let detail = r.body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("lockout") && detail.contains("ScheduleKeyDeletion"), "{detail}");
    assert_eq!(s.get("/v1/policies").await.body["policy_version"].as_str(), Some(version.as_str()));
    // Force by someone allowed to reload but not an admin: refused.
    let operator = s.token("ops-bot", &["policy-operators"]);
    let r = s.call("POST", "/v1/policies/reload", &operator, None).await;
    assert_eq!(
        (r.status, r.code()),
        (400, "InvalidRequest"),
        "operators reload, and are refused the unsafe set: {}",
        r.body
    );
    let r = s.call("POST", "/v1/policies/reload", &operator, Some(json!({"force": true}))).await;
    assert_eq!(r.status, 403, "{}", r.body);
    // Unknown fields and malformed bodies are refused.
    let r = s.call("POST", "/v1/policies/reload", &s.admin, Some(json!({"force": true, "please": 1}))).await;
    assert_eq!(r.status, 400, "{}", r.body);
    // An admin forces it: loaded, and the record says so.
    let r = s.call("POST", "/v1/policies/reload", &s.admin, Some(json!({"force": true}))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.s("proofs").starts_with("failed, loaded by force: lockout"), "{}", r.body);
    assert_ne!(r.s("policy_version"), version);
    let trail = s.get("/v1/audit?action=ReloadPolicies").await;
    let records = trail.body["records"].as_array().cloned().unwrap_or_default();
    let forced = records.iter().find(|r| r["outcome"] == "Success" && r["details"]["force"] == "true").cloned();
    let forced = forced.unwrap_or_else(|| panic!("{records:?}"));
    assert!(forced["details"]["proofs"].as_str().is_some_and(|p| p.contains("lockout")), "{forced}");
    assert!(records.iter().any(|r| r["outcome"] == "AccessDenied" && r["details"]["force"] == "true"), "{records:?}");
}
