//! The backend port: the cryptographic operations a backend plugin provides.
//!
//! Implementers write [`Backend`] with plain `async fn`s; the domain holds backends as
//! `Arc<dyn DynBackend>`, which every `Backend` is through a blanket impl.

use std::future::Future;
use std::pin::Pin;

use zeroize::Zeroizing;

use crate::model::ids::KeyId;
use crate::model::key::{KeySpec, Protection};

/// What a backend can do, declared up front so the domain refuses the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// Key specs it can create.
    pub specs: Vec<KeySpec>,
    /// Largest plaintext one encrypt takes.
    pub max_plaintext: usize,
    /// Where its material lives.
    pub protection: Protection,
    /// Whether material can leave the backend in any form (wrapped included).
    pub material_leaves: bool,
    /// Whether [`Backend::test_vector`] runs AES-256-GCM with a caller-chosen key and nonce
    /// (known-answer tests only; never used to serve requests).
    pub fixed_nonce_testing: bool,
}

/// One AES-256-GCM known-answer case with a fixed key and nonce (128-bit tag).
#[derive(Debug, Clone, Copy)]
pub struct GcmVector<'a> {
    /// The raw key.
    pub key: &'a [u8],
    /// The nonce.
    pub nonce: &'a [u8],
    /// Associated data.
    pub aad: &'a [u8],
    /// Plaintext to seal, or ciphertext with its tag to open.
    pub input: &'a [u8],
    /// Open instead of seal.
    pub decrypt: bool,
}

/// Which key version an operation uses, with the stored material reference.
#[derive(Debug, Clone, Copy)]
pub struct VersionHandle<'a> {
    /// The key.
    pub key_id: KeyId,
    /// The version.
    pub version: u32,
    /// Wrapped material or an HSM handle, as `create_key` returned it.
    pub material: &'a [u8],
}

/// What an encryption produced: the algorithm id and params for the blob header, and the
/// ciphertext authenticated under the associated data that `Aad` computed from them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The backend's algorithm id.
    pub algorithm: u8,
    /// Params for the header (salt, nonce, commitment...).
    pub params: Vec<u8>,
    /// Ciphertext with its tag.
    pub ciphertext: Vec<u8>,
}

/// Computes the associated data for a given algorithm and params. The backend calls it once
/// it has chosen its params, so the whole header is authenticated.
pub type AadFn<'a> = &'a (dyn Fn(u8, &[u8]) -> Vec<u8> + Send + Sync);

/// Why a backend call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// Authentication failed: wrong key, tampered data, wrong associated data.
    #[error("decryption failed: {0}")]
    DecryptFailed(String),
    /// The backend cannot do this.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The backend is down or timed out; retrying later may help.
    #[error("backend unavailable: {0}")]
    Unavailable(String),
    /// Stored material is unusable (corrupt, or wrapped under another root key).
    #[error("invalid key material: {0}")]
    InvalidMaterial(String),
    /// Anything else.
    #[error("backend failure: {0}")]
    Internal(String),
}

/// A backend boxed future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A cryptographic backend, written with native async functions.
pub trait Backend: Send + Sync + std::fmt::Debug + 'static {
    /// The kind name, e.g. `software`.
    fn kind(&self) -> &'static str;

    /// What it can do.
    fn capabilities(&self) -> &Capabilities;

    /// Creates material for a new key version; returns what to store to find it again.
    fn create_key(
        &self,
        key_id: KeyId,
        version: u32,
        spec: KeySpec,
    ) -> impl Future<Output = Result<Zeroizing<Vec<u8>>, BackendError>> + Send;

    /// Encrypts under a version; the associated data comes from `aad(algorithm, params)`.
    fn encrypt(
        &self,
        key: VersionHandle<'_>,
        plaintext: &[u8],
        aad: AadFn<'_>,
    ) -> impl Future<Output = Result<Sealed, BackendError>> + Send;

    /// Decrypts what `encrypt` produced.
    fn decrypt(
        &self,
        key: VersionHandle<'_>,
        algorithm: u8,
        params: &[u8],
        ciphertext: &[u8],
        aad: &[u8],
    ) -> impl Future<Output = Result<Zeroizing<Vec<u8>>, BackendError>> + Send;

    /// Random bytes from the backend's generator.
    fn generate_random(&self, len: usize) -> impl Future<Output = Result<Zeroizing<Vec<u8>>, BackendError>> + Send;

    /// Destroys a version's material where the backend holds it.
    fn destroy(&self, key: VersionHandle<'_>) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Checks the backend can serve.
    fn health(&self) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Runs one known-answer case through the backend's own AES-GCM (see
    /// [`Capabilities::fixed_nonce_testing`]). Returns ciphertext with tag, or plaintext.
    fn test_vector(&self, case: GcmVector<'_>) -> Result<Vec<u8>, BackendError> {
        let _ = case;
        Err(BackendError::Unsupported("fixed-nonce test vectors".into()))
    }
}

