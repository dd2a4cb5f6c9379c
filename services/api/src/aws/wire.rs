//! Wire helpers: JSON bodies, base64 blobs, epoch-second timestamps, tags.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use keyward_core::Error;
use keyward_core::model::context::EncryptionContext;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::error::constraint;

/// Parses a request body; an empty body reads as `{}`. Unknown fields are ignored, as AWS
/// does (newer SDKs send fields older services do not know).
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    let body = if body.iter().all(u8::is_ascii_whitespace) { b"{}".as_slice() } else { body };
    serde_json::from_slice(body)
        .map_err(|e| Error::invalid(format!("the request body is not valid for this operation: {e}")))
}

#[derive(Deserialize)]
struct DryRunProbe {
    #[serde(rename = "DryRun", default)]
    dry_run: Option<bool>,
}

/// Whether the body sets `"DryRun": true`.
pub fn dry_run(body: &[u8]) -> bool {
    body.windows(8).any(|w| w == b"\"DryRun\"")
        && serde_json::from_slice::<DryRunProbe>(body).ok().and_then(|p| p.dry_run) == Some(true)
}

/// Decodes a base64 blob field (standard alphabet).
pub fn blob(field: &str, value: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
    STANDARD.decode(value).map(Zeroizing::new).map_err(|_| constraint(field, "Member must be valid base64"))
}

/// Encodes bytes as standard base64.
pub fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// A time as the protocol writes it: epoch seconds.
pub fn epoch(t: DateTime<Utc>) -> f64 {
    // Microsecond timestamps fit an f64 exactly for the next few centuries.
    #[allow(clippy::cast_precision_loss, reason = "epoch microseconds fit an f64 mantissa")]
    let us = t.timestamp_micros() as f64;
    us / 1e6
}

/// An encryption context parameter.
pub fn context(map: Option<BTreeMap<String, String>>) -> Result<EncryptionContext, Error> {
    EncryptionContext::new(map.unwrap_or_default())
}

/// One AWS tag.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tag {
    /// The name.
    #[serde(rename = "TagKey")]
    pub key: String,
    /// The value.
    #[serde(rename = "TagValue")]
    pub value: String,
}

/// A `Limit` parameter (1-1000, default 100).
pub fn limit(value: Option<i64>) -> Result<u64, Error> {
    match value {
        None => Ok(100),
        Some(n @ 1..=1000) => Ok(n.unsigned_abs()),
        Some(_) => Err(constraint("limit", "Member must have value between 1 and 1000")),
    }
}

/// Checks an `EncryptionAlgorithm` parameter: only `SYMMETRIC_DEFAULT` exists for these keys.
pub fn symmetric(field: &str, value: Option<&str>) -> Result<(), Error> {
    match value {
        None | Some("SYMMETRIC_DEFAULT") => Ok(()),
        Some(_) => Err(Error::new(
            keyward_core::ErrorCode::UnsupportedOperation,
            format!("`{field}` must be SYMMETRIC_DEFAULT for a symmetric key"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dry_run_is_read_only_when_true() {
        assert!(dry_run(br#"{"KeyId":"k","DryRun":true}"#));
        assert!(!dry_run(br#"{"KeyId":"k","DryRun":false}"#));
        assert!(!dry_run(br#"{"KeyId":"DryRun"}"#));
        assert!(!dry_run(b"not json \"DryRun\""));
    }

    #[test]
    fn limits_follow_aws() {
        assert_eq!(limit(None).ok(), Some(100));
        assert_eq!(limit(Some(1000)).ok(), Some(1000));
        assert!(limit(Some(0)).is_err() && limit(Some(1001)).is_err());
    }
}
