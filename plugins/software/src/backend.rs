//! AES-256-GCM in process. Version material is a random 32-byte key wrapped under the root key.
//! Each message gets its own key, nonce and commitment from HKDF-SHA256 over a random salt, so
//! nonces never repeat under one key and a blob cannot decrypt validly under two keys.
//! Raw AES-GCM (XKS) uses its own key derived from the version key, with random 96-bit nonces.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use keyward_core::model::context::EncryptionContext;
use keyward_core::model::ids::KeyId;
use keyward_core::model::import::WrappingAlgorithm;
use keyward_core::model::key::{KeySpec, KeyUsage, Protection};
use keyward_core::model::signing::{EncryptionAlgorithm, MacAlgorithm, Message, SigningAlgorithm};
use keyward_core::ports::backend::{
    AadFn, Backend, BackendError, Capabilities, GcmVector, ImportRequest, ImportWrapping, Imported, RawGcm, RsaTestKey,
    Sealed, VersionHandle,
};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use keyward_backend::RootWrapper;

use crate::import;
use crate::root_key::RootKey;
use crate::signing::{self, Secret, SecretCache};

/// Algorithm id 1: AES-256-GCM, per-message key, nonce and commitment from HKDF-SHA256.
pub const ALG_AES256_GCM_HKDF: u8 = 1;
const SALT_LEN: usize = 32;
const COMMIT_LEN: usize = 32;
const MATERIAL_FORMAT: u8 = 1;
/// Signing and MAC secrets: the format byte, the root key id, the sealed secret.
const SECRET_FORMAT: u8 = 2;
/// An import's wrapping private key: the format byte, the root key id, the sealed PKCS#8.
const IMPORT_FORMAT: u8 = 3;
const NONCE_LEN: usize = 12;
const WRAPPED_LEN: usize = 1 + 8 + NONCE_LEN + 32 + 16;
const MESSAGE_INFO: &[u8] = b"keyward/v1/aes-256-gcm/hkdf-sha256/commit";
/// The raw AES-GCM key is its own derivation, so no key serves two formats.
const RAW_INFO: &[u8] = b"keyward/v1/raw-aes-256-gcm";

/// The software backend.
#[derive(Debug)]
pub struct SoftwareBackend {
    root: Arc<dyn RootWrapper>,
    /// Unwrapped version keys, kept when unwrapping is a round trip to another backend.
    cache: Option<Mutex<VersionKeys>>,
    /// Parsed signing and MAC keys.
    secrets: SecretCache,
    capabilities: Capabilities,
}

/// Unwrapped version keys by key and version.
type VersionKeys = HashMap<(KeyId, u32), Zeroizing<[u8; 32]>>;

/// Most unwrapped version keys kept in memory (an HSM-held root is asked again past it).
const CACHE_LIMIT: usize = 10_000;

impl SoftwareBackend {
    /// A backend wrapping material under a local root key.
    pub fn new(root: RootKey) -> Self {
        Self::build(Arc::new(root), false)
    }

    /// A backend whose root key is held elsewhere (an HSM); unwrapped version keys are cached.
    pub fn with_held_root(root: Arc<dyn RootWrapper>) -> Self {
        Self::build(root, true)
    }

    fn build(root: Arc<dyn RootWrapper>, cache: bool) -> Self {
        Self {
            root,
            cache: cache.then(|| Mutex::new(HashMap::new())),
            secrets: SecretCache::default(),
            capabilities: Capabilities {
                specs: KeySpec::ALL.to_vec(),
                max_plaintext: 64 * 1024,
                protection: Protection::Software,
                material_leaves: true,
                fixed_nonce_testing: true,
                destroy_is_immediate: true,
                raw_gcm: true,
                signs_digests: true,
                rsa_oaep: vec![EncryptionAlgorithm::RsaesOaepSha1, EncryptionAlgorithm::RsaesOaepSha256],
                import: WrappingAlgorithm::ALL.to_vec(),
                import_specs: KeySpec::ALL.to_vec(),
            },
        }
    }

    /// The root key's id.
    pub fn root_id(&self) -> [u8; 8] {
        self.root.id()
    }

