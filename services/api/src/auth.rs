//! Bearer JWT authentication: issuers with pinned algorithms; `exp`, `nbf`, `iss` and `aud`
//! required and checked. Tokens never reach a log or an error body.

use std::collections::HashMap;
use std::sync::Mutex;

use actix_web::HttpRequest;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
use keyward_core::Error;
use keyward_core::model::principal::{Principal, PrincipalKind};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Tokens longer than this are refused unread.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// One trusted token issuer.
pub struct Issuer {
    /// The `iss` value.
    pub issuer: String,
    /// The required `aud` value.
    pub audience: String,
    /// The claim that lists the principal's groups.
    pub groups_claim: String,
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("algorithms", &self.validation.algorithms)
            .finish_non_exhaustive()
    }
}

impl Issuer {
    /// An HS256 issuer with a shared secret.
    pub fn hs256(
        issuer: &str,
        audience: &str,
        groups_claim: &str,
        secret: &Zeroizing<Vec<u8>>,
        leeway_secs: u64,
    ) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = leeway_secs;
        Self {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            groups_claim: groups_claim.to_owned(),
            key: DecodingKey::from_secret(secret),
            validation,
        }
    }
}

/// Most verified tokens remembered; past it the cache starts over.
const TOKEN_CACHE_CAPACITY: usize = 10_000;

/// Verifies bearer tokens against the configured issuers, remembering verified tokens (by
/// SHA-256 of the token, until their `exp`) so signature checks stay off the hot path.
#[derive(Debug)]
pub struct Authenticator {
    issuers: Vec<Issuer>,
    verified: Mutex<HashMap<[u8; 32], (Principal, u64)>>,
}

#[derive(Deserialize)]
struct Unverified {
    iss: Option<String>,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
    #[serde(default)]
    principal_type: Option<String>,
    #[serde(flatten)]
    rest: serde_json::Map<String, serde_json::Value>,
}

impl Authenticator {
    /// An authenticator trusting these issuers (none trusts nobody).
    pub fn new(issuers: Vec<Issuer>) -> Self {
        Self { issuers, verified: Mutex::default() }
    }

    /// Authenticates a request from its `Authorization` header.
    pub fn authenticate(&self, req: &HttpRequest) -> Result<Principal, Error> {
        let header = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .ok_or_else(|| Error::unauthenticated("no authorization header"))?;
        let value = header.to_str().map_err(|_| Error::unauthenticated("authorization header is not text"))?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or_else(|| Error::unauthenticated("authorization is not a bearer token"))?
            .trim();
        self.verify(token)
    }

    /// Verifies one token.
    pub fn verify(&self, token: &str) -> Result<Principal, Error> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Error::unauthenticated("token too long"));
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = jsonwebtoken::get_current_timestamp();
        let mut cache = self.verified.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match cache.get(&digest) {
            // No leeway here: a cached token stops working at its `exp`.
            Some((principal, exp)) if now < *exp => return Ok(principal.clone()),
            Some(_) => {
                cache.remove(&digest);
            }
            None => {}
        }
        drop(cache);
        let (principal, exp) = self.verify_signed(token)?;
        let mut cache = self.verified.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= TOKEN_CACHE_CAPACITY {
            cache.clear();
        }
        cache.insert(digest, (principal.clone(), exp));
        Ok(principal)
    }

    /// Checks signature and claims; returns the principal and the token's `exp`.
    fn verify_signed(&self, token: &str) -> Result<(Principal, u64), Error> {
        // The issuer picks the key and algorithms; the signature is checked with those only.
        let peek: Unverified = jsonwebtoken::dangerous::insecure_decode_claims(token)
            .map_err(|e| Error::unauthenticated(format!("malformed token: {e}")))?;
        let iss = peek.iss.ok_or_else(|| Error::unauthenticated("token has no `iss`"))?;
        let issuer = self
            .issuers
            .iter()
            .find(|i| i.issuer == iss)
            .ok_or_else(|| Error::unauthenticated("token from an untrusted issuer"))?;
        let data = decode::<Claims>(token, &issuer.key, &issuer.validation)
            .map_err(|e| Error::unauthenticated(format!("token rejected: {e}")))?;
        let claims = data.claims;
        if claims.sub.is_empty() || claims.sub.len() > 256 {
            return Err(Error::unauthenticated("`sub` must be 1-256 characters"));
        }
        let kind = match claims.principal_type.as_deref() {
            None | Some("user") => PrincipalKind::User,
            Some("service") => PrincipalKind::Service,
            Some(_) => return Err(Error::unauthenticated("unknown `principal_type`")),
        };
        let groups = match claims.rest.get(&issuer.groups_claim) {
            None => Vec::new(),
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_owned).ok_or_else(|| Error::unauthenticated("groups must be strings")))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(Error::unauthenticated("groups claim must be an array")),
        };
        Ok((Principal { kind, id: claims.sub, groups }, claims.exp))
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header, encode};

    use super::*;

    fn token(secret: &[u8], exp: u64) -> String {
        let now = jsonwebtoken::get_current_timestamp();
        let claims =
            serde_json::json!({"iss": "t", "aud": "a", "sub": "s", "nbf": now - 10, "exp": exp, "groups": ["g"]});
        encode(&Header::default(), &claims, &EncodingKey::from_secret(secret)).unwrap_or_default()
    }

    #[test]
    fn verified_tokens_are_cached_until_exp() {
        let secret = Zeroizing::new(b"0123456789abcdef0123456789abcdef".to_vec());
        let auth = Authenticator::new(vec![Issuer::hs256("t", "a", "groups", &secret, 0)]);
        let now = jsonwebtoken::get_current_timestamp();
        let good = token(&secret, now + 60);
        assert_eq!(auth.verify(&good).ok().map(|p| p.groups), Some(vec!["g".to_owned()]));
        assert_eq!(auth.verify(&good).ok().map(|p| p.id), Some("s".to_owned()), "served from the cache");
        let forged = token(b"another-secret-another-secret-xx", now + 60);
        assert!(auth.verify(&forged).is_err(), "other signatures are not in the cache");
        // A cached token stops working at its exp.
        let short = token(&secret, now + 1);
        assert!(auth.verify(&short).is_ok());
        std::thread::sleep(std::time::Duration::from_millis(2100));
        assert!(auth.verify(&short).is_err());
    }
}
