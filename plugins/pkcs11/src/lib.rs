//! The pkcs11 backend: AES-256 keys generated and used inside a PKCS#11 token (an HSM;
//! SoftHSM2 in tests), and a token-held root key for the software backend.

mod backend;
mod config;
mod import;
mod root;
mod signing;
mod token;

pub use backend::{ALG_PKCS11_AES256_GCM, Pkcs11Backend, aes_key_template};
pub use config::Pkcs11Config;
pub use root::HsmRoot;

use std::sync::Arc;

use keyward_backend::{BuildContext, Built, ConfigError, Registry, RootSource};

/// The kind name in configuration.
pub const KIND: &str = "pkcs11";

/// The CKA_ID a key version's token object carries: key id (16 bytes) then version (4, big
/// endian). Operators and tests find a key's object by it.
pub fn object_id(key_id: keyward_core::model::ids::KeyId, version: u32) -> Vec<u8> {
    backend::object_id(key_id, version)
}

/// Registers the pkcs11 kind.
pub fn register(registry: &mut Registry) {
    registry.register(KIND, build);
}

fn build(name: &str, settings: &toml::Table, _ctx: &BuildContext) -> Result<Built, ConfigError> {
    let invalid = ConfigError::invalid_for(name);
    let config: Pkcs11Config = keyward_backend::instance_settings(settings).map_err(invalid)?;
    let backend = Pkcs11Backend::connect(&config).map_err(invalid)?;
    let label = config.root_key_label.clone().unwrap_or_else(|| "keyward-root".into());
    let token = backend.token().clone();
    let root: RootSource = Arc::new(move || Ok(Arc::new(HsmRoot::open(token.clone(), &label)?) as _));
    tracing::info!(backend = name, token = %config.token_label, module = %config.module.display(), "pkcs11 backend ready");
    Ok(Built { backend: Arc::new(backend), root: Some(root) })
}
