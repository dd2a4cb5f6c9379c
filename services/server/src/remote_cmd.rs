//! `keyward alias|grant|data-key|random|sign|authorize`: the other operations on a running server.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use keyward_client::api::{Client, Method, encode_path};
use serde_json::{Map, Value, json};
use sha2::Digest as _;

use crate::cli::{
    AliasCommand, AuthorizeCommand, DataKeyCommand, GrantCommand, Output, RandomCommand, RemoteArgs, RemoteCommand,
    SignCommand,
};
use crate::envelope_cmd::runtime;
use crate::key_cmd::{CommandError, cell, failed, table};
use crate::profile::client;

fn pairs(entries: &[(String, String)]) -> Value {
    Value::Object(entries.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<Map<_, _>>())
}

/// A running server: one client and one runtime for all of a command's calls.
pub(crate) struct Remote {
    api: Client,
    rt: tokio::runtime::Runtime,
}

impl Remote {
    pub(crate) fn new(remote: &RemoteArgs) -> Result<Self, CommandError> {
        Ok(Self { api: client(remote)?, rt: runtime()? })
    }

    /// Calls one operation.
    pub(crate) fn call(
        &self,
        operation: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, CommandError> {
        self.rt.block_on(self.api.call(method, path, body)).map_err(|e| failed(operation, &e))
    }

    /// Calls one operation, answering the API's error as it is (for callers that act on it).
    pub(crate) fn try_call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, keyward_client::api::ApiError> {
        self.rt.block_on(self.api.call(method, path, body))
    }

    /// Every page of a listing: `items` from each answer, following `next_token`.
    pub(crate) fn all_pages(&self, operation: &str, path: &str, items: &str) -> Result<Value, CommandError> {
        let mut all = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let sep = if path.contains('?') { '&' } else { '?' };
            let page_path = match &next {
                Some(t) => format!("{path}{sep}next_token={}", encode_path(t)),
                None => path.to_owned(),
            };
            let page = self.call(operation, Method::GET, &page_path, None)?;
            all.extend(page[items].as_array().cloned().unwrap_or_default());
            match page["next_token"].as_str() {
                Some(t) => next = Some(t.to_owned()),
                None => return Ok(json!({ items: all })),
            }
        }
    }
}

#[allow(clippy::print_stdout, reason = "command output")]
fn show(output: Output, answer: &Value, list: Option<(&str, &[&str])>) -> Result<(), CommandError> {
    if output == Output::Json {
        println!("{}", serde_json::to_string_pretty(answer).map_err(|e| e.to_string())?);
        return Ok(());
    }
    match list {
        Some((items, columns)) => {
            let rows: Vec<Vec<String>> = answer[items]
                .as_array()
                .into_iter()
                .flatten()
                .map(|item| columns.iter().map(|c| cell(item, c)).collect())
                .collect();
            let header: Vec<String> = columns.iter().map(|c| c.to_uppercase().replace('_', " ")).collect();
            table(&header.iter().map(String::as_str).collect::<Vec<_>>(), &rows);
        }
        None => {
            let rows: Vec<Vec<String>> =
                answer.as_object().into_iter().flatten().map(|(k, _)| vec![k.clone(), cell(answer, k)]).collect();
            table(&["FIELD", "VALUE"], &rows);
        }
    }
    Ok(())
}

/// `keyward alias ...`.
pub fn alias(cmd: &RemoteCommand<AliasCommand>) -> Result<(), CommandError> {
    let r = Remote::new(&cmd.remote)?;
    match &cmd.command {
        AliasCommand::Create { name, key } => {
            let body = json!({"target_key_id": key});
            let path = format!("/v1/aliases/{}", encode_path(name));
            show(cmd.output, &r.call("CreateAlias", Method::PUT, &path, Some(body))?, None)
        }
        AliasCommand::List { key } => {
            let path = match key {
                Some(k) => format!("/v1/aliases?limit=100&key_id={}", encode_path(k)),
                None => "/v1/aliases?limit=100".to_owned(),
            };
            let all = r.all_pages("ListAliases", &path, "aliases")?;
            show(cmd.output, &all, Some(("aliases", &["alias_name", "target_key_id"])))
        }
        AliasCommand::Delete { name } => {
            r.call("DeleteAlias", Method::DELETE, &format!("/v1/aliases/{}", encode_path(name)), None)?;
            eprintln!("deleted {name}");
            Ok(())
        }
    }
}