/// The object-safe twin of [`Backend`], what the domain stores as `Arc<dyn DynBackend>`.
#[allow(missing_docs, reason = "each method is the `Backend` method of the same name")]
pub trait DynBackend: Send + Sync + std::fmt::Debug {
    fn kind(&self) -> &'static str;
    fn capabilities(&self) -> &Capabilities;
    fn create_key(
        &self,
        key_id: KeyId,
        version: u32,
        spec: KeySpec,
    ) -> BoxFuture<'_, Result<Zeroizing<Vec<u8>>, BackendError>>;
    fn encrypt<'a>(
        &'a self,
        key: VersionHandle<'a>,
        plaintext: &'a [u8],
        aad: AadFn<'a>,
    ) -> BoxFuture<'a, Result<Sealed, BackendError>>;
    fn decrypt<'a>(
        &'a self,
        key: VersionHandle<'a>,
        algorithm: u8,
        params: &'a [u8],
        ciphertext: &'a [u8],
        aad: &'a [u8],
    ) -> BoxFuture<'a, Result<Zeroizing<Vec<u8>>, BackendError>>;
    fn generate_random(&self, len: usize) -> BoxFuture<'_, Result<Zeroizing<Vec<u8>>, BackendError>>;
    fn destroy<'a>(&'a self, key: VersionHandle<'a>) -> BoxFuture<'a, Result<(), BackendError>>;
    fn health(&self) -> BoxFuture<'_, Result<(), BackendError>>;
    fn test_vector(&self, case: GcmVector<'_>) -> Result<Vec<u8>, BackendError>;
}

impl<T: Backend> DynBackend for T {
    fn kind(&self) -> &'static str {
        Backend::kind(self)
    }
    fn capabilities(&self) -> &Capabilities {
        Backend::capabilities(self)
    }
    fn create_key(
        &self,
        key_id: KeyId,
        version: u32,
        spec: KeySpec,
    ) -> BoxFuture<'_, Result<Zeroizing<Vec<u8>>, BackendError>> {
        Box::pin(Backend::create_key(self, key_id, version, spec))
    }
    fn encrypt<'a>(
        &'a self,
        key: VersionHandle<'a>,
        plaintext: &'a [u8],
        aad: AadFn<'a>,
    ) -> BoxFuture<'a, Result<Sealed, BackendError>> {
        Box::pin(Backend::encrypt(self, key, plaintext, aad))
    }
    fn decrypt<'a>(
        &'a self,
        key: VersionHandle<'a>,
        algorithm: u8,
        params: &'a [u8],
        ciphertext: &'a [u8],
        aad: &'a [u8],
    ) -> BoxFuture<'a, Result<Zeroizing<Vec<u8>>, BackendError>> {
        Box::pin(Backend::decrypt(self, key, algorithm, params, ciphertext, aad))
    }
    fn generate_random(&self, len: usize) -> BoxFuture<'_, Result<Zeroizing<Vec<u8>>, BackendError>> {
        Box::pin(Backend::generate_random(self, len))
    }
    fn destroy<'a>(&'a self, key: VersionHandle<'a>) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(Backend::destroy(self, key))
    }
    fn health(&self) -> BoxFuture<'_, Result<(), BackendError>> {
        Box::pin(Backend::health(self))
    }
    fn test_vector(&self, case: GcmVector<'_>) -> Result<Vec<u8>, BackendError> {
        Backend::test_vector(self, case)
    }
}
