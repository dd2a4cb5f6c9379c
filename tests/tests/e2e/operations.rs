//! Running it: configuration files, startup errors, health, docs, fail-closed audit.

use std::process::Command;
use std::sync::Arc;

use keyward_core::ErrorCode;
use keyward_core::operation::Operation;
use keyward_core::ports::clock::SystemClock;
use keyward_e2e::inproc::Rig;
use keyward_e2e::{Db, Server, keyward_bin};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_docs_and_openapi_are_served() {
    let s = Server::start(Db::Sqlite).await;
    let r = s.call("GET", "/healthz", "", None).await;
    assert_eq!(r.status, 200);
    let r = s.call("GET", "/readyz", "", None).await;
    assert_eq!((r.status, r.body["status"].as_str()), (200, Some("ready")));
    let r = s.call("GET", "/openapi.json", "", None).await;
    assert_eq!(r.body["info"]["title"], "Keyward");
    let docs = reqwest::get(format!("{}/docs/", s.base)).await.unwrap();
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await.unwrap().contains("swagger"), "Swagger UI is served offline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_file_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("keyward.toml");
    std::fs::write(
        &config,
        r#"
default_backend = "vault"

[[backends]]
name = "vault"
kind = "software"
root_key_env = "TEST_ROOT_KEY"
"#,
    )
    .unwrap();
    let root = "ab".repeat(32);
    let s = Server::start_with_env(
        Db::Sqlite,
        &["--config", config.to_str().unwrap()],
        &[("TEST_ROOT_KEY", root.as_str())],
    )
    .await;
    let r = s.post("/v1/keys", json!({"namespace": "cfg"})).await;
    assert_eq!((r.status, r.body["backend"].as_str()), (201, Some("vault")), "{}", r.body);
    assert!(!s.data_dir.path().join("root.key").exists(), "no dev root key when one is configured");
}

