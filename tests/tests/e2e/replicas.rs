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

/// Three replicas on one database, with the shared secrets a deployment gives them (the root
/// key and the audit signing key).
async fn three_replicas(db: Db, dir: &std::path::Path) -> Vec<Server> {
    std::fs::write(dir.join("root.key"), "5".repeat(64)).unwrap();
    std::fs::write(dir.join("audit.key"), "6".repeat(64)).unwrap();
    let toml = format!(
        "[database]\nkey_cache_ttl_ms = 600000\n[audit]\nsigning_key_file = \"{}\"\ncheckpoint_interval_seconds = 1\n\
         [[backends]]\nname = \"software\"\nkind = \"software\"\nroot_key_file = \"{}\"\n",
        dir.join("audit.key").display(),
        dir.join("root.key").display()
    );
    let first = Server::start_with_config(db, &toml, &[]).await;
    let url = first.db_url();
    let mut all = vec![first];
    for _ in 0..2 {
        all.push(Server::start_with_config(Db::Postgres(url.clone()), &toml, &[]).await);
    }
    all
}

/// What one replica answered: request ids of its 2xx answers, and its other statuses.
#[derive(Default, Clone)]
struct Answers {
    ok: Vec<String>,
    failed: Vec<u16>,
}

/// Encrypt requests spread round robin over the replicas by 24 clients until `stop`; each
/// request uses the replica's own token. Answers by replica index.
fn spread_load(
    replicas: &[Server],
    key: &str,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> (std::sync::Arc<std::sync::Mutex<Vec<Answers>>>, Vec<tokio::task::JoinHandle<()>>) {
    let answers = std::sync::Arc::new(std::sync::Mutex::new(vec![Answers::default(); replicas.len()]));
    let targets: Vec<(String, String)> =
        replicas.iter().map(|r| (format!("{}/v1/keys/{key}/encrypt", r.base), r.admin.clone())).collect();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let handles = (0..24)
        .map(|c| {
            let (http, targets, answers, stop) = (http.clone(), targets.clone(), answers.clone(), stop.clone());
            tokio::spawn(async move {
                let mut n = c;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    n += 1;
                    let i = n % targets.len();
                    let (url, token) = &targets[i];
                    let body = json!({"plaintext": b64(format!("{c}-{n}").as_bytes())});
                    let Ok(r) = http.post(url).bearer_auth(token).json(&body).send().await else {
                        // That replica is gone (killed): count it and move on.
                        answers.lock().unwrap()[i].failed.push(0);
                        continue;
                    };
                    let id = r.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                    let mut a = answers.lock().unwrap();
                    if r.status().is_success() {
                        a[i].ok.push(id);
                    } else {
                        a[i].failed.push(r.status().as_u16());
                    }
                }
            })
        })
        .collect();
    (answers, handles)
}

