//! A backend for domain tests. Its "cipher" is a keyed keystream with a keyed tag built on
//! FNV-1a: it round-trips and detects a wrong key, a changed byte or other associated data,
//! which is all the domain relies on, and it is **not cryptography**.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use zeroize::Zeroizing;

use crate::model::context::EncryptionContext;
use crate::model::ids::KeyId;
use crate::model::import::WrappingAlgorithm;
use crate::model::key::{KeySpec, Protection};
use crate::ports::backend::{
    AadFn, Backend, BackendError, Capabilities, ImportRequest, ImportWrapping, Imported, Sealed, VersionHandle,
};

/// What [`MemoryBackend`]'s import "wraps" material with.
pub const MEMORY_WRAP: u8 = 0x5A;

/// The algorithm id its blobs carry.
const ALGORITHM: u8 = 0xF0;

/// An in-memory backend that remembers which versions it destroyed.
#[derive(Debug)]
pub struct MemoryBackend {
    capabilities: Capabilities,
    destroyed: Mutex<BTreeSet<(KeyId, u32)>>,
    failing_destroy: AtomicBool,
}

impl Default for MemoryBackend {
    fn default() -> Self {
        Self {
            capabilities: Capabilities {
                specs: vec![KeySpec::Aes256],
                max_plaintext: 4096,
                protection: Protection::Software,
                material_leaves: false,
                fixed_nonce_testing: false,
                destroy_is_immediate: true,
                raw_gcm: false,
                signs_digests: true,
                rsa_oaep: Vec::new(),
                import: vec![WrappingAlgorithm::RsaesOaepSha256],
                import_specs: vec![KeySpec::Aes256],
            },
            destroyed: Mutex::default(),
            failing_destroy: AtomicBool::new(false),
        }
    }
}

impl MemoryBackend {
    /// Whether `destroy` has been called for a version.
    pub fn is_destroyed(&self, key: KeyId, version: u32) -> bool {
        self.destroyed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains(&(key, version))
    }

    /// Makes `destroy` fail (the backend is down for it), or work again.
    pub fn set_failing_destroy(&self, failing: bool) {
        self.failing_destroy.store(failing, Ordering::SeqCst);
    }

    fn usable(&self, key: &VersionHandle<'_>) -> Result<(), BackendError> {
        if self.is_destroyed(key.key_id, key.version) {
            return Err(BackendError::KeyUnusable(format!("version {} of {} is destroyed", key.version, key.key_id)));
        }
        if key.material.len() != 32 {
            return Err(BackendError::InvalidMaterial("material is not 32 bytes".into()));
        }
        Ok(())
    }
}

fn fnv(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in (part.len() as u64).to_le_bytes().iter().chain(part.iter()) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

fn keystream(material: &[u8], nonce: &[u8], data: &mut [u8]) {
    for (i, chunk) in data.chunks_mut(8).enumerate() {
        let block = fnv(&[material, nonce, &(i as u64).to_le_bytes()]).to_le_bytes();
        for (d, k) in chunk.iter_mut().zip(block) {
            *d ^= k;
        }
    }
}

fn random(len: usize) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(len + 16));
    while out.len() < len {
        out.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    }
    out.truncate(len);
    out
}

impl Backend for MemoryBackend {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    async fn create_key(
        &self,
        _: KeyId,
        _: u32,
        spec: KeySpec,
        _: crate::model::key::KeyUsage,
    ) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        if spec != KeySpec::Aes256 {
            return Err(BackendError::Unsupported(format!("{spec} keys")));
        }
        Ok(random(32))
    }

    async fn encrypt(
        &self,
        key: VersionHandle<'_>,
        plaintext: &[u8],
        _: &EncryptionContext,
        aad: AadFn<'_>,
    ) -> Result<Sealed, BackendError> {
        self.usable(&key)?;
        let nonce = random(16).to_vec();
        let aad = aad(ALGORITHM, &nonce);
        let mut ciphertext = plaintext.to_vec();
        keystream(key.material, &nonce, &mut ciphertext);
        let tag = fnv(&[key.material, &nonce, &aad, &ciphertext]).to_le_bytes();
        ciphertext.extend_from_slice(&tag);
        Ok(Sealed { algorithm: ALGORITHM, params: nonce, ciphertext })
    }

    async fn decrypt(
        &self,
        key: VersionHandle<'_>,
        algorithm: u8,
        params: &[u8],
        ciphertext: &[u8],
        _: &EncryptionContext,
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        self.usable(&key)?;
        let failed = || BackendError::DecryptFailed("tag mismatch".into());
        if algorithm != ALGORITHM || ciphertext.len() < 8 {
            return Err(failed());
        }
        let (body, tag) = ciphertext.split_at(ciphertext.len() - 8);
        if fnv(&[key.material, params, aad, body]).to_le_bytes() != tag {
            return Err(failed());
        }
        let mut plaintext = Zeroizing::new(body.to_vec());
        keystream(key.material, params, &mut plaintext);
        Ok(plaintext)
    }

    async fn generate_random(&self, len: usize) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        Ok(random(len))
    }

    /// The double's import: the state is the binding itself, and the "wrapped" material is
    /// the material XORed with [`MEMORY_WRAP`] (a stand-in for RSA, not protection).
    async fn prepare_import(&self, _: KeyId, _: KeySpec, binding: &[u8]) -> Result<ImportWrapping, BackendError> {
        Ok(ImportWrapping { public_key: b"memory wrapping key".to_vec(), state: binding.to_vec() })
    }

    async fn import_key(&self, r: ImportRequest<'_>) -> Result<Imported, BackendError> {
        if r.state != r.binding {
            return Err(BackendError::InvalidRequest("the import token does not open".into()));
        }
        let material: Zeroizing<Vec<u8>> = Zeroizing::new(r.encrypted.iter().map(|b| b ^ MEMORY_WRAP).collect());
        if material.len() != 32 {
            return Err(BackendError::InvalidRequest("not a 32-byte key".into()));
        }
        self.destroyed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&(r.key_id, r.version));
        let fingerprint = fnv(&[b"fingerprint", &material]).to_le_bytes().to_vec();
        Ok(Imported { material, fingerprint })
    }

    async fn destroy(&self, key: VersionHandle<'_>) -> Result<(), BackendError> {
        if self.failing_destroy.load(Ordering::SeqCst) {
            return Err(BackendError::Unavailable("destroy is failing".into()));
        }
        self.destroyed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert((key.key_id, key.version));
        Ok(())
    }

    async fn health(&self) -> Result<(), BackendError> {
        Ok(())
    }
}
