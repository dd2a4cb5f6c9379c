//! The software backend's settings.

use std::path::{Path, PathBuf};

use crate::root_key::RootKey;

/// Where the root key comes from. With neither setting, the dev default: a key generated
/// into `<data_dir>/root.key` (0600) on first start, with a warning.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SoftwareConfig {
    /// A file holding 64 hex characters.
    pub root_key_file: Option<PathBuf>,
    /// An environment variable holding 64 hex characters.
    pub root_key_env: Option<String>,
    /// A backend instance (pkcs11) whose token holds the root key instead.
    pub root_key_backend: Option<String>,
}

impl SoftwareConfig {
    /// Loads (or, for the dev default, creates) the root key.
    pub fn load_root_key(&self, data_dir: &Path) -> Result<RootKey, String> {
        match (&self.root_key_file, &self.root_key_env) {
            _ if self.root_key_backend.is_some() && (self.root_key_file.is_some() || self.root_key_env.is_some()) => {
                Err("set one of `root_key_file`, `root_key_env` and `root_key_backend`".into())
            }
            (Some(_), Some(_)) => Err("set one of `root_key_file` and `root_key_env`, not both".into()),
            (Some(path), None) => RootKey::load(path),
            (None, Some(var)) => {
                let value = zeroize::Zeroizing::new(
                    std::env::var(var).map_err(|_| format!("environment variable `{var}` is not set"))?,
                );
                RootKey::parse_hex(&value).map_err(|e| format!("`{var}`: {e}"))
            }
            (None, None) => {
                let path = data_dir.join("root.key");
                if path.exists() {
                    RootKey::load(&path)
                } else {
                    tracing::warn!(
                        path = %path.display(),
                        "generated a software root key in the data directory: fine for development, \
                         not for production (set `root_key_file` or `root_key_env`)"
                    );
                    RootKey::generate(&path)
                }
            }
        }
    }
}
