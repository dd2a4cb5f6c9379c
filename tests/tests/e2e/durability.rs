//! Durability under load: every answered request has its record after a crash (kill -9) or
//! a graceful stop, with no duplicates; a database outage turns into fast 503s and the
//! service recovers by itself.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keyward_e2e::{Db, Server, b64, on_both_databases, repo_root};
use serde_json::json;

/// Request ids of 2xx answers, and of every answer by status.
#[derive(Default)]
struct Tally {
    ok: Vec<String>,
    statuses: Vec<(Instant, u16, Duration)>,
}

/// Runs `clients` loops of Encrypt until `stop` is set or the server goes away.
fn load(
    s: &Server,
    key: &str,
    clients: usize,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> (Arc<Mutex<Tally>>, Vec<tokio::task::JoinHandle<()>>) {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let handles = (0..clients)
        .map(|c| {
            let (http, tally, stop) = (http.clone(), tally.clone(), stop.clone());
            let url = format!("{}/v1/keys/{key}/encrypt", s.base);
            let token = s.admin.clone();
            tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    n += 1;
                    let started = Instant::now();
                    let body = json!({"plaintext": b64(format!("{c}-{n}").as_bytes())});
                    match http.post(&url).bearer_auth(&token).json(&body).send().await {
                        Ok(r) => {
                            let id =
                                r.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                            let status = r.status().as_u16();
                            let mut t = tally.lock().unwrap();
                            if r.status().is_success() {
                                t.ok.push(id);
                            }
                            t.statuses.push((started, status, started.elapsed()));
                        }
                        // The server is gone (killed): stop this client.
                        Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                    }
                }
            })
        })
        .collect();
    (tally, handles)
}

async fn request_ids(s: &Server) -> Vec<String> {
    let rows = s
        .audit_store()
        .await
        .query(&keyward_store::AuditQuery { limit: 1_000_000, ..Default::default() })
        .await
        .unwrap();
    rows.into_iter().map(|r| r.request_id).collect()
}

fn assert_all_recorded(acked: &[String], recorded: &[String]) {
    let set: HashSet<&String> = recorded.iter().collect();
    assert_eq!(set.len(), recorded.len(), "no duplicate records");
    let missing: Vec<&String> = acked.iter().filter(|id| !set.contains(id)).collect();
    assert!(missing.is_empty(), "{} answered requests have no record, e.g. {:?}", missing.len(), missing.first());
}

on_both_databases!(
    kill_9_under_load_loses_no_answered_request,
    sigterm_under_load_records_every_response,
    kill_9_during_state_changes_leaves_each_change_with_its_record
);

/// Runs 32 clients for 1.5 s, then `interrupt`s the server and returns the request ids of the
/// 2xx answers (after checking there were enough to mean something).
async fn answered_before(s: &mut Server, interrupt: impl FnOnce(&mut Server)) -> Vec<String> {
    let key = s.create_key("load").await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (tally, handles) = load(s, &key, 32, stop.clone());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    interrupt(s);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for h in handles {
        h.await.unwrap();
    }
    let acked = tally.lock().unwrap().ok.clone();
    assert!(acked.len() > 50, "load ran: {} answers", acked.len());
    acked
}

