//! TLS on the listener, and the plain-HTTP rule.

use keyward_e2e::{Db, Server, keyward_bin, repo_root};

#[tokio::test]
async fn serves_https_on_a_self_signed_certificate() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let tls = repo_root().join("tests/fixtures/tls");
    let config = format!(
        "[auth]\nallow_dev_issuer = true\n[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
        tls.join("cert.pem").display(),
        tls.join("key.pem").display()
    );
    let s = Server::start_with_config(Db::Sqlite, &config, &[]).await;
    assert!(s.base.starts_with("https://"), "{}", s.base);
    let cert = reqwest::Certificate::from_pem(&std::fs::read(tls.join("cert.pem")).unwrap()).unwrap();
    let client = reqwest::Client::builder().add_root_certificate(cert).build().unwrap();
    let r = client.get(format!("{}/v1/keys", s.base)).bearer_auth(&s.admin).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Plain HTTP to a TLS listener gets no answer.
    let plain = s.base.replacen("https://", "http://", 1);
    assert!(reqwest::get(format!("{plain}/healthz")).await.map(|r| !r.status().is_success()).unwrap_or(true));
    // A client that does not trust the certificate is refused.
    let untrusting = reqwest::Client::builder().build().unwrap();
    assert!(untrusting.get(format!("{}/healthz", s.base)).send().await.is_err());
}

#[test]
fn plain_http_off_loopback_is_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(keyward_bin())
        .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("plain HTTP"), "{stderr}");
}

#[tokio::test]
async fn plain_http_off_loopback_starts_when_explicitly_allowed() {
    let s = Server::start_with_env(
        Db::Sqlite,
        &["--listen", "0.0.0.0:0"],
        &[("KEYWARD_ALLOW_INSECURE_HTTP", "true"), ("KEYWARD_ALLOW_DEV_ISSUER", "1")],
    )
    .await;
    assert!(s.base.starts_with("http://0.0.0.0:"), "{}", s.base);
}

#[tokio::test]
async fn a_verified_client_certificate_names_a_service() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let tls = repo_root().join("tests/fixtures/tls");
    let config = format!(
        "[auth]\nallow_dev_issuer = true\n[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\nclient_ca_file = \"{}\"\n",
        tls.join("cert.pem").display(),
        tls.join("key.pem").display(),
        tls.join("client-ca.pem").display()
    );
    let s = Server::start_with_config(Db::Sqlite, &config, &[]).await;
    let root = reqwest::Certificate::from_pem(&std::fs::read(tls.join("cert.pem")).unwrap()).unwrap();
    let mut pem = std::fs::read(tls.join("client.pem")).unwrap();
    pem.extend(std::fs::read(tls.join("client.key")).unwrap());
    let identity = reqwest::Identity::from_pem(&pem).unwrap();
    let with_cert = reqwest::Client::builder().add_root_certificate(root.clone()).identity(identity).build().unwrap();
    let ask = serde_json::json!({"action": "CreateKey", "resource": "Keyward::Namespace::\"payments\""});
    let r = with_cert.post(format!("{}/v1/authorize", s.base)).json(&ask).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["decision"], "Deny", "a service with no groups and no grants may do nothing: {body}");
    let records =
        s.audit_store().await.query(&keyward_store::AuditQuery { limit: 1000, ..Default::default() }).await.unwrap();
    assert_eq!(records.last().unwrap().principal, r#"Keyward::Service::"batch-svc""#);
    // Without a certificate or a token: 401. A bearer token still works over mutual TLS.
    let without = reqwest::Client::builder().add_root_certificate(root).build().unwrap();
    let r = without.post(format!("{}/v1/authorize", s.base)).json(&ask).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = without.post(format!("{}/v1/authorize", s.base)).bearer_auth(&s.admin).json(&ask).send().await.unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["decision"], "Allow");
}

#[tokio::test]
async fn sighup_reloads_the_certificate() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let fixtures = repo_root().join("tests/fixtures/tls");
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::copy(fixtures.join("cert.pem"), &cert).unwrap();
    std::fs::copy(fixtures.join("key.pem"), &key).unwrap();
    let config = format!(
        "[auth]\nallow_dev_issuer = true\n[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
        cert.display(),
        key.display()
    );
    let s = Server::start_with_config(Db::Sqlite, &config, &[]).await;
    // A client that trusts only the rotated certificate.
    let rotated = reqwest::Certificate::from_pem(&std::fs::read(fixtures.join("rotated-cert.pem")).unwrap()).unwrap();
    let client = || {
        reqwest::Client::builder().tls_built_in_root_certs(false).add_root_certificate(rotated.clone()).build().unwrap()
    };
    assert!(client().get(format!("{}/healthz", s.base)).send().await.is_err(), "old certificate still served");
    // A broken pair is refused and the old one stays.
    std::fs::write(&cert, "not a certificate").unwrap();
    s.signal("HUP");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let old = reqwest::Certificate::from_pem(&std::fs::read(fixtures.join("cert.pem")).unwrap()).unwrap();
    let trusting_old = reqwest::Client::builder().add_root_certificate(old).build().unwrap();
    assert_eq!(trusting_old.get(format!("{}/healthz", s.base)).send().await.unwrap().status(), 200);
    // The rotated pair takes over without a restart.
    std::fs::copy(fixtures.join("rotated-cert.pem"), &cert).unwrap();
    std::fs::copy(fixtures.join("rotated-key.pem"), &key).unwrap();
    s.signal("HUP");
    let mut ok = false;
    for _ in 0..50 {
        if client().get(format!("{}/healthz", s.base)).send().await.is_ok_and(|r| r.status() == 200) {
            ok = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ok, "rotated certificate not served after SIGHUP");
}

#[test]
fn the_dev_issuer_is_refused_off_loopback_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(keyward_bin())
        .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path())
        .env("KEYWARD_ALLOW_INSECURE_HTTP", "true")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("allow_dev_issuer"), "{stderr}");
    assert!(!dir.path().join("admin.token").exists(), "no admin token was minted");
}

#[tokio::test]
async fn a_restart_keeps_the_one_admin_token() {
    // (kill -9 and start again: the token on file is reused, not replaced)
    let mut s = Server::start(Db::Sqlite).await;
    let first = std::fs::read_to_string(s.data_dir.path().join("admin.token")).unwrap();
    s.crash_and_restart();
    let second = std::fs::read_to_string(s.data_dir.path().join("admin.token")).unwrap();
    assert_eq!(first, second, "no new admin token at each start");
}
