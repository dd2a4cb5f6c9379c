//! Key versions: each rotation adds one; the material reference is opaque to the domain.

use chrono::{DateTime, Utc};
use zeroize::Zeroizing;

/// State of one key version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionState {
    /// Encrypts if primary, decrypts if not retired.
    Enabled,
    /// Below `min_decryption_version`: kept but refuses decryption.
    Retired,
    /// Material destroyed with the key.
    Destroyed,
}

impl VersionState {
    /// The state's name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enabled => "Enabled",
            Self::Retired => "Retired",
            Self::Destroyed => "Destroyed",
        }
    }
}

/// One version of a key as stored.
#[derive(Clone, PartialEq)]
pub struct VersionRecord {
    /// The version number, from 1.
    pub version: u32,
    /// What the backend needs to find the material: wrapped key bytes or an HSM handle.
    pub material: Zeroizing<Vec<u8>>,
    /// Whether the material has been destroyed.
    pub destroyed: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Encryptions performed with this version (flushed periodically).
    pub encryptions: u64,
    /// Decryptions performed with this version (flushed periodically).
    pub decryptions: u64,
    /// Last use.
    pub last_used_at: Option<DateTime<Utc>>,
}

impl VersionRecord {
    /// A fresh, unused version.
    pub fn new(version: u32, material: Zeroizing<Vec<u8>>, created_at: DateTime<Utc>) -> Self {
        Self { version, material, destroyed: false, created_at, encryptions: 0, decryptions: 0, last_used_at: None }
    }
}

impl std::fmt::Debug for VersionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VersionRecord")
            .field("version", &self.version)
            .field("material", &"<redacted>")
            .field("destroyed", &self.destroyed)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// Which counter a use increments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// An encryption (Encrypt, GenerateDataKey, ReEncrypt destination).
    Encrypt,
    /// A decryption (Decrypt, ReEncrypt source).
    Decrypt,
}
