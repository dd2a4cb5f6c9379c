//! `keyward-bench`: runs benchmark scenarios against real server processes and prints one
//! table of requests/s, latency percentiles, server CPU per request and the ratio to B0 from
//! the same run; writes the rows as JSON lines under `target/bench/`.
//!
//! ```text
//! keyward-bench all [--quick] [--duration S] [--concurrency N] [--workers N]
//! keyward-bench B0 S3 S4
//! keyward-bench policy-scale [--quick]
//! ```

mod alloc_count;
mod echo;
mod grpc_load;
mod hsm;
mod kms_stub;
mod load;
mod policy_scale;
mod postgres;
mod quota_check;
mod raw_signing;
mod report;
mod scenarios;
mod servers;

use clap::Parser;

/// Load options.
#[derive(Debug, Parser)]
#[command(name = "keyward-bench", about = "Keyward benchmark harness")]
pub struct RunArgs {
    /// Scenarios (B0, S1, S3, S4, S6, S7, S8, S9, S10, S11, S13, S14, Q1) or `all`.
    #[arg(required = true)]
    pub scenarios: Vec<String>,
    /// Seconds of closed-loop load per scenario (open-loop phases run half as long each).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Concurrent connections.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Server HTTP workers (B0 uses the same number).
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// A smoke run: about 1 s per phase.
    #[arg(long)]
    pub quick: bool,
    /// Audit writer lanes of the server under test (its default when absent).
    #[arg(long)]
    pub audit_lanes: Option<usize>,
    /// Audit batch linger of the server under test, in ms (its default when absent).
    #[arg(long)]
    pub audit_linger_ms: Option<u64>,
    /// Report the Keyward server's allocations per request (needs the binary built with
    /// `--features count-allocations`).
    #[arg(long)]
    pub count_allocations: bool,
}

/// `serve-echo`: the B0/S1 server.
#[derive(Debug, Parser)]
struct EchoArgs {
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Verify HS256 tokens with the secret in `KEYWARD_BENCH_SECRET`.
    #[arg(long)]
    jwt: bool,
}

/// `serve-keyward`: Keyward's own server, with a chosen audit store and backend.
#[derive(Debug, Parser)]
struct KeywardArgs {
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    #[arg(long, default_value_t = 2)]
    workers: usize,
    #[arg(long)]
    data_dir: std::path::PathBuf,
    #[arg(long)]
    database_url: Option<String>,
    /// `memory` (S3) or `database` (S4).
    #[arg(long, default_value = "database")]
    audit: String,
    /// Serve keys from the latency-injecting stub backend with this delay.
    #[arg(long)]
    stub_latency_ms: Option<u64>,
    /// Serve keys from the SoftHSM2 token named by `KEYWARD_TEST_PKCS11_*` (S8).
    #[arg(long)]
    hsm: bool,
    #[arg(long)]
    audit_lanes: Option<usize>,
    #[arg(long)]
    audit_linger_ms: Option<u64>,
    #[arg(long)]
    count_allocations: bool,
    /// Serve keys from an aws-kms backend at this endpoint (S9).
    #[arg(long)]
    kms_endpoint: Option<String>,
    /// Expose `alias/bench` through an XKS key store (S13).
    #[arg(long)]
    xks: bool,
    /// Serve the Kubernetes KMS v2 plugin on this socket, with `alias/bench` (S13).
    #[arg(long)]
    kubernetes_socket: Option<std::path::PathBuf>,
}

/// `serve-kms-stub`: S9's latency-injecting external KMS.
#[derive(Debug, Parser)]
struct KmsStubArgs {
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    #[arg(long)]
    latency_ms: u64,
}

