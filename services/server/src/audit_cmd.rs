//! `keyward audit verify|export`: check and read the trail a server wrote.

use keyward_store::{AuditQuery, SqlAuditStore, VerifyOptions, VerifyReport};

use crate::config::Settings;
use crate::wiring;

async fn open(settings: &Settings) -> Result<SqlAuditStore, String> {
    let db = wiring::database(settings).await?;
    Ok(SqlAuditStore::new(db))
}

/// Walks every chain beside its checkpoints; prints the report as JSON. Signatures are
/// checked with the configured (or data-directory) signing key; without it nothing can be
/// vouched for and the verdict is not ok.
#[allow(clippy::print_stdout, clippy::print_stderr, reason = "command output")]
pub async fn verify(settings: &Settings, from_checkpoint: Option<i64>) -> Result<VerifyReport, String> {
    let store = open(settings).await?;
    let path = wiring::signing_key_path(settings);
    let key = if path.exists() {
        Some(wiring::signing_key(settings)?.verifying_key())
    } else {
        eprintln!(
            "keyward: no signing key at {}: signatures cannot be checked, so nothing is vouched for",
            path.display()
        );
        None
    };
    let options = VerifyOptions {
        key: key.as_ref(),
        checkpoint_interval: std::time::Duration::from_secs(settings.audit_checkpoint_interval_seconds),
        from_checkpoint,
    };
    let report = store.verify(options).await.map_err(|e| e.to_string())?;
    println!("{}", serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?);
    Ok(report)
}

/// Prints records as JSON lines, oldest first, optionally from a time on.
#[allow(clippy::print_stdout, reason = "command output")]
pub async fn export(settings: &Settings, from: Option<chrono::DateTime<chrono::Utc>>) -> Result<u64, String> {
    let store = open(settings).await?;
    let mut after = None;
    let mut n = 0u64;
    loop {
        let page = store
            .query(&AuditQuery { from, after_id: after, limit: 1000, ..Default::default() })
            .await
            .map_err(|e| e.to_string())?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        for row in &page {
            println!("{}", serde_json::to_string(&keyward_store::audit_json(row)).map_err(|e| e.to_string())?);
            n += 1;
        }
    }
    Ok(n)
}
