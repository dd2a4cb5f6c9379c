//! The backend port: the cryptographic operations a backend plugin provides.
//!
//! Implementers write [`Backend`] with plain `async fn`s; the domain holds backends as
//! `Arc<dyn DynBackend>`, which every `Backend` is through a blanket impl.

use std::future::Future;
use std::pin::Pin;

use zeroize::Zeroizing;

use crate::model::context::EncryptionContext;
use crate::model::ids::KeyId;
use crate::model::import::WrappingAlgorithm;
use crate::model::key::{KeySpec, KeyUsage, Protection};
use crate::model::signing::{EncryptionAlgorithm, MacAlgorithm, Message, SigningAlgorithm};

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
    /// Whether [`Backend::test_vector`] runs AES-256-GCM with a caller-chosen key and nonce,
    /// and [`Backend::test_verify`] and [`Backend::test_mac`] run with caller-given keys
    /// (known-answer tests only; never used to serve requests).
    pub fixed_nonce_testing: bool,
    /// Whether a destroyed version is refused by the backend as soon as `destroy` returns (an
    /// external KMS may only schedule deletion; Keyward refuses the version at once either way).
    pub destroy_is_immediate: bool,
    /// Whether [`Backend::seal_raw`] and [`Backend::open_raw`] work (raw AES-256-GCM with the
    /// nonce and tag apart, for the XKS proxy).
    pub raw_gcm: bool,
    /// Whether Sign and Verify take `DIGEST` messages (a precomputed hash). Some servers that
    /// speak the AWS KMS API hash every message again, so an aws-kms instance can turn it off.
    pub signs_digests: bool,
    /// The RSAES-OAEP algorithms its RSA ENCRYPT_DECRYPT keys do (empty: no such keys).
    pub rsa_oaep: Vec<EncryptionAlgorithm>,
    /// The wrapping algorithms ImportKeyMaterial takes (empty: no imported keys).
    pub import: Vec<WrappingAlgorithm>,
    /// The key specs whose material it imports.
    pub import_specs: Vec<KeySpec>,
}

/// An RSA private key given by its parts (big-endian), for known-answer tests.
#[derive(Clone, Copy)]
#[allow(missing_docs, reason = "the fields are the RSA private key's parts by their usual names")]
pub struct RsaTestKey<'a> {
    /// The same key as PKCS#8 DER.
    pub pkcs8: &'a [u8],
    pub n: &'a [u8],
    pub e: &'a [u8],
    pub d: &'a [u8],
    pub p: &'a [u8],
    pub q: &'a [u8],
    pub dp: &'a [u8],
    pub dq: &'a [u8],
    pub qinv: &'a [u8],
}

impl std::fmt::Debug for RsaTestKey<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RsaTestKey { .. }")
    }
}

/// A wrapping key made for one import.
#[derive(Debug, Clone)]
pub struct ImportWrapping {
    /// The wrapping public key, a DER SubjectPublicKeyInfo.
    pub public_key: Vec<u8>,
    /// The backend's state, sealed under the binding (a wrapped private key, or the id of a
    /// token object); it travels in the import token.
    pub state: Vec<u8>,
}

/// One ImportKeyMaterial call as the backend sees it.
#[derive(Debug, Clone, Copy)]
pub struct ImportRequest<'a> {
    /// The key.
    pub key_id: KeyId,
    /// The version the material becomes.
    pub version: u32,
    /// The key's spec (the material must be of it).
    pub spec: KeySpec,
    /// The key's usage.
    pub usage: KeyUsage,
    /// How the material is wrapped.
    pub algorithm: WrappingAlgorithm,
    /// What the state was sealed under.
    pub binding: &'a [u8],
    /// The state from [`ImportWrapping`].
    pub state: &'a [u8],
    /// The wrapped material.
    pub encrypted: &'a [u8],
}

