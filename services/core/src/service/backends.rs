//! Backend instances by name, each behind a guard: every call has a timeout, and a backend that
//! times out or reports itself unavailable is marked down, so calls for its keys fail at once
//! (503, never a slow request) until a health probe sees it answer again. Other instances are
//! untouched.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::model::context::EncryptionContext;
use crate::model::ids::KeyId;
use crate::model::key::{KeySpec, KeyUsage};
use crate::model::signing::{EncryptionAlgorithm, MacAlgorithm, Message, SigningAlgorithm};
use crate::ports::backend::{
    AadFn, BackendError, BoxFuture, Capabilities, DataKey, DynBackend, ImportRequest, ImportWrapping, Imported, RawGcm,
    Sealed, VersionHandle,
};

/// How long one backend call may take by default.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// How long generating an RSA key may take (primes are searched at random).
const KEYGEN_TIMEOUT: Duration = Duration::from_secs(30);

/// One instance behind its guard. It is itself a [`DynBackend`], so the domain calls it as any
/// backend.
#[derive(Debug)]
pub struct Guarded {
    name: String,
    inner: Arc<dyn DynBackend>,
    timeout: Duration,
    up: AtomicBool,
}

impl Guarded {
    /// Guards `inner`; calls slower than `timeout` fail and mark it down.
    pub fn new(name: impl Into<String>, inner: Arc<dyn DynBackend>, timeout: Duration) -> Self {
        Self { name: name.into(), inner, timeout, up: AtomicBool::new(true) }
    }

    /// Whether the last call or probe found it serving.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// The wrapped instance (for tests and kind-specific wiring).
    pub fn inner(&self) -> &Arc<dyn DynBackend> {
        &self.inner
    }

    /// Asks the backend itself (even while marked down) and records the answer.
    pub async fn probe(&self) -> std::result::Result<(), BackendError> {
        metrics::counter!("keyward_backend_probes_total", "backend" => self.name.clone()).increment(1);
        let answer = self.within(self.inner.health()).await;
        let was_up = self.up.swap(answer.is_ok(), Ordering::AcqRel);
        match (&answer, was_up) {
            (Ok(()), false) => tracing::info!(backend = %self.name, "backend answers again; its keys are available"),
            (Err(e), true) => {
                tracing::error!(backend = %self.name, error = %e, "backend down; its keys are unavailable")
            }
            _ => {}
        }
        answer
    }

    /// `work`, or `Unavailable` once the deadline passes.
    async fn within<T>(
        &self,
        work: impl Future<Output = std::result::Result<T, BackendError>>,
    ) -> std::result::Result<T, BackendError> {
        self.within_for(self.timeout, work).await
    }

    async fn within_for<T>(
        &self,
        deadline: Duration,
        work: impl Future<Output = std::result::Result<T, BackendError>>,
    ) -> std::result::Result<T, BackendError> {
        tokio::time::timeout(deadline, work)
            .await
            .unwrap_or_else(|_| Err(BackendError::Unavailable(format!("no answer within {deadline:?}"))))
    }

    async fn call<T>(
        &self,
        work: impl Future<Output = std::result::Result<T, BackendError>>,
    ) -> std::result::Result<T, BackendError> {
        self.call_for(self.timeout, work).await
    }

    async fn call_for<T>(
        &self,
        deadline: Duration,
        work: impl Future<Output = std::result::Result<T, BackendError>>,
    ) -> std::result::Result<T, BackendError> {
        if !self.is_up() {
            return Err(BackendError::Unavailable(format!("backend `{}` is down", self.name)));
        }
        let answer = self.within_for(deadline, work).await;
        if let Err(BackendError::Unavailable(reason)) = &answer
            && self.up.swap(false, Ordering::AcqRel)
        {
            tracing::error!(backend = %self.name, %reason, "backend down; its keys are unavailable until it answers");
        }
        answer
    }
}

impl DynBackend for Guarded {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    fn capabilities(&self) -> &Capabilities {
        self.inner.capabilities()
    }

