//! `keyward policy validate|test|diff`: the checks a policy repository runs before merging.

use std::collections::BTreeMap;
use std::path::Path;

use keyward_authz::cases::{self, Case};
use keyward_authz::{CedarAuthorizer, PolicyBundle, proofs};
use keyward_core::model::context::EncryptionContext;
use keyward_core::model::ids::{KeyId, Namespace};
use keyward_core::model::key::{KeyRecord, Protection};
use keyward_core::model::principal::{Principal, PrincipalKind};
use keyward_core::operation::Action;
use keyward_core::ports::authorizer::{Authorizer, AuthzRequest, Decision, RequestFacts, ResourceRef, SYSTEM_UID};
use keyward_core::ports::store::KeyStore;

use crate::config::Settings;

fn load(dir: &Path) -> Result<CedarAuthorizer, String> {
    let bundle = PolicyBundle::load_dir(dir).map_err(|e| e.to_string())?;
    CedarAuthorizer::new(bundle)
}

/// `policy validate DIR`: parses and strictly validates; prints the version.
#[allow(clippy::print_stdout, reason = "command output")]
pub fn validate(dir: &Path) -> Result<(), String> {
    let authz = load(dir)?;
    let bundle = authz.bundle();
    println!("{}: valid ({} policies, version {})", dir.display(), bundle.len(), bundle.version());
    Ok(())
}

/// `policy test DIR`: runs every case in `DIR/tests`; fails on any mismatch, printing how
/// each differs, and on a policy no case exercises.
#[allow(clippy::print_stdout, reason = "command output")]
pub fn test(dir: &Path) -> Result<(), String> {
    let authz = load(dir)?;
    let cases = cases::load_cases(dir)?;
    if cases.is_empty() {
        return Err(format!("no test cases in {}", dir.join("tests").display()));
    }
    let mut failed = 0;
    let mut covered = std::collections::BTreeSet::new();
    for (file, case) in &cases {
        match cases::decide(&authz, case) {
            Ok(decision) => {
                covered.extend(decision.determining_policies.iter().cloned());
                if let Err(diff) = cases::check(case, &decision) {
                    failed += 1;
                    println!("FAIL {file}: {}\n{diff}", case.name);
                }
            }
            Err(e) => {
                failed += 1;
                println!("FAIL {file}: {}\n    invalid case: {e}", case.name);
            }
        }
    }
    let uncovered: Vec<String> =
        authz.bundle().policy_texts().into_iter().map(|(id, _)| id).filter(|id| !covered.contains(id)).collect();
    println!("{} cases, {} passed, {failed} failed", cases.len(), cases.len() - failed);
    if !uncovered.is_empty() {
        println!("policies no case determines: {}", uncovered.join(", "));
    }
    if failed > 0 || !uncovered.is_empty() {
        return Err("policy tests failed".into());
    }
    Ok(())
}

/// `policy prove DIR [--implies OLD]`: proves the set's properties (see
/// `keyward_authz::proofs`); prints each, with a counterexample when it fails.
#[allow(clippy::print_stdout, reason = "command output")]
pub fn prove(dir: &Path, implies: Option<&Path>) -> Result<(), String> {
    let bundle = PolicyBundle::load_dir(dir).map_err(|e| e.to_string())?;
    let old = implies.map(|d| PolicyBundle::load_dir(d).map_err(|e| format!("{}: {e}", d.display()))).transpose()?;
    let label = implies.map(|d| d.display().to_string()).unwrap_or_default();
    let extra = proofs::Extra { dir: Some(dir), implies: old.as_ref().map(|o| (label.as_str(), o)) };
    let report = proofs::prove_blocking(&bundle, &extra)?;
    for p in &report.proofs {
        if p.holds {
            println!("proved  {}", p.name);
        } else {
            println!("FAILED  {}", p.name);
            if let Some(cex) = &p.counterexample {
                println!("  counterexample:\n    {}", cex.replace('\n', "\n    "));
            }
        }
    }
    let failed = report.failed();
    println!(
        "{} properties, {} proved, {} failed",
        report.proofs.len(),
        report.proofs.len() - failed.len(),
        failed.len()
    );
    if failed.is_empty() { Ok(()) } else { Err(format!("policy proofs failed: {}", failed.join(", "))) }
}

fn summary(d: &Decision) -> String {
    format!("{} {:?}", if d.allowed { "Allow" } else { "Deny" }, d.determining_policies)
}

fn changed(a: &Decision, b: &Decision) -> bool {
    a.allowed != b.allowed || a.determining_policies != b.determining_policies
}

/// `policy diff OLD NEW`: every test case (of either directory) and, with `audit_since`,
/// every recorded request in that window whose decision differs between the two sets.
/// Returns the number of changed requests.
#[allow(clippy::print_stdout, reason = "command output")]
pub async fn diff(
    old_dir: &Path,
    new_dir: &Path,
    audit: Option<(&Settings, chrono::DateTime<chrono::Utc>)>,
) -> Result<usize, String> {
    let old = load(old_dir)?;
    let new = load(new_dir)?;
    println!(
        "policy diff: {} ({}) -> {} ({})",
        old_dir.display(),
        old.bundle().version(),
        new_dir.display(),
        new.bundle().version()
    );
    let mut all: BTreeMap<(String, String), Case> = BTreeMap::new();
    for dir in [old_dir, new_dir] {
        if dir.join("tests").is_dir() {
            for (file, case) in cases::load_cases(dir)? {
                all.insert((file, case.name.clone()), case);
            }
        }
    }
    let mut changes = 0;
    for ((file, name), case) in &all {
        let (a, b) = (cases::decide(&old, case)?, cases::decide(&new, case)?);
        if changed(&a, &b) {
            changes += 1;
            println!("  CHANGED case [{file}] {name}: {} -> {}", summary(&a), summary(&b));
        }
    }
    println!("test cases: {} checked, {changes} changed", all.len());
    if let Some((settings, since)) = audit {
        changes += replay(settings, since, &old, &new).await?;
    }
    Ok(changes)
}

