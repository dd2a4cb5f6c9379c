//! The XKS proxy API's JSON shapes and its byte formats: the associated data that binds
//! `ciphertextMetadata`, the metadata Keyward writes there (the key version), and the
//! Ciphertext Data Integrity Value.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::error::XksError;

/// `requestMetadata`: what AWS KMS says about the request it forwards. Unknown fields are
/// ignored (AWS may add some); which are required depends on the operation.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestMetadata {
    /// The AWS principal that called AWS KMS.
    pub aws_principal_arn: Option<String>,
    /// The AWS KMS key.
    pub kms_key_arn: Option<String>,
    /// The AWS KMS operation.
    pub kms_operation: Option<String>,
    /// AWS KMS's request id (CloudTrail's).
    pub kms_request_id: Option<String>,
    /// The AWS service calling on the principal's behalf.
    pub kms_via_service: Option<String>,
    /// The VPC the call came from.
    pub aws_source_vpc: Option<String>,
    /// The VPC endpoint the call came through.
    pub aws_source_vpce: Option<String>,
}

/// Longest metadata value accepted (ARNs are at most 2048 characters).
const MAX_FIELD: usize = 2048;

impl RequestMetadata {
    /// Checks the fields an operation requires and turns them into the facts policies read.
    pub fn facts(&self, store: &str, principal_and_key: bool) -> Result<BTreeMap<String, String>, XksError> {
        let mut facts = BTreeMap::from([("xks_store".to_owned(), store.to_owned())]);
        let fields = [
            ("kms_request_id", &self.kms_request_id, true),
            ("kms_operation", &self.kms_operation, true),
            ("aws_principal_arn", &self.aws_principal_arn, principal_and_key),
            ("kms_key_arn", &self.kms_key_arn, false),
            ("kms_via_service", &self.kms_via_service, false),
            ("aws_source_vpc", &self.aws_source_vpc, false),
            ("aws_source_vpce", &self.aws_source_vpce, false),
        ];
        for (name, value, required) in fields {
            match value.as_deref() {
                Some(v) if !v.is_empty() && v.len() <= MAX_FIELD && !v.chars().any(char::is_control) => {
                    facts.insert(name.to_owned(), v.to_owned());
                }
                None if !required => {}
                _ => return Err(XksError::validation(format!("requestMetadata.{name} is missing or invalid"))),
            }
        }
        Ok(facts)
    }
}

/// The body of every operation: at least `requestMetadata`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    /// Required on every operation, health included.
    pub request_metadata: Option<RequestMetadata>,
    /// Encrypt.
    pub plaintext: Option<String>,
    /// Encrypt and Decrypt: `AES_GCM`.
    pub encryption_algorithm: Option<String>,
    /// Encrypt and Decrypt.
    pub additional_authenticated_data: Option<String>,
    /// Encrypt: `SHA_256` asks for a CDIV.
    pub ciphertext_data_integrity_value_algorithm: Option<String>,
    /// Decrypt.
    pub ciphertext: Option<String>,
    /// Decrypt: what Encrypt returned.
    pub ciphertext_metadata: Option<String>,
    /// Decrypt.
    pub initialization_vector: Option<String>,
    /// Decrypt.
    pub authentication_tag: Option<String>,
}

/// Decodes an optional base64 field (standard alphabet, padded).
pub fn base64_field(name: &str, value: Option<&str>) -> Result<Option<Vec<u8>>, XksError> {
    value.map(|v| STANDARD.decode(v).map_err(|_| XksError::validation(format!("`{name}` is not base64")))).transpose()
}

/// Encodes bytes as the API's base64.
pub fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Keyward's `ciphertextMetadata`: a marker, a format byte and the key version (7 bytes of the
/// 20 allowed), so ciphertexts made before a rotation still decrypt.
const METADATA_MARK: &[u8; 3] = b"kw\x01";

/// The metadata naming `version`.
pub fn metadata(version: u32) -> Vec<u8> {
    let mut out = METADATA_MARK.to_vec();
    out.extend_from_slice(&version.to_be_bytes());
    out
}

/// The version a `ciphertextMetadata` names, if it is Keyward's.
pub fn version_of(metadata: &[u8]) -> Option<u32> {
    let rest = metadata.strip_prefix(METADATA_MARK.as_slice())?;
    Some(u32::from_be_bytes(rest.try_into().ok()?))
}

/// The AES-GCM associated data when metadata is present, as the specification defines it:
/// `u16be(len aad) || aad || u8(len metadata) || metadata`.
pub fn bound_aad(aad: &[u8], metadata: &[u8]) -> Result<Vec<u8>, XksError> {
    let aad_len = u16::try_from(aad.len())
        .map_err(|_| XksError::validation("`additionalAuthenticatedData` is over 65535 bytes"))?;
    let md_len = u8::try_from(metadata.len()).map_err(|_| XksError::invalid_ciphertext())?;
    let mut out = Vec::with_capacity(3 + aad.len() + metadata.len());
    out.extend_from_slice(&aad_len.to_be_bytes());
    out.extend_from_slice(aad);
    out.push(md_len);
    out.extend_from_slice(metadata);
    Ok(out)
}

/// The Ciphertext Data Integrity Value: SHA-256 over aad || metadata || iv || ciphertext || tag.
pub fn cdiv(aad: &[u8], metadata: &[u8], iv: &[u8], ciphertext: &[u8], tag: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in [aad, metadata, iv, ciphertext, tag] {
        h.update(part);
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_specification_cdiv_example() {
        // Appendix C: 33 bytes of AAD, 13 of metadata, 12 of IV, 12 of ciphertext, 16 of tag.
        let aad = b"project=nile,department=marketing";
        let md = b"key_version=1";
        let iv = hex::decode("1ccae5470f397002547790 31".replace(' ', "")).unwrap_or_else(|e| unreachable!("{e}"));
        let ct = hex::decode("821c642b5b71783367deaf18").unwrap_or_else(|e| unreachable!("{e}"));
        let tag = hex::decode("bc1c4dda7707d6812447c5955e99b261").unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(b64(&cdiv(aad, md, &iv, &ct, &tag)), "qHA/ImC9h5HsLRXqCyPmWgYx7tzyoTplzILbP0fPXsc=");
    }

    #[test]
    fn metadata_names_a_version_and_is_bound_with_lengths() {
        assert_eq!(version_of(&metadata(7)), Some(7));
        assert_eq!(version_of(b"key_version=1"), None);
        assert_eq!(version_of(&metadata(7)[..6]), None);
        // Moving bytes between the AAD and the metadata changes the bound AAD.
        let a = bound_aad(b"ab", b"c").unwrap_or_else(|e| unreachable!("{e:?}"));
        let b = bound_aad(b"a", b"bc").unwrap_or_else(|e| unreachable!("{e:?}"));
        assert_ne!(a, b);
        assert_eq!(a, b"\x00\x02ab\x01c");
    }

    #[test]
    fn required_metadata_fields() {
        let m = RequestMetadata {
            kms_request_id: Some("r".into()),
            kms_operation: Some("Encrypt".into()),
            ..Default::default()
        };
        assert!(m.facts("s", false).is_ok());
        assert!(m.facts("s", true).is_err(), "no principal");
        let empty = RequestMetadata { kms_request_id: Some(String::new()), ..m };
        assert!(empty.facts("s", false).is_err());
    }
}