/// Imported material, now the backend's.
pub struct Imported {
    /// What the version stores (wrapped material or a token reference).
    pub material: Zeroizing<Vec<u8>>,
    /// A fingerprint of the material that reveals nothing of it (a public key's hash, or a
    /// keyed check value), the same for the same material every time.
    pub fingerprint: Vec<u8>,
}

impl std::fmt::Debug for Imported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Imported { .. }")
    }
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

/// Raw AES-256-GCM output for protocols that carry nonce and tag themselves (XKS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawGcm {
    /// The 96-bit nonce, drawn fresh for this message.
    pub nonce: [u8; RAW_NONCE_LEN],
    /// Ciphertext, as long as the plaintext.
    pub ciphertext: Vec<u8>,
    /// The 128-bit tag.
    pub tag: [u8; RAW_TAG_LEN],
}

impl RawGcm {
    /// Splits what an AES-GCM implementation returns (ciphertext, then the tag) apart.
    pub fn from_sealed(nonce: [u8; RAW_NONCE_LEN], mut sealed: Vec<u8>) -> Result<Self, BackendError> {
        if sealed.len() < RAW_TAG_LEN {
            return Err(BackendError::Internal("no tag after the ciphertext".into()));
        }
        let tag = sealed.split_off(sealed.len() - RAW_TAG_LEN);
        let tag = tag.try_into().map_err(|_| BackendError::Internal("tag length".into()))?;
        Ok(Self { nonce, ciphertext: sealed, tag })
    }

    /// Ciphertext and tag joined, as AES-GCM implementations take them to decrypt.
    pub fn joined(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.ciphertext.len() + RAW_TAG_LEN);
        out.extend_from_slice(&self.ciphertext);
        out.extend_from_slice(&self.tag);
        out
    }
}

/// The nonce length of [`Backend::seal_raw`].
pub const RAW_NONCE_LEN: usize = 12;
/// The tag length of [`Backend::seal_raw`].
pub const RAW_TAG_LEN: usize = 16;

