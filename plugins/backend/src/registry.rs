//! Backend kinds register a factory by name; configured instances are built through it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use keyward_core::ports::backend::DynBackend;

/// Why an instance could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No factory for this kind.
    #[error("backend `{name}`: unknown kind `{kind}`; known kinds: {known}")]
    UnknownKind {
        /// The instance name.
        name: String,
        /// The kind asked for.
        kind: String,
        /// The kinds compiled in.
        known: String,
    },
    /// The instance's settings are wrong.
    #[error("backend `{name}`: {message}")]
    Invalid {
        /// The instance name.
        name: String,
        /// What is wrong.
        message: String,
    },
}

/// What a factory may use besides the instance's own settings.
#[derive(Debug, Clone)]
pub struct BuildContext {
    /// The server's data directory (generated dev secrets live here).
    pub data_dir: PathBuf,
}

/// Builds instances of one backend kind.
pub trait BackendFactory: Send + Sync {
    /// The kind name used in `kind = "..."`.
    fn kind(&self) -> &'static str;

    /// Builds an instance named `name` from its configuration table.
    fn build(&self, name: &str, settings: &toml::Table, ctx: &BuildContext)
    -> Result<Arc<dyn DynBackend>, ConfigError>;
}

/// The backend kinds compiled into this binary.
#[derive(Default)]
pub struct Registry {
    factories: BTreeMap<&'static str, Box<dyn BackendFactory>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("kinds", &self.factories.keys().collect::<Vec<_>>()).finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a kind.
    pub fn register(&mut self, factory: Box<dyn BackendFactory>) {
        self.factories.insert(factory.kind(), factory);
    }

    /// The registered kind names.
    pub fn kinds(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.factories.keys().copied()
    }

    /// Builds an instance of `kind`; an unknown kind is an error listing the known ones.
    pub fn build(
        &self,
        name: &str,
        kind: &str,
        settings: &toml::Table,
        ctx: &BuildContext,
    ) -> Result<Arc<dyn DynBackend>, ConfigError> {
        let factory = self.factories.get(kind).ok_or_else(|| ConfigError::UnknownKind {
            name: name.to_owned(),
            kind: kind.to_owned(),
            known: self.kinds().collect::<Vec<_>>().join(", "),
        })?;
        factory.build(name, settings, ctx)
    }
}
