//! Policy proofs: properties of a policy set proved for every well-typed request with Cedar's
//! symbolic compiler and an SMT solver (cvc5, found by the `CVC5` variable or on `PATH`).
//!
//! - **never-errors**: no policy can error on any request the schema allows (an erroring
//!   policy is skipped by Cedar, so a forbid that errors silently stops forbidding).
//! - **lockout**: members of the `admins` group, giving a justification, may always
//!   ScheduleKeyDeletion, CancelKeyDeletion (on every key) and ReloadPolicies. The guard
//!   policy [`LOCKOUT_GUARD`] must imply the set.
//! - **declared** properties in `DIR/proofs/*.json`: `{"name", "never_allows": "<policies>"}`
//!   (the set allows none of the requests those policies permit) or `{"name",
//!   "always_allows": "<policies>"}` (it allows all of them).
//! - **implies OLD**: the set allows nothing OLD did not (a change only narrows access).
//!
//! A property that fails comes with a counterexample: a request and entities.

use std::path::Path;
use std::str::FromStr;

use cedar_policy::{PolicySet, RequestEnv, Schema};
use cedar_policy_symcc::solver::LocalSolver;
use cedar_policy_symcc::{CedarSymCompiler, CompiledPolicy, CompiledPolicySet};
use serde::Deserialize;

use crate::PolicyBundle;

/// The lockout property: what admins must always be able to do.
pub const LOCKOUT_GUARD: &str = r#"permit (
  principal in Keyward::Group::"admins",
  action in [Keyward::Action::"ScheduleKeyDeletion", Keyward::Action::"CancelKeyDeletion", Keyward::Action::"ReloadPolicies"],
  resource
) when { context has justification };"#;

/// One property and whether it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// `never-errors:<policy id>`, `lockout`, `implies:<dir>` or a declared property's name.
    pub name: String,
    /// Whether it holds for every well-typed request.
    pub holds: bool,
    /// When it does not: a request (and entities) that breaks it.
    pub counterexample: Option<String>,
}

/// Every property proved, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProofReport {
    /// The proofs.
    pub proofs: Vec<Proof>,
}

impl ProofReport {
    /// Whether every property holds.
    pub fn holds(&self) -> bool {
        self.proofs.iter().all(|p| p.holds)
    }

    /// Whether the safety properties a reload needs (never-errors and lockout) hold.
    pub fn safe_to_load(&self) -> bool {
        self.proofs.iter().filter(|p| p.name.starts_with("never-errors:") || p.name == "lockout").all(|p| p.holds)
    }

    /// The names of the properties that fail.
    pub fn failed(&self) -> Vec<&str> {
        self.proofs.iter().filter(|p| !p.holds).map(|p| p.name.as_str()).collect()
    }
}

/// A property declared in `DIR/proofs/*.json`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Declared {
    name: String,
    never_allows: Option<String>,
    always_allows: Option<String>,
}

/// What to prove besides never-errors and lockout.
#[derive(Debug, Default)]
pub struct Extra<'a> {
    /// The policy directory (for `proofs/*.json`), when the set comes from one.
    pub dir: Option<&'a Path>,
    /// A set the proved one must imply (every request it allows, this one allowed).
    pub implies: Option<(&'a str, &'a PolicyBundle)>,
}

/// Whether a solver can be started here.
pub fn solver_available() -> bool {
    LocalSolver::cvc5().is_ok()
}