/// `keyward grant ...`.
pub fn grant(cmd: &RemoteCommand<GrantCommand>) -> Result<(), CommandError> {
    let r = Remote::new(&cmd.remote)?;
    match &cmd.command {
        GrantCommand::Create { key, grantee, operations, context_equals } => {
            let mut body = json!({"grantee": grantee, "operations": operations});
            if !context_equals.is_empty() {
                body["constraints"] = json!({"encryption_context_equals": pairs(context_equals)});
            }
            let path = format!("/v1/keys/{}/grants", encode_path(key));
            show(cmd.output, &r.call("CreateGrant", Method::POST, &path, Some(body))?, None)
        }
        GrantCommand::List { key } => {
            let path = format!("/v1/keys/{}/grants", encode_path(key));
            let answer = r.call("ListGrants", Method::GET, &path, None)?;
            show(
                cmd.output,
                &answer,
                Some(("grants", &["grant_id", "grantee", "operations", "granted_by", "created_at"])),
            )
        }
        GrantCommand::Revoke { grant_id } => {
            r.call("RevokeGrant", Method::DELETE, &format!("/v1/grants/{}", encode_path(grant_id)), None)?;
            eprintln!("revoked {grant_id}");
            Ok(())
        }
    }
}

/// `keyward data-key generate ...`.
pub fn data_key(cmd: &RemoteCommand<DataKeyCommand>) -> Result<(), CommandError> {
    let r = Remote::new(&cmd.remote)?;
    let DataKeyCommand::Generate { key, context, without_plaintext } = &cmd.command;
    let op = if *without_plaintext { "generate-data-key-without-plaintext" } else { "generate-data-key" };
    let path = format!("/v1/keys/{}/{op}", encode_path(key));
    let answer = r.call("GenerateDataKey", Method::POST, &path, Some(json!({"encryption_context": pairs(context)})))?;
    show(cmd.output, &answer, None)
}

/// The largest RAW message Sign, Verify and the MAC operations take.
const MAX_MESSAGE: usize = 4096;

/// Reads a message that is sent whole (at most [`MAX_MESSAGE`] bytes).
fn read_small(file: &std::path::Path, hint: &str) -> Result<Vec<u8>, CommandError> {
    let bytes = read_message(file)?;
    if bytes.len() > MAX_MESSAGE {
        return Err(CommandError {
            exit: 2,
            message: format!("{} is {} bytes; messages are at most {MAX_MESSAGE}{hint}", file.display(), bytes.len()),
        });
    }
    Ok(bytes)
}

/// Reads a message file (`-`: stdin).
fn read_message(file: &std::path::Path) -> Result<Vec<u8>, CommandError> {
    let read = if file.as_os_str() == "-" {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut v).map(|_| v)
    } else {
        std::fs::read(file)
    };
    read.map_err(|e| CommandError { exit: 2, message: format!("{}: {e}", file.display()) })
}

/// The message as Sign and Verify take it: the bytes (RAW) or their digest under the
/// algorithm's hash (DIGEST).
fn message_body(file: &std::path::Path, algorithm: &str, digest: bool) -> Result<Value, CommandError> {
    if !digest {
        let bytes = read_small(file, " (add --digest to sign the file's hash)")?;
        return Ok(json!({"message": B64.encode(&bytes), "message_type": "RAW", "signing_algorithm": algorithm}));
    }
    let bytes = read_message(file)?;
    let hashed = match algorithm.rsplit('_').next() {
        Some("256") => sha2::Sha256::digest(&bytes).to_vec(),
        Some("384") => sha2::Sha384::digest(&bytes).to_vec(),
        Some("512") if !algorithm.starts_with("ED25519") => sha2::Sha512::digest(&bytes).to_vec(),
        _ => {
            return Err(CommandError { exit: 2, message: format!("`{algorithm}` takes no digest (send the message)") });
        }
    };
    Ok(json!({"message": B64.encode(hashed), "message_type": "DIGEST", "signing_algorithm": algorithm}))
}

/// `keyward sign ...`.
#[allow(clippy::print_stdout, reason = "command output")]
pub fn sign(cmd: &RemoteCommand<SignCommand>) -> Result<(), CommandError> {
    let r = Remote::new(&cmd.remote)?;
    let at = |key: &str, op: &str| format!("/v1/keys/{}/{op}", encode_path(key));
    let (answer, field) = match &cmd.command {
        SignCommand::Create { key, file, algorithm, digest } => {
            let body = message_body(file, algorithm, *digest)?;
            (r.call("Sign", Method::POST, &at(key, "sign"), Some(body))?, "signature")
        }
        SignCommand::Verify { key, file, signature, algorithm, digest } => {
            let mut body = message_body(file, algorithm, *digest)?;
            body["signature"] = json!(signature);
            (r.call("Verify", Method::POST, &at(key, "verify"), Some(body))?, "signature_valid")
        }
        SignCommand::Mac { key, file, algorithm } => {
            let body = json!({"message": B64.encode(read_small(file, "")?), "mac_algorithm": algorithm});
            (r.call("GenerateMac", Method::POST, &at(key, "generate-mac"), Some(body))?, "mac")
        }
        SignCommand::VerifyMac { key, file, mac, algorithm } => {
            let body = json!({"message": B64.encode(read_small(file, "")?), "mac": mac, "mac_algorithm": algorithm});
            (r.call("VerifyMac", Method::POST, &at(key, "verify-mac"), Some(body))?, "mac_valid")
        }
    };
    if cmd.output == Output::Json {
        show(cmd.output, &answer, None)?;
    } else {
        println!("{}", cell(&answer, field));
    }
    if answer[field] == json!(false) {
        return Err(CommandError { exit: 1, message: format!("{field}: false") });
    }
    Ok(())
}

