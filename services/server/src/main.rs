//! The `keyward` binary.

use std::process::ExitCode;

use clap::Parser;
use keyward_server::cli::{AuditCommand, Cli, Command, PolicyCommand};
use keyward_server::{
    access_key_cmd, approval_cmd, audit_cmd, config, data_dir, dev, envelope_cmd, key_cmd, policy_cmd, remote_cmd,
    serve, telemetry, wiring,
};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _telemetry = telemetry::init();
    // Commands against a running server report why they failed in their exit status.
    let remote = match &cli.command {
        Command::Key(args) => Some(key_cmd::run(args)),
        Command::Approval(args) => Some(approval_cmd::run(args)),
        Command::Alias(cmd) => Some(remote_cmd::alias(cmd)),
        Command::Grant(cmd) => Some(remote_cmd::grant(cmd)),
        Command::DataKey(cmd) => Some(remote_cmd::data_key(cmd)),
        Command::Random(cmd) => Some(remote_cmd::random(cmd)),
        Command::Sign(cmd) => Some(remote_cmd::sign(cmd)),
        Command::Authorize(cmd) => Some(remote_cmd::authorize(cmd)),
        Command::Audit(AuditCommand::Verify { remote: true, server, .. }) => Some(remote_cmd::audit_verify(server)),
        Command::Policy(PolicyCommand::Get { json, remote }) => Some(remote_cmd::policy(remote, *json)),
        Command::Policy(PolicyCommand::Reload { remote, force }) => Some(remote_cmd::reload_policies(remote, *force)),
        Command::Audit(AuditCommand::Query { principal, key, action, decision, from, limit, remote }) => {
            let filters = remote_cmd::AuditFilters {
                principal: principal.as_deref(),
                key: key.as_deref(),
                action: action.as_deref(),
                decision: decision.as_deref(),
                from: from.as_deref(),
                limit: *limit,
            };
            Some(remote_cmd::audit_query(remote, &filters))
        }
        _ => None,
    };
    if let Some(result) = remote {
        return match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("keyward: {}", e.message);
                ExitCode::from(e.exit)
            }
        };
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("keyward: {message}");
            ExitCode::FAILURE
        }
    }
}

#[allow(clippy::print_stdout, reason = "subcommands print their results")]
fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Openapi => {
            print!("{}", keyward_api::openapi_json());
            Ok(())
        }
        Command::Serve(args) => {
            let settings = config::resolve(&args.state, args.listen.as_deref(), args.policies.as_deref())?;
            actix_web::rt::System::new().block_on(serve::serve(settings, wiring::Embedding::default()))
        }
        Command::Audit(AuditCommand::Verify { from_checkpoint, state, .. }) => {
            let settings = config::resolve(&state, None, None)?;
            let report = runtime()?.block_on(audit_cmd::verify(&settings, from_checkpoint))?;
            if report.ok { Ok(()) } else { Err("the audit trail does not verify".into()) }
        }
        Command::Audit(AuditCommand::Export { from, state }) => {
            let settings = config::resolve(&state, None, None)?;
            runtime()?.block_on(audit_cmd::export(&settings, from)).map(|_| ())
        }
        Command::AccessKey(cmd) => access_key_cmd::run(&cmd),
        Command::Key(_)
        | Command::Approval(_)
        | Command::Alias(_)
        | Command::Grant(_)
        | Command::DataKey(_)
        | Command::Sign(_)
        | Command::Random(_)
        | Command::Authorize(_)
        | Command::Policy(PolicyCommand::Get { .. } | PolicyCommand::Reload { .. })
        | Command::Audit(AuditCommand::Query { .. }) => unreachable!("handled in main"),
        Command::Man { dir } => {
            let cmd = <Cli as clap::CommandFactory>::command();
            match dir {
                Some(dir) => std::fs::create_dir_all(&dir)
                    .and_then(|()| clap_mangen::generate_to(cmd, &dir))
                    .map_err(|e| format!("cannot write manual pages to `{}`: {e}", dir.display())),
                None => clap_mangen::Man::new(cmd).render(&mut std::io::stdout()).map_err(|e| e.to_string()),
            }
        }
        Command::Completion { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "keyward", &mut std::io::stdout());
            Ok(())
        }
        Command::Encrypt(args) => envelope_cmd::encrypt(&args),
        Command::Decrypt(args) => envelope_cmd::decrypt(&args),
        Command::Policy(PolicyCommand::Validate { dir }) => policy_cmd::validate(&dir),
        Command::Policy(PolicyCommand::Test { dir }) => policy_cmd::test(&dir),
        Command::Policy(PolicyCommand::Prove { dir, implies }) => policy_cmd::prove(&dir, implies.as_deref()),
        Command::Policy(PolicyCommand::Diff(args)) => {
            let settings = match &args.audit_since {
                Some(window) => {
                    let since = chrono::Utc::now() - dev::parse_ttl(window)?;
                    Some((config::resolve(&args.state, None, None)?, since))
                }
                None => None,
            };
            let audit = settings.as_ref().map(|(s, since)| (s, *since));
            let changes = runtime()?.block_on(policy_cmd::diff(&args.old, &args.new, audit))?;
            if args.fail_on_change && changes > 0 {
                return Err(format!("{changes} decisions change"));
            }
            Ok(())
        }
        Command::Migrate(state) => {
            let settings = config::resolve(&state, None, None)?;
            data_dir::prepare(&settings)?;
            runtime()?.block_on(async {
                let db = wiring::database(&settings).await?;
                println!(
                    "migrated {} database at {}",
                    keyward_store::backend_name(&db),
                    serve::redacted(&settings.database_url)
                );
                Ok(())
            })
        }
        Command::Token(args) => {
            let settings = config::resolve(&args.state, None, None)?;
            let ttl = dev::parse_ttl(&args.ttl)?;
            let (issuer, audience, secret) = match settings.issuers.iter().find(|i| i.secret_file.is_some()) {
                Some(i) => (
                    i.issuer.clone(),
                    i.audience.clone(),
                    dev::read_secret(i.secret_file.as_deref().ok_or("issuer has no secret")?)?,
                ),
                None if settings.issuers.is_empty() => {
                    data_dir::prepare(&settings)?;
                    (dev::DEV_ISSUER.to_owned(), dev::DEV_AUDIENCE.to_owned(), dev::dev_secret(&settings.data_dir)?)
                }
                None => return Err("no HS256 issuer with a `secret_file` is configured to sign with".into()),
            };
            let spec = dev::TokenSpec {
                issuer: &issuer,
                audience: &audience,
                sub: &args.sub,
                groups: &args.groups,
                ttl,
                service: args.service,
            };
            println!("{}", dev::mint(&secret, &spec)?);
            Ok(())
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| format!("cannot start runtime: {e}"))
}
