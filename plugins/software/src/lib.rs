//! The software backend: AES-256-GCM, signatures and MACs in process, key material wrapped
//! under a root key.

mod backend;
mod config;
mod import;
mod root_key;
mod signing;

pub use backend::{ALG_AES256_GCM_HKDF, SoftwareBackend};
pub use config::SoftwareConfig;
pub use root_key::RootKey;
pub use signing::InProcessKeyPairs;

use std::sync::Arc;

use keyward_backend::{BuildContext, Built, ConfigError, Registry};

/// The kind name in configuration.
pub const KIND: &str = "software";

/// Registers the software kind.
pub fn register(registry: &mut Registry) {
    registry.register(KIND, build);
}

fn build(name: &str, settings: &toml::Table, ctx: &BuildContext) -> Result<Built, ConfigError> {
    let invalid = ConfigError::invalid_for(name);
    let config: SoftwareConfig = keyward_backend::instance_settings(settings).map_err(invalid)?;
    let backend = match &config.root_key_backend {
        Some(holder) => {
            let open = ctx.roots.get(holder).ok_or_else(|| {
                invalid(format!("`root_key_backend = \"{holder}\"` must name a configured pkcs11 backend that started"))
            })?;
            let root = open().map_err(|e| invalid(format!("root key in backend `{holder}`: {e}")))?;
            SoftwareBackend::with_held_root(root)
        }
        None => SoftwareBackend::new(config.load_root_key(&ctx.data_dir).map_err(invalid)?),
    };
    let held = config.root_key_backend.as_deref().unwrap_or("local");
    tracing::info!(backend = name, root_key_id = %hex::encode(backend.root_id()), root_key = held, "software backend ready");
    Ok(Built::plain(Arc::new(backend)))
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
        let report = keyward_backend::conformance::run_all(&b).await.unwrap_or_else(|e| unreachable!("{e}"));
        eprintln!("conformance: {report}");
        // Wrapped material leaves the backend, so destroying it cannot make a copy stop working;
        // Keyward refuses destroyed versions itself.
        let skipped: Vec<&str> = report.skipped.iter().map(|(check, _)| *check).collect();
        assert_eq!(skipped, ["destroyed_version_refused"], "{report}");
    }

    #[tokio::test]
    async fn material_from_another_root_key_is_refused() {
        use keyward_backend::{Backend, BackendError, VersionHandle};
        use keyward_core::model::{ids::KeyId, key::KeySpec, key::KeyUsage};
        let id = KeyId(uuid::Uuid::from_u128(9));
        let own = backend();
        let m = Backend::create_key(&own, id, 1, KeySpec::Aes256, KeyUsage::EncryptDecrypt)
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        let aad = |_: u8, _: &[u8]| Vec::new();
        let handle = VersionHandle { key_id: id, version: 1, material: &m };
        assert!(Backend::encrypt(&own, handle, b"x", &Default::default(), &aad).await.is_ok(), "its own root opens it");
        let other = SoftwareBackend::new(RootKey::from_bytes([8u8; 32]));
        let r = Backend::encrypt(
            &other,
            VersionHandle { key_id: id, version: 1, material: &m },
            b"x",
            &Default::default(),
            &aad,
        )
        .await;
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
