//! A validated policy set: the schema, the policies keyed by their `@id`, and a version.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use cedar_policy::{Entities, PolicyId, PolicySet, Schema, ValidationMode, Validator};
use sha2::{Digest, Sha256};

/// The schema file's name in a policy directory.
pub const SCHEMA_FILE: &str = "keyward.cedarschema";

/// The default policy set, built into the binary for running outside the repository.
pub const EMBEDDED: &[(&str, &str)] = &[
    (SCHEMA_FILE, include_str!("../../../policies/keyward.cedarschema")),
    ("admins.cedar", include_str!("../../../policies/admins.cedar")),
    ("namespaces.cedar", include_str!("../../../policies/namespaces.cedar")),
    ("owners.cedar", include_str!("../../../policies/owners.cedar")),
    ("protection.cedar", include_str!("../../../policies/protection.cedar")),
    ("signing.cedar", include_str!("../../../policies/signing.cedar")),
    ("xks.cedar", include_str!("../../../policies/xks.cedar")),
];

/// The short commit of the checkout holding `dir` (with `-dirty` when it has changes there),
/// or `None` when it is not a git checkout or git is absent.
fn git_commit(dir: &Path) -> Option<String> {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).filter(|c| !c.is_empty())?;
    let dirty = git(&["status", "--porcelain", "--", "."]).is_some_and(|s| !s.is_empty());
    Some(if dirty { format!("{commit}-dirty") } else { commit })
}

/// Why a policy set was refused. The message lists every problem found.
#[derive(Debug, thiserror::Error)]
#[error("invalid policy set ({origin}):\n{}", problems.join("\n"))]
pub struct PolicyError {
    /// Where the set came from.
    pub origin: String,
    /// One line per problem.
    pub problems: Vec<String>,
}

/// A schema and a policy set that validates against it in strict mode.
#[derive(Debug)]
pub struct PolicyBundle {
    pub(crate) schema: Schema,
    /// The schema's action entities (with their groups), computed once; each request adds its own.
    pub(crate) actions: Entities,
    /// Parsed entity type names.
    pub(crate) types: crate::entities::Types,
    /// Which costly context attributes the policies read.
    pub(crate) reads: Reads,
    pub(crate) policies: PolicySet,
    version: String,
    sources: Vec<(String, String)>,
    origin: String,
    source: PolicySource,
}

/// Where a policy set is loaded from (and reloaded from).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicySource {
    /// A directory of `*.cedar` files and the schema.
    Dir(PathBuf),
    /// The default set built into the binary.
    Embedded,
}

impl PolicySource {
    /// Loads the set.
    pub fn load(&self) -> Result<PolicyBundle, PolicyError> {
        match self {
            Self::Dir(dir) => PolicyBundle::load_dir(dir),
            Self::Embedded => PolicyBundle::embedded(),
        }
    }
}

/// Context attributes that cost a parse per request, built only when some policy reads them.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Reads {
    pub source_ip: bool,
    pub request_time: bool,
    pub context_keys: bool,
}

impl Reads {
    pub(crate) fn of<'a>(texts: impl IntoIterator<Item = &'a str>) -> Self {
        let mut r = Self::default();
        for t in texts {
            r.source_ip |= t.contains("source_ip");
            r.request_time |= t.contains("request_time");
            r.context_keys |= t.contains("encryption_context_keys");
        }
        r
    }

    pub(crate) fn union(self, other: Self) -> Self {
        Self {
            source_ip: self.source_ip || other.source_ip,
            request_time: self.request_time || other.request_time,
            context_keys: self.context_keys || other.context_keys,
        }
    }
}

