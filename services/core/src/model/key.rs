//! The key model: spec, usage, state, protection, and the stored key record.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

use super::ids::{AliasName, KeyId, Namespace, truncate};
use super::import::KeyOrigin;
use crate::error::{Detail, Error, ErrorCode};

/// What kind of key material a key holds. Names are AWS KMS's, so the AWS-compatible API maps
/// them one to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeySpec {
    /// A 256-bit AES key for authenticated encryption.
    Aes256,
    /// RSA, 2048-bit modulus.
    Rsa2048,
    /// RSA, 3072-bit modulus.
    Rsa3072,
    /// RSA, 4096-bit modulus.
    Rsa4096,
    /// ECDSA on NIST P-256.
    EccNistP256,
    /// ECDSA on NIST P-384.
    EccNistP384,
    /// ECDSA on NIST P-521.
    EccNistP521,
    /// EdDSA on edwards25519.
    EccNistEdwards25519,
    /// A 256-bit HMAC key.
    Hmac256,
    /// A 384-bit HMAC key.
    Hmac384,
    /// A 512-bit HMAC key.
    Hmac512,
}

impl KeySpec {
    /// Every spec, in the order the API documents them.
    pub const ALL: [Self; 11] = [
        Self::Aes256,
        Self::Rsa2048,
        Self::Rsa3072,
        Self::Rsa4096,
        Self::EccNistP256,
        Self::EccNistP384,
        Self::EccNistP521,
        Self::EccNistEdwards25519,
        Self::Hmac256,
        Self::Hmac384,
        Self::Hmac512,
    ];

    /// The spec's name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Aes256 => "AES_256",
            Self::Rsa2048 => "RSA_2048",
            Self::Rsa3072 => "RSA_3072",
            Self::Rsa4096 => "RSA_4096",
            Self::EccNistP256 => "ECC_NIST_P256",
            Self::EccNistP384 => "ECC_NIST_P384",
            Self::EccNistP521 => "ECC_NIST_P521",
            Self::EccNistEdwards25519 => "ECC_NIST_EDWARDS25519",
            Self::Hmac256 => "HMAC_256",
            Self::Hmac384 => "HMAC_384",
            Self::Hmac512 => "HMAC_512",
        }
    }

    /// The usage a key of this spec gets when CreateKey names none.
    pub fn usage(self) -> KeyUsage {
        match self {
            Self::Aes256 => KeyUsage::EncryptDecrypt,
            Self::Hmac256 | Self::Hmac384 | Self::Hmac512 => KeyUsage::GenerateVerifyMac,
            _ => KeyUsage::SignVerify,
        }
    }

    /// The usages a key of this spec may be created with (RSA does either, as in AWS KMS).
    pub fn allows(self, usage: KeyUsage) -> bool {
        if self.is_rsa() {
            matches!(usage, KeyUsage::SignVerify | KeyUsage::EncryptDecrypt)
        } else {
            usage == self.usage()
        }
    }

    /// Whether the key is a key pair (it has a public key).
    pub fn is_asymmetric(self) -> bool {
        !matches!(self, Self::Aes256 | Self::Hmac256 | Self::Hmac384 | Self::Hmac512)
    }

    /// Whether the spec is an RSA key pair.
    pub fn is_rsa(self) -> bool {
        matches!(self, Self::Rsa2048 | Self::Rsa3072 | Self::Rsa4096)
    }

    /// The RSA modulus or EC field size in bits, the HMAC key size in bits; 256 for AES.
    pub fn bits(self) -> usize {
        match self {
            Self::Aes256 | Self::EccNistP256 | Self::EccNistEdwards25519 | Self::Hmac256 => 256,
            Self::Rsa2048 => 2048,
            Self::Rsa3072 => 3072,
            Self::Rsa4096 => 4096,
            Self::EccNistP384 | Self::Hmac384 => 384,
            Self::EccNistP521 => 521,
            Self::Hmac512 => 512,
        }
    }

    /// Whether keys of this spec can have more than one version. Signing, MAC and RSA keys
    /// cannot, as in AWS KMS: a signature or MAC names no version, so a rotated key would
    /// leave verifiers unable to tell which public key or secret to use.
    pub fn rotates(self) -> bool {
        self == Self::Aes256
    }
}

impl FromStr for KeySpec {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        // The design's early names are accepted as spellings of AWS's.
        let canonical = match s {
            "HMAC_SHA256" => "HMAC_256",
            "ED25519" => "ECC_NIST_EDWARDS25519",
            other => other,
        };
        Self::ALL.iter().copied().find(|k| k.as_str() == canonical).ok_or_else(|| {
            Error::invalid(format!(
                "unknown key spec `{}`; one of {}",
                truncate(s),
                Self::ALL.map(Self::as_str).join(", ")
            ))
        })
    }
}