/// Three replicas under a load spread over them: every answered request is recorded, each
/// replica's chain verifies, and the usage counters summed over replicas equal the encryptions
/// answered. Then one replica is killed (-9) under load: the others keep serving every request
/// they get, and no answered request's record is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_on_one_database_under_load() {
    let Some(db) = Db::postgres().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut replicas = three_replicas(db, dir.path()).await;
    let key = replicas[0].create_key("fleet").await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (answers, handles) = spread_load(&replicas, &key, stop.clone());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for h in handles {
        h.await.unwrap();
    }
    let phase1 = answers.lock().unwrap().clone();
    for (i, a) in phase1.iter().enumerate() {
        assert!(a.ok.len() > 10 && a.failed.is_empty(), "replica {i}: {} served, failures {:?}", a.ok.len(), a.failed);
    }
    for r in &mut replicas {
        assert_eq!(r.stop(), Some(0), "graceful stop flushes usage and checkpoints");
    }
    let served: usize = phase1.iter().map(|a| a.ok.len()).sum();
    let db = keyward_store::connect(&replicas[0].db_url()).await.unwrap();
    use sea_orm::ConnectionTrait as _;
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            format!("SELECT CAST(SUM(encryptions) AS BIGINT) AS n FROM key_versions WHERE key_id = '{key}'"),
        ))
        .await
        .unwrap()
        .unwrap();
    let counted: i64 = row.try_get("", "n").unwrap();
    let rows = replicas[0]
        .audit_store()
        .await
        .query(&keyward_store::AuditQuery { limit: 1_000_000, ..Default::default() })
        .await
        .unwrap();
    // The uses the replicas performed are their successful Encrypt records; the clients saw
    // `served` of them answered (a use whose answer a client never read is still a use).
    let used = rows.iter().filter(|r| r.action == "Encrypt" && r.outcome == "Success").count();
    assert_eq!(counted, used as i64, "usage summed over replicas equals the uses recorded (clients saw {served})");
    assert!(used >= served, "every answered encryption was performed");
    let recorded: std::collections::HashSet<String> = rows.into_iter().map(|r| r.request_id).collect();
    assert!(phase1.iter().flat_map(|a| &a.ok).all(|id| recorded.contains(id)), "an answered request has no record");
    let out = replicas[0].audit_verify();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert!(out.status.success(), "{report}");
    // A lane chain per replica, and the chain of the replica that created the key.
    assert!(report["chains"].as_u64().unwrap() >= 4, "{report}");
    assert_eq!(report["verified_records"], report["records_checked"], "stopped gracefully: all signed: {report}");

    // Kill -9 one replica under load.
    for r in &mut replicas {
        r.restart_stopped();
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (answers, handles) = spread_load(&replicas, &key, stop.clone());
    tokio::time::sleep(Duration::from_millis(800)).await;
    replicas[2].crash();
    let killed = {
        let a = answers.lock().unwrap();
        a.iter().map(|x| x.ok.len()).collect::<Vec<_>>()
    };
    tokio::time::sleep(Duration::from_millis(800)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for h in handles {
        h.await.unwrap();
    }
    let phase2 = answers.lock().unwrap().clone();
    for i in 0..2 {
        assert!(phase2[i].failed.is_empty(), "replica {i} failed requests: {:?}", phase2[i].failed);
        assert!(phase2[i].ok.len() > killed[i], "replica {i} kept serving after the kill");
    }
    let recorded: std::collections::HashSet<String> = replicas[0]
        .audit_store()
        .await
        .query(&keyward_store::AuditQuery { limit: 1_000_000, ..Default::default() })
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.request_id)
        .collect();
    let lost: Vec<_> = phase2.iter().flat_map(|a| &a.ok).filter(|id| !recorded.contains(*id)).collect();
    assert!(lost.is_empty(), "{} answered requests have no record after the kill", lost.len());

    // A key disabled on one surviving replica is refused by the other (its cache trusts records
    // for 600 s: only the change notification can tell it).
    let (a, b) = (&replicas[0], &replicas[1]);
    let on_b = async || {
        b.call("POST", &format!("/v1/keys/{key}/encrypt"), &b.admin, Some(json!({"plaintext": b64(b"x")}))).await
    };
    assert_eq!(on_b().await.status, 200);
    assert_eq!(a.call("POST", &format!("/v1/keys/{key}/disable"), &a.admin, None).await.status, 200);
    let disabled = Instant::now();
    while on_b().await.code() != "KeyDisabled" {
        assert!(disabled.elapsed() < Duration::from_secs(2), "the other replica still uses the disabled key");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    eprintln!("replicas: a key disabled on one replica was refused by another after {:?}", disabled.elapsed());
}

/// Two replicas on one fresh Postgres database sharing a root key, `extra` heading their
/// configuration; `None` (skip) without Postgres. The directory holds the root key: keep it.
async fn two_replicas(extra: &str) -> Option<(Server, Server, tempfile::TempDir)> {
    let db = Db::postgres().await?;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("root.key"), "4".repeat(64)).unwrap();
    let toml = format!(
        "{extra}[[backends]]\nname = \"software\"\nkind = \"software\"\nroot_key_file = \"{}\"\n",
        dir.path().join("root.key").display()
    );
    let a = Server::start_with_config(db, &toml, &[]).await;
    let b = Server::start_with_config(Db::Postgres(a.db_url()), &toml, &[]).await;
    Some((a, b, dir))
}

