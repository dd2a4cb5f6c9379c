//! The `stub` backend kind: the software backend's cryptography behind an injected delay, to
//! measure how Keyward behaves with a slow external backend. Its root key lives only in memory,
//! so its keys do not survive a restart. Tests and benchmarks register it; `keyward` does not.

use std::sync::Arc;
use std::time::Duration;

use keyward_backend::{
    AadFn, Backend, BackendError, BuildContext, Built, Capabilities, ConfigError, ImportRequest, ImportWrapping,
    Imported, RawGcm, Registry, Sealed, VersionHandle,
};
use keyward_backend_software::{RootKey, SoftwareBackend};
use keyward_core::model::context::EncryptionContext;
use keyward_core::model::ids::KeyId;
use keyward_core::model::key::{KeySpec, KeyUsage};
use keyward_core::model::signing::{EncryptionAlgorithm, MacAlgorithm, Message, SigningAlgorithm};
use zeroize::Zeroizing;

/// The kind name.
pub const KIND: &str = "stub";

/// Software cryptography after a fixed delay per call.
#[derive(Debug)]
pub struct StubBackend {
    inner: SoftwareBackend,
    latency: Duration,
}

impl StubBackend {
    /// A stub that waits `latency` before each operation.
    pub fn new(latency: Duration) -> Result<Self, String> {
        let mut root = [0u8; 32];
        getrandom::fill(&mut root).map_err(|e| format!("no randomness: {e}"))?;
        Ok(Self { inner: SoftwareBackend::new(RootKey::from_bytes(root)), latency })
    }

    async fn delay(&self) {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
    }
}

impl Backend for StubBackend {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn capabilities(&self) -> &Capabilities {
        Backend::capabilities(&self.inner)
    }

    async fn create_key(
        &self,
        key_id: KeyId,
        version: u32,
        spec: KeySpec,
        usage: KeyUsage,
    ) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        self.delay().await;
        Backend::create_key(&self.inner, key_id, version, spec, usage).await
    }

    async fn encrypt(
        &self,
        key: VersionHandle<'_>,
        plaintext: &[u8],
        context: &EncryptionContext,
        aad: AadFn<'_>,
    ) -> Result<Sealed, BackendError> {
        self.delay().await;
        Backend::encrypt(&self.inner, key, plaintext, context, aad).await
    }

    async fn decrypt(
        &self,
        key: VersionHandle<'_>,
        algorithm: u8,
        params: &[u8],
        ciphertext: &[u8],
        context: &EncryptionContext,
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        self.delay().await;
        Backend::decrypt(&self.inner, key, algorithm, params, ciphertext, context, aad).await
    }

    async fn seal_raw(&self, key: VersionHandle<'_>, plaintext: &[u8], aad: &[u8]) -> Result<RawGcm, BackendError> {
        self.delay().await;
        Backend::seal_raw(&self.inner, key, plaintext, aad).await
    }

    async fn open_raw(
        &self,
        key: VersionHandle<'_>,
        sealed: &RawGcm,
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        self.delay().await;
        Backend::open_raw(&self.inner, key, sealed, aad).await
    }

    async fn public_key(&self, key: VersionHandle<'_>, spec: KeySpec) -> Result<Vec<u8>, BackendError> {
        self.delay().await;
        Backend::public_key(&self.inner, key, spec).await
    }

    async fn sign(
        &self,
        key: VersionHandle<'_>,
        spec: KeySpec,
        algorithm: SigningAlgorithm,
        message: Message<'_>,
    ) -> Result<Vec<u8>, BackendError> {
        self.delay().await;
        Backend::sign(&self.inner, key, spec, algorithm, message).await
    }

    async fn verify(
        &self,
        key: VersionHandle<'_>,
        spec: KeySpec,
        algorithm: SigningAlgorithm,
        message: Message<'_>,
        signature: &[u8],
    ) -> Result<bool, BackendError> {
        self.delay().await;
        Backend::verify(&self.inner, key, spec, algorithm, message, signature).await
    }

    async fn encrypt_asymmetric(
        &self,
        key: VersionHandle<'_>,
        spec: KeySpec,
        algorithm: EncryptionAlgorithm,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, BackendError> {
        self.delay().await;
        Backend::encrypt_asymmetric(&self.inner, key, spec, algorithm, plaintext).await
    }

    async fn decrypt_asymmetric(
        &self,
        key: VersionHandle<'_>,
        spec: KeySpec,
        algorithm: EncryptionAlgorithm,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        self.delay().await;
        Backend::decrypt_asymmetric(&self.inner, key, spec, algorithm, ciphertext).await
    }

    async fn generate_mac(
        &self,
        key: VersionHandle<'_>,
        algorithm: MacAlgorithm,
        message: &[u8],
    ) -> Result<Vec<u8>, BackendError> {
        self.delay().await;
        Backend::generate_mac(&self.inner, key, algorithm, message).await
    }

    async fn verify_mac(
        &self,
        key: VersionHandle<'_>,
        algorithm: MacAlgorithm,
        message: &[u8],
        mac: &[u8],
    ) -> Result<bool, BackendError> {
        self.delay().await;
        Backend::verify_mac(&self.inner, key, algorithm, message, mac).await
    }

    async fn prepare_import(
        &self,
        key_id: KeyId,
        wrapping_spec: KeySpec,
        binding: &[u8],
    ) -> Result<ImportWrapping, BackendError> {
        self.delay().await;
        Backend::prepare_import(&self.inner, key_id, wrapping_spec, binding).await
    }

    async fn import_key(&self, request: ImportRequest<'_>) -> Result<Imported, BackendError> {
        self.delay().await;
        Backend::import_key(&self.inner, request).await
    }

    async fn discard_import(&self, state: &[u8]) -> Result<(), BackendError> {
        Backend::discard_import(&self.inner, state).await
    }

    async fn generate_random(&self, len: usize) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        self.delay().await;
        Backend::generate_random(&self.inner, len).await
    }

    async fn destroy(&self, key: VersionHandle<'_>) -> Result<(), BackendError> {
        Backend::destroy(&self.inner, key).await
    }

    async fn health(&self) -> Result<(), BackendError> {
        Backend::health(&self.inner).await
    }

    fn test_vector(&self, case: keyward_core::ports::backend::GcmVector<'_>) -> Result<Vec<u8>, BackendError> {
        Backend::test_vector(&self.inner, case)
    }

    fn test_verify(
        &self,
        spec: KeySpec,
        algorithm: SigningAlgorithm,
        public_key: &[u8],
        message: Message<'_>,
        signature: &[u8],
    ) -> Result<bool, BackendError> {
        Backend::test_verify(&self.inner, spec, algorithm, public_key, message, signature)
    }

    fn test_mac(&self, algorithm: MacAlgorithm, key: &[u8], message: &[u8]) -> Result<Vec<u8>, BackendError> {
        Backend::test_mac(&self.inner, algorithm, key, message)
    }

    fn test_oaep_decrypt(
        &self,
        algorithm: EncryptionAlgorithm,
        key: keyward_backend::RsaTestKey<'_>,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        Backend::test_oaep_decrypt(&self.inner, algorithm, key, ciphertext)
    }
}

