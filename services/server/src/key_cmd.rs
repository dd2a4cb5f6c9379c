//! `keyward key ...`: every key operation on a running server, as a table or the API's JSON.

use keyward_client::api::{ApiError, Method, encode_path};
use serde_json::{Value, json};

use crate::cli::{KeyArgs, KeyCommand, Output};

/// Why a command failed, with the exit status that says so.
#[derive(Debug)]
pub struct CommandError {
    /// 1 anything, 2 invalid input, 3 denied, 4 not found, 5 unavailable.
    pub exit: u8,
    /// What to print.
    pub message: String,
}

impl From<String> for CommandError {
    fn from(message: String) -> Self {
        Self { exit: 1, message }
    }
}

pub(crate) fn failed(operation: &str, e: &ApiError) -> CommandError {
    CommandError { exit: e.exit_code(), message: format!("{operation}: {e}") }
}

/// Runs one `keyward key` subcommand.
pub fn run(args: &KeyArgs) -> Result<(), CommandError> {
    let r = crate::remote_cmd::Remote::new(&args.remote)?;
    let key_path = |key: &str| format!("/v1/keys/{}", encode_path(key));
    let call =
        |operation: &str, method: Method, path: String, body: Option<Value>| r.call(operation, method, &path, body);
    let answer = match &args.command {
        KeyCommand::Create { namespace, description, alias, backend, tags, spec, usage, origin } => {
            let tags: serde_json::Map<String, Value> = tags.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
            let mut body = json!({"namespace": namespace, "description": description, "tags": tags});
            if let Some(s) = spec {
                body["key_spec"] = json!(s);
            }
            if let Some(u) = usage {
                body["key_usage"] = json!(u);
            }
            if let Some(a) = alias {
                body["alias"] = json!(a);
            }
            if let Some(b) = backend {
                body["backend"] = json!(b);
            }
            if let Some(o) = origin {
                body["origin"] = json!(o);
            }
            call("CreateKey", Method::POST, "/v1/keys".into(), Some(body))?
        }
        KeyCommand::ImportParameters { key, wrapping_algorithm, wrapping_key_spec } => {
            let mut body = json!({});
            if let Some(a) = wrapping_algorithm {
                body["wrapping_algorithm"] = json!(a);
            }
            if let Some(s) = wrapping_key_spec {
                body["wrapping_key_spec"] = json!(s);
            }
            let answer = call(
                "GetParametersForImport",
                Method::POST,
                format!("{}/import-parameters", key_path(key)),
                Some(body),
            )?;
            if args.output == Output::Table {
                #[allow(clippy::print_stdout, reason = "command output")]
                {
                    println!("import_token: {}", answer["import_token"].as_str().unwrap_or_default());
                    println!("parameters_valid_to: {}", answer["parameters_valid_to"].as_str().unwrap_or_default());
                    print!("{}", answer["public_key_pem"].as_str().unwrap_or_default());
                }
                return Ok(());
            }
            answer
        }
        KeyCommand::Import { key, material, encrypted, token, valid_to } => {
            let (token, wrapped) = match (material, encrypted, token) {
                (Some(file), _, _) => crate::key_import::wrap_for(&r, key, file)?,
                (None, Some(encrypted), Some(token)) => crate::key_import::read_wrapped(encrypted, token)?,
                _ => {
                    return Err(CommandError {
                        exit: 2,
                        message: "give --material FILE, or --encrypted FILE with --token FILE".into(),
                    });
                }
            };
            let mut body = json!({"import_token": token, "encrypted_key_material": wrapped});
            if let Some(t) = valid_to {
                body["valid_to"] = json!(t);
            }
            call("ImportKeyMaterial", Method::POST, format!("{}/import", key_path(key)), Some(body))?
        }
        KeyCommand::DeleteImportedMaterial { key } => {
            call("DeleteImportedKeyMaterial", Method::DELETE, format!("{}/import", key_path(key)), None)?
        }
        KeyCommand::List { namespace } => {
            let path = match namespace {
                Some(ns) => format!("/v1/keys?limit=100&namespace={}", encode_path(ns)),
                None => "/v1/keys?limit=100".to_owned(),
            };
            r.all_pages("ListKeys", &path, "keys")?
        }
        KeyCommand::Describe { key } => call("DescribeKey", Method::GET, key_path(key), None)?,
        KeyCommand::PublicKey { key } => {
            let answer = call("GetPublicKey", Method::GET, format!("{}/public-key", key_path(key)), None)?;
            if args.output == Output::Table {
                #[allow(clippy::print_stdout, reason = "command output")]
                {
                    print!("{}", answer["public_key_pem"].as_str().unwrap_or_default());
                }
                return Ok(());
            }
            answer
        }
        KeyCommand::Update {
            key,
            description,
            rotation_period_days,
            rotate_after_encryptions,
            on_use_while_pending,
        } => {
            let mut body = json!({});
            if let Some(d) = description {
                body["description"] = json!(d);
            }
            if let Some(days) = rotation_period_days {
                body["rotation_period_days"] = json!(days);
            }
            if let Some(n) = rotate_after_encryptions {
                body["rotate_after_encryptions"] = json!(n);
            }
            if let Some(response) = on_use_while_pending {
                body["on_use_while_pending"] = json!(response);
            }
            call("UpdateKey", Method::PATCH, key_path(key), Some(body))?
        }
        KeyCommand::Enable { key } => call("EnableKey", Method::POST, format!("{}/enable", key_path(key)), None)?,
        KeyCommand::Disable { key } => call("DisableKey", Method::POST, format!("{}/disable", key_path(key)), None)?,
        KeyCommand::Rotate { key } => call("RotateKey", Method::POST, format!("{}/rotate", key_path(key)), None)?,
        KeyCommand::Versions { key } => {
            call("ListKeyVersions", Method::GET, format!("{}/versions", key_path(key)), None)?
        }
        KeyCommand::NamespaceUsage { namespace, days } => {
            let path = format!("/v1/namespaces/{}/usage?days={days}", encode_path(namespace));
            let mut all = r.all_pages("GetNamespaceUsage", &path, "keys")?;
            all["namespace"] = json!(namespace);
            all["days"] = json!(days);
            all
        }
        KeyCommand::Usage { key, days } => {
            call("GetKeyUsage", Method::GET, format!("{}/usage?days={days}", key_path(key)), None)?
        }
        KeyCommand::ScheduleDeletion { key, days } => call(
            "ScheduleKeyDeletion",
            Method::POST,
            format!("{}/schedule-deletion", key_path(key)),
            Some(json!({"pending_window_days": days})),
        )?,
        KeyCommand::CancelDeletion { key } => {
            call("CancelKeyDeletion", Method::POST, format!("{}/cancel-deletion", key_path(key)), None)?
        }
        KeyCommand::SetMinVersion { key, version } => call(
            "SetMinDecryptionVersion",
            Method::POST,
            format!("{}/min-decryption-version", key_path(key)),
            Some(json!({"version": version})),
        )?,
    };
    print(&args.command, args.output, &answer)
}