impl fmt::Display for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The operations a key allows, fixed at creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyUsage {
    /// Encrypt, decrypt, data keys (AES; RSA with OAEP).
    EncryptDecrypt,
    /// Sign and verify.
    SignVerify,
    /// Generate and verify MACs.
    GenerateVerifyMac,
}

impl KeyUsage {
    /// The usage's name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EncryptDecrypt => "ENCRYPT_DECRYPT",
            Self::SignVerify => "SIGN_VERIFY",
            Self::GenerateVerifyMac => "GENERATE_VERIFY_MAC",
        }
    }

    /// Ok when a key of this usage may do `what`; otherwise `InvalidKeyUsage`.
    pub fn ensure(self, wanted: Self, what: &str) -> Result<(), Error> {
        if self == wanted {
            return Ok(());
        }
        Err(Error::new(
            ErrorCode::InvalidKeyUsage,
            format!("{what} needs a {} key; this key's usage is {}", wanted.as_str(), self.as_str()),
        ))
    }
}

impl FromStr for KeyUsage {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "ENCRYPT_DECRYPT" => Ok(Self::EncryptDecrypt),
            "SIGN_VERIFY" => Ok(Self::SignVerify),
            "GENERATE_VERIFY_MAC" => Ok(Self::GenerateVerifyMac),
            other => Err(Error::invalid(format!(
                "unknown key usage `{}`; one of ENCRYPT_DECRYPT, SIGN_VERIFY, GENERATE_VERIFY_MAC",
                truncate(other)
            ))),
        }
    }
}

impl fmt::Display for KeyUsage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Lifecycle state. Only `Enabled` keys do cryptography.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Usable.
    Enabled,
    /// Kept but refuses cryptographic use until enabled.
    Disabled,
    /// Scheduled for destruction at `deletion_date`; refuses cryptographic use.
    PendingDeletion,
    /// Material destroyed; metadata kept.
    Destroyed,
    /// An imported key without material (never imported, deleted, or expired).
    PendingImport,
}

impl KeyState {
    /// The state's name in the API and store.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enabled => "Enabled",
            Self::Disabled => "Disabled",
            Self::PendingDeletion => "PendingDeletion",
            Self::Destroyed => "Destroyed",
            Self::PendingImport => "PendingImport",
        }
    }

    /// Parses a stored state name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "Enabled" => Some(Self::Enabled),
            "Disabled" => Some(Self::Disabled),
            "PendingDeletion" => Some(Self::PendingDeletion),
            "Destroyed" => Some(Self::Destroyed),
            "PendingImport" => Some(Self::PendingImport),
            _ => None,
        }
    }

    /// Ok when the state allows cryptographic use; otherwise the error the caller sees.
    pub fn ensure_usable(self) -> Result<(), Error> {
        match self {
            Self::Enabled => Ok(()),
            Self::Disabled => Err(Error::new(ErrorCode::KeyDisabled, "the key is disabled")),
            Self::Destroyed => Err(Error::new(ErrorCode::KeyDisabled, "the key is destroyed")),
            Self::PendingDeletion => Err(Error::new(ErrorCode::KeyPendingDeletion, "the key is pending deletion")),
            Self::PendingImport => Err(pending_import()),
        }
    }
}

fn pending_import() -> Error {
    Error::conflict("the key has no key material; import it with ImportKeyMaterial").with_detail(Detail::InvalidState)
}

/// Where a key's material lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protection {
    /// Wrapped under a root key and used in process memory.
    Software,
    /// Inside an HSM, never extractable.
    Hsm,
    /// In an external KMS.
    External,
}

impl Protection {
    /// The level's name in the API and in policies.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Software => "software",
            Self::Hsm => "hsm",
            Self::External => "external",
        }
    }
}

