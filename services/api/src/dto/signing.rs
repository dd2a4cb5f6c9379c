//! Signing, public-key and MAC bodies. Binary values are standard padded base64.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Sign's body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignRequest {
    /// `true`: answer the authorization decision and do nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// The message (RAW, 1-4096 bytes) or its digest (DIGEST, the algorithm's hash length),
    /// base64.
    #[schema(format = Byte)]
    pub message: String,
    /// `RAW` (default) or `DIGEST`. ED25519_SHA_512 takes RAW only.
    #[serde(default)]
    pub message_type: Option<String>,
    /// `RSASSA_PSS_SHA_256`, `RSASSA_PSS_SHA_384`, `RSASSA_PSS_SHA_512`,
    /// `RSASSA_PKCS1_V1_5_SHA_256`, `RSASSA_PKCS1_V1_5_SHA_384`, `RSASSA_PKCS1_V1_5_SHA_512`
    /// (RSA keys); `ECDSA_SHA_256` (P-256), `ECDSA_SHA_384` (P-384), `ECDSA_SHA_512` (P-521);
    /// `ED25519_SHA_512` (Ed25519).
    pub signing_algorithm: String,
}

/// Sign's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignResponse {
    /// The key that signed.
    pub key_id: String,
    /// The signature, base64: DER `Ecdsa-Sig-Value` for ECDSA, 64 bytes for Ed25519, the
    /// modulus size for RSA.
    #[schema(format = Byte)]
    pub signature: String,
    /// The algorithm.
    pub signing_algorithm: String,
}

/// Verify's body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// `true`: answer the authorization decision and do nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// The message or its digest, base64, as signed.
    #[schema(format = Byte)]
    pub message: String,
    /// `RAW` (default) or `DIGEST`.
    #[serde(default)]
    pub message_type: Option<String>,
    /// The signature, base64.
    #[schema(format = Byte)]
    pub signature: String,
    /// The algorithm it was made with.
    pub signing_algorithm: String,
}

/// Verify's answer. A signature that does not verify is `signature_valid: false`, not an error.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerifyResponse {
    /// The key.
    pub key_id: String,
    /// Whether the signature is valid for the message under the key.
    pub signature_valid: bool,
    /// The algorithm.
    pub signing_algorithm: String,
}

/// GetPublicKey's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct GetPublicKeyResponse {
    /// The key.
    pub key_id: String,
    /// The DER SubjectPublicKeyInfo, base64.
    #[schema(format = Byte)]
    pub public_key: String,
    /// The same key as PEM (`-----BEGIN PUBLIC KEY-----`), for `openssl` and JWT libraries.
    pub public_key_pem: String,
    /// The spec.
    pub key_spec: String,
    /// The usage.
    pub key_usage: String,
    /// What the key signs with (empty unless SIGN_VERIFY).
    pub signing_algorithms: Vec<String>,
    /// What the key encrypts with (empty unless ENCRYPT_DECRYPT).
    pub encryption_algorithms: Vec<String>,
}

/// GenerateMac's body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateMacRequest {
    /// `true`: answer the authorization decision and do nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// 1-4096 bytes, base64.
    #[schema(format = Byte)]
    pub message: String,
    /// `HMAC_SHA_256` (HMAC_256 keys), `HMAC_SHA_384` (HMAC_384) or `HMAC_SHA_512` (HMAC_512).
    pub mac_algorithm: String,
}

/// GenerateMac's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct GenerateMacResponse {
    /// The key.
    pub key_id: String,
    /// The MAC, base64.
    #[schema(format = Byte)]
    pub mac: String,
    /// The algorithm.
    pub mac_algorithm: String,
}

/// VerifyMac's body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyMacRequest {
    /// `true`: answer the authorization decision and do nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// The message, base64.
    #[schema(format = Byte)]
    pub message: String,
    /// The MAC to check, base64.
    #[schema(format = Byte)]
    pub mac: String,
    /// The algorithm it was made with.
    pub mac_algorithm: String,
}

/// VerifyMac's answer. A wrong MAC is `mac_valid: false`, not an error; the comparison is
/// constant-time.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerifyMacResponse {
    /// The key.
    pub key_id: String,
    /// Whether the MAC is valid.
    pub mac_valid: bool,
    /// The algorithm.
    pub mac_algorithm: String,
}
