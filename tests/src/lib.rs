//! Test harness: starts the real `keyward` binary on an ephemeral port against SQLite or a
//! fresh Postgres database, and talks to it over HTTP.
//!
//! Postgres comes from `KEYWARD_TEST_DATABASE_URL` (an admin URL; each server gets its own
//! database). With `KEYWARD_REQUIRE_SERVICES=1` (set by the full test command) a missing
//! service fails the test instead of skipping it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test harness")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sea_orm::{ConnectionTrait, Database};
use serde_json::Value;

mod hsm;
mod json_server;
mod kms;
pub use hsm::{Hsm, ObjectFacts};
pub use json_server::JsonServer;
pub use kms::{CREDENTIALS as KMS_CREDENTIALS, Kms};

/// An AWS SDK for Rust KMS client for `s`'s AWS-compatible API, signing with an access key
/// from CreateAccessKey's answer (`access_key_id`, `secret_access_key`); retries off, so a
/// test sees each refusal.
pub fn kms_client(s: &Server, key: &Value) -> aws_sdk_kms::Client {
    use aws_sdk_kms::config::{BehaviorVersion, Credentials, Region};
    let field = |f: &str| key[f].as_str().unwrap_or_else(|| panic!("no `{f}` in {key}")).to_owned();
    let creds = Credentials::new(field("access_key_id"), field("secret_access_key"), None, None, "keyward-e2e");
    let config = aws_sdk_kms::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("eu-central-1"))
        .credentials_provider(creds)
        .endpoint_url(&s.base)
        .retry_config(aws_sdk_kms::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_kms::Client::from_conf(config)
}

