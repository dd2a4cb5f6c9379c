//! `keyward access-key create|list|delete`: credentials for the AWS KMS-compatible API.

use crate::envelope_cmd::runtime;
use crate::profile::client;

/// Runs one `keyward access-key` subcommand.
#[allow(clippy::print_stdout, reason = "command output")]
pub fn run(cmd: &crate::cli::AccessKeyCommand) -> Result<(), String> {
    use crate::cli::AccessKeyCommand;
    match cmd {
        AccessKeyCommand::Create { principal, groups, default_namespace, remote } => {
            let v = runtime()?
                .block_on(client(remote)?.create_access_key(principal, groups, default_namespace))
                .map_err(|e| format!("CreateAccessKey: {e}"))?;
            println!("{}", serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?);
            eprintln!("the secret is shown this once: store it now");
        }
        AccessKeyCommand::List { json, remote } => {
            let keys =
                runtime()?.block_on(client(remote)?.list_access_keys()).map_err(|e| format!("ListAccessKeys: {e}"))?;
            if *json {
                for k in keys {
                    println!("{k}");
                }
            } else {
                println!("{:<22} {:<36} {:<20} CREATED", "ACCESS KEY ID", "PRINCIPAL", "NAMESPACE");
                for k in keys {
                    let s = |f: &str| k[f].as_str().unwrap_or("").to_owned();
                    println!(
                        "{:<22} {:<36} {:<20} {}",
                        s("access_key_id"),
                        s("principal"),
                        s("default_namespace"),
                        s("created_at")
                    );
                }
            }
        }
        AccessKeyCommand::Delete { access_key_id, remote } => {
            runtime()?
                .block_on(client(remote)?.delete_access_key(access_key_id))
                .map_err(|e| format!("DeleteAccessKey `{access_key_id}`: {e}"))?;
            eprintln!("deleted {access_key_id}");
        }
    }
    Ok(())
}
