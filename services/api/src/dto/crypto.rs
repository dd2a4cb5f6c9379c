//! Cryptographic operation bodies. Binary values are standard padded base64.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Encrypt's body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EncryptRequest {
    /// `true`: answer the authorization decision and do nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// 1-4096 bytes, base64 (RSA keys: at most the algorithm's limit, e.g. 190 bytes for
    /// RSAES_OAEP_SHA_256 under RSA_2048).
    #[schema(format = Byte)]
    pub plaintext: String,
    /// Bound to the ciphertext; Decrypt must present the same map (AES keys only).
    #[serde(default)]
    pub encryption_context: Option<BTreeMap<String, String>>,
    /// `SYMMETRIC_DEFAULT` (default; AES keys) or, for RSA ENCRYPT_DECRYPT keys,
    /// `RSAES_OAEP_SHA_256` or `RSAES_OAEP_SHA_1`: the answer is then the raw RSA ciphertext.
    #[serde(default)]
    pub encryption_algorithm: Option<String>,
}

/// Encrypt's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct EncryptResponse {
    /// The key that encrypted.
    pub key_id: String,
    /// Its version.
    pub key_version: u32,
    /// The self-describing ciphertext blob, base64 (for RSA keys the raw RSA ciphertext).
    #[schema(format = Byte)]
    pub ciphertext_blob: String,
    /// The algorithm that encrypted.
    pub encryption_algorithm: String,
}

/// Decrypt's body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecryptRequest {
    /// `true`: answer the authorization decision and do nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// The blob, base64.
    #[schema(format = Byte)]
    pub ciphertext_blob: String,
    /// The context it was encrypted under.
    #[serde(default)]
    pub encryption_context: Option<BTreeMap<String, String>>,
    /// When given (id or alias), the blob must be under this key. Required with an RSA
    /// `encryption_algorithm` (a raw RSA ciphertext names no key).
    #[serde(default)]
    pub key_id: Option<String>,
    /// `SYMMETRIC_DEFAULT` (default) or the RSAES-OAEP algorithm an RSA ciphertext was made with.
    #[serde(default)]
    pub encryption_algorithm: Option<String>,
}

/// Decrypt's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct DecryptResponse {
    /// The key that decrypted.
    pub key_id: String,
    /// Its version.
    pub key_version: u32,
    /// The plaintext, base64.
    #[schema(format = Byte)]
    pub plaintext: String,
    /// The algorithm that decrypted.
    pub encryption_algorithm: String,
}

/// ReEncrypt's body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReEncryptRequest {
    /// `true`: answer the authorization decision and do nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// The blob, base64.
    #[schema(format = Byte)]
    pub ciphertext_blob: String,
    /// The context it was encrypted under.
    #[serde(default)]
    pub source_encryption_context: Option<BTreeMap<String, String>>,
    /// The key to encrypt under (id or alias).
    pub destination_key_id: String,
    /// The context to bind to the new blob.
    #[serde(default)]
    pub destination_encryption_context: Option<BTreeMap<String, String>>,
}

/// ReEncrypt's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReEncryptResponse {
    /// The key that decrypted.
    pub source_key_id: String,
    /// The key that encrypted.
    pub key_id: String,
    /// Its version.
    pub key_version: u32,
    /// The new blob, base64.
    #[schema(format = Byte)]
    pub ciphertext_blob: String,
}

/// GenerateDataKey's body: `key_spec` or `number_of_bytes`, not both.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateDataKeyRequest {
    /// `true`: answer the authorization decision and do nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// `AES_256` (default) or `AES_128`.
    #[serde(default)]
    pub key_spec: Option<String>,
    /// 1-1024.
    #[serde(default)]
    pub number_of_bytes: Option<u32>,
    /// Bound to the wrapped key.
    #[serde(default)]
    pub encryption_context: Option<BTreeMap<String, String>>,
}

/// GenerateDataKey's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct GenerateDataKeyResponse {
    /// The wrapping key.
    pub key_id: String,
    /// Its version.
    pub key_version: u32,
    /// The data key, base64: use it, then throw it away.
    #[schema(format = Byte)]
    pub plaintext: String,
    /// The data key wrapped, base64: store it beside the data.
    #[schema(format = Byte)]
    pub ciphertext_blob: String,
}

/// GenerateDataKeyWithoutPlaintext's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct GenerateDataKeyWithoutPlaintextResponse {
    /// The wrapping key.
    pub key_id: String,
    /// Its version.
    pub key_version: u32,
    /// The data key wrapped, base64.
    #[schema(format = Byte)]
    pub ciphertext_blob: String,
}

/// GenerateRandom's body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateRandomRequest {
    /// `true`: answer the authorization decision and do nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// 1-1024.
    pub number_of_bytes: u32,
    /// The namespace the request is authorized in.
    pub namespace: String,
}

/// GenerateRandom's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct GenerateRandomResponse {
    /// Random bytes, base64.
    #[schema(format = Byte)]
    pub plaintext: String,
}

/// GenerateDataKeyPair's body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateDataKeyPairRequest {
    /// `true`: answer the authorization decision and do nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// `RSA_2048`, `RSA_3072`, `RSA_4096`, `ECC_NIST_P256`, `ECC_NIST_P384`, `ECC_NIST_P521` or
    /// `ECC_NIST_EDWARDS25519`.
    pub key_pair_spec: String,
    /// Bound to the private key's blob.
    #[serde(default)]
    pub encryption_context: Option<BTreeMap<String, String>>,
}

/// GenerateDataKeyPair's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct GenerateDataKeyPairResponse {
    /// The wrapping key.
    pub key_id: String,
    /// Its version.
    pub key_version: u32,
    /// The pair's spec.
    pub key_pair_spec: String,
    /// The public key, DER SubjectPublicKeyInfo, base64.
    #[schema(format = Byte)]
    pub public_key: String,
    /// The private key, DER PKCS#8, base64: use it, then throw it away.
    #[schema(format = Byte)]
    pub private_key_plaintext: String,
    /// The private key sealed under the wrapping key, base64: Decrypt returns the PKCS#8.
    #[schema(format = Byte)]
    pub private_key_ciphertext_blob: String,
}

/// GenerateDataKeyPairWithoutPlaintext's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct GenerateDataKeyPairWithoutPlaintextResponse {
    /// The wrapping key.
    pub key_id: String,
    /// Its version.
    pub key_version: u32,
    /// The pair's spec.
    pub key_pair_spec: String,
    /// The public key, DER SubjectPublicKeyInfo, base64.
    #[schema(format = Byte)]
    pub public_key: String,
    /// The private key sealed under the wrapping key, base64.
    #[schema(format = Byte)]
    pub private_key_ciphertext_blob: String,
}