/// A key as stored: metadata, without versions or material.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyRecord {
    /// The key's id.
    pub id: KeyId,
    /// The namespace the key belongs to.
    pub namespace: Namespace,
    /// Free text.
    pub description: String,
    /// The creating principal's uid, e.g. `Keyward::User::"alice"`.
    pub owner: String,
    /// Tags, sorted by name.
    pub tags: BTreeMap<String, String>,
    /// The key spec.
    pub spec: KeySpec,
    /// What the key may do, fixed at creation.
    pub usage: KeyUsage,
    /// Lifecycle state.
    pub state: KeyState,
    /// The backend instance holding the material.
    pub backend: String,
    /// The version encrypt uses.
    pub primary_version: u32,
    /// Versions below this no longer decrypt.
    pub min_decryption_version: u32,
    /// Automatic rotation period, when set.
    pub rotation_period_days: Option<u32>,
    /// When the next automatic rotation is due.
    pub next_rotation_at: Option<DateTime<Utc>>,
    /// When the key is destroyed, while pending deletion.
    pub deletion_date: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency counter: every update increments it.
    pub revision: i64,
    /// Where the material comes from.
    pub origin: KeyOrigin,
    /// When imported material expires (deleted, the key back to `PendingImport`); none: never.
    pub valid_to: Option<DateTime<Utc>>,
    /// A fingerprint of imported material, so only the same material can be imported again.
    pub material_fingerprint: Option<String>,
    /// Encryptions with the primary version after which the key rotates by itself (AES-GCM's
    /// random nonces must stay well under 2^32 per key); none: the namespace's or the default.
    pub rotate_after_encryptions: Option<u64>,
    /// What an attempt to use the key while it is pending deletion does besides the canary.
    pub on_use_while_pending: OnUseWhilePending,
    /// Attempts to use the key while it was pending deletion (kept by the store: updates of
    /// the key leave it alone).
    pub deletion_canary_count: u64,
    /// The latest such attempt.
    pub deletion_canary_last_at: Option<DateTime<Utc>>,
}

/// What a deletion canary does besides raising its alarm.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnUseWhilePending {
    /// Record, count and notify only.
    #[default]
    Alert,
    /// Also cancel the deletion: the key comes back `Disabled`.
    Cancel,
}

impl OnUseWhilePending {
    /// The value's name in the API and store.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Alert => "alert",
            Self::Cancel => "cancel",
        }
    }
}

impl FromStr for OnUseWhilePending {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "alert" => Ok(Self::Alert),
            "cancel" => Ok(Self::Cancel),
            other => Err(Error::invalid(format!(
                "`on_use_while_pending` must be alert or cancel, not `{}`",
                truncate(other)
            ))),
        }
    }
}

impl KeyRecord {
    /// A new, enabled key at version 1 with no description, tags or rotation, and the spec's
    /// default usage.
    pub fn new(
        id: KeyId,
        namespace: Namespace,
        owner: String,
        backend: String,
        spec: KeySpec,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            namespace,
            description: String::new(),
            owner,
            tags: BTreeMap::new(),
            spec,
            usage: spec.usage(),
            state: KeyState::Enabled,
            backend,
            primary_version: 1,
            min_decryption_version: 1,
            rotation_period_days: None,
            next_rotation_at: None,
            deletion_date: None,
            created_at: now,
            updated_at: now,
            revision: 1,
            origin: KeyOrigin::Keyward,
            valid_to: None,
            material_fingerprint: None,
            rotate_after_encryptions: None,
            on_use_while_pending: OnUseWhilePending::Alert,
            deletion_canary_count: 0,
            deletion_canary_last_at: None,
        }
    }
}

impl KeyRecord {
    /// Ok when the key may do cryptography now: its state allows it and imported material
    /// has not expired (the maintenance task deletes expired material soon after).
    pub fn ensure_usable(&self, now: DateTime<Utc>) -> Result<(), Error> {
        self.state.ensure_usable()?;
        if self.material_expired(now) {
            return Err(pending_import().with_reason("the imported key material has expired"));
        }
        Ok(())
    }

    /// Whether imported material has passed its `valid_to`.
    pub fn material_expired(&self, now: DateTime<Utc>) -> bool {
        self.valid_to.is_some_and(|t| now >= t)
    }
}

/// A key with what DescribeKey shows beside the record.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyMetadata {
    /// The stored record.
    pub key: KeyRecord,
    /// Aliases pointing to the key.
    pub aliases: Vec<AliasName>,
    /// The backend instance's protection level.
    pub protection: Protection,
    /// Whether the key's backend is serving; an enabled key on a backend that is down shows
    /// as `Unavailable`.
    pub backend_up: bool,
    /// The encryption count that rotates it: its own, its namespace's or the default.
    pub rotate_after_encryptions: u64,
}

/// Validates a tag map: at most 50 tags, names 1-128 bytes, values up to 256 bytes.
pub fn validate_tags(tags: &BTreeMap<String, String>) -> Result<(), Error> {
    if tags.len() > 50 {
        return Err(Error::invalid("at most 50 tags per key"));
    }
    for (k, v) in tags {
        if k.is_empty() || k.len() > 128 {
            return Err(Error::invalid(format!("tag name `{}` must be 1-128 bytes", truncate(k))));
        }
        if v.len() > 256 {
            return Err(Error::invalid(format!("tag `{}` value must be at most 256 bytes", truncate(k))));
        }
    }
    Ok(())
}

/// Validates a key description: at most 8192 bytes.
pub fn validate_description(d: &str) -> Result<(), Error> {
    if d.len() > 8192 {
        return Err(Error::invalid("description must be at most 8192 bytes"));
    }
    Ok(())
}
