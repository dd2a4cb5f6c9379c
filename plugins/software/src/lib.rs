//! The software backend: AES-256-GCM in process, key material wrapped under a root key.

mod backend;
mod config;
mod root_key;

pub use backend::{ALG_AES256_GCM_HKDF, SoftwareBackend};
pub use config::SoftwareConfig;
pub use root_key::RootKey;

use std::sync::Arc;

use keyward_backend::{BackendFactory, BuildContext, ConfigError, DynBackend, Registry};

/// The kind name in configuration.
pub const KIND: &str = "software";

/// Registers the software kind.
pub fn register(registry: &mut Registry) {
    registry.register(Box::new(Factory));
}

struct Factory;

impl BackendFactory for Factory {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn build(
        &self,
        name: &str,
        settings: &toml::Table,
        ctx: &BuildContext,
    ) -> Result<Arc<dyn DynBackend>, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid { name: name.to_owned(), message };
        let config = SoftwareConfig::from_table(settings).map_err(invalid)?;
        let root = config.load_root_key(&ctx.data_dir).map_err(invalid)?;
        tracing::info!(backend = name, root_key_id = %hex::encode(root.id()), "software backend ready");
        Ok(Arc::new(SoftwareBackend::new(root)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend() -> SoftwareBackend {
        SoftwareBackend::new(RootKey::from_bytes([7u8; 32]))
    }

    #[tokio::test]
    async fn passes_the_conformance_suite() {
        let b = backend();
        assert_eq!(keyward_backend::conformance::run_all(&b).await, Ok(()));
    }

    #[tokio::test]
    async fn material_from_another_root_key_is_refused() {
        use keyward_backend::{Backend, BackendError, VersionHandle};
        use keyward_core::model::{ids::KeyId, key::KeySpec};
        let id = KeyId(uuid::Uuid::from_u128(9));
        let m = Backend::create_key(&backend(), id, 1, KeySpec::Aes256).await.unwrap_or_default();
        let other = SoftwareBackend::new(RootKey::from_bytes([8u8; 32]));
        let aad = |_: u8, _: &[u8]| Vec::new();
        let r = Backend::encrypt(&other, VersionHandle { key_id: id, version: 1, material: &m }, b"x", &aad).await;
        assert!(matches!(r, Err(BackendError::InvalidMaterial(_))));
    }

    #[test]
    fn generated_root_key_file_is_private_and_reloads() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
        let path = dir.path().join("root.key");
        let generated = RootKey::generate(&path).map(|k| k.id());
        assert_eq!(RootKey::load(&path).map(|k| k.id()), generated);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).map(|m| m.permissions().mode() & 0o777).ok();
            assert_eq!(mode, Some(0o600));
        }
        assert!(RootKey::generate(&path).is_err(), "must not overwrite an existing root key");
    }
}
