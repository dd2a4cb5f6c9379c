//! Bring-your-own-key bodies.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// GetParametersForImport's body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportParametersRequest {
    /// `true`: answer the authorization decision and do nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// How you will wrap the material: `RSAES_OAEP_SHA_1`, `RSAES_OAEP_SHA_256` (AES and HMAC
    /// keys, small EC keys), `RSA_AES_KEY_WRAP_SHA_1` or `RSA_AES_KEY_WRAP_SHA_256` (any key,
    /// and the only choice for RSA private keys). Default `RSA_AES_KEY_WRAP_SHA_256`. A
    /// backend offers a subset (a PKCS#11 token without RSA-OAEP with SHA-256 offers the
    /// `SHA_1` ones only).
    #[serde(default)]
    pub wrapping_algorithm: Option<String>,
    /// `RSA_2048`, `RSA_3072` or `RSA_4096` (default).
    #[serde(default)]
    pub wrapping_key_spec: Option<String>,
}

/// GetParametersForImport's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportParametersResponse {
    /// The key.
    pub key_id: String,
    /// The wrapping public key, a DER SubjectPublicKeyInfo in base64.
    #[schema(format = Byte)]
    pub public_key: String,
    /// The same key as PEM, for `openssl pkeyutl -encrypt -pubin -inkey`.
    pub public_key_pem: String,
    /// Send it back with the wrapped material; it works for this key only, until
    /// `parameters_valid_to`.
    #[schema(format = Byte)]
    pub import_token: String,
    /// When the token and public key stop working (RFC 3339, 24 hours from now).
    pub parameters_valid_to: String,
}

/// ImportKeyMaterial's body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportKeyMaterialRequest {
    /// `true`: answer the authorization decision and do nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// The token from GetParametersForImport, base64.
    pub import_token: String,
    /// The material wrapped under the public key, base64: 32 raw bytes for `AES_256`, the raw
    /// key for HMAC (32-64 bytes for `HMAC_256`, 48-128 for `HMAC_384`, 64-128 for
    /// `HMAC_512`), a PKCS#8 DER private key for RSA and ECC specs.
    pub encrypted_key_material: String,
    /// When the material expires (RFC 3339, at most 365 days ahead): it is deleted and the key
    /// goes back to `PendingImport`. Absent: it never expires.
    #[serde(default)]
    pub valid_to: Option<String>,
}
