//! Policy test cases (`DIR/tests/*.json`): a request described in Keyward's terms, decided
//! through the same request-building path as the server, and the expected answer.
//!
//! ```json
//! {
//!   "name": "namespace members use their keys",
//!   "principal": "Keyward::User::\"bob\"", "groups": ["payments"],
//!   "action": "Encrypt",
//!   "resource": {"key": {"namespace": "payments", "tags": {"env": "prod"}}},
//!   "context": {"encryption_context": {"tenant": "acme"}, "justification": "INC-7"},
//!   "entities": [],
//!   "expect": {"decision": "Allow", "determining_policies": ["namespace-members-use"]}
//! }
//! ```
//!
//! A file holds one case or an array of cases.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use keyward_core::model::context::EncryptionContext;
use keyward_core::model::ids::{KeyId, Namespace};
use keyward_core::model::key::{KeyRecord, KeySpec, KeyState, KeyUsage, Protection};
use keyward_core::model::principal::{Principal, PrincipalKind};
use keyward_core::operation::Action;
use keyward_core::ports::authorizer::{AlgorithmFacts, AuthzRequest, CreateFacts, Decision, RequestFacts, ResourceRef};
use serde::Deserialize;

use crate::CedarAuthorizer;

/// One test case.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// What the case shows.
    pub name: String,
    /// `Keyward::User::"id"` or `Keyward::Service::"id"`.
    pub principal: String,
    /// The principal's groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// An action name (`Encrypt`, `ReEncryptFrom`, `CreateKey`, ...).
    pub action: String,
    /// The resource.
    pub resource: CaseResource,
    /// The request context.
    #[serde(default)]
    pub context: CaseContext,
    /// Extra entities in Cedar's JSON entity format (for policies that use them).
    #[serde(default)]
    pub entities: Vec<serde_json::Value>,
    /// The expected answer.
    pub expect: Expectation,
}

/// A case's resource.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum CaseResource {
    /// A key with the given attributes.
    Key(CaseKey),
    /// A namespace by name.
    Namespace(String),
    /// The deployment (policy and audit administration).
    System(serde_json::Value),
}

/// A key's attributes; unspecified ones take plain defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseKey {
    /// The key id (default: a fixed UUID).
    #[serde(default)]
    pub id: Option<String>,
    /// Its namespace.
    pub namespace: String,
    /// Its owner's uid.
    #[serde(default)]
    pub owner: String,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// State (default `Enabled`).
    #[serde(default)]
    pub state: Option<String>,
    /// Backend instance (default `software`).
    #[serde(default)]
    pub backend: Option<String>,
    /// `software`, `hsm` or `external` (default `software`).
    #[serde(default)]
    pub protection: Option<String>,
    /// The key spec (default `AES_256`).
    #[serde(default)]
    pub key_spec: Option<String>,
    /// The key usage (default: the spec's).
    #[serde(default)]
    pub key_usage: Option<String>,
}

/// A case's request context.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseContext {
    /// The encryption context.
    #[serde(default)]
    pub encryption_context: BTreeMap<String, String>,
    /// The caller's address (default 127.0.0.1).
    #[serde(default)]
    pub source_ip: Option<String>,
    /// The request time, RFC 3339 (default: now).
    #[serde(default)]
    pub request_time: Option<DateTime<Utc>>,
    /// A justification.
    #[serde(default)]
    pub justification: Option<String>,
    /// Whether it is a dry run.
    #[serde(default)]
    pub dry_run: bool,
    /// CreateKey: the backend instance.
    #[serde(default)]
    pub backend: Option<String>,
    /// What a front door relays (XKS: `kms_via_service`, `aws_source_vpc`, ...).
    #[serde(default)]
    pub forwarded: Option<BTreeMap<String, String>>,
    /// CreateKey: whether an external key is linked.
    #[serde(default)]
    pub external: bool,
    /// RequireApproval: the operation asked about.
    #[serde(default)]
    pub operation: Option<String>,
    /// Sign and Verify: the signing algorithm.
    #[serde(default)]
    pub signing_algorithm: Option<String>,
    /// Sign and Verify: `RAW` or `DIGEST`.
    #[serde(default)]
    pub message_type: Option<String>,
    /// GenerateMac and VerifyMac: the MAC algorithm.
    #[serde(default)]
    pub mac_algorithm: Option<String>,
}

impl CaseContext {
    fn algorithm(&self) -> Result<AlgorithmFacts, String> {
        fn parse<T: std::str::FromStr<Err = keyward_core::Error>>(v: Option<&String>) -> Result<Option<T>, String> {
            v.map(|s| s.parse::<T>().map_err(|e| e.message().to_owned())).transpose()
        }
        Ok(AlgorithmFacts {
            signing_algorithm: parse(self.signing_algorithm.as_ref())?,
            message_type: parse(self.message_type.as_ref())?,
            mac_algorithm: parse(self.mac_algorithm.as_ref())?,
        })
    }
}

/// What a case expects.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// `Allow` or `Deny`.
    pub decision: String,
    /// The determining policy ids, in any order.
    #[serde(default)]
    pub determining_policies: Vec<String>,
}