/// `keyward random generate ...`.
pub fn random(cmd: &RemoteCommand<RandomCommand>) -> Result<(), CommandError> {
    let r = Remote::new(&cmd.remote)?;
    let RandomCommand::Generate { bytes, namespace } = &cmd.command;
    let mut body = json!({"number_of_bytes": bytes});
    if let Some(ns) = namespace {
        body["namespace"] = json!(ns);
    }
    show(cmd.output, &r.call("GenerateRandom", Method::POST, "/v1/random", Some(body))?, None)
}

/// `keyward authorize ask ...`.
pub fn authorize(cmd: &RemoteCommand<AuthorizeCommand>) -> Result<(), CommandError> {
    let r = Remote::new(&cmd.remote)?;
    let AuthorizeCommand::Ask { action, resource, principal, groups, context } = &cmd.command;
    let mut body = json!({"action": action, "resource": resource, "context": {"encryption_context": pairs(context)}});
    if let Some(p) = principal {
        body["principal"] = json!(p);
        body["groups"] = json!(groups);
    }
    show(cmd.output, &r.call("Authorize", Method::POST, "/v1/authorize", Some(body))?, None)
}

/// `keyward policy get|reload`.
#[allow(clippy::print_stdout, reason = "command output")]
pub fn policy(remote: &RemoteArgs, json_output: bool) -> Result<(), CommandError> {
    let r = Remote::new(remote)?;
    let v = r.call("GetPolicies", Method::GET, "/v1/policies", None)?;
    if json_output {
        println!("{}", serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?);
        return Ok(());
    }
    println!("// policy set {}", cell(&v, "policy_version"));
    for p in v["policies"].as_array().into_iter().flatten() {
        println!("\n// {}\n{}", cell(p, "id"), cell(p, "text").trim_end());
    }
    Ok(())
}

/// `keyward policy reload [--force]`: ReloadPolicies; prints the new version and the proofs.
#[allow(clippy::print_stdout, reason = "command output")]
pub fn reload_policies(remote: &RemoteArgs, force: bool) -> Result<(), CommandError> {
    let r = Remote::new(remote)?;
    let body = force.then(|| serde_json::json!({ "force": true }));
    let v = r.call("ReloadPolicies", Method::POST, "/v1/policies/reload", body)?;
    println!("{}", cell(&v, "policy_version"));
    if let Some(p) = v["proofs"].as_str() {
        println!("proofs: {p}");
    }
    Ok(())
}

/// The filters of `keyward audit query`.
#[derive(Debug)]
pub struct AuditFilters<'a> {
    /// `principal`.
    pub principal: Option<&'a str>,
    /// `key_id`.
    pub key: Option<&'a str>,
    /// `action`.
    pub action: Option<&'a str>,
    /// `decision`.
    pub decision: Option<&'a str>,
    /// `from`.
    pub from: Option<&'a str>,
    /// At most this many.
    pub limit: usize,
}

/// `keyward audit query`: JSON lines, every page up to the limit.
#[allow(clippy::print_stdout, reason = "command output")]
pub fn audit_query(remote: &RemoteArgs, f: &AuditFilters<'_>) -> Result<(), CommandError> {
    let r = Remote::new(remote)?;
    let enc = |v: &str| {
        v.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    let mut query: Vec<String> = [
        ("principal", f.principal),
        ("key_id", f.key),
        ("action", f.action),
        ("decision", f.decision),
        ("from", f.from),
    ]
    .iter()
    .filter_map(|(k, v)| v.map(|v| format!("{k}={}", enc(v))))
    .collect();
    query.push(format!("limit={}", f.limit.clamp(1, 1000)));
    let mut printed = 0usize;
    let mut next: Option<String> = None;
    while printed < f.limit {
        let mut q = query.clone();
        if let Some(t) = &next {
            q.push(format!("next_token={}", enc(t)));
        }
        let page = r.call("QueryAudit", Method::GET, &format!("/v1/audit?{}", q.join("&")), None)?;
        for r in page["records"].as_array().into_iter().flatten().take(f.limit - printed) {
            println!("{r}");
            printed += 1;
        }
        match page["next_token"].as_str() {
            Some(t) => next = Some(t.to_owned()),
            None => break,
        }
    }
    Ok(())
}

/// `keyward audit verify --remote`: VerifyAudit on a running server; fails unless `ok`.
#[allow(clippy::print_stdout, reason = "command output")]
pub fn audit_verify(remote: &RemoteArgs) -> Result<(), CommandError> {
    let v = Remote::new(remote)?.call("VerifyAudit", Method::POST, "/v1/audit/verify", None)?;
    println!("{}", serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?);
    if v["ok"] == Value::Bool(true) {
        Ok(())
    } else {
        Err(CommandError { exit: 1, message: "the audit trail does not verify".into() })
    }
}