fn main() -> std::process::ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let result = match argv.get(1).map(String::as_str) {
        Some("serve-echo") => serve_echo(EchoArgs::parse_from(&argv[1..])),
        Some("serve-keyward") => serve_keyward(KeywardArgs::parse_from(&argv[1..])),
        Some("serve-kms-stub") => {
            let a = KmsStubArgs::parse_from(&argv[1..]);
            kms_stub::serve(&a.listen, std::time::Duration::from_millis(a.latency_ms))
        }
        Some("policy-scale") => policy_scale::main(&argv[2..]),
        _ => scenarios::run(RunArgs::parse()),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keyward-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn serve_echo(args: EchoArgs) -> Result<(), String> {
    let auth = if args.jwt {
        let secret = std::env::var("KEYWARD_BENCH_SECRET").map_err(|_| "KEYWARD_BENCH_SECRET is not set")?;
        let secret = zeroize::Zeroizing::new(secret.into_bytes());
        let issuer = keyward_api::auth::Issuer::hs256(
            keyward_server::dev::DEV_ISSUER,
            keyward_server::dev::DEV_AUDIENCE,
            "groups",
            &secret,
            30,
        )?;
        Some(keyward_api::auth::Authenticator::new(vec![issuer]))
    } else {
        None
    };
    echo::serve(&args.listen, args.workers, auth)
}

fn serve_keyward(args: KeywardArgs) -> Result<(), String> {
    use keyward_server::{cli::StateArgs, config, serve, wiring};
    let state = StateArgs { config: None, data_dir: Some(args.data_dir), database_url: args.database_url };
    let mut settings = config::resolve(&state, Some(&args.listen), None)?;
    settings.workers = args.workers;
    if let Some(n) = args.audit_lanes {
        settings.audit_lanes = n;
    }
    if let Some(ms) = args.audit_linger_ms {
        settings.audit_linger_ms = ms;
    }
    if args.count_allocations {
        alloc_count::publish()?;
    }
    let mut registry = wiring::registry();
    keyward_backend_stub::register(&mut registry);
    if let Some(ms) = args.stub_latency_ms {
        let mut t = toml::Table::new();
        t.insert("name".into(), "stub".into());
        t.insert("kind".into(), "stub".into());
        t.insert("latency_ms".into(), toml::Value::Integer(i64::try_from(ms).map_err(|e| e.to_string())?));
        settings.backends = vec![t];
        settings.default_backend = "stub".into();
    }
    if args.hsm {
        let token = hsm::Token::from_env()?;
        let mut t = toml::Table::new();
        for (k, v) in [
            ("name", "hsm"),
            ("kind", "pkcs11"),
            ("module", token.module.as_str()),
            ("token_label", token.label.as_str()),
            ("pin_file", token.pin_file.as_str()),
        ] {
            t.insert(k.into(), v.into());
        }
        t.insert("sessions".into(), toml::Value::Integer(i64::try_from(args.workers.max(2)).unwrap_or(2)));
        t.insert("calls".into(), std::env::var("KEYWARD_BENCH_HSM_CALLS").unwrap_or_else(|_| "inline".into()).into());
        settings.backends = vec![t];
        settings.default_backend = "hsm".into();
    }
    if let Some(endpoint) = &args.kms_endpoint {
        let mut t = toml::Table::new();
        for (k, v) in [("name", "aws"), ("kind", "aws-kms"), ("region", "us-east-1"), ("endpoint", endpoint.as_str())] {
            t.insert(k.into(), v.into());
        }
        t.insert("timeout_ms".into(), toml::Value::Integer(5000));
        settings.backends = vec![t];
        settings.default_backend = "aws".into();
        settings.backend_timeout_ms = 6000;
    }
    if args.xks {
        let store = keyward_api::xks::XksStore {
            path_prefix: "bench".into(),
            credentials: vec![keyward_api::xks::XksCredential {
                access_key_id: scenarios::XKS_AKID.into(),
                secret: zeroize::Zeroizing::new(scenarios::XKS_SECRET.into()),
            }],
            keys: [("bench".to_owned(), "alias/bench".parse().map_err(|e| format!("{e}"))?)].into_iter().collect(),
            group: "xks".into(),
        };
        settings.xks = std::sync::Arc::new(keyward_api::xks::Xks::new(vec![store], 1)?);
    }
    if let Some(socket) = args.kubernetes_socket {
        settings.kubernetes = Some(keyward_kubernetes::Settings {
            socket,
            key: "alias/bench".parse().map_err(|e| format!("{e}"))?,
            principal: keyward_core::model::principal::Principal::from_uid(
                "Keyward::Service::\"kubernetes\"",
                vec!["bench".into()],
            )
            .map_err(|e| format!("{e}"))?,
        });
    }
    let audit_store = match args.audit.as_str() {
        "memory" => Some(std::sync::Arc::new(keyward_audit::MemoryAuditStore::new()) as _),
        "database" => None,
        other => return Err(format!("--audit must be memory or database, not {other}")),
    };
    keyward_server::telemetry::init();
    actix_web::rt::System::new().block_on(serve::serve(settings, wiring::Embedding { registry, audit_store }))
}