/// Rotation by usage across replicas: a key whose limit is 30 encryptions, used evenly on two
/// replicas sharing one database, rotates once its primary version's count, summed over both as
/// each flushes its counters every second, nears the limit: exactly once, by the system,
/// audited with the count that triggered it (more than either replica's own share).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotates_by_usage_counted_across_replicas() {
    let Some((a, b, _dir)) = two_replicas("").await else { return };
    let key = a.create_key("worn").await;
    let path = format!("/v1/keys/{key}");
    let set = a.call("PATCH", &path, &a.admin, Some(json!({"rotate_after_encryptions": 30}))).await;
    assert_eq!((set.status, set.body["rotate_after_encryptions"].as_u64()), (200, Some(30)), "{}", set.body);
    let primary = async || a.call("GET", &path, &a.admin, None).await.body["primary_version"].as_u64();
    // About five encryptions per replica per second: a flush adds a few, so the trigger (the
    // count plus the batch reaching 30) needs both replicas' counts.
    let started = Instant::now();
    let mut sent: u64 = 0;
    while primary().await == Some(1) {
        assert!(started.elapsed() < Duration::from_secs(20), "the key did not rotate by usage ({sent} sent)");
        for s in [&a, &b] {
            let r = s.call("POST", &format!("{path}/encrypt"), &s.admin, Some(json!({"plaintext": b64(b"w")}))).await;
            assert_eq!(r.status, 200, "{}", r.body);
            sent += 1;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(primary().await, Some(2));
    // Later flushes rotate nothing more (version 2 has encrypted nothing).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(primary().await, Some(2));
    let rows = a
        .audit_store()
        .await
        .query(&keyward_store::AuditQuery { action: Some("RotateKey".into()), limit: 100, ..Default::default() })
        .await
        .unwrap();
    let rotations: Vec<_> = rows.iter().filter(|r| r.outcome == "Success").collect();
    assert_eq!(rotations.len(), 1, "{rotations:?}");
    assert_eq!(rotations[0].principal, "Keyward::Service::\"keyward:system\"", "{:?}", rotations[0]);
    let details: serde_json::Value = serde_json::from_str(rotations[0].details.as_deref().unwrap_or("{}")).unwrap();
    assert_eq!(
        (&details["trigger"], &details["rotate_after_encryptions"]),
        (&json!("rotate_after_encryptions"), &json!("30"))
    );
    let counted: u64 = details["encryptions"].as_str().and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(counted > 16 && counted <= sent, "rotated at {counted} of {sent} sent: {details}");
    // Every encryption is counted once, on the version that made it.
    let versions = a.call("GET", &format!("{path}/versions"), &a.admin, None).await;
    let total: u64 =
        versions.body["versions"].as_array().unwrap().iter().filter_map(|v| v["encryptions"].as_u64()).sum();
    assert_eq!(total, sent, "{}", versions.body);
    // Out-of-range limits are refused; null goes back to the default.
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_canaries_raised_on_any_replica_count_on_the_key_and_cancel_once() {
    let Some((a, b, _dir)) = two_replicas("").await else { return };
    let key = a.create_key("canary").await;
    let path = format!("/v1/keys/{key}");
    let encrypt = async |s: &Server| {
        s.call("POST", &format!("{path}/encrypt"), &s.admin, Some(json!({"plaintext": b64(b"c")}))).await
    };
    assert_eq!(encrypt(&b).await.status, 200, "b caches the enabled key");
    assert_eq!(a.post(&format!("{path}/schedule-deletion"), json!({})).await.status, 200);
    // b hears of the deletion and refuses; each refusal on either replica is one canary.
    let scheduled = Instant::now();
    while encrypt(&b).await.code() != "KeyPendingDeletion" {
        assert!(scheduled.elapsed() < Duration::from_secs(5), "b still uses the key pending deletion");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(encrypt(&a).await.code(), "KeyPendingDeletion");
    assert_eq!(a.get(&path).await.body["deletion_canary_count"], 2);
    // With `cancel`, simultaneous attempts on both replicas cancel the deletion once.
    let r = b.call("PATCH", &path, &b.admin, Some(json!({"on_use_while_pending": "cancel"}))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let (ra, rb) = tokio::join!(encrypt(&a), encrypt(&b));
    assert!([ra.code(), rb.code()].iter().all(|c| ["KeyPendingDeletion", "KeyDisabled"].contains(c)), "{ra:?} {rb:?}");
    let described = a.get(&path).await.body;
    assert_eq!(described["key_state"], "Disabled", "{described}");
    let rows = a
        .audit_store()
        .await
        .query(&keyward_store::AuditQuery {
            action: Some("CancelKeyDeletion".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rows.iter().filter(|r| r.outcome == "Success").count(), 1, "{rows:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_racing_to_make_a_namespace_default_key_make_one() {
    let Some((a, b, _dir)) = two_replicas("").await else { return };
    let path = "/v1/keys/alias%2Fkeyward%2Fraced/encrypt";
    let body = || Some(json!({"plaintext": b64(b"r")}));
    let (ta, tb) = (a.token("app", &["raced"]), b.token("app", &["raced"]));
    let (r1, r2, r3, r4) = tokio::join!(
        a.call("POST", path, &ta, body()),
        b.call("POST", path, &tb, body()),
        a.call("POST", path, &ta, body()),
        b.call("POST", path, &tb, body())
    );
    let answers = [r1, r2, r3, r4];
    assert!(answers.iter().all(|r| r.status == 200), "{answers:?}");
    let ids: std::collections::BTreeSet<_> = answers.iter().map(|r| r.s("key_id")).collect();
    assert_eq!(ids.len(), 1, "every request used one key: {ids:?}");
    let listed = a.get("/v1/keys?namespace=raced").await;
    assert_eq!(listed.body["keys"].as_array().map(Vec::len), Some(1), "{}", listed.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_waiting_on_one_replica_is_approved_on_another() {
    let Some((a, b, _dir)) = two_replicas("[approvals]\nrequired = 2\n").await else { return };
    let key = a.create_key("quorum").await;
    let asked =
        a.call("POST", &format!("/v1/keys/{key}/schedule-deletion"), &a.token("alice", &["admins"]), None).await;
    assert_eq!(asked.status, 202, "{}", asked.body);
    let id = asked.s("approval_id");
    let approve = async |s: &Server, who: &str| {
        s.call("POST", &format!("/v1/approvals/{id}/approve"), &s.token(who, &["approvers"]), None).await
    };
    assert_eq!(approve(&a, "bob").await.s("state"), "Pending");
    let done = approve(&b, "carol").await;
    assert_eq!((done.status, done.s("state")), (200, "Executed".to_owned()), "{}", done.body);
    assert_eq!(a.get(&format!("/v1/keys/{key}")).await.body["key_state"], "PendingDeletion");
}
