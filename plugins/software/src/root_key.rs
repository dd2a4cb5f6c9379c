//! The root key that wraps software key material: 32 bytes from a file or an environment
//! variable, written as 64 hex characters.

use std::fs;
use std::io::Write;
use std::path::Path;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// A 256-bit root key. Its `Debug` never shows the bytes.
pub struct RootKey {
    bytes: Zeroizing<[u8; 32]>,
    id: [u8; 8],
}

impl std::fmt::Debug for RootKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RootKey").field("id", &hex::encode(self.id)).finish_non_exhaustive()
    }
}

impl RootKey {
    /// Wraps 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let bytes = Zeroizing::new(bytes);
        let digest = Sha256::new_with_prefix(b"keyward/root-key-id/v1").chain_update(bytes.as_slice()).finalize();
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest[..8]);
        Self { bytes, id }
    }

    /// Parses 64 hex characters (surrounding whitespace ignored).
    pub fn parse_hex(text: &str) -> Result<Self, String> {
        let text = Zeroizing::new(text.trim().to_owned());
        let mut bytes = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.as_bytes(), bytes.as_mut_slice())
            .map_err(|_| "root key must be 64 hex characters (32 bytes)".to_owned())?;
        Ok(Self::from_bytes(*bytes))
    }

    /// Reads a key file.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = Zeroizing::new(
            fs::read_to_string(path).map_err(|e| format!("cannot read root key file `{}`: {e}", path.display()))?,
        );
        Self::parse_hex(&text).map_err(|e| format!("root key file `{}`: {e}", path.display()))
    }

    /// Generates a new key into `path`, readable by the owner only. Fails if the file exists.
    pub fn generate(path: &Path) -> Result<Self, String> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(bytes.as_mut_slice()).map_err(|e| format!("no randomness: {e}"))?;
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|e| format!("cannot create `{}`: {e}", dir.display()))?;
        }
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file =
            options.open(path).map_err(|e| format!("cannot create root key file `{}`: {e}", path.display()))?;
        let text = Zeroizing::new(hex::encode(bytes.as_slice()));
        file.write_all(text.as_bytes())
            .and_then(|()| file.write_all(b"\n"))
            .and_then(|()| file.sync_all())
            .map_err(|e| format!("cannot write root key file `{}`: {e}", path.display()))?;
        Ok(Self::from_bytes(*bytes))
    }

    /// The key bytes.
    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    /// A short fingerprint that identifies the key without revealing it.
    pub fn id(&self) -> [u8; 8] {
        self.id
    }
}

/// The local root key seals material with AES-256-GCM: `nonce (12) || ciphertext || tag`.
impl keyward_backend::RootWrapper for RootKey {
    fn id(&self) -> [u8; 8] {
        self.id
    }

    fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, keyward_backend::BackendError> {
        use aes_gcm::aead::{Aead, KeyInit, Payload};
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce)
            .map_err(|e| keyward_backend::BackendError::Unavailable(format!("no randomness: {e}")))?;
        let cipher = aes_gcm::Aes256Gcm::new(self.bytes().into());
        let ct = cipher
            .encrypt(&aes_gcm::Nonce::from(nonce), Payload { msg: plaintext, aad })
            .map_err(|_| keyward_backend::BackendError::Internal("wrapping failed".into()))?;
        Ok([nonce.as_slice(), &ct].concat())
    }

    fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, keyward_backend::BackendError> {
        use aes_gcm::aead::{Aead, KeyInit, Payload};
        let bad =
            || keyward_backend::BackendError::InvalidMaterial("material does not unwrap for this key version".into());
        let (nonce, ct) = sealed.split_at_checked(12).ok_or_else(bad)?;
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| bad())?;
        let cipher = aes_gcm::Aes256Gcm::new(self.bytes().into());
        cipher.decrypt(&aes_gcm::Nonce::from(nonce), Payload { msg: ct, aad }).map(Zeroizing::new).map_err(|_| bad())
    }
}