    fn material_aad(key_id: KeyId, version: u32) -> Vec<u8> {
        let mut aad = b"keyward/software/material/v1".to_vec();
        aad.extend_from_slice(key_id.0.as_bytes());
        aad.extend_from_slice(&version.to_be_bytes());
        aad
    }

    fn wrap(&self, key_id: KeyId, version: u32, key: &[u8; 32]) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        let sealed = self.root.seal(&Self::material_aad(key_id, version), key)?;
        let mut out = Zeroizing::new(Vec::with_capacity(WRAPPED_LEN));
        out.push(MATERIAL_FORMAT);
        out.extend_from_slice(&self.root.id());
        out.extend_from_slice(&sealed);
        if out.len() != WRAPPED_LEN {
            return Err(BackendError::Internal("the root key sealed to an unexpected length".into()));
        }
        Ok(out)
    }

    fn secret_aad(key_id: KeyId, version: u32, spec: KeySpec) -> Vec<u8> {
        let mut aad = b"keyward/software/secret/v2".to_vec();
        aad.extend_from_slice(key_id.0.as_bytes());
        aad.extend_from_slice(&version.to_be_bytes());
        aad.extend_from_slice(spec.as_str().as_bytes());
        aad
    }

    fn wrap_secret(
        &self,
        key_id: KeyId,
        version: u32,
        spec: KeySpec,
        secret: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        let sealed = self.root.seal(&Self::secret_aad(key_id, version, spec), secret)?;
        let mut out = Zeroizing::new(Vec::with_capacity(9 + sealed.len()));
        out.push(SECRET_FORMAT);
        out.extend_from_slice(&self.root.id());
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    fn import_aad(key_id: KeyId, binding: &[u8]) -> Vec<u8> {
        let mut aad = b"keyward/software/import/v1".to_vec();
        aad.extend_from_slice(key_id.0.as_bytes());
        aad.extend_from_slice(binding);
        aad
    }

    /// Opens an import's wrapping private key, if the state is this backend's and was sealed
    /// under this binding (an edited token does not open).
    fn wrapping_key(&self, key_id: KeyId, binding: &[u8], state: &[u8]) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        if state.len() < 9 || state[0] != IMPORT_FORMAT || state[1..9] != self.root.id() {
            return Err(BackendError::InvalidRequest("the import token is not this backend's".into()));
        }
        self.root
            .open(&Self::import_aad(key_id, binding), &state[9..])
            .map_err(|_| BackendError::InvalidRequest("the import token does not open".into()))
    }

    /// A version's signing or MAC key, parsed (cached by version and material).
    fn secret(&self, key: VersionHandle<'_>, spec: KeySpec) -> Result<Arc<Secret>, BackendError> {
        if let Some(s) = self.secrets.get(key.key_id, key.version, key.material) {
            return Ok(s);
        }
        let m = key.material;
        if m.len() < 9 || m[0] != SECRET_FORMAT {
            return Err(BackendError::InvalidMaterial(format!("not the material of a {spec} key")));
        }
        if m[1..9] != self.root.id() {
            return Err(BackendError::InvalidMaterial("material is wrapped under another root key".into()));
        }
        let plain = self.root.open(&Self::secret_aad(key.key_id, key.version, spec), &m[9..])?;
        let secret = Arc::new(signing::parse(spec, &plain)?);
        self.secrets.put(key.key_id, key.version, key.material, secret.clone());
        Ok(secret)
    }

    fn unwrap(&self, key: VersionHandle<'_>) -> Result<Zeroizing<[u8; 32]>, BackendError> {
        let m = key.material;
        if m.len() != WRAPPED_LEN || m[0] != MATERIAL_FORMAT {
            return Err(BackendError::InvalidMaterial("unrecognised wrapped material".into()));
        }
        if m[1..9] != self.root.id() {
            return Err(BackendError::InvalidMaterial("material is wrapped under another root key".into()));
        }
        if let Some(cache) = &self.cache
            && let Some(k) = cache.lock().ok().and_then(|c| c.get(&(key.key_id, key.version)).cloned())
        {
            return Ok(k);
        }
        let plain = self.root.open(&Self::material_aad(key.key_id, key.version), &m[9..])?;
        let bytes: [u8; 32] = plain
            .as_slice()
            .try_into()
            .map_err(|_| BackendError::InvalidMaterial("unwrapped material has the wrong length".into()))?;
        let out = Zeroizing::new(bytes);
        if let Some(cache) = &self.cache
            && let Ok(mut c) = cache.lock()
        {
            if c.len() >= CACHE_LIMIT {
                c.clear();
            }
            c.insert((key.key_id, key.version), out.clone());
        }
        Ok(out)
    }
}

