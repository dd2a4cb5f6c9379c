//! Key administration bodies.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use keyward_core::model::key::{KeyMetadata as CoreMetadata, KeyState, KeyUsage};
use keyward_core::model::signing::{EncryptionAlgorithm, MacAlgorithm, SigningAlgorithm};
use keyward_core::service::VersionInfo;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// CreateKey's body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    /// `true`: answer the authorization decision and do nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// The namespace to create the key in.
    pub namespace: String,
    /// Free text, at most 8192 bytes.
    #[serde(default)]
    pub description: Option<String>,
    /// `AES_256` (default), `RSA_2048`, `RSA_3072`, `RSA_4096`, `ECC_NIST_P256`,
    /// `ECC_NIST_P384`, `ECC_NIST_P521`, `ECC_NIST_EDWARDS25519`, `HMAC_256`, `HMAC_384` or
    /// `HMAC_512`.
    #[serde(default)]
    pub key_spec: Option<String>,
    /// `ENCRYPT_DECRYPT`, `SIGN_VERIFY` or `GENERATE_VERIFY_MAC`; default: the spec's (AES:
    /// ENCRYPT_DECRYPT, RSA and ECC: SIGN_VERIFY, HMAC: GENERATE_VERIFY_MAC). Fixed for the
    /// key's life; every operation checks it (`InvalidKeyUsage`).
    #[serde(default)]
    pub key_usage: Option<String>,
    /// Tags: at most 50.
    #[serde(default)]
    pub tags: Option<BTreeMap<String, String>>,
    /// A backend instance name; the server's default when absent.
    #[serde(default)]
    pub backend: Option<String>,
    /// An alias (`alias/NAME`) to create with the key.
    #[serde(default)]
    pub alias: Option<String>,
    /// Links an existing key of an external KMS backend (an AWS KMS key id or ARN) instead of
    /// creating one: Keyward uses it for version 1, never rotates it, and on deletion only
    /// unlinks it. Other backends answer 422 `UnsupportedOperation`.
    #[serde(default)]
    pub external_key_id: Option<String>,
    /// `KEYWARD` (default): the backend generates the material. `EXTERNAL`: the key starts
    /// `PendingImport` and takes your material with GetParametersForImport and
    /// ImportKeyMaterial.
    #[serde(default)]
    pub origin: Option<String>,
}

/// UpdateKey's body: absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateKeyRequest {
    /// `true`: answer the authorization decision and do nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// New description.
    #[serde(default)]
    pub description: Option<String>,
    /// New tags (replace all).
    #[serde(default)]
    pub tags: Option<BTreeMap<String, String>>,
    /// Days between automatic rotations (1-3650); `null` turns rotation off.
    #[serde(default, deserialize_with = "super::double_option")]
    #[schema(value_type = Option<u32>, nullable)]
    pub rotation_period_days: Option<Option<u32>>,
    /// Encryptions with the primary version after which the key rotates by itself (1-2^32);
    /// `null`: back to the namespace's or the default (2^30).
    #[serde(default, deserialize_with = "super::double_option")]
    #[schema(value_type = Option<u64>, nullable)]
    pub rotate_after_encryptions: Option<Option<u64>>,
    /// What an attempt to use the key while it is pending deletion does besides refusing:
    /// `alert` (record, count and notify) or `cancel` (also cancel the deletion).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub on_use_while_pending: Option<String>,
}

/// ScheduleKeyDeletion's body (may be empty).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleKeyDeletionRequest {
    /// `true`: answer the authorization decision and do nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Days before destruction, 7-30 (default 30).
    #[serde(default)]
    pub pending_window_days: Option<u32>,
}

/// SetMinDecryptionVersion's body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetMinDecryptionVersionRequest {
    /// `true`: answer the authorization decision and do nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Versions below this stop decrypting.
    pub version: u32,
}

/// ListKeys' query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListKeysQuery {
    /// `true`: answer the authorization decision and do nothing.
    #[serde(default)]
    pub dry_run: Option<bool>,
    /// Only keys in this namespace.
    pub namespace: Option<String>,
    /// Page size, 1-1000 (default 100).
    pub limit: Option<u64>,
    /// The cursor from the previous page.
    pub next_token: Option<String>,
}

