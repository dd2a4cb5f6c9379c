//! Backend kinds register a factory by name; configured instances are built through it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use keyward_core::ports::backend::{BackendError, DynBackend};
use zeroize::Zeroizing;

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

impl ConfigError {
    /// Makes `Invalid` errors for the instance `name` (for `map_err`).
    pub fn invalid_for(name: &str) -> impl Fn(String) -> ConfigError + Copy + '_ {
        move |message| ConfigError::Invalid { name: name.to_owned(), message }
    }
}

/// An instance's own settings from its `[[backends]]` table (`name` and `kind` are the
/// registry's); unknown fields are refused when `T` denies them.
pub fn instance_settings<T: serde::de::DeserializeOwned>(table: &toml::Table) -> Result<T, String> {
    let mut own = table.clone();
    own.remove("name");
    own.remove("kind");
    own.try_into().map_err(|e: toml::de::Error| e.message().to_owned())
}

/// What a factory may use besides the instance's own settings.
#[derive(Clone)]
pub struct BuildContext {
    /// The server's data directory (generated dev secrets live here).
    pub data_dir: PathBuf,
    /// Root-key holders offered by instances built earlier, by instance name.
    pub roots: BTreeMap<String, RootSource>,
}

impl std::fmt::Debug for BuildContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildContext")
            .field("data_dir", &self.data_dir)
            .field("roots", &self.roots.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl BuildContext {
    /// A context with no root-key holders.
    pub fn new(data_dir: PathBuf) -> Self {
        Self { data_dir, roots: BTreeMap::new() }
    }
}

/// A key held by one backend that seals another backend's key material (an HSM holding the
/// software backend's root of trust). The key never leaves its holder.
pub trait RootWrapper: Send + Sync + std::fmt::Debug {
    /// A stable id of the wrapping key, stored with what it sealed.
    fn id(&self) -> [u8; 8];
    /// Seals `plaintext`, bound to `aad`.
    fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, BackendError>;
    /// Opens what [`RootWrapper::seal`] produced under the same `aad`.
    fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, BackendError>;
}

/// Opens (creating on first use) the root key an instance holds for another; called only by
/// an instance configured to use it.
pub type RootSource = Arc<dyn Fn() -> Result<Arc<dyn RootWrapper>, BackendError> + Send + Sync>;

/// A built instance, and the root-key holder it offers to instances built after it.
pub struct Built {
    /// The instance.
    pub backend: Arc<dyn DynBackend>,
    /// Its root-key source, for kinds that can hold one.
    pub root: Option<RootSource>,
}

impl std::fmt::Debug for Built {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Built").field("backend", &self.backend).field("holds_roots", &self.root.is_some()).finish()
    }
}

impl Built {
    /// An instance that holds no root key for others.
    pub fn plain(backend: Arc<dyn DynBackend>) -> Self {
        Self { backend, root: None }
    }
}

/// Builds an instance of one kind: its name, its `[[backends]]` table, and what instances built
/// earlier offer.
pub type BuildFn = fn(&str, &toml::Table, &BuildContext) -> Result<Built, ConfigError>;

/// The backend kinds compiled into this binary.
#[derive(Default)]
pub struct Registry {
    factories: BTreeMap<&'static str, BuildFn>,
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

    /// Adds a kind, named as in `kind = "..."`.
    pub fn register(&mut self, kind: &'static str, build: BuildFn) {
        self.factories.insert(kind, build);
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
    ) -> Result<Built, ConfigError> {
        let factory = self.factories.get(kind).ok_or_else(|| ConfigError::UnknownKind {
            name: name.to_owned(),
            kind: kind.to_owned(),
            known: self.kinds().collect::<Vec<_>>().join(", "),
        })?;
        factory(name, settings, ctx)
    }
}