    fn create_key(
        &self,
        key_id: KeyId,
        version: u32,
        spec: KeySpec,
        usage: KeyUsage,
    ) -> BoxFuture<'_, std::result::Result<Zeroizing<Vec<u8>>, BackendError>> {
        // An RSA-4096 key takes seconds to generate; the call deadline is for serving requests.
        let deadline = if spec.is_rsa() { self.timeout.max(KEYGEN_TIMEOUT) } else { self.timeout };
        Box::pin(self.call_for(deadline, self.inner.create_key(key_id, version, spec, usage)))
    }

    fn link_key<'a>(
        &'a self,
        key_id: KeyId,
        external_key_id: &'a str,
    ) -> BoxFuture<'a, std::result::Result<Zeroizing<Vec<u8>>, BackendError>> {
        Box::pin(self.call(self.inner.link_key(key_id, external_key_id)))
    }

    fn can_rotate(&self, current: VersionHandle<'_>) -> std::result::Result<(), BackendError> {
        self.inner.can_rotate(current)
    }

    fn encrypt<'a>(
        &'a self,
        key: VersionHandle<'a>,
        plaintext: &'a [u8],
        context: &'a EncryptionContext,
        aad: AadFn<'a>,
    ) -> BoxFuture<'a, std::result::Result<Sealed, BackendError>> {
        Box::pin(self.call(self.inner.encrypt(key, plaintext, context, aad)))
    }

    fn decrypt<'a>(
        &'a self,
        key: VersionHandle<'a>,
        algorithm: u8,
        params: &'a [u8],
        ciphertext: &'a [u8],
        context: &'a EncryptionContext,
        aad: &'a [u8],
    ) -> BoxFuture<'a, std::result::Result<Zeroizing<Vec<u8>>, BackendError>> {
        Box::pin(self.call(self.inner.decrypt(key, algorithm, params, ciphertext, context, aad)))
    }

    fn generate_data_key<'a>(
        &'a self,
        key: VersionHandle<'a>,
        len: usize,
        context: &'a EncryptionContext,
        aad: AadFn<'a>,
        with_plaintext: bool,
    ) -> BoxFuture<'a, std::result::Result<DataKey, BackendError>> {
        Box::pin(self.call(self.inner.generate_data_key(key, len, context, aad, with_plaintext)))
    }

    fn seal_raw<'a>(
        &'a self,
        key: VersionHandle<'a>,
        plaintext: &'a [u8],
        aad: &'a [u8],
    ) -> BoxFuture<'a, std::result::Result<RawGcm, BackendError>> {
        Box::pin(self.call(self.inner.seal_raw(key, plaintext, aad)))
    }

    fn open_raw<'a>(
        &'a self,
        key: VersionHandle<'a>,
        sealed: &'a RawGcm,
        aad: &'a [u8],
    ) -> BoxFuture<'a, std::result::Result<Zeroizing<Vec<u8>>, BackendError>> {
        Box::pin(self.call(self.inner.open_raw(key, sealed, aad)))
    }

    fn public_key<'a>(
        &'a self,
        key: VersionHandle<'a>,
        spec: KeySpec,
    ) -> BoxFuture<'a, std::result::Result<Vec<u8>, BackendError>> {
        Box::pin(self.call(self.inner.public_key(key, spec)))
    }

    fn sign<'a>(
        &'a self,
        key: VersionHandle<'a>,
        spec: KeySpec,
        algorithm: SigningAlgorithm,
        message: Message<'a>,
    ) -> BoxFuture<'a, std::result::Result<Vec<u8>, BackendError>> {
        Box::pin(self.call(self.inner.sign(key, spec, algorithm, message)))
    }

    fn verify<'a>(
        &'a self,
        key: VersionHandle<'a>,
        spec: KeySpec,
        algorithm: SigningAlgorithm,
        message: Message<'a>,
        signature: &'a [u8],
    ) -> BoxFuture<'a, std::result::Result<bool, BackendError>> {
        Box::pin(self.call(self.inner.verify(key, spec, algorithm, message, signature)))
    }

    fn encrypt_asymmetric<'a>(
        &'a self,
        key: VersionHandle<'a>,
        spec: KeySpec,
        algorithm: EncryptionAlgorithm,
        plaintext: &'a [u8],
    ) -> BoxFuture<'a, std::result::Result<Vec<u8>, BackendError>> {
        Box::pin(self.call(self.inner.encrypt_asymmetric(key, spec, algorithm, plaintext)))
    }

    fn decrypt_asymmetric<'a>(
        &'a self,
        key: VersionHandle<'a>,
        spec: KeySpec,
        algorithm: EncryptionAlgorithm,
        ciphertext: &'a [u8],
    ) -> BoxFuture<'a, std::result::Result<Zeroizing<Vec<u8>>, BackendError>> {
        Box::pin(self.call(self.inner.decrypt_asymmetric(key, spec, algorithm, ciphertext)))
    }

    fn generate_mac<'a>(
        &'a self,
        key: VersionHandle<'a>,
        algorithm: MacAlgorithm,
        message: &'a [u8],
    ) -> BoxFuture<'a, std::result::Result<Vec<u8>, BackendError>> {
        Box::pin(self.call(self.inner.generate_mac(key, algorithm, message)))
    }

    fn verify_mac<'a>(
        &'a self,
        key: VersionHandle<'a>,
        algorithm: MacAlgorithm,
        message: &'a [u8],
        mac: &'a [u8],
    ) -> BoxFuture<'a, std::result::Result<bool, BackendError>> {
        Box::pin(self.call(self.inner.verify_mac(key, algorithm, message, mac)))
    }

    fn prepare_import<'a>(
        &'a self,
        key_id: KeyId,
        wrapping_spec: KeySpec,
        binding: &'a [u8],
    ) -> BoxFuture<'a, std::result::Result<ImportWrapping, BackendError>> {
        // A wrapping key is an RSA key generated for the call.
        let deadline = self.timeout.max(KEYGEN_TIMEOUT);
        Box::pin(self.call_for(deadline, self.inner.prepare_import(key_id, wrapping_spec, binding)))
    }

    fn import_key<'a>(
        &'a self,
        request: ImportRequest<'a>,
    ) -> BoxFuture<'a, std::result::Result<Imported, BackendError>> {
        Box::pin(self.call(self.inner.import_key(request)))
    }

    fn discard_import<'a>(&'a self, state: &'a [u8]) -> BoxFuture<'a, std::result::Result<(), BackendError>> {
        Box::pin(self.call(self.inner.discard_import(state)))
    }

    fn generate_random(&self, len: usize) -> BoxFuture<'_, std::result::Result<Zeroizing<Vec<u8>>, BackendError>> {
        Box::pin(self.call(self.inner.generate_random(len)))
    }

    fn destroy<'a>(&'a self, key: VersionHandle<'a>) -> BoxFuture<'a, std::result::Result<(), BackendError>> {
        Box::pin(self.call(self.inner.destroy(key)))
    }

    fn health(&self) -> BoxFuture<'_, std::result::Result<(), BackendError>> {
        Box::pin(self.probe())
    }

    fn test_vector(&self, case: crate::ports::backend::GcmVector<'_>) -> std::result::Result<Vec<u8>, BackendError> {
        self.inner.test_vector(case)
    }

    fn test_verify(
        &self,
        spec: KeySpec,
        algorithm: SigningAlgorithm,
        public_key: &[u8],
        message: Message<'_>,
        signature: &[u8],
    ) -> std::result::Result<bool, BackendError> {
        self.inner.test_verify(spec, algorithm, public_key, message, signature)
    }

    fn test_mac(
        &self,
        algorithm: MacAlgorithm,
        key: &[u8],
        message: &[u8],
    ) -> std::result::Result<Vec<u8>, BackendError> {
        self.inner.test_mac(algorithm, key, message)
    }

    fn test_oaep_decrypt(
        &self,
        algorithm: EncryptionAlgorithm,
        key: crate::ports::backend::RsaTestKey<'_>,
        ciphertext: &[u8],
    ) -> std::result::Result<Zeroizing<Vec<u8>>, BackendError> {
        self.inner.test_oaep_decrypt(algorithm, key, ciphertext)
    }
}

