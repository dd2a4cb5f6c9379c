//! `keyward approval list|get|approve|reject`: reviewing sensitive requests.

use keyward_client::api::{Method, encode_path};
use serde_json::Value;

use crate::cli::{ApprovalArgs, ApprovalCommand, Output};
use crate::key_cmd::cell;
use crate::key_cmd::{CommandError, table};
use crate::remote_cmd::Remote;

/// Runs one `keyward approval` subcommand.
#[allow(clippy::print_stdout, reason = "command output")]
pub fn run(args: &ApprovalArgs) -> Result<(), CommandError> {
    let r = Remote::new(&args.remote)?;
    let path = |id: &str, verb: &str| format!("/v1/approvals/{}{verb}", encode_path(id));
    let answer = match &args.command {
        ApprovalCommand::List { state } => {
            let query = state.as_deref().map(|s| format!("?state={}", encode_path(s))).unwrap_or_default();
            r.all_pages("ListApprovals", &format!("/v1/approvals{query}"), "approvals")?
        }
        ApprovalCommand::Get { id } => r.call("GetApproval", Method::GET, &path(id, ""), None)?,
        ApprovalCommand::Approve { id } => r.call("Approve", Method::POST, &path(id, "/approve"), None)?,
        ApprovalCommand::Reject { id } => r.call("Reject", Method::POST, &path(id, "/reject"), None)?,
    };
    if args.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&answer).map_err(|e| e.to_string())?);
        return Ok(());
    }
    let row = |a: &Value| {
        vec![
            cell(a, "id"),
            cell(a, "operation"),
            cell(a, "resource"),
            cell(a, "requested_by"),
            format!("{}/{}", a["approvals"].as_array().map_or(0, Vec::len), cell(a, "required")),
            cell(a, "state"),
            cell(a, "expires_at"),
        ]
    };
    let header = ["ID", "OPERATION", "RESOURCE", "REQUESTED BY", "APPROVALS", "STATE", "EXPIRES"];
    match &args.command {
        ApprovalCommand::List { .. } => {
            let rows: Vec<Vec<String>> = answer["approvals"].as_array().into_iter().flatten().map(row).collect();
            table(&header, &rows);
        }
        _ => {
            table(&header, &[row(&answer)]);
            if let Some(result) = answer.get("result").filter(|r| !r.is_null()) {
                println!("result: {result}");
            }
        }
    }
    Ok(())
}