async fn kill_9_under_load_loses_no_answered_request(db: Db) {
    let mut s = Server::start(db).await;
    let acked = answered_before(&mut s, Server::crash_and_restart).await;
    assert_all_recorded(&acked, &request_ids(&s).await);
    // The crashed run's chain still verifies (its tail after the last checkpoint is intact).
    let out = s.audit_verify();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

async fn sigterm_under_load_records_every_response(db: Db) {
    let mut s = Server::start(db).await;
    let acked = answered_before(&mut s, |s| assert_eq!(s.stop(), Some(0), "graceful stop under load exits 0")).await;
    assert_all_recorded(&acked, &request_ids(&s).await);
}

/// Clients toggle a key between Disabled and Enabled while the server is killed: after the
/// restart, every answered change has its record, and the key's state is the one the last
/// recorded change left (a change and its record commit together or not at all).
async fn kill_9_during_state_changes_leaves_each_change_with_its_record(db: Db) {
    let mut s = Server::start(db).await;
    let key = s.create_key("toggle").await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let handles: Vec<_> = (0..8)
        .map(|c| {
            let (http, stop, acked) = (http.clone(), stop.clone(), acked.clone());
            let (base, token, key) = (s.base.clone(), s.admin.clone(), key.clone());
            tokio::spawn(async move {
                let mut n = c;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    n += 1;
                    let op = if n % 2 == 0 { "disable" } else { "enable" };
                    match http.post(format!("{base}/v1/keys/{key}/{op}")).bearer_auth(&token).send().await {
                        Ok(r) if r.status().is_success() => {
                            let id = r.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
                            acked.lock().unwrap().push(id.to_owned());
                        }
                        Ok(_) => {}
                        Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    s.crash_and_restart();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for h in handles {
        h.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 20, "changes ran: {}", acked.len());
    let rows = s
        .audit_store()
        .await
        .query(&keyward_store::AuditQuery { key_id: Some(key.clone()), limit: 1_000_000, ..Default::default() })
        .await
        .unwrap();
    assert_all_recorded(&acked, &rows.iter().map(|r| r.request_id.clone()).collect::<Vec<_>>());
    // Changes commit in the order of their chain, the one the key's creation (a change) is on.
    // Requests that found the key already in the asked state changed nothing: their records
    // are on a writer lane's chain and do not decide the state.
    let changes = rows.iter().find(|r| r.action == "CreateKey").and_then(|r| r.chain_id.clone());
    let last = rows
        .iter()
        .filter(|r| r.outcome == "Success" && (r.action == "EnableKey" || r.action == "DisableKey"))
        .filter(|r| r.chain_id == changes)
        .max_by_key(|r| r.sequence)
        .expect("some change was recorded");
    let expected = if last.action == "DisableKey" { "Disabled" } else { "Enabled" };
    let described = s.get(&format!("/v1/keys/{key}")).await;
    assert_eq!(described.body["key_state"], expected, "{}", described.body);
    let out = s.audit_verify();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

/// A dedicated cluster this test may stop and start.
struct Cluster {
    dir: String,
    bin: String,
    url: String,
}

impl Cluster {
    fn start() -> Self {
        let out = std::process::Command::new(repo_root().join("scripts/start-postgres.sh")).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).unwrap();
        let var = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("export {name}=")))
                .unwrap_or_else(|| panic!("{name} in {text}"))
                .to_owned()
        };
        Self { dir: var("KEYWARD_PG_DIR"), bin: var("KEYWARD_PG_BIN"), url: var("KEYWARD_TEST_DATABASE_URL") }
    }

    fn pg_ctl(&self, args: &[&str]) {
        let status = std::process::Command::new("runuser")
            .args(["-u", "postgres", "--", &format!("{}/pg_ctl", self.bin), "-D", &format!("{}/data", self.dir)])
            .args(args)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "pg_ctl {args:?}");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::process::Command::new(repo_root().join("scripts/stop-postgres.sh")).arg(&self.dir).status();
    }
}

#[tokio::test]
async fn postgres_outage_under_load_fails_fast_and_recovers() {
    if !keyward_e2e::services_required() && std::env::var("KEYWARD_TEST_DATABASE_URL").is_err() {
        eprintln!("skipping: no Postgres (run the full test command)");
        return;
    }
    let cluster = Cluster::start();
    let s = Server::start(Db::Postgres(cluster.url.clone())).await;
    let key = s.create_key("load").await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (tally, handles) = load(&s, &key, 16, stop.clone());
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let down = Instant::now();
    cluster.pg_ctl(&["-m", "immediate", "-w", "stop"]);
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let up = Instant::now();
    let port = cluster.url.rsplit_once(':').and_then(|(_, r)| r.split('/').next()).unwrap().to_owned();
    let options = format!("-c listen_addresses=127.0.0.1 -p {port} -k {}", cluster.dir);
    let log = format!("{}/server.log", cluster.dir);
    cluster.pg_ctl(&["-w", "-t", "60", "-l", &log, "-o", &options, "start"]);
    // Recovery without a restart: successes again within a few seconds.
    let mut recovered = None;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let t = tally.lock().unwrap();
        if t.statuses.iter().any(|(at, status, _)| *at > up && *status == 200) {
            recovered = Some(up.elapsed());
            break;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for h in handles {
        h.await.unwrap();
    }
    let (statuses, acked) = {
        let t = tally.lock().unwrap();
        (t.statuses.clone(), t.ok.clone())
    };
    assert!(recovered.is_some(), "no success after Postgres came back");
    // During the outage (from 2 s after the stop until the start), every answer is a fast 503.
    let during: Vec<_> = statuses
        .iter()
        .filter(|(at, ..)| *at > down + Duration::from_secs(2) && *at + Duration::from_millis(100) < up)
        .collect();
    assert!(!during.is_empty(), "requests were made during the outage");
    assert!(
        during.iter().all(|(_, status, _)| *status == 503),
        "{:?}",
        during.iter().map(|d| d.1).collect::<HashSet<_>>()
    );
    assert!(
        during.iter().all(|(_, _, took)| *took < Duration::from_secs(2)),
        "slowest: {:?}",
        during.iter().map(|d| d.2).max()
    );
    // Requests that began before the stop were answered within 2 s of it.
    let straddling = statuses
        .iter()
        .filter(|(at, ..)| *at < down)
        .map(|(at, _, took)| (*at + *took).saturating_duration_since(down))
        .max();
    assert!(
        straddling.unwrap_or_default() < Duration::from_secs(2),
        "a request outlived the outage start by {straddling:?}"
    );
    assert_all_recorded(&acked, &request_ids(&s).await);
}

/// The audit writer's own connection, dropped while idle (a firewall, `idle_session_timeout`),
/// costs no request: after a quiet spell it is checked before use and replaced.
#[tokio::test]
async fn an_audit_connection_dropped_while_idle_costs_no_request() {
    let Some(db) = Db::postgres().await else { return };
    let s = Server::start(db).await;
    let key = s.create_key("idle").await;
    let path = format!("/v1/keys/{key}/encrypt");
    let encrypt = || s.post(&path, json!({"plaintext": b64(b"quiet")}));
    assert_eq!(encrypt().await.status, 200);
    let admin = keyward_store::connect(&s.db_url()).await.unwrap();
    sea_orm::ConnectionTrait::execute_unprepared(
        &admin,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(11)).await;
    let r = encrypt().await;
    assert_eq!(r.status, 200, "the first request after the drop: {}", r.body);
    assert_eq!(encrypt().await.status, 200);
}

/// Past its in-flight limit the server refuses at once with 429 and `Retry-After` (nothing
/// runs, so nothing is recorded) while health stays answered; every admitted request is
/// answered and recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_in_flight_limit_requests_are_refused_not_queued() {
    let s = Server::start_with_config(Db::Sqlite, "max_in_flight = 2\nadmission_wait_ms = 0\n", &[]).await;
    let key = s.create_key("busy").await;
    let before = s.audit_count().await;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let sends: Vec<_> = (0..96)
        .map(|i| {
            let (http, url, token) = (http.clone(), format!("{}/v1/keys/{key}/encrypt", s.base), s.admin.clone());
            tokio::spawn(async move {
                let body = json!({"plaintext": b64(format!("m{i}").as_bytes())});
                let r = http.post(&url).bearer_auth(&token).json(&body).send().await.unwrap();
                let status = r.status().as_u16();
                let retry = r.headers().get("retry-after").map(|v| v.to_str().unwrap_or("").to_owned());
                let body: serde_json::Value = r.json().await.unwrap_or_default();
                (status, retry, body)
            })
        })
        .collect();
    let health = http.get(format!("{}/healthz", s.base)).send().await.unwrap().status().as_u16();
    let mut answers = Vec::new();
    for t in sends {
        answers.push(t.await.unwrap());
    }
    assert_eq!(health, 200, "health is never refused");
    let refused: Vec<_> = answers.iter().filter(|(status, ..)| *status == 429).collect();
    let served = answers.iter().filter(|(status, ..)| *status == 200).count();
    assert!(!refused.is_empty(), "96 requests at once with 2 slots: some are refused");
    assert_eq!(served + refused.len(), answers.len(), "every other request is served");
    for (_, retry, body) in &refused {
        assert_eq!(retry.as_deref(), Some("1"));
        assert_eq!(body["code"], "RateLimited", "{body}");
    }
    assert_eq!(s.audit_count().await - before, served as u64, "admitted requests are recorded, refusals are not");
}
