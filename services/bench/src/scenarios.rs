//! The scenarios of BENCHMARKS.md that exist so far, and the measuring procedure each follows:
//! warm up, closed loop for the maximum (with server CPU), then open loop at 50% and 80% of it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::RunArgs;
use crate::load::{self, Conn, Picker, Request, RunResult};
use crate::postgres::Postgres;
use crate::report::{self, Row};
use crate::servers::{ServerProcess, cpu_us_of_command};

const ALL: &[&str] = &["B0", "S1", "S3", "S4", "S6", "S7", "S8", "S9", "S10", "S11", "S13", "S14", "Q1"];

/// S13's XKS credential (a bench-only key store).
pub const XKS_AKID: &str = "BENCHXKSACCESSKEYAAAA";
/// Its secret.
pub const XKS_SECRET: &str = "bench-xks-secret-bench-xks-secret-bench-xks";

#[derive(Debug, Clone, Copy)]
struct Timing {
    warmup: Duration,
    closed: Duration,
    open: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Audit {
    Memory,
    Postgres,
    /// In memory, keys in the SoftHSM2 token (S8).
    MemoryHsm,
    /// In memory, keys in an external KMS at this endpoint (S9).
    MemoryKms,
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Encrypt(usize),
    GenerateDataKey,
    /// Encrypt through the AWS KMS-compatible API, signed with SigV4.
    AwsEncrypt(usize),
    /// XKS Encrypt of a 32-byte data key with AAD and a CDIV, each request signed anew
    /// (the proxy refuses a replayed signature).
    XksEncrypt,
    /// Sign a 64-byte message with an ECC_NIST_P256 key (ECDSA_SHA_256).
    Sign,
    /// GenerateMac of a 64-byte message with an HMAC_256 key.
    Mac,
}

impl Op {
    /// The spec of the key the scenario uses.
    fn spec(&self) -> &'static str {
        match self {
            Self::Sign => "ECC_NIST_P256",
            Self::Mac => "HMAC_256",
            _ => "AES_256",
        }
    }
}

struct Ctx {
    rt: tokio::runtime::Runtime,
    args: RunArgs,
    timing: Timing,
    git_sha: String,
    time: String,
    cores: usize,
    b0_rps: Option<f64>,
    rows: Vec<Row>,
    fdatasync: Option<f64>,
    /// Set while S13 starts a server with the Kubernetes plugin.
    kubernetes_socket: Option<PathBuf>,
}