/// Per-message key, nonce and commitment.
struct MessageKeys {
    key: Zeroizing<[u8; 32]>,
    nonce: [u8; NONCE_LEN],
    commitment: [u8; COMMIT_LEN],
}

fn derive(version_key: &[u8; 32], salt: &[u8]) -> Result<MessageKeys, BackendError> {
    let hk = Hkdf::<Sha256>::new(Some(salt), version_key);
    let mut okm = Zeroizing::new([0u8; 32 + NONCE_LEN + COMMIT_LEN]);
    hk.expand(MESSAGE_INFO, okm.as_mut_slice()).map_err(|_| BackendError::Internal("hkdf expand".into()))?;
    let mut keys = MessageKeys { key: Zeroizing::new([0u8; 32]), nonce: [0; NONCE_LEN], commitment: [0; COMMIT_LEN] };
    keys.key.copy_from_slice(&okm[..32]);
    keys.nonce.copy_from_slice(&okm[32..32 + NONCE_LEN]);
    keys.commitment.copy_from_slice(&okm[32 + NONCE_LEN..]);
    Ok(keys)
}

fn raw_cipher(version_key: &[u8; 32]) -> Result<Aes256Gcm, BackendError> {
    let mut key = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(None, version_key)
        .expand(RAW_INFO, key.as_mut_slice())
        .map_err(|_| BackendError::Internal("hkdf expand".into()))?;
    Ok(Aes256Gcm::new((&*key).into()))
}

/// The spec of an HMAC key that MACs with `algorithm` (one spec each).
fn mac_spec(algorithm: MacAlgorithm) -> KeySpec {
    match algorithm {
        MacAlgorithm::HmacSha256 => KeySpec::Hmac256,
        MacAlgorithm::HmacSha384 => KeySpec::Hmac384,
        MacAlgorithm::HmacSha512 => KeySpec::Hmac512,
    }
}

/// Random bytes from AWS-LC's generator: a per-thread DRBG seeded and reseeded from the OS,
/// so a message's salt costs no system call.
fn fill_random(buf: &mut [u8]) -> Result<(), BackendError> {
    use aws_lc_rs::rand::SecureRandom as _;
    aws_lc_rs::rand::SystemRandom::new()
        .fill(buf)
        .map_err(|_| BackendError::Unavailable("no randomness from the system generator".into()))
}