/// Starts `keyward serve` with `toml` as its configuration, expects it to refuse to start, and
/// returns what it printed on stderr (the reason).
pub fn refuses_to_start(toml: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("keyward.toml");
    std::fs::write(&path, toml).expect("write config");
    let out = Command::new(keyward_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&path)
        .arg("--data-dir")
        .arg(dir.path())
        .current_dir(repo_root())
        .output()
        .expect("run keyward");
    assert!(!out.status.success(), "started with:\n{toml}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs the `keyward` command line against a server as the holder of `token`.
pub fn cli(s: &Server, token: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(keyward_bin())
        .args(args)
        .env("KEYWARD_SERVER", &s.base)
        .env("KEYWARD_TOKEN", token)
        .env("RUST_LOG", "off")
        .output()
        .expect("run keyward")
}

/// Whether the cvc5 solver (policy proofs) is installed: a test that needs it skips without
/// it, or fails in the full suite.
pub fn solver_present() -> bool {
    let found = std::process::Command::new(std::env::var("CVC5").unwrap_or_else(|_| "cvc5".into()))
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(found || !services_required(), "cvc5 is not installed but KEYWARD_REQUIRE_SERVICES=1");
    if !found {
        eprintln!("skipping: no cvc5 (apt install cvc5, or run the full test command)");
    }
    found
}

/// Which database a server runs on.
#[derive(Debug, Clone)]
pub enum Db {
    /// The embedded default: SQLite in the data directory.
    Sqlite,
    /// A fresh Postgres database.
    Postgres(String),
}

/// Whether missing services fail tests (the full suite) or skip them (`cargo test` alone).
pub fn services_required() -> bool {
    std::env::var("KEYWARD_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

impl Db {
    /// A fresh Postgres database, or `None` (skip) when none is configured and services are
    /// not required. Panics when required and missing.
    pub async fn postgres() -> Option<Self> {
        let Ok(admin) = std::env::var("KEYWARD_TEST_DATABASE_URL") else {
            assert!(!services_required(), "KEYWARD_TEST_DATABASE_URL is not set but KEYWARD_REQUIRE_SERVICES=1");
            eprintln!("skipping: no Postgres (set KEYWARD_TEST_DATABASE_URL or run the full test command)");
            return None;
        };
        let name = format!("kw_{}", uuid::Uuid::new_v4().simple());
        let conn = Database::connect(admin.as_str()).await.expect("connect to the Postgres admin URL");
        conn.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("create a test database");
        conn.close().await.ok();
        let (base, _) = admin.rsplit_once('/').expect("admin URL ends with /DBNAME");
        Some(Db::Postgres(format!("{base}/{name}")))
    }
}

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Path of the `keyward` binary built beside this test binary.
pub fn keyward_bin() -> PathBuf {
    if let Ok(p) = std::env::var("KEYWARD_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/e2e-HASH -> target/<profile>/keyward
    let bin = exe.parent().and_then(Path::parent).expect("target dir").join("keyward");
    assert!(
        bin.exists(),
        "{} not found: build it with `cargo build -p keyward-server` (cargo test --workspace does)",
        bin.display()
    );
    bin
}

/// A running server.
#[allow(missing_debug_implementations, reason = "test harness")]
pub struct Server {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The data directory (kept across restarts).
    pub data_dir: tempfile::TempDir,
    /// The database it runs on.
    pub db: Db,
    /// The admin token the dev setup wrote.
    pub admin: String,
    extra_args: Vec<String>,
    env: Vec<(String, String)>,
    http: reqwest::Client,
    config_dir: Option<tempfile::TempDir>,
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Resp {
    /// Status code.
    pub status: u16,
    /// Parsed JSON body (`Null` when empty).
    pub body: Value,
    /// Response headers.
    pub headers: reqwest::header::HeaderMap,
}

impl Resp {
    /// A string field of the body.
    pub fn s(&self, field: &str) -> String {
        self.body[field].as_str().unwrap_or_else(|| panic!("no string `{field}` in {}", self.body)).to_owned()
    }

    /// The problem code of an error body.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
}

impl Server {
    /// Starts a server on `db` with the dev setup.
    pub async fn start(db: Db) -> Self {
        Self::start_with(db, &[]).await
    }

    /// Starts a server with extra `serve` arguments.
    pub async fn start_with(db: Db, extra: &[&str]) -> Self {
        Self::start_with_env(db, extra, &[]).await
    }

    /// Starts a server with extra `serve` arguments and environment variables.
    pub async fn start_with_env(db: Db, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let data_dir = tempfile::tempdir().expect("tempdir");
        let mut s = Self {
            child: None,
            base: String::new(),
            data_dir,
            db,
            admin: String::new(),
            extra_args: extra.iter().map(|s| (*s).to_owned()).collect(),
            env: env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client"),
            config_dir: None,
        };
        s.launch();
        s
    }

    /// Starts a server with a TOML configuration file (written to a temporary file).
    pub async fn start_with_config(db: Db, toml: &str, extra: &[&str]) -> Self {
        Self::start_with_config_env(db, toml, extra, &[]).await
    }

    /// As [`Server::start_with_config`], with environment variables.
    pub async fn start_with_config_env(db: Db, toml: &str, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("keyward.toml");
        std::fs::write(&path, toml).expect("write config");
        let path = path.display().to_string();
        let mut args = vec!["--config", path.as_str()];
        args.extend_from_slice(extra);
        let mut s = Self::start_with_env(db, &args, env).await;
        // Restarts read the file again: keep it for the server's life.
        s.config_dir = Some(dir);
        s
    }

    /// Runs `keyward audit verify` on this server's state.
    pub fn audit_verify(&self) -> std::process::Output {
        // With the server's configuration file, if it has one (it may name the signing key).
        let config = self.extra_args.iter().position(|a| a == "--config").map(|i| &self.extra_args[i..=i + 1]);
        Command::new(keyward_bin())
            .args(["audit", "verify"])
            .args(self.state_args())
            .args(config.unwrap_or_default())
            .output()
            .expect("audit verify")
    }

    /// Arguments that select this server's state (data dir and database).
    pub fn state_args(&self) -> Vec<String> {
        let mut args = vec!["--data-dir".to_owned(), self.data_dir.path().display().to_string()];
        if let Db::Postgres(url) = &self.db {
            args.push("--database-url".into());
            args.push(url.clone());
        }
        args
    }

    fn launch(&mut self) {
        let mut cmd = Command::new(keyward_bin());
        cmd.arg("serve").args(self.state_args());
        if !self.extra_args.iter().any(|a| a == "--listen") {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        cmd.args(&self.extra_args);
        // Run from the repository so `policies/` is the one under test.
        cmd.current_dir(repo_root());
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd.env("RUST_LOG", "warn").stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("spawn keyward");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut base = None;
        for line in lines.by_ref() {
            let line = line.expect("read stdout");
            if let Some(addr) = line.strip_prefix("Keyward listening on ") {
                base = Some(addr.trim().to_owned());
            }
            if line.trim() == "Ready." {
                break;
            }
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        self.base = base.unwrap_or_else(|| panic!("server did not report its address (exit: {:?})", child.try_wait()));
        // Only the dev setup writes an admin token; configured issuers mint their own.
        self.admin = std::fs::read_to_string(self.data_dir.path().join("admin.token"))
            .map(|t| t.trim().to_owned())
            .unwrap_or_default();
        self.child = Some(child);
    }

    /// Sends SIGTERM and waits; returns the exit code.
    pub fn stop(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        for _ in 0..300 {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        child.wait().ok().and_then(|s| s.code())
    }

    /// Sends a signal (`HUP`, `TERM`, ...) to the server.
    pub fn signal(&self, name: &str) {
        let child = self.child.as_ref().expect("running");
        let status = Command::new("kill").arg(format!("-{name}")).arg(child.id().to_string()).status().expect("kill");
        assert!(status.success());
    }

    /// Kills the server with SIGKILL (no shutdown at all) and starts it again on the same
    /// data directory and database.
    pub fn crash_and_restart(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.launch();
    }

    /// Starts a stopped server again on the same data directory and database.
    pub fn restart_stopped(&mut self) {
        assert!(self.child.is_none(), "the server is running");
        self.launch();
    }

    /// Kills the server with SIGKILL (no shutdown at all) and leaves it down.
    pub fn crash(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops and starts again on the same data directory and database.
    pub fn restart(&mut self) {
        assert_eq!(self.stop(), Some(0), "graceful shutdown exits 0");
        self.launch();
    }

    /// Mints a token with `keyward token` for another principal.
    pub fn token(&self, sub: &str, groups: &[&str]) -> String {
        let mut cmd = Command::new(keyward_bin());
        cmd.arg("token").args(self.state_args()).args(["--sub", sub]);
        for g in groups {
            cmd.args(["--group", g]);
        }
        let out = cmd.output().expect("keyward token");
        assert!(out.status.success(), "keyward token failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("utf8").trim().to_owned()
    }

    /// Sends a request; `token` may be empty for none.
    pub async fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> Resp {
        self.call_with(method, path, token, body, &[]).await
    }

    /// Sends a request with extra headers.
    pub async fn call_with(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if !token.is_empty() {
            req = req.bearer_auth(token);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.expect("body");
        let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
        Resp { status, body, headers }
    }

    /// POST as admin.
    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.call("POST", path, &self.admin, Some(body)).await
    }

    /// GET as admin.
    pub async fn get(&self, path: &str) -> Resp {
        self.call("GET", path, &self.admin, None).await
    }

    /// Creates a key in `namespace` as admin and returns its id.
    pub async fn create_key(&self, namespace: &str) -> String {
        let r = self.post("/v1/keys", serde_json::json!({ "namespace": namespace })).await;
        assert_eq!(r.status, 201, "{}", r.body);
        r.s("key_id")
    }

    /// Schedules each key's deletion, moves its deletion date into the past (as a DBA could),
    /// and waits until the server's own maintenance pass has destroyed it (start the server
    /// with a short `maintenance_interval_seconds`).
    pub async fn destroy_now(&self, keys: &[&str]) {
        let conn = keyward_store::connect(&self.db_url()).await.expect("connect");
        for key in keys {
            let r = self
                .post(&format!("/v1/keys/{key}/schedule-deletion"), serde_json::json!({"pending_window_days": 7}))
                .await;
            assert_eq!(r.status, 200, "{}", r.body);
            let past = chrono::Utc::now().timestamp_micros() - 1_000_000;
            conn.execute_unprepared(&format!("UPDATE keys SET deletion_date = {past} WHERE id = '{key}'"))
                .await
                .expect("move the deletion date");
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        for key in keys {
            loop {
                // The key is marked first; its material goes in a second audited step, and
                // each version reports `Destroyed` only once its material is gone.
                let state = self.get(&format!("/v1/keys/{key}")).await.body["key_state"].clone();
                let versions = self.get(&format!("/v1/keys/{key}/versions")).await;
                let all_gone = versions.status == 200
                    && versions.body["versions"]
                        .as_array()
                        .is_some_and(|v| v.iter().all(|v| v["state"] == "Destroyed"));
                if state == "Destroyed" && all_gone {
                    break;
                }
                assert!(std::time::Instant::now() < deadline, "{key} not destroyed in time: {state}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }

    /// Counts the audit records in the server's database.
    pub async fn audit_count(&self) -> u64 {
        self.audit_store().await.count().await.expect("count audit")
    }

    /// The server's database URL.
    pub fn db_url(&self) -> String {
        match &self.db {
            Db::Sqlite => format!("sqlite://{}?mode=rwc", self.data_dir.path().join("keyward.db").display()),
            Db::Postgres(u) => u.clone(),
        }
    }

    /// The audit store of the server's database, read directly.
    pub async fn audit_store(&self) -> keyward_store::SqlAuditStore {
        keyward_store::SqlAuditStore::new(keyward_store::connect(&self.db_url()).await.expect("connect"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Base64 (standard, padded).
pub fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decodes base64.
pub fn unb64(s: &str) -> Vec<u8> {
    STANDARD.decode(s).expect("base64")
}

/// Declares a test body as two tests, one per database.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::Db::Sqlite).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(db) = $crate::Db::postgres().await {
                        super::$name(db).await;
                    }
                }
            }
        )*
    };
}

/// An in-process service over a real store, for behaviour that needs a controlled clock.
pub mod inproc {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use keyward_audit::{AuditWriter, MemoryAuditStore, WriterConfig};
    use keyward_authz::{CedarAuthorizer, PolicyBundle};
    use keyward_backend_software::{RootKey, SoftwareBackend};
    use keyward_core::model::principal::{Principal, PrincipalKind};
    use keyward_core::operation::Operation;
    use keyward_core::ports::backend::DynBackend;
    use keyward_core::ports::clock::Clock;
    use keyward_core::service::{Backends, KeyService, RequestMeta, RequestStart};

    use super::Db;

    /// A service, its audit records and the temporary directory holding its SQLite file.
    #[allow(missing_debug_implementations, reason = "test harness")]
    pub struct Rig {
        /// The service.
        pub service: Arc<KeyService>,
        /// Committed audit records of requests that changed nothing.
        pub audit: Arc<MemoryAuditStore>,
        /// The database, where state changes are recorded with their transactions.
        pub db: Option<sea_orm::DatabaseConnection>,
        _dir: tempfile::TempDir,
    }

    impl Rig {
        /// Wires a service on `db` with `clock` and the default policies.
        pub async fn new(db: Db, clock: Arc<dyn Clock>) -> Self {
            let software: Arc<dyn DynBackend> = Arc::new(SoftwareBackend::new(RootKey::from_bytes([3; 32])));
            Self::with_backend(db, clock, software).await
        }

        /// As [`Rig::new`], with `backend` as the one backend instance (named `software`).
        pub async fn with_backend(db: Db, clock: Arc<dyn Clock>, backend: Arc<dyn DynBackend>) -> Self {
            let dir = tempfile::tempdir().expect("tempdir");
            let url = match db {
                Db::Sqlite => format!("sqlite://{}?mode=rwc", dir.path().join("k.db").display()),
                Db::Postgres(u) => u,
            };
            let conn = keyward_store::connect(&url).await.expect("connect");
            keyward_store::migrate(&conn).await.expect("migrate");
            let store = Arc::new(keyward_store::SqlStore::new(conn.clone()));
            let mut rig = Self::assemble(dir, clock, backend, store);
            rig.db = Some(conn);
            rig
        }

        /// Every committed record: those of requests that changed nothing (the writer's) and
        /// those of changes (the database's), in no particular order.
        pub async fn records(&self) -> Vec<keyward_core::ports::audit::AuditRecord> {
            use keyward_core::ports::audit::{AuditFilter, AuditReader as _};
            let mut records = self.audit.records();
            if let Some(db) = &self.db {
                let reader = keyward_store::SqlAuditReader::new(keyward_store::SqlAuditStore::new(db.clone()), None);
                let stored = reader.query(&AuditFilter { limit: 1_000_000, ..AuditFilter::default() }).await;
                records.extend(stored.expect("read the change records").into_iter().map(|s| s.record));
            }
            records
        }

        /// As [`Rig::new`], over a given store (a test double wrapping a real one).
        pub async fn with_store(
            _db: Db,
            clock: Arc<dyn Clock>,
            store: Arc<dyn keyward_core::ports::store::KeyStore>,
        ) -> Self {
            let dir = tempfile::tempdir().expect("tempdir");
            let software: Arc<dyn DynBackend> = Arc::new(SoftwareBackend::new(RootKey::from_bytes([3; 32])));
            Self::assemble(dir, clock, software, store)
        }

        fn assemble(
            dir: tempfile::TempDir,
            clock: Arc<dyn Clock>,
            backend: Arc<dyn DynBackend>,
            store: Arc<dyn keyward_core::ports::store::KeyStore>,
        ) -> Self {
            let audit = Arc::new(MemoryAuditStore::new());
            let (writer, _task) = AuditWriter::spawn(audit.clone(), WriterConfig::default());
            let authz =
                Arc::new(CedarAuthorizer::new(PolicyBundle::embedded().expect("policies")).expect("authorizer"));
            let backends =
                Backends::new(BTreeMap::from([("software".to_owned(), backend)]), "software".into()).expect("backends");
            let service = Arc::new(KeyService::new(store, authz, Arc::new(writer), clock, backends));
            Self { service, audit, db: None, _dir: dir }
        }

        /// CreateKey's input for an `AES_256` key in `namespace`, with nothing else set.
        pub fn key_input(namespace: &str) -> keyward_core::service::CreateKeyInput {
            keyward_core::service::CreateKeyInput {
                namespace: keyward_core::model::ids::Namespace::parse(namespace).expect("namespace"),
                description: String::new(),
                spec: keyward_core::model::key::KeySpec::Aes256,
                usage: None,
                tags: BTreeMap::new(),
                backend: None,
                alias: None,
                external_key_id: None,
                origin: keyward_core::model::import::KeyOrigin::Keyward,
                idempotency: None,
            }
        }

        /// An admin request, to run with `service.audited`.
        pub fn admin(&self, op: Operation) -> RequestStart {
            let admin = Principal { kind: PrincipalKind::User, id: "admin".into(), groups: vec!["admins".into()] };
            RequestStart {
                meta: RequestMeta { request_id: uuid::Uuid::new_v4().to_string(), ..RequestMeta::default() },
                principal: Ok(admin),
                operation: op,
            }
        }
    }
}
