//! `policy-scale`: decision cost as the policy set grows (10 to 100,000 policies), through
//! the scope index and, for contrast, over the whole set. Runs in-process: it measures the
//! authorizer alone, not HTTP.

use std::time::{Duration, Instant};

use keyward_authz::{CedarAuthorizer, EMBEDDED, PolicyBundle};
use keyward_core::model::context::EncryptionContext;
use keyward_core::model::ids::{KeyId, Namespace};
use keyward_core::model::key::{KeyRecord, KeySpec, Protection};
use keyward_core::model::principal::{Principal, PrincipalKind};
use keyward_core::operation::{Action, Operation};
use keyward_core::ports::authorizer::{Authorizer, AuthzRequest, RequestFacts, ResourceRef};
use serde::Serialize;

/// One measured set size.
#[derive(Debug, Serialize)]
pub struct ScaleRow {
    /// `P1` (policy scale).
    pub scenario: &'static str,
    /// Generated policies (plus the default set).
    pub policies: usize,
    /// Load and strict validation time.
    pub load_s: f64,
    /// Mean indexed decision time.
    pub indexed_us: f64,
    /// Indexed cost relative to the 10-policy set.
    pub ratio_to_10: f64,
    /// Mean decision time evaluating every policy.
    pub whole_set_us: f64,
    /// The commit measured.
    pub git_sha: String,
    /// When.
    pub time: String,
}

fn key_id(i: usize) -> KeyId {
    KeyId(uuid::Uuid::from_u128(0x1000_0000 + i as u128))
}

/// `n` policies in four scope shapes: per user, per group, per key, per namespace.
fn generate(n: usize) -> String {
    let mut out = String::with_capacity(n * 160);
    for i in 0..n {
        let p = match i % 4 {
            0 => format!(
                "@id(\"u{i}\") permit(principal == Keyward::User::\"u{i}\", action in Keyward::Action::\"UseKey\", resource in Keyward::Namespace::\"ns{i}\");\n"
            ),
            1 => format!(
                "@id(\"g{i}\") permit(principal in Keyward::Group::\"team{i}\", action in Keyward::Action::\"ReadKey\", resource in Keyward::Namespace::\"ns{i}\");\n"
            ),
            2 => format!(
                "@id(\"k{i}\") forbid(principal, action, resource == Keyward::Key::\"{}\") when {{ context.dry_run == false }};\n",
                key_id(i)
            ),
            _ => format!(
                "@id(\"n{i}\") permit(principal, action == Keyward::Action::\"DescribeKey\", resource in Keyward::Namespace::\"ns{i}\") when {{ principal in resource.namespace_group }};\n"
            ),
        };
        out.push_str(&p);
    }
    out
}

fn key(i: usize) -> KeyRecord {
    let now = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
    let namespace = Namespace::parse(&format!("ns{i}")).unwrap_or_else(|e| unreachable!("{e}"));
    KeyRecord::new(key_id(i), namespace, String::new(), "software".into(), KeySpec::Aes256, now)
}

/// One measured request: a principal, an operation and a key.
type Case = (Principal, Operation, KeyRecord);

fn request<'a>(case: &'a Case, ctx: &'a EncryptionContext) -> AuthzRequest<'a> {
    let (p, op, k) = case;
    let now = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
    let facts = RequestFacts {
        encryption_context: ctx,
        source_ip: None,
        justification: None,
        request_time: now,
        dry_run: false,
        create: None,
        forwarded: None,
        algorithm: Default::default(),
    };
    AuthzRequest {
        principal: p,
        action: Action::Op(*op),
        resource: ResourceRef::Key { key: k, protection: Protection::Software },
        facts,
    }
}

fn measure(budget: Duration, mut f: impl FnMut()) -> f64 {
    for _ in 0..50 {
        f();
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        for _ in 0..10 {
            f();
        }
        n += 10;
    }
    start.elapsed().as_secs_f64() * 1e6 / n as f64
}