/// A key's metadata.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyMetadata {
    /// The key id.
    pub key_id: String,
    /// Its namespace.
    pub namespace: String,
    /// Aliases that point to it.
    pub aliases: Vec<String>,
    /// Free text.
    pub description: String,
    /// `AES_256`, `RSA_2048`, `ECC_NIST_P256`, `HMAC_256`, ...
    pub key_spec: String,
    /// `ENCRYPT_DECRYPT`, `SIGN_VERIFY` or `GENERATE_VERIFY_MAC`.
    pub key_usage: String,
    /// What a SIGN_VERIFY key signs with (absent for other keys).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_algorithms: Option<Vec<String>>,
    /// What an ENCRYPT_DECRYPT key encrypts with (absent for other keys).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption_algorithms: Option<Vec<String>>,
    /// What a GENERATE_VERIFY_MAC key MACs with (absent for other keys).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_algorithms: Option<Vec<String>>,
    /// `Enabled`, `Disabled`, `PendingDeletion`, `Destroyed`, `PendingImport` or `Unavailable`.
    pub key_state: String,
    /// `KEYWARD` (generated by its backend) or `EXTERNAL` (imported).
    pub origin: String,
    /// When imported material expires (RFC 3339); absent: never, or not imported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<String>,
    /// The backend instance.
    pub backend: String,
    /// `software`, `hsm` or `external`.
    pub protection: String,
    /// The version Encrypt uses.
    pub primary_version: u32,
    /// Versions below this do not decrypt.
    pub min_decryption_version: u32,
    /// The creating principal.
    pub owner: String,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// Creation time (RFC 3339, UTC).
    pub created_at: String,
    /// When the key is destroyed, while pending deletion.
    pub deletion_date: Option<String>,
    /// Days between automatic rotations.
    pub rotation_period_days: Option<u32>,
    /// Encryptions with the primary version that rotate the key: its own limit, its
    /// namespace's, or the default (2^30).
    pub rotate_after_encryptions: u64,
    /// When the next automatic rotation is due.
    pub next_rotation_at: Option<String>,
    /// What an attempt to use the key while it is pending deletion does besides refusing:
    /// `alert` or `cancel` (the deletion).
    pub on_use_while_pending: String,
    /// Attempts to use the key while it was pending deletion (deletion canaries).
    pub deletion_canary_count: u64,
    /// The latest such attempt (RFC 3339).
    pub deletion_canary_last_at: Option<String>,
}

/// RFC 3339 in UTC with a `Z`.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl From<CoreMetadata> for KeyMetadata {
    fn from(m: CoreMetadata) -> Self {
        let k = m.key;
        Self {
            key_id: k.id.to_string(),
            namespace: k.namespace.to_string(),
            aliases: m.aliases.iter().map(ToString::to_string).collect(),
            description: k.description,
            key_spec: k.spec.as_str().to_owned(),
            key_usage: k.usage.as_str().to_owned(),
            signing_algorithms: (k.usage == KeyUsage::SignVerify)
                .then(|| SigningAlgorithm::for_spec(k.spec).iter().map(|a| a.as_str().to_owned()).collect()),
            encryption_algorithms: (k.usage == KeyUsage::EncryptDecrypt)
                .then(|| EncryptionAlgorithm::for_spec(k.spec).iter().map(|a| a.as_str().to_owned()).collect()),
            mac_algorithms: (k.usage == KeyUsage::GenerateVerifyMac)
                .then(|| MacAlgorithm::for_spec(k.spec).iter().map(|a| a.as_str().to_owned()).collect()),
            key_state: match k.state {
                KeyState::Enabled if !m.backend_up => "Unavailable".to_owned(),
                state => state.as_str().to_owned(),
            },
            origin: k.origin.as_str().to_owned(),
            valid_to: k.valid_to.map(rfc3339),
            backend: k.backend,
            protection: m.protection.as_str().to_owned(),
            primary_version: k.primary_version,
            min_decryption_version: k.min_decryption_version,
            owner: k.owner,
            tags: k.tags,
            created_at: rfc3339(k.created_at),
            deletion_date: k.deletion_date.map(rfc3339),
            rotation_period_days: k.rotation_period_days,
            rotate_after_encryptions: m.rotate_after_encryptions,
            next_rotation_at: k.next_rotation_at.map(rfc3339),
            on_use_while_pending: k.on_use_while_pending.as_str().to_owned(),
            deletion_canary_count: k.deletion_canary_count,
            deletion_canary_last_at: k.deletion_canary_last_at.map(rfc3339),
        }
    }
}

