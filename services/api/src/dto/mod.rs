//! Request and response bodies, as the OpenAPI document describes them.

pub mod access_keys;
pub mod aliases;
pub mod approvals;
pub mod audit;
pub mod crypto;
pub mod grants;
pub mod import;
pub mod keys;
pub mod policy;
pub mod signing;

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use keyward_core::Error;
use keyward_core::model::context::EncryptionContext;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use zeroize::Zeroizing;

/// Parses a JSON body; an empty body reads as `{}`. Errors name the problem, not the input.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    let body = if body.iter().all(u8::is_ascii_whitespace) { b"{}".as_slice() } else { body };
    serde_json::from_slice(body).map_err(|e| Error::invalid(format!("invalid JSON body: {e}")))
}

/// Parses a query string.
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, Error> {
    serde_urlencoded_compat(query)
}

fn serde_urlencoded_compat<T: DeserializeOwned>(query: &str) -> Result<T, Error> {
    actix_web::web::Query::<T>::from_query(query)
        .map(actix_web::web::Query::into_inner)
        .map_err(|e| Error::invalid(format!("invalid query: {e}")))
}

/// Decodes a standard, padded base64 field.
pub fn b64_decode(field: &str, value: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
    STANDARD.decode(value).map(Zeroizing::new).map_err(|_| Error::invalid(format!("`{field}` is not valid base64")))
}

/// Encodes bytes as standard, padded base64.
pub fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// PEM text of DER bytes (`-----BEGIN {label}-----`, base64 in 64-character lines).
pub fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Validates an optional encryption context map.
pub fn context(map: Option<BTreeMap<String, String>>) -> Result<EncryptionContext, Error> {
    EncryptionContext::new(map.unwrap_or_default())
}

/// Deserializes a field that distinguishes absent (`None`) from `null` (`Some(None)`).
pub fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Pagination limit: default 100, 1 to 1000.
pub fn limit(value: Option<u64>) -> Result<u64, Error> {
    match value.unwrap_or(100) {
        n @ 1..=1000 => Ok(n),
        _ => Err(Error::invalid("`limit` must be 1-1000")),
    }
}