/// Proves the properties of `bundle`. Errors: no solver, or a declared property that does not
/// parse or validate.
pub async fn prove(bundle: &PolicyBundle, extra: &Extra<'_>) -> Result<ProofReport, String> {
    let declared = match extra.dir {
        Some(dir) => load_declared(dir, bundle.schema())?,
        None => Vec::new(),
    };
    let solver = LocalSolver::cvc5().map_err(|e| {
        format!("cannot start the cvc5 solver ({e}): install cvc5 (`apt install cvc5`) or set CVC5 to its path")
    })?;
    let mut compiler = CedarSymCompiler::new(solver).map_err(|e| e.to_string())?;
    let schema = bundle.schema();
    let set = bundle.policy_set();
    let guard = PolicySet::from_str(LOCKOUT_GUARD).map_err(|e| e.to_string())?;
    let envs: Vec<RequestEnv> = schema.request_envs().collect();
    let mut report = ProofReport::default();
    let mut record = |name: String, failure: Option<String>| match report.proofs.iter_mut().find(|p| p.name == name) {
        Some(p) => {
            if p.holds && failure.is_some() {
                p.holds = false;
                p.counterexample = failure;
            }
        }
        None => report.proofs.push(Proof { name, holds: failure.is_none(), counterexample: failure }),
    };
    for policy in set.policies() {
        let name = format!("never-errors:{}", policy_name(policy));
        for env in &envs {
            let compiled = CompiledPolicy::compile(policy, env, schema).map_err(|e| e.to_string())?;
            let cex =
                compiler.check_never_errors_with_counterexample_opt(&compiled).await.map_err(|e| e.to_string())?;
            record(name.clone(), cex.map(|c| c.to_string()));
        }
    }
    for env in envs.iter().filter(|e| guarded(e)) {
        let (g, s) = (compiled(&guard, env, schema)?, compiled(set, env, schema)?);
        let cex = compiler.check_implies_with_counterexample_opt(&g, &s).await.map_err(|e| e.to_string())?;
        record("lockout".into(), cex.map(|c| c.to_string()));
    }
    for (name, property, always) in &declared {
        for env in &envs {
            let (p, s) = (compiled(property, env, schema)?, compiled(set, env, schema)?);
            let cex = if *always {
                compiler.check_implies_with_counterexample_opt(&p, &s).await
            } else {
                compiler.check_disjoint_with_counterexample_opt(&p, &s).await
            };
            record(name.clone(), cex.map_err(|e| e.to_string())?.map(|c| c.to_string()));
        }
    }
    if let Some((label, old)) = extra.implies {
        for env in &envs {
            let (n, o) = (compiled(set, env, schema)?, compiled(old.policy_set(), env, schema)?);
            let cex = compiler.check_implies_with_counterexample_opt(&n, &o).await.map_err(|e| e.to_string())?;
            record(format!("implies:{label}"), cex.map(|c| c.to_string()));
        }
    }
    Ok(report)
}

/// Proves `bundle` on a runtime of its own, for callers outside one (a blocking thread).
pub fn prove_blocking(bundle: &PolicyBundle, extra: &Extra<'_>) -> Result<ProofReport, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the prover's runtime: {e}"))?;
    runtime.block_on(prove(bundle, extra))
}

fn policy_name(policy: &cedar_policy::Policy) -> String {
    policy.annotation("id").map_or_else(|| policy.id().to_string(), str::to_owned)
}

/// Whether the lockout guard speaks of this request's action.
fn guarded(env: &RequestEnv) -> bool {
    let action = env.action().id().escaped().to_string();
    ["ScheduleKeyDeletion", "CancelKeyDeletion", "ReloadPolicies"].contains(&action.as_str())
}

fn compiled(set: &PolicySet, env: &RequestEnv, schema: &Schema) -> Result<CompiledPolicySet, String> {
    CompiledPolicySet::compile(set, env, schema).map_err(|e| e.to_string())
}

/// `(name, policies, always)` for each property in `dir/proofs/*.json` (a file holds one
/// property or an array of them), validated against the schema.
fn load_declared(dir: &Path, schema: &Schema) -> Result<Vec<(String, PolicySet, bool)>, String> {
    let proofs = dir.join("proofs");
    if !proofs.is_dir() {
        return Ok(Vec::new());
    }
    let mut files: Vec<_> = std::fs::read_dir(&proofs)
        .map_err(|e| format!("{}: {e}", proofs.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let shown = file.display().to_string();
        let text = std::fs::read_to_string(&file).map_err(|e| format!("{shown}: {e}"))?;
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{shown}: {e}"))?;
        let items = match value {
            serde_json::Value::Array(items) => items,
            one => vec![one],
        };
        for item in items {
            let d: Declared = serde_json::from_value(item).map_err(|e| format!("{shown}: {e}"))?;
            let (text, always) = match (d.never_allows, d.always_allows) {
                (Some(t), None) => (t, false),
                (None, Some(t)) => (t, true),
                _ => return Err(format!("{shown}: `{}` needs exactly one of never_allows and always_allows", d.name)),
            };
            let set = PolicySet::from_str(&text).map_err(|e| format!("{shown}: `{}`: {e}", d.name))?;
            let validated =
                cedar_policy::Validator::new(schema.clone()).validate(&set, cedar_policy::ValidationMode::Strict);
            if !validated.validation_passed() {
                let problems: Vec<String> = validated.validation_errors().map(ToString::to_string).collect();
                return Err(format!("{shown}: `{}` does not validate: {}", d.name, problems.join("; ")));
            }
            out.push((d.name, set, always));
        }
    }
    Ok(out)
}