/// ListKeys' answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListKeysResponse {
    /// The page.
    pub keys: Vec<KeyMetadata>,
    /// Pass as `next_token` for the next page; absent on the last page.
    pub next_token: Option<String>,
}

/// One key version.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyVersion {
    /// The version number.
    pub version: u32,
    /// `Enabled`, `Retired` (below min_decryption_version) or `Destroyed`.
    pub state: String,
    /// Creation time.
    pub created_at: String,
    /// Encryptions with this version.
    pub encryptions: u64,
    /// Decryptions with this version.
    pub decryptions: u64,
    /// Last use.
    pub last_used_at: Option<String>,
}

impl From<VersionInfo> for KeyVersion {
    fn from(v: VersionInfo) -> Self {
        Self {
            version: v.version,
            state: v.state.as_str().to_owned(),
            created_at: rfc3339(v.created_at),
            encryptions: v.encryptions,
            decryptions: v.decryptions,
            last_used_at: v.last_used_at.map(rfc3339),
        }
    }
}

/// ListKeyVersions' answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListKeyVersionsResponse {
    /// Oldest first.
    pub versions: Vec<KeyVersion>,
}

/// GetKeyUsage's query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct KeyUsageQuery {
    /// `true`: answer the authorization decision and do nothing.
    #[serde(default)]
    pub dry_run: Option<bool>,
    /// The window, 1-366 days (default 30): recent decryptions, principals and first use are
    /// counted over it, and a version is safe to retire when nothing decrypted with it in it.
    pub days: Option<u32>,
}

/// One version in GetKeyUsage's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionUsage {
    /// The version number.
    pub version: u32,
    /// Encryptions since the version was made.
    pub encryptions: u64,
    /// Decryptions since the version was made.
    pub decryptions: u64,
    /// Decryptions recorded in the window.
    pub recent_decryptions: u64,
    /// The first recorded use in the window (RFC 3339), if any.
    pub first_used_at: Option<String>,
    /// The last use (RFC 3339), if any.
    pub last_used_at: Option<String>,
    /// Distinct principals that used the version in the window.
    pub principals: u64,
    /// Nothing decrypted with it in the window, and it is not the primary version.
    pub safe_to_retire: bool,
}

/// GetKeyUsage's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyUsageResponse {
    /// The key.
    pub key_id: String,
    /// The window, in days.
    pub days: u32,
    /// Oldest first.
    pub versions: Vec<VersionUsage>,
    /// The highest minimum decryption version that refuses nothing decrypted in the window
    /// (SetMinDecryptionVersion's input).
    pub recommended_min_decryption_version: u32,
}

impl From<keyward_core::service::UsageReport> for KeyUsageResponse {
    fn from(u: keyward_core::service::UsageReport) -> Self {
        Self {
            key_id: u.key_id.to_string(),
            days: u.days,
            versions: u
                .versions
                .into_iter()
                .map(|v| VersionUsage {
                    version: v.version,
                    encryptions: v.encryptions,
                    decryptions: v.decryptions,
                    recent_decryptions: v.recent_decryptions,
                    first_used_at: v.first_used_at.map(rfc3339),
                    last_used_at: v.last_used_at.map(rfc3339),
                    principals: v.principals,
                    safe_to_retire: v.safe_to_retire,
                })
                .collect(),
            recommended_min_decryption_version: u.recommended_min_decryption_version,
        }
    }
}

/// GetNamespaceUsage's query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct NamespaceUsageQuery {
    /// `true`: answer the authorization decision and do nothing.
    #[serde(default)]
    pub dry_run: Option<bool>,
    /// The window, 1-366 days (default 30).
    pub days: Option<u32>,
    /// Keys per page, 1-100 (default 100): each key costs one read of the audit trail.
    pub limit: Option<u64>,
    /// The cursor from the previous page.
    pub next_token: Option<String>,
}

/// GetNamespaceUsage's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct NamespaceUsageResponse {
    /// The namespace.
    pub namespace: String,
    /// The window, in days.
    pub days: u32,
    /// One report per key, by key id.
    pub keys: Vec<KeyUsageResponse>,
    /// Pass as `next_token` for the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

impl From<keyward_core::service::NamespaceUsage> for NamespaceUsageResponse {
    fn from(u: keyward_core::service::NamespaceUsage) -> Self {
        Self {
            namespace: u.namespace.to_string(),
            days: u.days,
            keys: u.keys.into_iter().map(KeyUsageResponse::from).collect(),
            next_token: u.next_token,
        }
    }
}