fn parse_principal(uid: &str, groups: Vec<String>) -> Option<Principal> {
    let id = |p: &str| uid.strip_prefix(p).and_then(|r| r.strip_suffix('"')).map(str::to_owned);
    let (kind, id) = match (id("Keyward::User::\""), id("Keyward::Service::\"")) {
        (Some(id), _) => (PrincipalKind::User, id),
        (None, Some(id)) => (PrincipalKind::Service, id),
        _ => return None,
    };
    Some(Principal { kind, id, groups })
}

fn protection_of(settings: &Settings, backend: &str) -> Protection {
    let kind = settings
        .backends
        .iter()
        .find(|t| t.get("name").and_then(toml::Value::as_str) == Some(backend))
        .and_then(|t| t.get("kind").and_then(toml::Value::as_str))
        .unwrap_or("software");
    match kind {
        "pkcs11" => Protection::Hsm,
        "aws-kms" => Protection::External,
        _ => Protection::Software,
    }
}

/// Replays recorded decisions against both sets. Keys are taken as they are now (their
/// attributes may have changed since); requests on deleted keys are skipped.
#[allow(clippy::print_stdout, reason = "command output")]
async fn replay(
    settings: &Settings,
    since: chrono::DateTime<chrono::Utc>,
    old: &CedarAuthorizer,
    new: &CedarAuthorizer,
) -> Result<usize, String> {
    let db = keyward_store::connect(&settings.database_url).await.map_err(|e| e.to_string())?;
    let audit = keyward_store::SqlAuditStore::new(db.clone());
    let store = keyward_store::SqlStore::new(db);
    let mut keys: BTreeMap<String, Option<KeyRecord>> = BTreeMap::new();
    let mut distinct: BTreeMap<String, (usize, Decision, Decision)> = BTreeMap::new();
    let (mut replayed, mut skipped) = (0usize, 0usize);
    let mut after = None;
    loop {
        let query = keyward_store::AuditQuery { from: Some(since), after_id: after, limit: 1000, ..Default::default() };
        let page = audit.query(&query).await.map_err(|e| e.to_string())?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        for r in &page {
            let groups: Vec<String> = serde_json::from_str(&r.principal_groups).unwrap_or_default();
            let action = match r.action.as_str() {
                "ReEncrypt" => Some(Action::ReEncryptFrom),
                "Authorize" => None,
                other => other.parse().ok(),
            };
            let (Some(resource), Some(principal), Some(action), Some(_)) =
                (r.resource.as_deref(), parse_principal(&r.principal, groups), action, r.decision.as_deref())
            else {
                skipped += 1;
                continue;
            };
            let ctx: BTreeMap<String, String> = serde_json::from_str(&r.encryption_context).unwrap_or_default();
            let Ok(ctx) = EncryptionContext::new(ctx) else {
                skipped += 1;
                continue;
            };
            let namespace;
            let resource_ref = if resource == SYSTEM_UID {
                ResourceRef::System
            } else if let Some(ns) = resource.strip_prefix("Keyward::Namespace::\"").and_then(|r| r.strip_suffix('"')) {
                let Ok(ns) = Namespace::parse(ns) else {
                    skipped += 1;
                    continue;
                };
                namespace = ns;
                ResourceRef::Namespace(&namespace)
            } else if let Some(id) = resource.strip_prefix("Keyward::Key::\"").and_then(|r| r.strip_suffix('"')) {
                if !keys.contains_key(id) {
                    let record = match id.parse::<KeyId>() {
                        Ok(k) => store.key(k).await.map_err(|e| e.to_string())?,
                        Err(_) => None,
                    };
                    keys.insert(id.to_owned(), record);
                }
                match keys.get(id).and_then(Option::as_ref) {
                    Some(key) => ResourceRef::Key { key, protection: protection_of(settings, &key.backend) },
                    None => {
                        skipped += 1;
                        continue;
                    }
                }
            } else {
                skipped += 1;
                continue;
            };
            let time = chrono::DateTime::from_timestamp_micros(r.time).unwrap_or(since);
            let facts = RequestFacts {
                encryption_context: &ctx,
                source_ip: r.source_ip.as_deref().and_then(|s| s.parse().ok()),
                justification: r.justification.as_deref(),
                request_time: time,
                dry_run: r.dry_run,
                // The trail does not record CreateKey's backend: replayed without it.
                create: None,
                forwarded: None,
                algorithm: Default::default(),
            };
            let request = AuthzRequest { principal: &principal, action, resource: resource_ref, facts };
            let (a, b) = (old.decide(&request), new.decide(&request));
            replayed += 1;
            if changed(&a, &b) {
                let label = format!("{principal} {action} {resource} context={:?}", ctx.entries());
                distinct.entry(label).or_insert((0, a, b)).0 += 1;
            }
        }
    }
    let changes: usize = distinct.values().map(|(n, ..)| n).sum();
    println!(
        "audit trail since {}: {replayed} requests replayed ({skipped} skipped: no decision, unknown or deleted resource), {changes} changed",
        since.to_rfc3339()
    );
    for (label, (n, a, b)) in &distinct {
        println!("  CHANGED request {label} (x{n}): {} -> {}", summary(a), summary(b));
    }
    Ok(changes)
}