/// Runs the requested scenarios and prints the report.
#[allow(clippy::print_stdout, reason = "the report is the output")]
pub fn run(args: RunArgs) -> Result<(), String> {
    let mut ids: Vec<String> = Vec::new();
    for s in &args.scenarios {
        if s.eq_ignore_ascii_case("all") {
            ids.extend(ALL.iter().map(|s| (*s).to_owned()));
        } else if ALL.iter().any(|a| a.eq_ignore_ascii_case(s)) {
            ids.push(s.to_ascii_uppercase());
        } else {
            return Err(format!("unknown scenario `{s}`; known: {}", ALL.join(", ")));
        }
    }
    // Every ratio needs B0 from the same run.
    if !ids.iter().any(|i| i == "B0") {
        ids.insert(0, "B0".into());
    }
    ids.dedup();
    let timing = if args.quick {
        Timing { warmup: Duration::from_millis(300), closed: Duration::from_secs(1), open: Duration::from_millis(700) }
    } else {
        let d = Duration::from_secs_f64(args.duration.max(1.0));
        Timing { warmup: Duration::from_secs(1), closed: d, open: d / 2 }
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let mut ctx = Ctx {
        rt,
        args,
        timing,
        git_sha: git_sha(),
        time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        cores: std::thread::available_parallelism().map_or(1, usize::from),
        b0_rps: None,
        rows: Vec::new(),
        fdatasync: None,
        kubernetes_socket: None,
    };
    for id in &ids {
        eprintln!("keyward-bench: running {id}");
        match id.as_str() {
            "B0" => echo(&mut ctx, "B0", false)?,
            "S1" => echo(&mut ctx, "S1 HS256", true)?,
            "S3" => keyward(&mut ctx, "S3 encrypt 1KB", Audit::Memory, Op::Encrypt(1024))?,
            "S4" => keyward(&mut ctx, "S4 encrypt 1KB, audit on Postgres", Audit::Postgres, Op::Encrypt(1024))?,
            "S6" => keyward(&mut ctx, "S6 GenerateDataKey, audit on Postgres", Audit::Postgres, Op::GenerateDataKey)?,
            "S7" => {
                for size in [32usize, 256, 1024, 4096] {
                    keyward(&mut ctx, &format!("S7 encrypt {size}B"), Audit::Memory, Op::Encrypt(size))?;
                }
            }
            "S8" => hsm(&mut ctx)?,
            "S9" => kms(&mut ctx)?,
            "S10" => keyward(&mut ctx, "S10 encrypt 1KB, AWS API (SigV4)", Audit::Memory, Op::AwsEncrypt(1024))?,
            "S11" => overload(&mut ctx)?,
            "S14" => signing(&mut ctx)?,
            "Q1" => {
                let (rate, ns) = crate::quota_check::rate(ctx.timing.closed)?;
                eprintln!("keyward-bench: Q1 quota check (principal, key, namespace): {ns:.0} ns per check");
                push_raw(&mut ctx, "Q1 quota check, 1 thread", rate, 1);
            }
            "S13" => {
                keyward(&mut ctx, "S13 XKS encrypt, software", Audit::Memory, Op::XksEncrypt)?;
                if crate::hsm::Token::from_env().is_ok() {
                    keyward(&mut ctx, "S13 XKS encrypt, pkcs11 (SoftHSM2)", Audit::MemoryHsm, Op::XksEncrypt)?;
                } else {
                    eprintln!("keyward-bench: S13 on SoftHSM2 skipped: no token (scripts/start-softhsm.sh)");
                }
                kubernetes(&mut ctx)?;
            }
            _ => {}
        }
    }
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let command: Vec<String> = std::env::args().collect();
    let mut header = format!(
        "Keyward benchmark — {} — {} cores ({cpu}) — commit {} — `{}` — {} connections, {} server workers, client: 1 thread",
        ctx.time,
        ctx.cores,
        ctx.git_sha,
        command.join(" "),
        ctx.args.concurrency,
        ctx.args.workers
    );
    if let Some(f) = ctx.fdatasync {
        header.push_str(&format!(
            "\nPostgres disk: pg_test_fsync 8 kB fdatasync {f:.0} ops/s ({:.0} µs per flush)",
            1e6 / f
        ));
    }
    println!();
    report::print(&ctx.rows, &header);
    let path = report::write_jsonl(&ctx.rows)?;
    println!("\nrows written to {}", path.display());
    if ctx.rows.iter().any(|r| r.audit_check.as_deref() == Some("MISMATCH")) {
        return Err("audit rows differ from requests answered".into());
    }
    Ok(())
}

fn echo(ctx: &mut Ctx, name: &str, jwt: bool) -> Result<(), String> {
    let mut args = vec!["serve-echo".to_owned(), "--workers".into(), ctx.args.workers.to_string()];
    let secret = "bench-secret-0123456789abcdef0123456789abcdef";
    if jwt {
        args.push("--jwt".into());
    }
    let server = spawn_with_env(&args, jwt.then_some(("KEYWARD_BENCH_SECRET", secret)))?;
    let token = if jwt {
        let spec = keyward_server::dev::TokenSpec {
            issuer: keyward_server::dev::DEV_ISSUER,
            audience: keyward_server::dev::DEV_AUDIENCE,
            sub: "bench",
            groups: &[],
            ttl: chrono::Duration::hours(1),
            service: false,
        };
        Some(keyward_server::dev::mint(secret.as_bytes(), &spec)?)
    } else {
        None
    };
    let body = format!("{{\"data\":\"{}\"}}", "x".repeat(1012));
    let req = Request::new("POST", "/echo", token.as_deref(), Some(&body));
    let pick: Picker = Arc::new(move |_| req.clone());
    let rows = measure(ctx, name, &server, pick, None)?;
    if name == "B0" {
        ctx.b0_rps = rows.first().map(|r| r.row.rps);
    }
    ctx.rows.extend(rows.into_iter().map(|r| r.row));
    server.stop();
    Ok(())
}

fn spawn_with_env(args: &[String], env: Option<(&str, &str)>) -> Result<ServerProcess, String> {
    match env {
        None => ServerProcess::spawn(args),
        Some((k, v)) => {
            // Run through `env` so this process's environment stays untouched.
            let mut full = vec![format!("{k}={v}")];
            full.push(std::env::current_exe().map_err(|e| e.to_string())?.display().to_string());
            full.extend_from_slice(args);
            ServerProcess::spawn_program("env", &full)
        }
    }
}

fn keyward(ctx: &mut Ctx, name: &str, audit: Audit, op: Op) -> Result<(), String> {
    keyward_on(ctx, name, audit, op, None)
}

/// A server under test with its key, admin token and (for durable audit) database.
struct Launched {
    server: ServerProcess,
    token: String,
    key_id: String,
    data_dir: PathBuf,
    pg: Option<Postgres>,
}

/// Starts a server for `audit` and creates one key.
fn launch(ctx: &mut Ctx, audit: Audit, kms: Option<&str>, xks: bool, spec: &str) -> Result<Launched, String> {
    let pg = match audit {
        Audit::Postgres => Some(Postgres::start()?),
        Audit::Memory | Audit::MemoryHsm | Audit::MemoryKms => None,
    };
    if ctx.fdatasync.is_none() && !ctx.args.quick {
        ctx.fdatasync = pg.as_ref().and_then(Postgres::fdatasync_ops);
    }
    let data_dir = temp_dir();
    let mut args = vec![
        "serve-keyward".to_owned(),
        "--workers".into(),
        ctx.args.workers.to_string(),
        "--data-dir".into(),
        data_dir.display().to_string(),
        "--audit".into(),
        if audit == Audit::Postgres { "database" } else { "memory" }.into(),
    ];
    if audit == Audit::MemoryHsm {
        args.push("--hsm".into());
    }
    if let (Audit::MemoryKms, Some(endpoint)) = (audit, kms) {
        args.extend(["--kms-endpoint".into(), endpoint.to_owned()]);
    }
    if let Some(n) = ctx.args.audit_lanes {
        args.extend(["--audit-lanes".into(), n.to_string()]);
    }
    if let Some(ms) = ctx.args.audit_linger_ms {
        args.extend(["--audit-linger-ms".into(), ms.to_string()]);
    }
    if ctx.args.count_allocations {
        args.push("--count-allocations".into());
    }
    if xks {
        args.push("--xks".into());
    }
    if let Some(socket) = &ctx.kubernetes_socket {
        args.extend(["--kubernetes-socket".into(), socket.display().to_string()]);
    }
    if let Some(pg) = &pg {
        args.extend(["--database-url".into(), pg.url().to_owned()]);
    }
    let server = if audit == Audit::MemoryKms {
        // The SDK reads credentials from the environment; the stub ignores them.
        let mut full: Vec<String> =
            ["AWS_ACCESS_KEY_ID=bench", "AWS_SECRET_ACCESS_KEY=bench"].iter().map(|s| (*s).to_owned()).collect();
        full.push(std::env::current_exe().map_err(|e| e.to_string())?.display().to_string());
        full.extend(args);
        ServerProcess::spawn_program("env", &full)?
    } else {
        ServerProcess::spawn(&args)?
    };
    // The banner writes the admin token just after announcing the address.
    let token_file = data_dir.join("admin.token");
    for _ in 0..100 {
        if token_file.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let token = std::fs::read_to_string(&token_file).map_err(|e| format!("admin token: {e}"))?.trim().to_owned();

    // Setup: one key.
    let create_body = format!(r#"{{"namespace":"bench","key_spec":"{spec}"}}"#);
    let create = Request::new("POST", "/v1/keys", Some(&token), Some(&create_body));
    let addr = server.addr;
    let key = setup(ctx, addr, &create, "create key")?;
    let key_id = key["key_id"].as_str().ok_or("no key_id")?.to_owned();
    let alias = Request::new(
        "PUT",
        "/v1/aliases/alias%2Fbench",
        Some(&token),
        Some(&format!(r#"{{"target_key_id":"{key_id}"}}"#)),
    );
    setup(ctx, addr, &alias, "create alias")?;
    Ok(Launched { server, token, key_id, data_dir, pg })
}

/// One setup call that must answer 201; its JSON answer.
fn setup(ctx: &Ctx, addr: std::net::SocketAddr, req: &Request, what: &str) -> Result<serde_json::Value, String> {
    let (status, body) =
        ctx.rt.block_on(async { Conn::open(addr).await?.send(req).await }).map_err(|e| e.to_string())?;
    if status != 201 {
        return Err(format!("{what}: {status} {}", String::from_utf8_lossy(&body)));
    }
    serde_json::from_slice(&body).map_err(|e| format!("{what}: {e}"))
}

fn encrypt_request(token: &str, key_id: &str, size: usize) -> Request {
    let plaintext = STANDARD.encode(vec![0x5Au8; size]);
    let body = format!(r#"{{"plaintext":"{plaintext}","encryption_context":{{"app":"bench"}}}}"#);
    Request::new("POST", &format!("/v1/keys/{key_id}/encrypt"), Some(token), Some(&body))
}

fn keyward_on(ctx: &mut Ctx, name: &str, audit: Audit, op: Op, kms: Option<&str>) -> Result<(), String> {
    let Launched { server, token, key_id, data_dir, pg } =
        launch(ctx, audit, kms, matches!(op, Op::XksEncrypt), op.spec())?;
    let addr = server.addr;
    let req = match op {
        Op::XksEncrypt => None,
        Op::Encrypt(size) => Some(encrypt_request(&token, &key_id, size)),
        Op::GenerateDataKey => Some(Request::new(
            "POST",
            &format!("/v1/keys/{key_id}/generate-data-key"),
            Some(&token),
            Some(r#"{"encryption_context":{"app":"bench"}}"#),
        )),
        Op::AwsEncrypt(size) => Some(aws_encrypt(ctx, addr, &token, &key_id, size)?),
        Op::Sign => Some(Request::new(
            "POST",
            &format!("/v1/keys/{key_id}/sign"),
            Some(&token),
            Some(&format!(r#"{{"message":"{}","signing_algorithm":"ECDSA_SHA_256"}}"#, STANDARD.encode([0x5Au8; 64]))),
        )),
        Op::Mac => Some(Request::new(
            "POST",
            &format!("/v1/keys/{key_id}/generate-mac"),
            Some(&token),
            Some(&format!(r#"{{"message":"{}","mac_algorithm":"HMAC_SHA_256"}}"#, STANDARD.encode([0x5Au8; 64]))),
        )),
    };
    let pick: Picker = match req {
        Some(req) => Arc::new(move |_| req.clone()),
        None => Arc::new(xks_encrypt),
    };
    let before = match &pg {
        Some(pg) => Some(ctx.rt.block_on(audit_count(pg.url()))?),
        None => None,
    };
    let mut rows = measure(ctx, name, &server, pick, pg.as_ref())?;
    let answered: u64 = rows.iter().map(|r| r.answered_total).sum::<u64>();
    server.stop();
    if let (Some(pg), Some(before)) = (&pg, before) {
        let after = ctx.rt.block_on(audit_count(pg.url()))?;
        let verdict = if after - before == answered { "ok" } else { "MISMATCH" };
        eprintln!("keyward-bench: {name}: audit rows {} for {answered} answered requests: {verdict}", after - before);
        for r in &mut rows {
            r.row.audit_check = Some(format!("{verdict} ({} = {answered})", after - before));
        }
    }
    ctx.rows.extend(rows.into_iter().map(|r| r.row));
    let _ = std::fs::remove_dir_all(&data_dir);
    Ok(())
}

/// S11: S4's server under twice its maximum, offered open loop for 60 s (1 s with `--quick`)
/// over twice as many connections as the server admits at once. What is measured: goodput
/// against the maximum just measured, how fast the excess is refused (429), the admitted
/// requests' latency, and that every admitted request has its audit row (refusals run
/// nothing and have none).
fn overload(ctx: &mut Ctx) -> Result<(), String> {
    let name = "S11 overload: 2x S4 max offered";
    let Launched { server, token, key_id, data_dir, pg } = launch(ctx, Audit::Postgres, None, false, "AES_256")?;
    let pg = pg.ok_or("S11 needs Postgres")?;
    let addr = server.addr;
    let req = encrypt_request(&token, &key_id, 1024);
    let pick: Picker = Arc::new(move |_| req.clone());
    let before = ctx.rt.block_on(audit_count(pg.url()))?;
    let c = ctx.args.concurrency;
    let t = ctx.timing;
    let warm = ctx.rt.block_on(load::closed_loop(addr, pick.clone(), c, t.warmup)).map_err(|e| e.to_string())?;
    let closed = ctx.rt.block_on(load::closed_loop(addr, pick.clone(), c, t.closed)).map_err(|e| e.to_string())?;
    let max = closed.rps();
    let duration = if ctx.args.quick { Duration::from_secs(1) } else { Duration::from_secs(60) };
    let connections = 2 * keyward_server::config::DEFAULT_MAX_IN_FLIGHT;
    let over =
        ctx.rt.block_on(load::open_loop(addr, pick, connections, 2.0 * max, duration)).map_err(|e| e.to_string())?;
    server.stop();
    let after = ctx.rt.block_on(audit_count(pg.url()))?;
    let admitted = warm.answered + closed.answered + over.answered - over.refused;
    let verdict = if after - before == admitted { "ok" } else { "MISMATCH" };
    let q = |h: &hdrhistogram::Histogram<u64>, p: f64| h.value_at_quantile(p) as f64 / 1000.0;
    let summary = format!(
        "goodput {:.0}/s = {:.2} of max {max:.0}; {} of {} refused (429 p99 {:.2} ms, max {:.2} ms from the send); admitted p99 {:.2} ms from the send",
        over.goodput(),
        over.goodput() / max.max(1.0),
        over.refused,
        over.answered,
        q(&over.refused_latency, 0.99),
        over.refused_latency.max() as f64 / 1000.0,
        q(&over.ok_latency, 0.99),
    );
    eprintln!("keyward-bench: {name}: {summary}; audit rows {} for {admitted} admitted: {verdict}", after - before);
    let audit_check = Some(format!("{verdict} ({} = {admitted} admitted)", after - before));
    ctx.rows.push(Row { audit_check: audit_check.clone(), ..run_row(ctx, name, "max", &closed, c) });
    // Latency from when each request was due, so a client falling behind shows.
    ctx.rows.push(Row {
        rps: over.goodput(),
        overload: Some(summary),
        audit_check,
        ..run_row(ctx, name, "2x offered", &over, connections)
    });
    let _ = std::fs::remove_dir_all(&data_dir);
    Ok(())
}

/// S13's Kubernetes half: KMS v2 Encrypt over the plugin's socket, closed loop, with the
/// server's CPU per request.
fn kubernetes(ctx: &mut Ctx) -> Result<(), String> {
    let socket = temp_dir().with_extension("sock");
    ctx.kubernetes_socket = Some(socket.clone());
    let launched = launch(ctx, Audit::Memory, None, false, "AES_256");
    ctx.kubernetes_socket = None;
    let Launched { server, data_dir, .. } = launched?;
    let c = ctx.args.concurrency;
    ctx.rt.block_on(crate::grpc_load::encrypt_loop(socket.clone(), c, ctx.timing.warmup))?;
    let cpu0 = server.cpu_us();
    let run = ctx.rt.block_on(crate::grpc_load::encrypt_loop(socket, c, ctx.timing.closed))?;
    let cpu = (server.cpu_us() - cpu0) as f64 / run.answered.max(1) as f64;
    server.stop();
    let q = |x: f64| run.latency.value_at_quantile(x) as f64 / 1000.0;
    eprintln!("keyward-bench: S13 KMS v2 Encrypt: {:.0}/s, p99 {:.2} ms, {cpu:.0} µs/req", run.rps, q(0.99));
    ctx.rows.push(Row {
        scenario: "S13 Kubernetes KMS v2 Encrypt (unix socket)".into(),
        phase: "max".into(),
        rps: run.rps,
        p50_ms: q(0.5),
        p99_ms: q(0.99),
        p999_ms: q(0.999),
        cpu_us_per_req: Some(cpu),
        ratio_to_b0: ctx.b0_rps.map(|b| run.rps / b),
        concurrency: c,
        error_rate: 1.0 - run.ok as f64 / run.answered.max(1) as f64,
        audit_check: None,
        little: None,
        overload: None,
        git_sha: ctx.git_sha.clone(),
        time: ctx.time.clone(),
        cores: ctx.cores,
    });
    let _ = std::fs::remove_dir_all(&data_dir);
    Ok(())
}

/// S13's i-th request: an XKS Encrypt of a 32-byte data key (as AWS KMS's GenerateDataKey
/// sends), with 64 bytes of AAD and a CDIV, signed for this request alone.
fn xks_encrypt(i: u64) -> Request {
    let body = format!(
        r#"{{"requestMetadata":{{"awsPrincipalArn":"arn:aws:iam::123456789012:user/bench","kmsKeyArn":"arn:aws:kms:us-east-1:123456789012:key/bench","kmsOperation":"GenerateDataKey","kmsRequestId":"bench-{i}-{}"}},"plaintext":"{}","additionalAuthenticatedData":"{}","encryptionAlgorithm":"AES_GCM","ciphertextDataIntegrityValueAlgorithm":"SHA_256"}}"#,
        // Unique across phases (each restarts `i`), or a repeat in the same second is a replay.
        uuid::Uuid::new_v4().simple(),
        STANDARD.encode([0x5Au8; 32]),
        STANDARD.encode([0x41u8; 64]),
    );
    let path = "/bench/kms/xks/v1/keys/bench/encrypt";
    let amz_date = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let signed = [("host", "bench"), ("x-amz-date", amz_date.as_str())];
    let request = keyward_api::aws::sigv4::Request { method: "POST", path, query: "", body: body.as_bytes() };
    let authorization =
        keyward_api::aws::sigv4::authorization(XKS_AKID, XKS_SECRET, "us-east-1", "kms-xks-proxy", request, &signed)
            .unwrap_or_default();
    let headers = [("X-Amz-Date", amz_date.as_str()), ("Authorization", authorization.as_str())];
    Request::with_headers("POST", path, &headers, Some(&body))
}

/// S10's request: an access key for the admin, then one SigV4-signed Encrypt, replayed (a
/// signature stays valid for five minutes; the server verifies it in full every time).
fn aws_encrypt(
    ctx: &Ctx,
    addr: std::net::SocketAddr,
    token: &str,
    key_id: &str,
    size: usize,
) -> Result<Request, String> {
    let create = Request::new(
        "POST",
        "/v1/access-keys",
        Some(token),
        Some(r#"{"principal":"Keyward::User::\"bench\"","groups":["admins"],"default_namespace":"bench"}"#),
    );
    let ak = setup(ctx, addr, &create, "create access key")?;
    let (id, secret) = (
        ak["access_key_id"].as_str().ok_or("no access_key_id")?,
        ak["secret_access_key"].as_str().ok_or("no secret_access_key")?,
    );
    let plaintext = STANDARD.encode(vec![0x5Au8; size]);
    let body = format!(r#"{{"KeyId":"{key_id}","Plaintext":"{plaintext}","EncryptionContext":{{"app":"bench"}}}}"#);
    let amz_date = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let signed = [("host", "bench"), ("x-amz-date", amz_date.as_str()), ("x-amz-target", "TrentService.Encrypt")];
    let request = keyward_api::aws::sigv4::Request { method: "POST", path: "/", query: "", body: body.as_bytes() };
    let authorization = keyward_api::aws::sigv4::authorization(id, secret, "us-east-1", "kms", request, &signed)
        .map_err(|e| format!("sign: {e:?}"))?;
    let headers = [
        ("X-Amz-Date", amz_date.as_str()),
        ("X-Amz-Target", "TrentService.Encrypt"),
        ("Authorization", authorization.as_str()),
    ];
    Ok(Request::with_headers("POST", "/", &headers, Some(&body)))
}

/// S8: Encrypt on a SoftHSM2 key through the service, then H0, the raw C_Encrypt loop on the
/// same token (after the server stopped, so they do not share the token or the cores).
#[allow(clippy::print_stdout, reason = "part of the report")]
fn hsm(ctx: &mut Ctx) -> Result<(), String> {
    let token = crate::hsm::Token::from_env()?;
    keyward(ctx, "S8 encrypt 1KB, pkcs11 (SoftHSM2)", Audit::MemoryHsm, Op::Encrypt(1024))?;
    let s8 = ctx.rows.iter().rev().find(|r| r.scenario.starts_with("S8") && r.phase == "max").map(|r| r.rps);
    let mut best: f64 = 0.0;
    for sessions in [1usize, ctx.cores.max(2)] {
        let rate = crate::hsm::raw_encrypt_rate(&token, sessions, ctx.timing.closed)?;
        best = best.max(rate);
        eprintln!("keyward-bench: H0 raw C_Encrypt 1KB, {sessions} session(s): {rate:.0}/s");
        push_raw(ctx, &format!("H0 raw C_Encrypt 1KB, {sessions} session(s)"), rate, sessions);
    }
    if let Some(s8) = s8 {
        eprintln!("keyward-bench: S8 / H0 = {:.2} ({s8:.0} / {best:.0})", s8 / best);
    }
    Ok(())
}

/// S14: Sign (ECDSA P-256) and GenerateMac (HMAC-SHA-256) of a 64-byte message through the
/// whole server, on software keys and, with a token, on SoftHSM2 keys; beside them the raw
/// rates of the same operations with aws-lc-rs and with `C_Sign` on the token, one thread per
/// core.
fn signing(ctx: &mut Ctx) -> Result<(), String> {
    keyward(ctx, "S14 Sign ECDSA P-256, software", Audit::Memory, Op::Sign)?;
    keyward(ctx, "S14 GenerateMac HMAC-256, software", Audit::Memory, Op::Mac)?;
    let threads = ctx.cores.max(1);
    for (name, rate) in [
        ("H1 raw aws-lc-rs ECDSA P-256 sign", crate::raw_signing::ecdsa_rate(threads, ctx.timing.closed)?),
        ("H1 raw aws-lc-rs HMAC-SHA-256", crate::raw_signing::hmac_rate(threads, ctx.timing.closed)?),
    ] {
        eprintln!("keyward-bench: {name}, {threads} thread(s): {rate:.0}/s");
        push_raw(ctx, &format!("{name}, {threads} thread(s)"), rate, threads);
    }
    match crate::hsm::Token::from_env() {
        Ok(token) => {
            keyward(ctx, "S14 Sign ECDSA P-256, pkcs11 (SoftHSM2)", Audit::MemoryHsm, Op::Sign)?;
            keyward(ctx, "S14 GenerateMac HMAC-256, pkcs11 (SoftHSM2)", Audit::MemoryHsm, Op::Mac)?;
            let rate = crate::hsm::raw_sign_rate(&token, threads, ctx.timing.closed)?;
            eprintln!("keyward-bench: H1 raw C_Sign ECDSA P-256, {threads} session(s): {rate:.0}/s");
            push_raw(ctx, &format!("H1 raw C_Sign ECDSA P-256, {threads} session(s)"), rate, threads);
        }
        Err(_) => eprintln!("keyward-bench: S14 on SoftHSM2 skipped: no token (scripts/start-softhsm.sh)"),
    }
    Ok(())
}

/// A row for a raw rate measured outside the server (no latency, no CPU split).
fn push_raw(ctx: &mut Ctx, scenario: &str, rate: f64, concurrency: usize) {
    ctx.rows.push(Row {
        scenario: scenario.to_owned(),
        phase: "max".into(),
        rps: rate,
        p50_ms: 0.0,
        p99_ms: 0.0,
        p999_ms: 0.0,
        cpu_us_per_req: None,
        ratio_to_b0: None,
        concurrency,
        error_rate: 0.0,
        audit_check: None,
        little: None,
        overload: None,
        git_sha: ctx.git_sha.clone(),
        time: ctx.time.clone(),
        cores: ctx.cores,
    });
}

/// S9: Encrypt on an aws-kms key whose KMS answers after 1, 5 and 25 ms. With the in-flight
/// count sized for 2,000 req/s at each latency (well under what the cores serve, so waiting is
/// what is measured), Little's law says throughput is in-flight / latency, if no request blocks
/// a runtime thread while it waits.
fn kms(ctx: &mut Ctx) -> Result<(), String> {
    const TARGET_RPS: u64 = 2_000;
    let base_concurrency = ctx.args.concurrency;
    for latency_ms in [1u64, 5, 25] {
        let stub = ServerProcess::spawn(&["serve-kms-stub".into(), "--latency-ms".into(), latency_ms.to_string()])?;
        let endpoint = format!("http://{}", stub.addr);
        let in_flight = usize::try_from((TARGET_RPS * latency_ms / 1000).max(2)).unwrap_or(2);
        ctx.args.concurrency = in_flight;
        let name = format!("S9 encrypt 1KB, aws-kms stub {latency_ms} ms, {in_flight} in flight");
        let result = keyward_on(ctx, &name, Audit::MemoryKms, Op::Encrypt(1024), Some(&endpoint));
        ctx.args.concurrency = base_concurrency;
        // K0: the same in-flight count straight at the stub, so the stub's and loopback's own
        // share of the latency shows apart from Keyward's.
        let plaintext = STANDARD.encode(vec![0x5Au8; 1024]);
        let body = format!(r#"{{"KeyId":"k","Plaintext":"{plaintext}","EncryptionContext":{{"app":"bench"}}}}"#);
        let direct = Request::with_headers("POST", "/", &[("X-Amz-Target", "TrentService.Encrypt")], Some(&body));
        let pick: Picker = Arc::new(move |_| direct.clone());
        let k0 = ctx.rt.block_on(load::closed_loop(stub.addr, pick, in_flight, ctx.timing.closed));
        stub.stop();
        result?;
        let k0 = k0.map_err(|e| e.to_string())?;
        let ideal = in_flight as f64 * 1000.0 / latency_ms as f64;
        let k0_row = Row {
            little: Some(k0.rps() / ideal),
            ..run_row(
                ctx,
                &format!("K0 straight to the stub {latency_ms} ms, {in_flight} in flight"),
                "max",
                &k0,
                in_flight,
            )
        };
        ctx.rows.push(k0_row);
        if let Some(row) = ctx.rows.iter_mut().rev().find(|r| r.scenario == name && r.phase == "max") {
            let ratio = row.rps / ideal;
            eprintln!(
                "keyward-bench: {name}: {:.0} req/s; Little's law {ideal:.0}: {ratio:.2}; straight to the stub {:.0} ({:.2})",
                row.rps,
                k0.rps(),
                row.rps / k0.rps().max(1.0)
            );
            row.little = Some(ratio);
        }
    }
    Ok(())
}

async fn audit_count(url: &str) -> Result<u64, String> {
    let db = keyward_store::connect(url).await.map_err(|e| e.to_string())?;
    let n = keyward_store::SqlAuditStore::new(db.clone()).count().await.map_err(|e| e.to_string())?;
    let _ = db.close().await;
    Ok(n)
}

/// Totals of the server's audit batch metrics.
#[derive(Debug, Default, Clone, Copy)]
struct Batches {
    count: f64,
    records: f64,
    commit_seconds: f64,
}

/// Reads the audit batch totals from `/metrics` (zeros when unreadable: a diagnostic only).
async fn audit_batches(addr: std::net::SocketAddr) -> Batches {
    let Ok(mut conn) = Conn::open(addr).await else { return Batches::default() };
    let Ok((200, body)) = conn.send(&Request::new("GET", "/metrics", None, None)).await else {
        return Batches::default();
    };
    let text = String::from_utf8_lossy(&body);
    let total = |prefix: &str| -> f64 {
        text.lines().filter(|l| l.starts_with(prefix)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
    };
    Batches {
        count: total("keyward_audit_batch_records_count"),
        records: total("keyward_audit_batch_records_sum"),
        commit_seconds: total("keyward_audit_commit_seconds_sum"),
    }
}

/// The server's allocation count (`--count-allocations`; zero when unreadable).
async fn allocations(addr: std::net::SocketAddr) -> f64 {
    let Ok(mut conn) = Conn::open(addr).await else { return 0.0 };
    let Ok((200, body)) = conn.send(&Request::new("GET", "/metrics", None, None)).await else {
        return 0.0;
    };
    let text = String::from_utf8_lossy(&body);
    text.lines()
        .find(|l| l.starts_with("keyward_bench_allocations_total"))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .unwrap_or(0.0)
}

struct Measured {
    row: Row,
    answered_total: u64,
}

fn measure(
    ctx: &mut Ctx,
    name: &str,
    server: &ServerProcess,
    pick: Picker,
    pg: Option<&Postgres>,
) -> Result<Vec<Measured>, String> {
    let addr = server.addr;
    let c = ctx.args.concurrency;
    let t = ctx.timing;
    let warm = ctx.rt.block_on(load::closed_loop(addr, pick.clone(), c, t.warmup)).map_err(|e| e.to_string())?;
    let cpu0 = server.cpu_us();
    let db0 = pg.map(|_| cpu_us_of_command("postgres"));
    let batches0 = pg.map(|_| ctx.rt.block_on(audit_batches(addr)));
    let allocs0 = ctx.args.count_allocations.then(|| ctx.rt.block_on(allocations(addr)));
    let closed = ctx.rt.block_on(load::closed_loop(addr, pick.clone(), c, t.closed)).map_err(|e| e.to_string())?;
    let cpu = (server.cpu_us() - cpu0) as f64 / closed.answered.max(1) as f64;
    if let Some(before) = allocs0 {
        // The gauge lags by up to 10 ms: let the last count land.
        std::thread::sleep(std::time::Duration::from_millis(30));
        let after = ctx.rt.block_on(allocations(addr));
        // Only Keyward's server publishes a count (B0's echo server does not).
        if after > 0.0 {
            let per = (after - before) / closed.answered.max(1) as f64;
            eprintln!("keyward-bench: {name}: {per:.1} allocations per request (server, closed loop)");
        }
    }
    let db_cpu = db0.map(|d| (cpu_us_of_command("postgres").saturating_sub(d)) as f64 / closed.answered.max(1) as f64);
    if let Some(before) = batches0 {
        let after = ctx.rt.block_on(audit_batches(addr));
        let n = (after.count - before.count).max(1.0);
        eprintln!(
            "keyward-bench: {name}: {n:.0} audit batches, {:.1} records and {:.2} ms commit each on average",
            (after.records - before.records) / n,
            (after.commit_seconds - before.commit_seconds) * 1e3 / n
        );
    }
    let max = closed.rps();
    let half = ctx.rt.block_on(load::open_loop(addr, pick.clone(), c, max * 0.5, t.open)).map_err(|e| e.to_string())?;
    let eighty = ctx.rt.block_on(load::open_loop(addr, pick, c, max * 0.8, t.open)).map_err(|e| e.to_string())?;
    if let Some(d) = db_cpu {
        eprintln!("keyward-bench: {name}: Postgres CPU {d:.0} µs/req");
    }
    let b0 = ctx.b0_rps.or((name == "B0").then_some(max));
    let mk = |phase: &str, r: &RunResult, cpu: Option<f64>, extra: u64| Measured {
        row: Row {
            cpu_us_per_req: cpu,
            ratio_to_b0: b0.map(|b| r.rps() / b).filter(|_| phase == "max"),
            ..run_row(ctx, name, phase, r, c)
        },
        answered_total: r.answered + extra,
    };
    Ok(vec![mk("max", &closed, Some(cpu), warm.answered), mk("50%", &half, None, 0), mk("80%", &eighty, None, 0)])
}

/// A row of one load run: rate, latency percentiles and errors; the rest left empty.
fn run_row(ctx: &Ctx, name: &str, phase: &str, r: &RunResult, concurrency: usize) -> Row {
    Row {
        scenario: name.to_owned(),
        phase: phase.to_owned(),
        rps: r.rps(),
        p50_ms: r.latency.value_at_quantile(0.5) as f64 / 1000.0,
        p99_ms: r.latency.value_at_quantile(0.99) as f64 / 1000.0,
        p999_ms: r.latency.value_at_quantile(0.999) as f64 / 1000.0,
        cpu_us_per_req: None,
        ratio_to_b0: None,
        concurrency,
        error_rate: 1.0 - r.ok as f64 / r.answered.max(1) as f64,
        audit_check: None,
        little: None,
        overload: None,
        git_sha: ctx.git_sha.clone(),
        time: ctx.time.clone(),
        cores: ctx.cores,
    }
}

fn temp_dir() -> PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("keyward-bench-{}-{n}", std::process::id()))
}

pub(crate) fn git_sha() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into())
}