#[allow(clippy::print_stdout, reason = "command output")]
fn print(command: &KeyCommand, output: Output, answer: &Value) -> Result<(), CommandError> {
    if output == Output::Json {
        println!("{}", serde_json::to_string_pretty(answer).map_err(|e| e.to_string())?);
        return Ok(());
    }
    let s = |v: &Value, f: &str| cell(v, f);
    if let Some(id) = answer["approval_id"].as_str() {
        println!(
            "waiting for {} approvals: keyward approval approve {id} (expires {})",
            s(answer, "required"),
            s(answer, "expires_at")
        );
        return Ok(());
    }
    match command {
        KeyCommand::List { .. } => {
            let rows: Vec<Vec<String>> = answer["keys"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|k| {
                    vec![s(k, "key_id"), s(k, "namespace"), s(k, "key_state"), s(k, "backend"), s(k, "created_at")]
                })
                .collect();
            table(&["KEY ID", "NAMESPACE", "STATE", "BACKEND", "CREATED"], &rows);
        }
        KeyCommand::Versions { .. } => {
            let versions = answer["versions"].as_array().cloned().unwrap_or_default();
            let rows: Vec<Vec<String>> = versions
                .iter()
                .map(|v| {
                    let cols = ["version", "state", "created_at", "encryptions", "decryptions", "last_used_at"];
                    cols.iter().map(|c| s(v, c)).collect()
                })
                .collect();
            table(&["VERSION", "STATE", "CREATED", "ENCRYPTIONS", "DECRYPTIONS", "LAST USED"], &rows);
        }
        KeyCommand::NamespaceUsage { .. } => {
            let mut rows: Vec<Vec<String>> = Vec::new();
            for k in answer["keys"].as_array().into_iter().flatten() {
                for v in k["versions"].as_array().into_iter().flatten() {
                    let mut row = vec![s(k, "key_id")];
                    row.extend(
                        [
                            "version",
                            "encryptions",
                            "decryptions",
                            "recent_decryptions",
                            "principals",
                            "last_used_at",
                            "safe_to_retire",
                        ]
                        .iter()
                        .map(|c| s(v, c)),
                    );
                    row.push(s(k, "recommended_min_decryption_version"));
                    rows.push(row);
                }
            }
            let header = [
                "KEY ID",
                "VERSION",
                "ENCRYPTIONS",
                "DECRYPTIONS",
                "RECENT DECRYPTIONS",
                "PRINCIPALS",
                "LAST USED",
                "SAFE TO RETIRE",
                "RECOMMENDED MIN",
            ];
            table(&header, &rows);
        }
        KeyCommand::Usage { .. } => {
            let versions = answer["versions"].as_array().cloned().unwrap_or_default();
            let cols = [
                "version",
                "encryptions",
                "decryptions",
                "recent_decryptions",
                "principals",
                "first_used_at",
                "last_used_at",
                "safe_to_retire",
            ];
            let rows: Vec<Vec<String>> = versions.iter().map(|v| cols.iter().map(|c| s(v, c)).collect()).collect();
            let header = [
                "VERSION",
                "ENCRYPTIONS",
                "DECRYPTIONS",
                "RECENT DECRYPTIONS",
                "PRINCIPALS",
                "FIRST USED",
                "LAST USED",
                "SAFE TO RETIRE",
            ];
            table(&header, &rows);
            println!(
                "recommended min decryption version (last {} days): {}",
                s(answer, "days"),
                s(answer, "recommended_min_decryption_version")
            );
        }
        _ => {
            let fields = [
                "key_id",
                "namespace",
                "aliases",
                "description",
                "key_spec",
                "key_state",
                "origin",
                "valid_to",
                "backend",
                "protection",
                "primary_version",
                "min_decryption_version",
                "owner",
                "created_at",
                "deletion_date",
                "rotation_period_days",
                "rotate_after_encryptions",
                "next_rotation_at",
                "on_use_while_pending",
                "deletion_canary_count",
                "deletion_canary_last_at",
            ];
            let rows: Vec<Vec<String>> = fields.iter().map(|f| vec![(*f).to_owned(), s(answer, f)]).collect();
            table(&["FIELD", "VALUE"], &rows);
        }
    }
    Ok(())
}