/// Loads every case under `dir/tests`, with the file each came from.
pub fn load_cases(dir: &Path) -> Result<Vec<(String, Case)>, String> {
    let tests = dir.join("tests");
    let entries = std::fs::read_dir(&tests).map_err(|e| format!("cannot read `{}`: {e}", tests.display()))?;
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut cases = Vec::new();
    for path in files {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{name}: {e}"))?;
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{name}: {e}"))?;
        let list = match value {
            serde_json::Value::Array(items) => items,
            one => vec![one],
        };
        for item in list {
            let case: Case = serde_json::from_value(item).map_err(|e| format!("{name}: {e}"))?;
            cases.push((name.clone(), case));
        }
    }
    Ok(cases)
}

fn principal(uid: &str, groups: &[String]) -> Result<Principal, String> {
    let id = |prefix: &str| uid.strip_prefix(prefix).and_then(|r| r.strip_suffix('"')).map(str::to_owned);
    let (kind, id) = if let Some(id) = id("Keyward::User::\"") {
        (PrincipalKind::User, id)
    } else if let Some(id) = id("Keyward::Service::\"") {
        (PrincipalKind::Service, id)
    } else {
        return Err(format!("principal `{uid}` is not Keyward::User::\"..\" or Keyward::Service::\"..\""));
    };
    Ok(Principal { kind, id, groups: groups.to_vec() })
}

fn key_record(k: &CaseKey, now: DateTime<Utc>) -> Result<(KeyRecord, Protection), String> {
    let id = match &k.id {
        Some(s) => s.parse::<KeyId>().map_err(|e| e.message().to_owned())?,
        None => KeyId(uuid::Uuid::from_u128(0x6b65_7977_6172_6400)),
    };
    let protection = match k.protection.as_deref().unwrap_or("software") {
        "software" => Protection::Software,
        "hsm" => Protection::Hsm,
        "external" => Protection::External,
        other => return Err(format!("unknown protection `{other}`")),
    };
    let state = k.state.as_deref().unwrap_or("Enabled");
    let namespace = Namespace::parse(&k.namespace).map_err(|e| e.message().to_owned())?;
    let backend = k.backend.clone().unwrap_or_else(|| "software".into());
    let spec = match &k.key_spec {
        Some(s) => s.parse::<KeySpec>().map_err(|e| e.message().to_owned())?,
        None => KeySpec::Aes256,
    };
    let usage = match &k.key_usage {
        Some(s) => s.parse::<KeyUsage>().map_err(|e| e.message().to_owned())?,
        None => spec.usage(),
    };
    let record = KeyRecord {
        tags: k.tags.clone(),
        usage,
        state: KeyState::parse(state).ok_or_else(|| format!("unknown key state `{state}`"))?,
        ..KeyRecord::new(id, namespace, k.owner.clone(), backend, spec, now)
    };
    Ok((record, protection))
}

/// Decides one case with an authorizer.
pub fn decide(authz: &CedarAuthorizer, case: &Case) -> Result<Decision, String> {
    let now = case.context.request_time.unwrap_or_else(Utc::now);
    let principal = principal(&case.principal, &case.groups)?;
    let action: Action = match (case.action.as_str(), &case.context.operation) {
        ("RequireApproval", Some(op)) => {
            Action::RequireApproval(op.parse().map_err(|()| format!("unknown operation `{op}`"))?)
        }
        ("RequireApproval", None) => return Err("a RequireApproval case names its `context.operation`".into()),
        (name, _) => name.parse().map_err(|()| format!("unknown action `{name}`"))?,
    };
    let context =
        EncryptionContext::new(case.context.encryption_context.clone()).map_err(|e| e.message().to_owned())?;
    let source_ip = case.context.source_ip.as_deref().unwrap_or("127.0.0.1");
    let facts = RequestFacts {
        encryption_context: &context,
        source_ip: Some(source_ip.parse().map_err(|_| format!("`{source_ip}` is not an IP address"))?),
        justification: case.context.justification.as_deref(),
        request_time: now,
        dry_run: case.context.dry_run,
        create: case.context.backend.as_deref().map(|backend| CreateFacts { backend, external: case.context.external }),
        forwarded: case.context.forwarded.as_ref(),
        algorithm: case.context.algorithm()?,
    };
    let namespace;
    let key;
    let resource = match &case.resource {
        CaseResource::Key(k) => {
            key = key_record(k, now)?;
            ResourceRef::Key { key: &key.0, protection: key.1 }
        }
        CaseResource::Namespace(ns) => {
            namespace = Namespace::parse(ns).map_err(|e| e.message().to_owned())?;
            ResourceRef::Namespace(&namespace)
        }
        CaseResource::System(_) => ResourceRef::System,
    };
    let request = AuthzRequest { principal: &principal, action, resource, facts };
    let extra = if case.entities.is_empty() { None } else { Some(serde_json::Value::Array(case.entities.clone())) };
    Ok(authz.decide_with(&request, extra.as_ref()))
}

/// Whether a decision matches a case's expectation; the message says how it differs.
pub fn check(case: &Case, decision: &Decision) -> Result<(), String> {
    let got = if decision.allowed { "Allow" } else { "Deny" };
    let mut want_ids = case.expect.determining_policies.clone();
    want_ids.sort();
    let mut got_ids = decision.determining_policies.clone();
    got_ids.sort();
    if got == case.expect.decision && want_ids == got_ids {
        return Ok(());
    }
    let mut msg = format!("    expected: {} {:?}\n    got:      {} {:?}", case.expect.decision, want_ids, got, got_ids);
    if !decision.errors.is_empty() {
        msg.push_str(&format!("\n    errors:   {}", decision.errors.join("; ")));
    }
    Err(msg)
}