#[test]
fn startup_errors_are_precise() {
    let dir = tempfile::tempdir().unwrap();
    let run = |toml: &str, listen: &str, extra: &[&str]| {
        let config = dir.path().join("k.toml");
        std::fs::write(&config, toml).unwrap();
        let out = Command::new(keyward_bin())
            .args(["serve", "--listen", listen, "--config", config.to_str().unwrap()])
            .args(["--data-dir", dir.path().join("d").to_str().unwrap()])
            .args(extra)
            .env("RUST_LOG", "off")
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = run("[[backends]]\nname = \"x\"\nkind = \"quantum\"\n", "127.0.0.1:0", &[]);
    assert!(e.contains("unknown kind `quantum`") && e.contains("software"), "{e}");
    let e = run("", "0.0.0.0:0", &[]);
    assert!(e.contains("loopback"), "{e}");
    let e = run("colour = \"red\"\n", "127.0.0.1:0", &[]);
    assert!(e.contains("colour"), "{e}");
    let e = run("", "127.0.0.1:0", &["--policies", dir.path().to_str().unwrap()]);
    assert!(e.contains("keyward.cedarschema"), "an invalid policy directory refuses to start: {e}");
}

#[tokio::test]
async fn audit_failure_withholds_results() {
    let rig = Rig::new(Db::Sqlite, Arc::new(SystemClock)).await;
    let svc = &rig.service;
    let key = svc.audited(rig.admin(Operation::CreateKey), async |s| svc.create_key(s, Rig::key_input("fc")).await);
    let key = keyward_core::model::ids::KeyRef::Id(key.await.unwrap().key.id);
    let encrypt = || async {
        let input = keyward_core::service::EncryptInput {
            key: key.clone(),
            plaintext: zeroize::Zeroizing::new(b"x".to_vec()),
            context: Default::default(),
        };
        svc.audited(rig.admin(Operation::Encrypt), async |s| svc.encrypt(s, input).await).await
    };
    rig.audit.set_failing(true);
    let e = encrypt().await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::AuditUnavailable);
    assert!(!e.message().contains("store"), "no internals in the message: {}", e.message());
    // While the store fails, requests are refused before they run.
    let ran = std::sync::atomic::AtomicBool::new(false);
    let e = svc
        .audited(rig.admin(Operation::CreateKey), async |_| {
            ran.store(true, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::AuditUnavailable);
    assert!(!ran.load(std::sync::atomic::Ordering::SeqCst), "a request the trail cannot take does not run");
    // The writer notices the store is back (it probes), with no restart.
    rig.audit.set_failing(false);
    let mut recovered = false;
    for _ in 0..40 {
        if encrypt().await.is_ok() {
            recovered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(recovered, "recovers when the audit store returns");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_walkthrough_runs() {
    let have = |tool: &str| {
        Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().is_ok_and(|o| o.status.success())
    };
    if !(have("curl") && have("jq")) {
        assert!(!keyward_e2e::services_required(), "curl and jq are needed for the README walkthrough");
        eprintln!("skipping: curl or jq missing");
        return;
    }
    let readme = std::fs::read_to_string(keyward_e2e::repo_root().join("README.md")).unwrap();
    let block =
        readme.split("<!-- walkthrough:start -->").nth(1).unwrap().split("<!-- walkthrough:end -->").next().unwrap();
    let script = block.trim().trim_start_matches("```bash").trim_end_matches("```");
    let s = Server::start(Db::Sqlite).await;
    let script = script
        .replace("http://127.0.0.1:8420", &s.base)
        .replace("keyward-data/admin.token", &s.data_dir.path().join("admin.token").display().to_string())
        .replace("cargo run -q -p keyward-server --", &keyward_e2e::keyward_bin().display().to_string());
    let out = Command::new("bash").args(["-euo", "pipefail", "-c", &script]).output().unwrap();
    assert!(
        out.status.success(),
        "README walkthrough failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn metrics_count_requests_audit_batches_and_backend_calls() {
    let s = Server::start(Db::Sqlite).await;
    let key = s.create_key("metrics").await;
    let r = s.post(&format!("/v1/keys/{key}/encrypt"), serde_json::json!({"plaintext": keyward_e2e::b64(b"x")})).await;
    assert_eq!(r.status, 200);
    let outsider = s.token("eve", &[]);
    let r = s.call("GET", &format!("/v1/keys/{key}"), &outsider, None).await;
    assert_eq!(r.code(), "AccessDenied");
    let text = reqwest::get(format!("{}/metrics", s.base)).await.unwrap().text().await.unwrap();
    let line = |name: &str, labels: &[&str]| {
        text.lines().any(|l| l.starts_with(name) && labels.iter().all(|x| l.contains(x)) && !l.ends_with(" 0"))
    };
    assert!(line("keyward_requests_total", &["operation=\"Encrypt\"", "code=\"Success\""]), "{text}");
    assert!(line("keyward_requests_total", &["operation=\"DescribeKey\"", "code=\"AccessDenied\""]), "{text}");
    assert!(line("keyward_request_duration_seconds_bucket", &["operation=\"Encrypt\""]), "{text}");
    assert!(line("keyward_audit_batch_records_count", &[]), "{text}");
    assert!(line("keyward_audit_commit_seconds_count", &["outcome=\"committed\""]), "{text}");
    assert!(line("keyward_backend_seconds_count", &["backend=\"software\"", "call=\"encrypt\""]), "{text}");
    assert!(text.contains("keyward_audit_queue_depth"), "{text}");
    assert!(!text.contains(&s.admin), "no tokens in metrics");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_data_directory_and_its_database_are_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("fresh").join("keyward-data");
    let out = Command::new(keyward_bin()).args(["migrate", "--data-dir"]).arg(&data).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = Command::new(keyward_bin()).args(["token", "--sub", "x", "--data-dir"]).arg(&data).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "the data directory");
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path) & 0o077, 0, "{} is private", path.display());
    }
    assert!(data.join("keyward.db").exists() && data.join("dev-jwt-secret").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_never_calls_a_backend() {
    let s = Server::start(Db::Sqlite).await;
    let probes = async || {
        let text = reqwest::get(format!("{}/metrics", s.base)).await.unwrap().text().await.unwrap();
        text.lines()
            .filter(|l| l.starts_with("keyward_backend_probes_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    let mut before = probes().await;
    for _ in 0..50 {
        if before >= 1.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        before = probes().await;
    }
    assert!(before >= 1.0, "the probe at start is counted (the metric exists)");
    let started = std::time::Instant::now();
    for _ in 0..200 {
        let r = s.call("GET", "/readyz", "", None).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let after = probes().await;
    // Only the background probe (every backend every 10 s) may have run meanwhile.
    let allowed = 1.0 + (started.elapsed().as_secs_f64() / 10.0).ceil();
    assert!(after - before <= allowed, "{} probes for 200 readiness checks", after - before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_is_served_with_a_strict_content_security_policy() {
    let s = Server::start(Db::Sqlite).await;
    let http = reqwest::Client::new();
    for (path, kind) in [
        ("/ui", "text/html"),
        ("/ui/app.js", "text/javascript"),
        ("/ui/style.css", "text/css"),
        ("/ui/icon.svg", "image/svg+xml"),
    ] {
        let r = http.get(format!("{}{path}", s.base)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let h = |n: &str| r.headers().get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        assert!(h("content-type").starts_with(kind), "{path}: {}", h("content-type"));
        let csp = h("content-security-policy");
        assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe"), "{path}: {csp}");
        assert_eq!(h("x-frame-options"), "DENY");
    }
    let page = http.get(format!("{}/ui", s.base)).send().await.unwrap().text().await.unwrap();
    assert!(!page.contains("<script>") && page.contains("src=\"/ui/app.js\""), "no inline script");
}