/// Backend instances by name, with the default for new keys.
#[derive(Debug, Clone)]
pub struct Backends {
    instances: BTreeMap<String, Arc<Guarded>>,
    default: String,
    /// Namespaces whose new keys default to another instance.
    namespace_defaults: BTreeMap<String, String>,
}

impl Backends {
    /// A set of instances, each guarded with `timeout`; `default` must name one of them.
    pub fn new(instances: BTreeMap<String, Arc<dyn DynBackend>>, default: String) -> Result<Self> {
        Self::with_timeout(instances, default, DEFAULT_CALL_TIMEOUT)
    }

    /// As [`Backends::new`] with a chosen call timeout.
    pub fn with_timeout(
        instances: BTreeMap<String, Arc<dyn DynBackend>>,
        default: String,
        timeout: Duration,
    ) -> Result<Self> {
        if !instances.contains_key(&default) {
            return Err(Error::invalid(format!(
                "default backend `{default}` is not configured (configured: {})",
                instances.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
        let instances =
            instances.into_iter().map(|(name, b)| (name.clone(), Arc::new(Guarded::new(name, b, timeout)))).collect();
        Ok(Self { instances, default, namespace_defaults: BTreeMap::new() })
    }

    /// Sets per-namespace defaults for new keys; each must name a configured instance.
    pub fn with_namespace_defaults(mut self, defaults: BTreeMap<String, String>) -> Result<Self> {
        for (namespace, name) in &defaults {
            if !self.instances.contains_key(name) {
                return Err(Error::invalid(format!(
                    "namespace `{namespace}`: default backend `{name}` is not configured"
                )));
            }
        }
        self.namespace_defaults = defaults;
        Ok(self)
    }

    /// The instance new keys of `namespace` use when CreateKey names none.
    pub fn default_for(&self, namespace: &str) -> &str {
        self.namespace_defaults.get(namespace).unwrap_or(&self.default)
    }

    /// The instance names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.instances.keys().map(String::as_str)
    }

    /// The default instance's name.
    pub fn default_name(&self) -> &str {
        &self.default
    }

    /// An instance by name.
    pub fn get(&self, name: &str) -> Option<&Arc<Guarded>> {
        self.instances.get(name)
    }

    /// Probes every instance, up or down (a backend that fails while idle shows in readiness
    /// without waiting for a request to fail on it). Returns how many are down.
    pub async fn probe_all(&self) -> usize {
        let mut down = 0;
        for b in self.instances.values() {
            if b.probe().await.is_err() {
                down += 1;
            }
        }
        down
    }

    /// Probes every instance marked down; returns how many are still down.
    pub async fn probe_down(&self) -> usize {
        let mut down = 0;
        for b in self.instances.values().filter(|b| !b.is_up()) {
            if b.probe().await.is_err() {
                down += 1;
            }
        }
        down
    }

    pub(crate) fn lookup(&self, name: &str) -> Result<&Arc<Guarded>> {
        self.instances.get(name).ok_or_else(|| {
            Error::invalid(format!(
                "unknown backend `{}`; configured: {}",
                crate::model::ids::truncate(name),
                self.instances.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU8;

    use super::*;
    use crate::ports::backend::Backend;

    /// A backend whose behaviour the test switches: 0 answers, 1 hangs, 2 says it is gone.
    #[derive(Debug, Default)]
    struct Switchable {
        mode: AtomicU8,
    }

    impl Switchable {
        async fn behave(&self) -> std::result::Result<(), BackendError> {
            match self.mode.load(Ordering::Acquire) {
                0 => Ok(()),
                1 => {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    Ok(())
                }
                _ => Err(BackendError::Unavailable("gone".into())),
            }
        }
    }

    impl Backend for Switchable {
        fn kind(&self) -> &'static str {
            "switchable"
        }
        fn capabilities(&self) -> &Capabilities {
            static CAPS: std::sync::OnceLock<Capabilities> = std::sync::OnceLock::new();
            CAPS.get_or_init(|| Capabilities {
                specs: vec![KeySpec::Aes256],
                max_plaintext: 1,
                protection: crate::model::key::Protection::Hsm,
                material_leaves: false,
                fixed_nonce_testing: false,
                destroy_is_immediate: true,
                raw_gcm: false,
                signs_digests: true,
                rsa_oaep: Vec::new(),
                import: Vec::new(),
                import_specs: Vec::new(),
            })
        }
        async fn create_key(
            &self,
            _: KeyId,
            _: u32,
            _: KeySpec,
            _: KeyUsage,
        ) -> std::result::Result<Zeroizing<Vec<u8>>, BackendError> {
            self.behave().await.map(|()| Zeroizing::new(vec![1]))
        }
        async fn encrypt(
            &self,
            _: VersionHandle<'_>,
            _: &[u8],
            _: &EncryptionContext,
            _: AadFn<'_>,
        ) -> std::result::Result<Sealed, BackendError> {
            self.behave().await.map(|()| Sealed { algorithm: 0, params: vec![], ciphertext: vec![] })
        }
        async fn decrypt(
            &self,
            _: VersionHandle<'_>,
            _: u8,
            _: &[u8],
            _: &[u8],
            _: &EncryptionContext,
            _: &[u8],
        ) -> std::result::Result<Zeroizing<Vec<u8>>, BackendError> {
            self.behave().await.map(|()| Zeroizing::new(vec![]))
        }
        async fn generate_random(&self, len: usize) -> std::result::Result<Zeroizing<Vec<u8>>, BackendError> {
            self.behave().await.map(|()| Zeroizing::new(vec![0; len]))
        }
        async fn destroy(&self, _: VersionHandle<'_>) -> std::result::Result<(), BackendError> {
            self.behave().await
        }
        async fn health(&self) -> std::result::Result<(), BackendError> {
            self.behave().await
        }
    }

    fn backends(flaky: Arc<Switchable>) -> Backends {
        let steady: Arc<dyn DynBackend> = Arc::new(Switchable::default());
        let instances = BTreeMap::from([("flaky".to_owned(), flaky as Arc<dyn DynBackend>), ("steady".into(), steady)]);
        Backends::with_timeout(instances, "steady".into(), Duration::from_millis(100)).unwrap_or_else(|e| {
            unreachable!("{e:?}");
        })
    }

    #[tokio::test]
    async fn a_hung_backend_times_out_fails_fast_and_recovers_by_probe() {
        let flaky = Arc::new(Switchable::default());
        let b = backends(flaky.clone());
        let (f, s) = (b.get("flaky").cloned().unwrap_or_else(|| unreachable!()), b.get("steady").cloned());
        assert!(f.generate_random(1).await.is_ok());

        flaky.mode.store(1, Ordering::Release);
        let started = std::time::Instant::now();
        assert!(matches!(f.generate_random(1).await, Err(BackendError::Unavailable(_))), "the deadline cuts it");
        assert!(started.elapsed() < Duration::from_millis(500));
        assert!(!f.is_up());
        // Down: refused at once, without calling the backend; other instances unaffected.
        let started = std::time::Instant::now();
        assert!(matches!(f.generate_random(1).await, Err(BackendError::Unavailable(_))));
        assert!(started.elapsed() < Duration::from_millis(20), "fails fast");
        assert!(s.is_some_and(|s| s.is_up()));
        assert_eq!(b.probe_down().await, 1, "still hung");

        flaky.mode.store(0, Ordering::Release);
        assert_eq!(b.probe_down().await, 0, "the probe sees it answer");
        assert!(f.is_up() && f.generate_random(1).await.is_ok());
    }

    #[tokio::test]
    async fn a_backend_reporting_itself_gone_is_marked_down() {
        let flaky = Arc::new(Switchable::default());
        let b = backends(flaky.clone());
        let f = b.get("flaky").cloned().unwrap_or_else(|| unreachable!());
        flaky.mode.store(2, Ordering::Release);
        assert!(f.generate_random(1).await.is_err());
        assert!(!f.is_up());
        flaky.mode.store(0, Ordering::Release);
        assert!(f.probe().await.is_ok() && f.is_up());
    }

    #[test]
    fn namespace_defaults_must_name_configured_instances() {
        let b = backends(Arc::new(Switchable::default()));
        assert_eq!(b.default_for("payments"), "steady");
        let b = b
            .with_namespace_defaults(BTreeMap::from([("payments".into(), "flaky".into())]))
            .unwrap_or_else(|e| unreachable!("{e:?}"));
        assert_eq!((b.default_for("payments"), b.default_for("other")), ("flaky", "steady"));
        assert!(b.with_namespace_defaults(BTreeMap::from([("x".into(), "nope".into())])).is_err());
    }
}