impl Backend for SoftwareBackend {
    fn kind(&self) -> &'static str {
        crate::KIND
    }

    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    async fn create_key(
        &self,
        key_id: KeyId,
        version: u32,
        spec: KeySpec,
        _usage: KeyUsage,
    ) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        match spec {
            KeySpec::Aes256 => {
                let mut key = Zeroizing::new([0u8; 32]);
                fill_random(key.as_mut_slice())?;
                self.wrap(key_id, version, &key)
            }
            spec => {
                let secret = signing::off_thread(move || signing::generate(spec, fill_random)).await?;
                self.wrap_secret(key_id, version, spec, &secret)
            }
        }
    }

    async fn prepare_import(
        &self,
        key_id: KeyId,
        wrapping_spec: KeySpec,
        binding: &[u8],
    ) -> Result<ImportWrapping, BackendError> {
        let pair = signing::off_thread(move || import::wrapping_pair(wrapping_spec)).await?;
        let sealed = self.root.seal(&Self::import_aad(key_id, binding), &pair.private_key)?;
        let mut state = Vec::with_capacity(9 + sealed.len());
        state.push(IMPORT_FORMAT);
        state.extend_from_slice(&self.root.id());
        state.extend_from_slice(&sealed);
        Ok(ImportWrapping { public_key: pair.public_key, state })
    }

    async fn import_key(&self, r: ImportRequest<'_>) -> Result<Imported, BackendError> {
        let wrapping = self.wrapping_key(r.key_id, r.binding, r.state)?;
        let material = import::unwrap(&wrapping, r.algorithm, r.encrypted)?;
        let fingerprint = import::check_material(r.spec, &material)?;
        let material = if r.spec == KeySpec::Aes256 {
            let key: Zeroizing<[u8; 32]> = Zeroizing::new(
                material.as_slice().try_into().map_err(|_| BackendError::Internal("AES key length".into()))?,
            );
            self.wrap(r.key_id, r.version, &key)?
        } else {
            self.wrap_secret(r.key_id, r.version, r.spec, &material)?
        };
        self.secrets.forget(r.key_id, r.version);
        if let Some(cache) = &self.cache
            && let Ok(mut c) = cache.lock()
        {
            c.remove(&(r.key_id, r.version));
        }
        Ok(Imported { material, fingerprint })
    }

    async fn public_key(&self, key: VersionHandle<'_>, spec: KeySpec) -> Result<Vec<u8>, BackendError> {
        self.secret(key, spec)?.public_key(spec)
    }

    async fn sign(
        &self,
        key: VersionHandle<'_>,
        spec: KeySpec,
        algorithm: SigningAlgorithm,
        message: Message<'_>,
    ) -> Result<Vec<u8>, BackendError> {
        self.secret(key, spec)?.sign(algorithm, message)
    }

    async fn verify(
        &self,
        key: VersionHandle<'_>,
        spec: KeySpec,
        algorithm: SigningAlgorithm,
        message: Message<'_>,
        signature: &[u8],
    ) -> Result<bool, BackendError> {
        let public = self.secret(key, spec)?.public_key(spec)?;
        keyward_backend::signature::verify(spec, algorithm, &public, message, signature)
    }

    async fn encrypt_asymmetric(
        &self,
        key: VersionHandle<'_>,
        spec: KeySpec,
        algorithm: EncryptionAlgorithm,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, BackendError> {
        self.secret(key, spec)?.encrypt_oaep(spec, algorithm, plaintext)
    }

    async fn decrypt_asymmetric(
        &self,
        key: VersionHandle<'_>,
        spec: KeySpec,
        algorithm: EncryptionAlgorithm,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        self.secret(key, spec)?.decrypt_oaep(algorithm, ciphertext)
    }

    async fn generate_mac(
        &self,
        key: VersionHandle<'_>,
        algorithm: MacAlgorithm,
        message: &[u8],
    ) -> Result<Vec<u8>, BackendError> {
        let spec = mac_spec(algorithm);
        self.secret(key, spec)?.mac(message)
    }

    async fn verify_mac(
        &self,
        key: VersionHandle<'_>,
        algorithm: MacAlgorithm,
        message: &[u8],
        mac: &[u8],
    ) -> Result<bool, BackendError> {
        let spec = mac_spec(algorithm);
        signing::check_mac(spec, algorithm)?;
        self.secret(key, spec)?.verify_mac(message, mac)
    }

    async fn encrypt(
        &self,
        key: VersionHandle<'_>,
        plaintext: &[u8],
        _context: &EncryptionContext,
        aad: AadFn<'_>,
    ) -> Result<Sealed, BackendError> {
        let version_key = self.unwrap(key)?;
        let mut salt = [0u8; SALT_LEN];
        fill_random(&mut salt)?;
        let mk = derive(&version_key, &salt)?;
        let mut params = Vec::with_capacity(SALT_LEN + COMMIT_LEN);
        params.extend_from_slice(&salt);
        params.extend_from_slice(&mk.commitment);
        let aad = aad(ALG_AES256_GCM_HKDF, &params);
        let cipher = Aes256Gcm::new((&*mk.key).into());
        let ciphertext = cipher
            .encrypt(&Nonce::from(mk.nonce), Payload { msg: plaintext, aad: &aad })
            .map_err(|_| BackendError::Internal("encryption failed".into()))?;
        Ok(Sealed { algorithm: ALG_AES256_GCM_HKDF, params, ciphertext })
    }

    async fn decrypt(
        &self,
        key: VersionHandle<'_>,
        algorithm: u8,
        params: &[u8],
        ciphertext: &[u8],
        _context: &EncryptionContext,
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        if algorithm != ALG_AES256_GCM_HKDF {
            return Err(BackendError::DecryptFailed(format!("unknown algorithm {algorithm}")));
        }
        if params.len() != SALT_LEN + COMMIT_LEN {
            return Err(BackendError::DecryptFailed("bad params length".into()));
        }
        let (salt, commitment) = params.split_at(SALT_LEN);
        let version_key = self.unwrap(key)?;
        let mk = derive(&version_key, salt)?;
        if !bool::from(mk.commitment.ct_eq(commitment)) {
            return Err(BackendError::DecryptFailed("key commitment mismatch".into()));
        }
        let cipher = Aes256Gcm::new((&*mk.key).into());
        cipher
            .decrypt(&Nonce::from(mk.nonce), Payload { msg: ciphertext, aad })
            .map(Zeroizing::new)
            .map_err(|_| BackendError::DecryptFailed("authentication tag mismatch".into()))
    }

    async fn seal_raw(&self, key: VersionHandle<'_>, plaintext: &[u8], aad: &[u8]) -> Result<RawGcm, BackendError> {
        let cipher = raw_cipher(&*self.unwrap(key)?)?;
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce)?;
        let sealed = cipher
            .encrypt(&Nonce::from(nonce), Payload { msg: plaintext, aad })
            .map_err(|_| BackendError::Internal("encryption failed".into()))?;
        RawGcm::from_sealed(nonce, sealed)
    }

    async fn open_raw(
        &self,
        key: VersionHandle<'_>,
        sealed: &RawGcm,
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        let cipher = raw_cipher(&*self.unwrap(key)?)?;
        cipher
            .decrypt(&Nonce::from(sealed.nonce), Payload { msg: &sealed.joined(), aad })
            .map(Zeroizing::new)
            .map_err(|_| BackendError::DecryptFailed("authentication tag mismatch".into()))
    }

    async fn generate_random(&self, len: usize) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        let mut out = Zeroizing::new(vec![0u8; len]);
        fill_random(&mut out)?;
        Ok(out)
    }

    async fn destroy(&self, key: VersionHandle<'_>) -> Result<(), BackendError> {
        // The material lives only in the store, which marks it destroyed.
        self.secrets.forget(key.key_id, key.version);
        Ok(())
    }

    async fn health(&self) -> Result<(), BackendError> {
        let mut probe = [0u8; 1];
        fill_random(&mut probe)
    }

    fn test_verify(
        &self,
        spec: KeySpec,
        algorithm: SigningAlgorithm,
        public_key: &[u8],
        message: Message<'_>,
        signature: &[u8],
    ) -> Result<bool, BackendError> {
        // The same verification `verify` runs, on the vector's key.
        keyward_backend::signature::verify(spec, algorithm, public_key, message, signature)
    }

    fn test_mac(&self, algorithm: MacAlgorithm, key: &[u8], message: &[u8]) -> Result<Vec<u8>, BackendError> {
        signing::parse(mac_spec(algorithm), key)?.mac(message)
    }

    fn test_oaep_decrypt(
        &self,
        algorithm: EncryptionAlgorithm,
        key: RsaTestKey<'_>,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        // The same RSA-OAEP the backend decrypts with, on the vector's key.
        signing::oaep_decrypt_pkcs8(key.pkcs8, algorithm, ciphertext)
    }

    fn test_vector(&self, case: GcmVector<'_>) -> Result<Vec<u8>, BackendError> {
        // The same AES-256-GCM the backend seals with, on the vector's own key and 96-bit nonce.
        let cipher = Aes256Gcm::new_from_slice(case.key).map_err(|_| BackendError::Unsupported("key size".into()))?;
        let nonce: [u8; NONCE_LEN] =
            case.nonce.try_into().map_err(|_| BackendError::Unsupported("nonce size".into()))?;
        let payload = Payload { msg: case.input, aad: case.aad };
        let out = if case.decrypt {
            cipher.decrypt(&Nonce::from(nonce), payload)
        } else {
            cipher.encrypt(&Nonce::from(nonce), payload)
        };
        out.map_err(|_| BackendError::DecryptFailed("authentication tag mismatch".into()))
    }
}
