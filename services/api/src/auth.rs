//! Bearer JWT authentication: issuers with pinned algorithms; `exp`, `nbf`, `iss` and `aud`
//! required and checked. Tokens never reach a log or an error body.

use actix_web::HttpRequest;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
use keyward_core::Error;
use keyward_core::model::principal::{Principal, PrincipalKind};
use serde::Deserialize;
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

/// Verifies bearer tokens against the configured issuers.
#[derive(Debug)]
pub struct Authenticator {
    issuers: Vec<Issuer>,
}

#[derive(Deserialize)]
struct Unverified {
    iss: Option<String>,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    principal_type: Option<String>,
    #[serde(flatten)]
    rest: serde_json::Map<String, serde_json::Value>,
}

impl Authenticator {
    /// An authenticator trusting these issuers (none trusts nobody).
    pub fn new(issuers: Vec<Issuer>) -> Self {
        Self { issuers }
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
        Ok(Principal { kind, id: claims.sub, groups })
    }
}