/// Prints aligned columns.
#[allow(clippy::print_stdout, reason = "command output")]
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        padded.join("  ").trim_end().to_owned()
    };
    println!("{}", line(header.to_vec()));
    for row in rows {
        println!("{}", line(row.iter().map(String::as_str).collect()));
    }
}

/// A field for a table: text as is, times absolute and relative, nothing as `-`.
pub(crate) fn cell(v: &Value, field: &str) -> String {
    match &v[field] {
        Value::String(s) => match chrono::DateTime::parse_from_rfc3339(s) {
            Ok(t) if field.ends_with("_at") || field.ends_with("_date") || field == "time" => {
                format!("{} ({})", s, relative(chrono::Utc::now() - t.with_timezone(&chrono::Utc)))
            }
            _ => s.clone(),
        },
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

/// `3m ago`, `in 7d`.
fn relative(d: chrono::Duration) -> String {
    let secs = d.num_seconds();
    let abs = secs.unsigned_abs();
    let amount = match abs {
        0..60 => format!("{abs}s"),
        60..3600 => format!("{}m", abs / 60),
        3600..86_400 => format!("{}h", abs / 3600),
        _ => format!("{}d", abs / 86_400),
    };
    if secs >= 0 { format!("{amount} ago") } else { format!("in {amount}") }
}
