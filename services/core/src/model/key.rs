//! The key model: spec, usage, state, protection, and the stored key record.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

use super::ids::{AliasName, KeyId, Namespace, truncate};
use crate::error::{Error, ErrorCode};

/// What kind of key material a key holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeySpec {
    /// A 256-bit AES key for authenticated encryption.
    Aes256,
}

impl KeySpec {
    /// The spec's name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Aes256 => "AES_256",
        }
    }

    /// What the spec is used for.
    pub fn usage(self) -> KeyUsage {
        match self {
            Self::Aes256 => KeyUsage::EncryptDecrypt,
        }
    }
}

impl FromStr for KeySpec {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "AES_256" => Ok(Self::Aes256),
            "HMAC_SHA256" | "ECC_NIST_P256" | "ED25519" => Err(Error::new(
                ErrorCode::UnsupportedOperation,
                format!("key spec `{s}` is not supported yet; use `AES_256`"),
            )),
            other => Err(Error::invalid(format!("unknown key spec `{}`", truncate(other)))),
        }
    }
}

impl fmt::Display for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The operations a key's spec allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUsage {
    /// Encrypt, decrypt, data keys.
    EncryptDecrypt,
}

impl KeyUsage {
    /// The usage's name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EncryptDecrypt => "ENCRYPT_DECRYPT",
        }
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
}

impl KeyState {
    /// The state's name in the API and store.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enabled => "Enabled",
            Self::Disabled => "Disabled",
            Self::PendingDeletion => "PendingDeletion",
            Self::Destroyed => "Destroyed",
        }
    }

    /// Parses a stored state name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "Enabled" => Some(Self::Enabled),
            "Disabled" => Some(Self::Disabled),
            "PendingDeletion" => Some(Self::PendingDeletion),
            "Destroyed" => Some(Self::Destroyed),
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
        }
    }
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
}

impl KeyRecord {
    /// A new, enabled key at version 1 with no description, tags or rotation.
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
        }
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