/// `keyward-bench policy-scale [--quick]`: runs, prints, writes `target/bench/P1-<time>.jsonl`.
pub fn main(args: &[String]) -> Result<(), String> {
    let quick = args.iter().any(|a| a == "--quick");
    let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let rows = run(quick, &crate::scenarios::git_sha(), &time)?;
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let path = dir.join(format!("P1-{}.jsonl", time.replace(':', "")));
    let lines: Vec<String> = rows.iter().filter_map(|r| serde_json::to_string(r).ok()).collect();
    std::fs::write(&path, lines.join("\n") + "\n").map_err(|e| e.to_string())?;
    let last = rows.last().map_or(0.0, |r| r.ratio_to_10);
    if !quick && last > 1.2 {
        return Err(format!("decision cost at the largest set is {last:.2}x the 10-policy cost (goal: at most 1.2x)"));
    }
    Ok(())
}

/// Runs the sizes and prints the table.
#[allow(clippy::print_stdout, reason = "the report is the output")]
pub fn run(quick: bool, git_sha: &str, time: &str) -> Result<Vec<ScaleRow>, String> {
    let sizes: &[usize] = if quick { &[10, 1_000] } else { &[10, 1_000, 10_000, 100_000] };
    let budget = Duration::from_millis(if quick { 200 } else { 2_000 });
    let mut rows: Vec<ScaleRow> = Vec::new();
    for &n in sizes {
        let mut sources: Vec<(String, String)> =
            EMBEDDED.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect();
        sources.push(("generated.cedar".into(), generate(n)));
        let start = Instant::now();
        let bundle = PolicyBundle::from_sources(format!("{n} generated"), sources).map_err(|e| e.to_string())?;
        let authz = CedarAuthorizer::new(bundle)?;
        let load_s = start.elapsed().as_secs_f64();
        // Requests that hit each shape: the matching user, group and namespace exist at every size.
        let ctx = EncryptionContext::default();
        let cases: Vec<Case> = (4..8)
            .map(|i| {
                let p = Principal {
                    kind: PrincipalKind::User,
                    id: format!("u{i}"),
                    groups: vec![format!("team{i}"), format!("ns{i}")],
                };
                let op = if i % 2 == 0 { Operation::Encrypt } else { Operation::DescribeKey };
                (p, op, key(i))
            })
            .collect();
        // The index must not change any answer.
        for c in &cases {
            let req = request(c, &ctx);
            if authz.decide(&req).allowed != authz.decide_unindexed(&req) {
                return Err(format!("index and whole set disagree at {n} policies for {:?}", c.0.id));
            }
        }
        let mut i = 0usize;
        let indexed_us = measure(budget, || {
            std::hint::black_box(authz.decide(&request(&cases[i % cases.len()], &ctx)));
            i += 1;
        });
        let whole_set_us = measure(budget, || {
            std::hint::black_box(authz.decide_unindexed(&request(&cases[i % cases.len()], &ctx)));
            i += 1;
        });
        let base = rows.first().map_or(indexed_us, |r| r.indexed_us);
        rows.push(ScaleRow {
            scenario: "P1",
            policies: n,
            load_s,
            indexed_us,
            ratio_to_10: indexed_us / base,
            whole_set_us,
            git_sha: git_sha.to_owned(),
            time: time.to_owned(),
        });
    }
    println!("P1 policy scale (authorizer alone, one thread; the default set plus the generated policies)");
    println!("| policies | load + strict validation s | indexed decision µs | ratio to 10 | whole-set decision µs |");
    println!("| ---: | ---: | ---: | ---: | ---: |");
    for r in &rows {
        println!(
            "| {} | {:.2} | {:.2} | {:.2} | {:.1} |",
            r.policies, r.load_s, r.indexed_us, r.ratio_to_10, r.whole_set_us
        );
    }
    Ok(rows)
}