/// A generated data key: its plaintext (when asked for) and the key sealed.
#[derive(Debug)]
pub struct DataKey {
    /// The data key.
    pub plaintext: Option<Zeroizing<Vec<u8>>>,
    /// The data key encrypted.
    pub sealed: Sealed,
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
    /// This one key cannot be used now (disabled or refused in an external KMS); the backend
    /// itself is serving.
    #[error("key unusable: {0}")]
    KeyUnusable(String),
    /// The caller's input is wrong for this backend (an external key id that does not exist).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
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
        usage: KeyUsage,
    ) -> impl Future<Output = Result<Zeroizing<Vec<u8>>, BackendError>> + Send;

    /// Links an existing key of an external KMS as version 1 of `key_id`; returns what to store.
    fn link_key(
        &self,
        key_id: KeyId,
        external_key_id: &str,
    ) -> impl Future<Output = Result<Zeroizing<Vec<u8>>, BackendError>> + Send {
        let _ = (key_id, external_key_id);
        async { Err(BackendError::Unsupported("this backend does not link external keys".into())) }
    }

    /// Whether Keyward may add a version after `current` (a linked external key rotates in its
    /// own KMS).
    fn can_rotate(&self, current: VersionHandle<'_>) -> Result<(), BackendError> {
        let _ = current;
        Ok(())
    }

    /// Encrypts under a version; the associated data comes from `aad(algorithm, params)`, and
    /// covers `context` (given as well for backends that forward it, like an external KMS).
    fn encrypt(
        &self,
        key: VersionHandle<'_>,
        plaintext: &[u8],
        context: &EncryptionContext,
        aad: AadFn<'_>,
    ) -> impl Future<Output = Result<Sealed, BackendError>> + Send;

    /// Decrypts what `encrypt` produced.
    fn decrypt(
        &self,
        key: VersionHandle<'_>,
        algorithm: u8,
        params: &[u8],
        ciphertext: &[u8],
        context: &EncryptionContext,
        aad: &[u8],
    ) -> impl Future<Output = Result<Zeroizing<Vec<u8>>, BackendError>> + Send;

    /// A new data key of `len` bytes, sealed under a version; the plaintext only when asked
    /// for. By default random bytes from [`Backend::generate_random`], then [`Backend::encrypt`].
    fn generate_data_key(
        &self,
        key: VersionHandle<'_>,
        len: usize,
        context: &EncryptionContext,
        aad: AadFn<'_>,
        with_plaintext: bool,
    ) -> impl Future<Output = Result<DataKey, BackendError>> + Send {
        async move {
            let plaintext = self.generate_random(len).await?;
            let sealed = self.encrypt(key, &plaintext, context, aad).await?;
            Ok(DataKey { plaintext: with_plaintext.then_some(plaintext), sealed })
        }
    }

    /// Raw AES-256-GCM under the version's own key (no Keyward blob, no derived key): a fresh
    /// random 96-bit nonce, the caller's associated data, a separate 128-bit tag. For protocols
    /// that carry nonce and tag themselves (the XKS proxy). Backends that cannot answer
    /// `Unsupported`.
    fn seal_raw(
        &self,
        key: VersionHandle<'_>,
        plaintext: &[u8],
        aad: &[u8],
    ) -> impl Future<Output = Result<RawGcm, BackendError>> + Send {
        let _ = (key, plaintext, aad);
        async { Err(BackendError::Unsupported("raw AES-GCM".into())) }
    }

    /// Opens what [`Backend::seal_raw`] made.
    fn open_raw(
        &self,
        key: VersionHandle<'_>,
        sealed: &RawGcm,
        aad: &[u8],
    ) -> impl Future<Output = Result<Zeroizing<Vec<u8>>, BackendError>> + Send {
        let _ = (key, sealed, aad);
        async { Err(BackendError::Unsupported("raw AES-GCM".into())) }
    }

    /// The public key of an asymmetric version, as a DER SubjectPublicKeyInfo.
    fn public_key(
        &self,
        key: VersionHandle<'_>,
        spec: KeySpec,
    ) -> impl Future<Output = Result<Vec<u8>, BackendError>> + Send {
        let _ = (key, spec);
        async { Err(BackendError::Unsupported("public keys".into())) }
    }

    /// Signs a message (or its digest) with an asymmetric version; ECDSA signatures are DER.
    fn sign(
        &self,
        key: VersionHandle<'_>,
        spec: KeySpec,
        algorithm: SigningAlgorithm,
        message: Message<'_>,
    ) -> impl Future<Output = Result<Vec<u8>, BackendError>> + Send {
        let _ = (key, spec, algorithm, message);
        async { Err(BackendError::Unsupported("signing".into())) }
    }

    /// Verifies a signature; an invalid signature is `Ok(false)`, not an error.
    fn verify(
        &self,
        key: VersionHandle<'_>,
        spec: KeySpec,
        algorithm: SigningAlgorithm,
        message: Message<'_>,
        signature: &[u8],
    ) -> impl Future<Output = Result<bool, BackendError>> + Send {
        let _ = (key, spec, algorithm, message, signature);
        async { Err(BackendError::Unsupported("signature verification".into())) }
    }

    /// RSAES-OAEP encryption with an RSA ENCRYPT_DECRYPT version's public key; the ciphertext
    /// is the raw RSA output (the modulus length), as AWS KMS returns it.
    fn encrypt_asymmetric(
        &self,
        key: VersionHandle<'_>,
        spec: KeySpec,
        algorithm: EncryptionAlgorithm,
        plaintext: &[u8],
    ) -> impl Future<Output = Result<Vec<u8>, BackendError>> + Send {
        let _ = (key, spec, algorithm, plaintext);
        async { Err(BackendError::Unsupported("RSA encryption".into())) }
    }

    /// Decrypts what [`Backend::encrypt_asymmetric`] made; any failure is `DecryptFailed`.
    fn decrypt_asymmetric(
        &self,
        key: VersionHandle<'_>,
        spec: KeySpec,
        algorithm: EncryptionAlgorithm,
        ciphertext: &[u8],
    ) -> impl Future<Output = Result<Zeroizing<Vec<u8>>, BackendError>> + Send {
        let _ = (key, spec, algorithm, ciphertext);
        async { Err(BackendError::Unsupported("RSA decryption".into())) }
    }

    /// The HMAC of a message under an HMAC version.
    fn generate_mac(
        &self,
        key: VersionHandle<'_>,
        algorithm: MacAlgorithm,
        message: &[u8],
    ) -> impl Future<Output = Result<Vec<u8>, BackendError>> + Send {
        let _ = (key, algorithm, message);
        async { Err(BackendError::Unsupported("MACs".into())) }
    }

    /// Checks a MAC in constant time; a wrong MAC is `Ok(false)`.
    fn verify_mac(
        &self,
        key: VersionHandle<'_>,
        algorithm: MacAlgorithm,
        message: &[u8],
        mac: &[u8],
    ) -> impl Future<Output = Result<bool, BackendError>> + Send {
        let _ = (key, algorithm, message, mac);
        async { Err(BackendError::Unsupported("MAC verification".into())) }
    }

    /// A fresh RSA wrapping key pair for importing material into `key_id`; the private key
    /// never leaves the backend unsealed, and its state is bound to `binding`.
    fn prepare_import(
        &self,
        key_id: KeyId,
        wrapping_spec: KeySpec,
        binding: &[u8],
    ) -> impl Future<Output = Result<ImportWrapping, BackendError>> + Send {
        let _ = (key_id, wrapping_spec, binding);
        async { Err(BackendError::Unsupported("imported key material".into())) }
    }

    /// Unwraps imported material with the state [`Backend::prepare_import`] made and keeps it
    /// as the version's material. Material that does not unwrap is `DecryptFailed`; material
    /// that unwraps but is not a key of the spec is `InvalidRequest`.
    fn import_key(&self, request: ImportRequest<'_>) -> impl Future<Output = Result<Imported, BackendError>> + Send {
        let _ = request;
        async { Err(BackendError::Unsupported("imported key material".into())) }
    }

    /// Forgets the state of an import that is done with (a token object); a no-op where the
    /// state is only sealed bytes.
    fn discard_import(&self, state: &[u8]) -> impl Future<Output = Result<(), BackendError>> + Send {
        let _ = state;
        async { Ok(()) }
    }

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

    /// Verifies a signature with a caller-given public key (DER SubjectPublicKeyInfo) through
    /// the backend's own verification (known-answer tests such as Wycheproof only; never used
    /// to serve requests). See [`Capabilities::fixed_nonce_testing`].
    fn test_verify(
        &self,
        spec: KeySpec,
        algorithm: SigningAlgorithm,
        public_key: &[u8],
        message: Message<'_>,
        signature: &[u8],
    ) -> Result<bool, BackendError> {
        let _ = (spec, algorithm, public_key, message, signature);
        Err(BackendError::Unsupported("signature test vectors".into()))
    }

    /// The MAC of a message under a caller-given key through the backend's own HMAC (known-answer
    /// tests only).
    fn test_mac(&self, algorithm: MacAlgorithm, key: &[u8], message: &[u8]) -> Result<Vec<u8>, BackendError> {
        let _ = (algorithm, key, message);
        Err(BackendError::Unsupported("MAC test vectors".into()))
    }

    /// RSAES-OAEP decryption with a caller-given private key through the backend's own RSA
    /// (known-answer tests only); any decryption failure is `DecryptFailed`.
    fn test_oaep_decrypt(
        &self,
        algorithm: EncryptionAlgorithm,
        key: RsaTestKey<'_>,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        let _ = (algorithm, key, ciphertext);
        Err(BackendError::Unsupported("RSA-OAEP test vectors".into()))
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
        usage: KeyUsage,
    ) -> BoxFuture<'_, Result<Zeroizing<Vec<u8>>, BackendError>>;
    fn link_key<'a>(
        &'a self,
        key_id: KeyId,
        external_key_id: &'a str,
    ) -> BoxFuture<'a, Result<Zeroizing<Vec<u8>>, BackendError>>;
    fn can_rotate(&self, current: VersionHandle<'_>) -> Result<(), BackendError>;
    fn encrypt<'a>(
        &'a self,
        key: VersionHandle<'a>,
        plaintext: &'a [u8],
        context: &'a EncryptionContext,
        aad: AadFn<'a>,
    ) -> BoxFuture<'a, Result<Sealed, BackendError>>;
    fn decrypt<'a>(
        &'a self,
        key: VersionHandle<'a>,
        algorithm: u8,
        params: &'a [u8],
        ciphertext: &'a [u8],
        context: &'a EncryptionContext,
        aad: &'a [u8],
    ) -> BoxFuture<'a, Result<Zeroizing<Vec<u8>>, BackendError>>;
    fn generate_data_key<'a>(
        &'a self,
        key: VersionHandle<'a>,
        len: usize,
        context: &'a EncryptionContext,
        aad: AadFn<'a>,
        with_plaintext: bool,
    ) -> BoxFuture<'a, Result<DataKey, BackendError>>;
    fn seal_raw<'a>(
        &'a self,
        key: VersionHandle<'a>,
        plaintext: &'a [u8],
        aad: &'a [u8],
    ) -> BoxFuture<'a, Result<RawGcm, BackendError>>;
    fn open_raw<'a>(
        &'a self,
        key: VersionHandle<'a>,
        sealed: &'a RawGcm,
        aad: &'a [u8],
    ) -> BoxFuture<'a, Result<Zeroizing<Vec<u8>>, BackendError>>;
    fn public_key<'a>(&'a self, key: VersionHandle<'a>, spec: KeySpec) -> BoxFuture<'a, Result<Vec<u8>, BackendError>>;
    fn sign<'a>(
        &'a self,
        key: VersionHandle<'a>,
        spec: KeySpec,
        algorithm: SigningAlgorithm,
        message: Message<'a>,
    ) -> BoxFuture<'a, Result<Vec<u8>, BackendError>>;
    fn verify<'a>(
        &'a self,
        key: VersionHandle<'a>,
        spec: KeySpec,
        algorithm: SigningAlgorithm,
        message: Message<'a>,
        signature: &'a [u8],
    ) -> BoxFuture<'a, Result<bool, BackendError>>;
    fn encrypt_asymmetric<'a>(
        &'a self,
        key: VersionHandle<'a>,
        spec: KeySpec,
        algorithm: EncryptionAlgorithm,
        plaintext: &'a [u8],
    ) -> BoxFuture<'a, Result<Vec<u8>, BackendError>>;
    fn decrypt_asymmetric<'a>(
        &'a self,
        key: VersionHandle<'a>,
        spec: KeySpec,
        algorithm: EncryptionAlgorithm,
        ciphertext: &'a [u8],
    ) -> BoxFuture<'a, Result<Zeroizing<Vec<u8>>, BackendError>>;
    fn generate_mac<'a>(
        &'a self,
        key: VersionHandle<'a>,
        algorithm: MacAlgorithm,
        message: &'a [u8],
    ) -> BoxFuture<'a, Result<Vec<u8>, BackendError>>;
    fn verify_mac<'a>(
        &'a self,
        key: VersionHandle<'a>,
        algorithm: MacAlgorithm,
        message: &'a [u8],
        mac: &'a [u8],
    ) -> BoxFuture<'a, Result<bool, BackendError>>;
    fn prepare_import<'a>(
        &'a self,
        key_id: KeyId,
        wrapping_spec: KeySpec,
        binding: &'a [u8],
    ) -> BoxFuture<'a, Result<ImportWrapping, BackendError>>;
    fn import_key<'a>(&'a self, request: ImportRequest<'a>) -> BoxFuture<'a, Result<Imported, BackendError>>;
    fn discard_import<'a>(&'a self, state: &'a [u8]) -> BoxFuture<'a, Result<(), BackendError>>;
    fn generate_random(&self, len: usize) -> BoxFuture<'_, Result<Zeroizing<Vec<u8>>, BackendError>>;
    fn destroy<'a>(&'a self, key: VersionHandle<'a>) -> BoxFuture<'a, Result<(), BackendError>>;
    fn health(&self) -> BoxFuture<'_, Result<(), BackendError>>;
    fn test_vector(&self, case: GcmVector<'_>) -> Result<Vec<u8>, BackendError>;
    fn test_verify(
        &self,
        spec: KeySpec,
        algorithm: SigningAlgorithm,
        public_key: &[u8],
        message: Message<'_>,
        signature: &[u8],
    ) -> Result<bool, BackendError>;
    fn test_mac(&self, algorithm: MacAlgorithm, key: &[u8], message: &[u8]) -> Result<Vec<u8>, BackendError>;
    fn test_oaep_decrypt(
        &self,
        algorithm: EncryptionAlgorithm,
        key: RsaTestKey<'_>,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, BackendError>;
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
        usage: KeyUsage,
    ) -> BoxFuture<'_, Result<Zeroizing<Vec<u8>>, BackendError>> {
        Box::pin(Backend::create_key(self, key_id, version, spec, usage))
    }
    fn link_key<'a>(
        &'a self,
        key_id: KeyId,
        external_key_id: &'a str,
    ) -> BoxFuture<'a, Result<Zeroizing<Vec<u8>>, BackendError>> {
        Box::pin(Backend::link_key(self, key_id, external_key_id))
    }
    fn can_rotate(&self, current: VersionHandle<'_>) -> Result<(), BackendError> {
        Backend::can_rotate(self, current)
    }
    fn encrypt<'a>(
        &'a self,
        key: VersionHandle<'a>,
        plaintext: &'a [u8],
        context: &'a EncryptionContext,
        aad: AadFn<'a>,
    ) -> BoxFuture<'a, Result<Sealed, BackendError>> {
        Box::pin(Backend::encrypt(self, key, plaintext, context, aad))
    }
    fn decrypt<'a>(
        &'a self,
        key: VersionHandle<'a>,
        algorithm: u8,
        params: &'a [u8],
        ciphertext: &'a [u8],
        context: &'a EncryptionContext,
        aad: &'a [u8],
    ) -> BoxFuture<'a, Result<Zeroizing<Vec<u8>>, BackendError>> {
        Box::pin(Backend::decrypt(self, key, algorithm, params, ciphertext, context, aad))
    }
    fn generate_data_key<'a>(
        &'a self,
        key: VersionHandle<'a>,
        len: usize,
        context: &'a EncryptionContext,
        aad: AadFn<'a>,
        with_plaintext: bool,
    ) -> BoxFuture<'a, Result<DataKey, BackendError>> {
        Box::pin(Backend::generate_data_key(self, key, len, context, aad, with_plaintext))
    }
    fn seal_raw<'a>(
        &'a self,
        key: VersionHandle<'a>,
        plaintext: &'a [u8],
        aad: &'a [u8],
    ) -> BoxFuture<'a, Result<RawGcm, BackendError>> {
        Box::pin(Backend::seal_raw(self, key, plaintext, aad))
    }
    fn open_raw<'a>(
        &'a self,
        key: VersionHandle<'a>,
        sealed: &'a RawGcm,
        aad: &'a [u8],
    ) -> BoxFuture<'a, Result<Zeroizing<Vec<u8>>, BackendError>> {
        Box::pin(Backend::open_raw(self, key, sealed, aad))
    }
    fn public_key<'a>(&'a self, key: VersionHandle<'a>, spec: KeySpec) -> BoxFuture<'a, Result<Vec<u8>, BackendError>> {
        Box::pin(Backend::public_key(self, key, spec))
    }
    fn sign<'a>(
        &'a self,
        key: VersionHandle<'a>,
        spec: KeySpec,
        algorithm: SigningAlgorithm,
        message: Message<'a>,
    ) -> BoxFuture<'a, Result<Vec<u8>, BackendError>> {
        Box::pin(Backend::sign(self, key, spec, algorithm, message))
    }
    fn verify<'a>(
        &'a self,
        key: VersionHandle<'a>,
        spec: KeySpec,
        algorithm: SigningAlgorithm,
        message: Message<'a>,
        signature: &'a [u8],
    ) -> BoxFuture<'a, Result<bool, BackendError>> {
        Box::pin(Backend::verify(self, key, spec, algorithm, message, signature))
    }
    fn encrypt_asymmetric<'a>(
        &'a self,
        key: VersionHandle<'a>,
        spec: KeySpec,
        algorithm: EncryptionAlgorithm,
        plaintext: &'a [u8],
    ) -> BoxFuture<'a, Result<Vec<u8>, BackendError>> {
        Box::pin(Backend::encrypt_asymmetric(self, key, spec, algorithm, plaintext))
    }
    fn decrypt_asymmetric<'a>(
        &'a self,
        key: VersionHandle<'a>,
        spec: KeySpec,
        algorithm: EncryptionAlgorithm,
        ciphertext: &'a [u8],
    ) -> BoxFuture<'a, Result<Zeroizing<Vec<u8>>, BackendError>> {
        Box::pin(Backend::decrypt_asymmetric(self, key, spec, algorithm, ciphertext))
    }
    fn generate_mac<'a>(
        &'a self,
        key: VersionHandle<'a>,
        algorithm: MacAlgorithm,
        message: &'a [u8],
    ) -> BoxFuture<'a, Result<Vec<u8>, BackendError>> {
        Box::pin(Backend::generate_mac(self, key, algorithm, message))
    }
    fn verify_mac<'a>(
        &'a self,
        key: VersionHandle<'a>,
        algorithm: MacAlgorithm,
        message: &'a [u8],
        mac: &'a [u8],
    ) -> BoxFuture<'a, Result<bool, BackendError>> {
        Box::pin(Backend::verify_mac(self, key, algorithm, message, mac))
    }
    fn prepare_import<'a>(
        &'a self,
        key_id: KeyId,
        wrapping_spec: KeySpec,
        binding: &'a [u8],
    ) -> BoxFuture<'a, Result<ImportWrapping, BackendError>> {
        Box::pin(Backend::prepare_import(self, key_id, wrapping_spec, binding))
    }
    fn import_key<'a>(&'a self, request: ImportRequest<'a>) -> BoxFuture<'a, Result<Imported, BackendError>> {
        Box::pin(Backend::import_key(self, request))
    }
    fn discard_import<'a>(&'a self, state: &'a [u8]) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(Backend::discard_import(self, state))
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
    fn test_verify(
        &self,
        spec: KeySpec,
        algorithm: SigningAlgorithm,
        public_key: &[u8],
        message: Message<'_>,
        signature: &[u8],
    ) -> Result<bool, BackendError> {
        Backend::test_verify(self, spec, algorithm, public_key, message, signature)
    }
    fn test_mac(&self, algorithm: MacAlgorithm, key: &[u8], message: &[u8]) -> Result<Vec<u8>, BackendError> {
        Backend::test_mac(self, algorithm, key, message)
    }
    fn test_oaep_decrypt(
        &self,
        algorithm: EncryptionAlgorithm,
        key: RsaTestKey<'_>,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        Backend::test_oaep_decrypt(self, algorithm, key, ciphertext)
    }
}