impl PolicyBundle {
    /// Loads `*.cedar` files and `keyward.cedarschema` from a directory.
    pub fn load_dir(dir: &Path) -> Result<Self, PolicyError> {
        let origin = dir.display().to_string();
        let fail = |problem: String| PolicyError { origin: origin.clone(), problems: vec![problem] };
        let entries = std::fs::read_dir(dir).map_err(|e| fail(format!("cannot read directory: {e}")))?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && (p.extension().is_some_and(|x| x == "cedar") || p.ends_with(SCHEMA_FILE)))
            .collect();
        paths.sort();
        let mut sources = Vec::with_capacity(paths.len());
        for path in paths {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let text = std::fs::read_to_string(&path).map_err(|e| fail(format!("{name}: cannot read: {e}")))?;
            sources.push((name, text));
        }
        let mut bundle = Self::from_sources(origin.clone(), sources)?;
        bundle.source = PolicySource::Dir(dir.to_path_buf());
        if let Some(commit) = git_commit(dir) {
            bundle.version = format!("{}+git.{commit}", bundle.version);
        }
        Ok(bundle)
    }

    /// The default set built into the binary.
    pub fn embedded() -> Result<Self, PolicyError> {
        let sources = EMBEDDED.iter().map(|(n, t)| ((*n).to_owned(), (*t).to_owned())).collect();
        Self::from_sources("built-in default policies".into(), sources)
    }

    /// Parses and validates named sources: exactly one schema, and policies each with a
    /// unique `@id`.
    pub fn from_sources(origin: String, mut sources: Vec<(String, String)>) -> Result<Self, PolicyError> {
        sources.sort();
        let mut problems = Vec::new();
        let mut schema = None;
        let mut policies = PolicySet::new();
        for (name, text) in &sources {
            if name == SCHEMA_FILE {
                match Schema::from_cedarschema_str(text) {
                    Ok((s, _warnings)) => schema = Some(s),
                    Err(e) => problems.push(format!("{name}: {e}")),
                }
                continue;
            }
            let set = match PolicySet::from_str(text) {
                Ok(set) => set,
                Err(e) => {
                    problems.push(format!("{name}: {e}"));
                    continue;
                }
            };
            if set.templates().next().is_some() {
                problems.push(format!("{name}: templates are not allowed in policy files"));
            }
            for policy in set.policies() {
                let Some(id) = policy.annotation("id") else {
                    problems.push(format!("{name}: a policy has no @id(\"...\") annotation:\n{policy}"));
                    continue;
                };
                if let Err(e) = policies.add(policy.new_id(PolicyId::new(id))) {
                    problems.push(format!("{name}: policy `{id}`: {e}"));
                }
            }
        }
        let Some(schema) = schema else {
            problems.push(format!("no valid {SCHEMA_FILE}"));
            return Err(PolicyError { origin, problems });
        };
        let result = Validator::new(schema.clone()).validate(&policies, ValidationMode::Strict);
        problems.extend(result.validation_errors().map(|e| format!("{e}")));
        if !problems.is_empty() {
            return Err(PolicyError { origin, problems });
        }
        let mut hash = Sha256::new();
        for (name, text) in &sources {
            hash.update((name.len() as u64).to_be_bytes());
            hash.update(name.as_bytes());
            hash.update((text.len() as u64).to_be_bytes());
            hash.update(text.as_bytes());
        }
        let version = format!("sha256:{}", &hex::encode(hash.finalize())[..16]);
        let actions = schema
            .action_entities()
            .map_err(|e| PolicyError { origin: origin.clone(), problems: vec![format!("action entities: {e}")] })?;
        let types = crate::entities::Types::new()
            .map_err(|e| PolicyError { origin: origin.clone(), problems: vec![format!("entity types: {e}")] })?;
        let reads = Reads::of(sources.iter().filter(|(n, _)| n != SCHEMA_FILE).map(|(_, t)| t.as_str()));
        Ok(Self { schema, actions, types, reads, policies, version, sources, origin, source: PolicySource::Embedded })
    }

    /// The content hash that identifies this set.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The files the set was built from, by name.
    pub fn sources(&self) -> &[(String, String)] {
        &self.sources
    }

    /// Where the set came from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Where to reload it from.
    pub fn source(&self) -> &PolicySource {
        &self.source
    }

    /// The schema's text.
    pub fn schema_text(&self) -> &str {
        self.sources.iter().find(|(n, _)| n == SCHEMA_FILE).map_or("", |(_, t)| t.as_str())
    }

    /// The policies with their ids, in id order.
    pub fn policy_texts(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> =
            self.policies.policies().map(|p| (p.id().to_string(), p.to_string())).collect();
        out.sort();
        out
    }

    /// The parsed schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The policy set.
    pub fn policy_set(&self) -> &PolicySet {
        &self.policies
    }

    /// Validates extra policies (grants) against the schema, strictly.
    pub(crate) fn validate(&self, set: &PolicySet) -> Result<(), String> {
        let result = Validator::new(self.schema.clone()).validate(set, ValidationMode::Strict);
        let problems: Vec<String> = result.validation_errors().map(|e| format!("{e}")).collect();
        if problems.is_empty() { Ok(()) } else { Err(problems.join("; ")) }
    }

    /// The number of policies.
    pub fn len(&self) -> usize {
        self.policies.policies().count()
    }

    /// Whether the set has no policies (and so denies everything).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