/// Registers the stub kind (settings: `latency_ms`, default 0).
pub fn register(registry: &mut Registry) {
    registry.register(KIND, build);
}

fn build(name: &str, settings: &toml::Table, _ctx: &BuildContext) -> Result<Built, ConfigError> {
    let invalid = ConfigError::invalid_for(name);
    let latency = match settings.get("latency_ms") {
        None => 0,
        Some(v) => v
            .as_integer()
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| invalid("`latency_ms` must be a non-negative integer".into()))?,
    };
    Ok(Built::plain(Arc::new(StubBackend::new(Duration::from_millis(latency)).map_err(invalid)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passes_the_conformance_suite_and_waits() {
        let b = StubBackend::new(Duration::ZERO).unwrap_or_else(|e| unreachable!("{e}"));
        let report = keyward_backend::conformance::run_all(&b).await.unwrap_or_else(|e| unreachable!("{e}"));
        eprintln!("conformance: {report}");
        // Wrapped material leaves the backend, so destroying it cannot make a copy stop working;
        // Keyward refuses destroyed versions itself.
        let skipped: Vec<&str> = report.skipped.iter().map(|(check, _)| *check).collect();
        assert_eq!(skipped, ["destroyed_version_refused"], "{report}");
        // With a latency, every call waits it out.
        let slow = StubBackend::new(Duration::from_millis(5)).unwrap_or_else(|e| unreachable!("{e}"));
        let start = tokio::time::Instant::now();
        Backend::generate_random(&slow, 8).await.unwrap_or_else(|e| unreachable!("{e}"));
        Backend::create_key(
            &slow,
            "00000000-0000-4000-8000-000000000001".parse::<KeyId>().unwrap_or_else(|e| unreachable!("{e}")),
            1,
            KeySpec::Aes256,
            KeyUsage::EncryptDecrypt,
        )
        .await
        .unwrap_or_else(|e| unreachable!("{e}"));
        assert!(start.elapsed() >= Duration::from_millis(10));
    }
}
