//! Several replicas on one PostgreSQL: a key change made on one is enforced by the others at
//! once (change notifications), not after their key cache's TTL.

use std::time::{Duration, Instant};

use keyward_e2e::{Db, Server, b64};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_disabled_on_one_replica_is_refused_by_another_at_once() {
    let Some(db) = Db::postgres().await else { return };
    // Replicas share the root key. A TTL far longer than the test: only a notification can
    // make the second replica notice.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root.key");
    std::fs::write(&root, "7".repeat(64)).unwrap();
    let toml = format!(
        "[database]\nkey_cache_ttl_ms = 600000\n[[backends]]\nname = \"software\"\nkind = \"software\"\nroot_key_file = \"{}\"\n",
        root.display()
    );
    let toml = toml.as_str();
    let a = Server::start_with_config(db, toml, &[]).await;
    let b = Server::start_with_config(Db::Postgres(a.db_url()), toml, &[]).await;
    let key = a.create_key("replicas").await;
    let encrypt_on_b = async || {
        b.call("POST", &format!("/v1/keys/{key}/encrypt"), &b.admin, Some(json!({"plaintext": b64(b"x")}))).await
    };
    assert_eq!(encrypt_on_b().await.status, 200, "the second replica serves (and caches) the key");
    let r = a.call("POST", &format!("/v1/keys/{key}/disable"), &a.admin, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let disabled = Instant::now();
    loop {
        let r = encrypt_on_b().await;
        if r.code() == "KeyDisabled" {
            break;
        }
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(disabled.elapsed() < Duration::from_secs(5), "the other replica still uses the disabled key");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Grants made and revoked on one replica bind the other at once too.
    let erin = b.token("erin", &[]);
    let erin_encrypts = async || {
        b.call("POST", &format!("/v1/keys/{key}/encrypt"), &erin, Some(json!({"plaintext": b64(b"x")}))).await.status
    };
    assert_eq!(b.call("POST", &format!("/v1/keys/{key}/enable"), &b.admin, None).await.status, 200);
    assert_eq!(erin_encrypts().await, 403);
    let grant = a
        .call(
            "POST",
            &format!("/v1/keys/{key}/grants"),
            &a.admin,
            Some(json!({"grantee": "Keyward::User::\"erin\"", "operations": ["Encrypt"]})),
        )
        .await;
    assert_eq!(grant.status, 201, "{}", grant.body);
    let granted = Instant::now();
    while erin_encrypts().await != 200 {
        assert!(granted.elapsed() < Duration::from_secs(5), "the other replica did not see the grant");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let revoke = format!("/v1/grants/{}", grant.s("grant_id"));
    assert_eq!(a.call("DELETE", &revoke, &a.admin, None).await.status, 204);
    let revoked = Instant::now();
    while erin_encrypts().await != 403 {
        assert!(revoked.elapsed() < Duration::from_secs(5), "the other replica still honours the revoked grant");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(a.call("POST", &format!("/v1/keys/{key}/disable"), &a.admin, None).await.status, 200);

    // And back: enabling on B is seen by A.
    assert_eq!(b.call("POST", &format!("/v1/keys/{key}/enable"), &b.admin, None).await.status, 200);
    let enabled = Instant::now();
    loop {
        let r =
            a.call("POST", &format!("/v1/keys/{key}/encrypt"), &a.admin, Some(json!({"plaintext": b64(b"x")}))).await;
        if r.status == 200 {
            break;
        }
        assert!(enabled.elapsed() < Duration::from_secs(5), "{}", r.body);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_migrating_a_new_database_together_all_succeed() {
    let Some(Db::Postgres(url)) = Db::postgres().await else { return };
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    // Started at once, as replicas of a new deployment are.
    let children: Vec<_> = dirs
        .iter()
        .map(|d| {
            std::process::Command::new(keyward_e2e::keyward_bin())
                .args(["migrate", "--database-url", &url, "--data-dir"])
                .arg(d.path())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}
