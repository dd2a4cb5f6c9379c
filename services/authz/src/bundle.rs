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
];

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
    #[cfg_attr(not(test), allow(dead_code, reason = "read by the schema-conformance tests"))]
    pub(crate) schema: Schema,
    /// The schema's action entities (with their groups), computed once; each request adds its own.
    pub(crate) actions: Entities,
    /// Parsed entity type names.
    pub(crate) types: crate::entities::Types,
    /// Whether any policy mentions `source_ip` (building it costs a parse per request).
    pub(crate) reads_source_ip: bool,
    pub(crate) policies: PolicySet,
    version: String,
    sources: Vec<(String, String)>,
    origin: String,
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
        Self::from_sources(origin.clone(), sources)
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
        let reads_source_ip = sources.iter().any(|(name, text)| name != SCHEMA_FILE && text.contains("source_ip"));
        Ok(Self { schema, actions, types, reads_source_ip, policies, version, sources, origin })
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

    /// The number of policies.
    pub fn len(&self) -> usize {
        self.policies.policies().count()
    }

    /// Whether the set has no policies (and so denies everything).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
