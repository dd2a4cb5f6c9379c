//! Bearer JWT authentication: issuers with pinned algorithms and keys from a secret, a PEM
//! file or a JWKS (file or URL); `exp`, `nbf`, `iss` and `aud` required and checked. Every
//! failure answers the same body; the specific reason goes to the audit record only. Tokens
//! never reach a log or an error body.

mod keys;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use actix_web::HttpRequest;
use jsonwebtoken::{Algorithm, Validation, decode, decode_header};
use keys::KeySet;
pub use keys::{KeySource, check_fetch_url};
use keyward_core::Error;
use keyward_core::model::principal::{Principal, PrincipalKind};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Tokens longer than this are refused unread.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// An unknown `kid` refetches a JWKS at most this often.
const UNKNOWN_KID_REFETCH: Duration = Duration::from_secs(60);

/// How one issuer is configured.
#[derive(Debug, Clone)]
pub struct IssuerSpec {
    /// The `iss` value.
    pub issuer: String,
    /// The required `aud` value.
    pub audience: String,
    /// The algorithms tokens from this issuer may use.
    pub algorithms: Vec<Algorithm>,
    /// The claim that lists the principal's groups.
    pub groups_claim: String,
    /// Where the verification keys come from.
    pub source: KeySource,
    /// Clock leeway for `exp` and `nbf`.
    pub leeway_secs: u64,
    /// How often a JWKS is reloaded (a removed key stops working within this period).
    pub refresh: Duration,
}

/// One trusted token issuer.
pub struct Issuer {
    spec: IssuerSpec,
    validation: Validation,
    keys: RwLock<KeySet>,
    last_fetch: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("issuer", &self.spec.issuer)
            .field("audience", &self.spec.audience)
            .field("algorithms", &self.spec.algorithms)
            .field("source", &self.spec.source)
            .finish_non_exhaustive()
    }
}

impl Issuer {
    /// An issuer from its specification. Static keys are loaded now; a JWKS is loaded by
    /// [`Authenticator::prime`].
    pub fn new(spec: IssuerSpec) -> Result<Self, String> {
        if spec.algorithms.is_empty() {
            return Err("pin at least one algorithm".into());
        }
        for alg in &spec.algorithms {
            let fits = match (&spec.source, alg) {
                (KeySource::Secret(_), Algorithm::HS256) => true,
                (KeySource::Secret(_), _) | (_, Algorithm::HS256) => false,
                (_, Algorithm::RS256 | Algorithm::ES256 | Algorithm::EdDSA) => true,
                _ => false,
            };
            if !fits {
                return Err(format!(
                    "algorithm {alg:?} does not fit the key source (HS256 needs `secret_file`; RS256, ES256 and \
                     EdDSA need `public_key_file`, `jwks_file` or `jwks_url`)"
                ));
            }
        }
        if matches!(spec.source, KeySource::Pem(_)) && spec.algorithms.len() != 1 {
            return Err("a `public_key_file` verifies exactly one algorithm".into());
        }
        if let KeySource::JwksUrl(url) = &spec.source {
            check_fetch_url(url).map_err(|e| format!("`jwks_url` {e}"))?;
        }
        let mut validation = Validation::new(spec.algorithms[0]);
        validation.algorithms = spec.algorithms.clone();
        validation.set_issuer(&[&spec.issuer]);
        validation.set_audience(&[&spec.audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = spec.leeway_secs;
        let keys =
            if spec.source.is_jwks() { KeySet::default() } else { keys::load_static(&spec.source, &spec.algorithms)? };
        Ok(Self { spec, validation, keys: RwLock::new(keys), last_fetch: Mutex::new(None) })
    }

    /// An HS256 issuer with a shared secret (the dev setup and benchmarks).
    pub fn hs256(
        issuer: &str,
        audience: &str,
        groups_claim: &str,
        secret: &Zeroizing<Vec<u8>>,
        leeway_secs: u64,
    ) -> Result<Self, String> {
        Self::new(IssuerSpec {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            algorithms: vec![Algorithm::HS256],
            groups_claim: groups_claim.to_owned(),
            source: KeySource::Secret(secret.clone()),
            leeway_secs,
            refresh: Duration::from_secs(300),
        })
    }

    /// The `iss` value.
    pub fn issuer(&self) -> &str {
        &self.spec.issuer
    }

    fn keys(&self) -> KeySet {
        self.keys.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Reloads the JWKS; returns whether the key set changed.
    async fn refresh(&self, http: &reqwest::Client) -> Result<bool, String> {
        let bytes = keys::fetch_jwks(&self.spec.source, http).await?;
        let fresh = keys::parse_jwks(&bytes, &self.spec.algorithms)?;
        let mut current = self.keys.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let changed = current.fingerprint != fresh.fingerprint;
        *current = fresh;
        Ok(changed)
    }

    /// Claims a JWKS refetch when one is due: the last fetch is older than the refresh
    /// period, or (for a token naming an unknown `kid`) older than a minute or the period.
    /// The first caller to claim fetches; concurrent callers go on with the current keys.
    fn claim_refetch(&self, unknown_kid: bool) -> bool {
        if !self.spec.source.is_jwks() {
            return false;
        }
        let mut last = self.last_fetch.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let age = last.map(|t| t.elapsed());
        let due = match age {
            None => true,
            Some(age) if age >= self.spec.refresh => true,
            Some(age) => unknown_kid && age >= UNKNOWN_KID_REFETCH.min(self.spec.refresh),
        };
        if due {
            *last = Some(Instant::now());
        }
        due
    }
}

/// The service a verified client certificate names (its subject CN), set per connection.
#[derive(Debug, Clone)]
pub struct ClientCertificate {
    /// The service id.
    pub service: String,
}

/// Most verified tokens remembered; past it, expired entries go, then everything.
const TOKEN_CACHE_CAPACITY: usize = 10_000;

struct Cached {
    principal: Principal,
    exp: u64,
    generation: u64,
}

/// Verifies bearer tokens against the configured issuers, remembering verified tokens (by
/// SHA-256 of the token, until their `exp`, while the issuers' keys are unchanged) so
/// signature checks stay off the hot path.
pub struct Authenticator {
    issuers: Vec<Issuer>,
    verified: Mutex<HashMap<[u8; 32], Cached>>,
    /// Bumped whenever a JWKS changes: cached verifications from older keys are void.
    generation: AtomicU64,
    http: reqwest::Client,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator").field("issuers", &self.issuers).finish_non_exhaustive()
    }
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

/// Every authentication failure answers the same generic body, so a caller cannot probe
/// which check failed; the reason goes to the audit record only.
fn failure(reason: impl Into<String>) -> Error {
    Error::unauthenticated(reason)
}

impl Authenticator {
    /// An authenticator trusting these issuers (none trusts nobody).
    pub fn new(issuers: Vec<Issuer>) -> Self {
        // JWKS fetches use rustls with the process-wide provider; a second install is harmless.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self { issuers, verified: Mutex::default(), generation: AtomicU64::new(0), http }
    }

    /// Loads every JWKS; a server refuses to start when one cannot be loaded.
    pub async fn prime(&self) -> Result<(), String> {
        for issuer in self.issuers.iter().filter(|i| i.claim_refetch(false)) {
            issuer.refresh(&self.http).await.map_err(|e| format!("issuer `{}`: {e}", issuer.spec.issuer))?;
        }
        Ok(())
    }

    /// Refetches one issuer's JWKS; a change voids every cached verification.
    async fn refetch(&self, issuer: &Issuer) {
        match issuer.refresh(&self.http).await {
            Ok(true) => {
                self.generation.fetch_add(1, Ordering::AcqRel);
                tracing::info!(issuer = %issuer.spec.issuer, "issuer keys changed");
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(issuer = %issuer.spec.issuer, error = %e, "JWKS refresh failed; keeping the last keys")
            }
        }
    }

    /// Authenticates a request from its `Authorization` header, or else from a verified
    /// client certificate (mutual TLS), which names a service with no groups.
    pub async fn authenticate(&self, req: &HttpRequest) -> Result<Principal, Error> {
        let Some(header) = req.headers().get(actix_web::http::header::AUTHORIZATION) else {
            return match req.conn_data::<ClientCertificate>() {
                Some(cert) => {
                    Ok(Principal { kind: PrincipalKind::Service, id: cert.service.clone(), groups: Vec::new() })
                }
                None => Err(failure("no authorization header")),
            };
        };
        let value = header.to_str().map_err(|_| failure("authorization header is not text"))?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or_else(|| failure("authorization is not a bearer token"))?
            .trim();
        self.verify(token).await
    }

    /// Verifies one token.
    pub async fn verify(&self, token: &str) -> Result<Principal, Error> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(failure("token longer than 8 KiB"));
        }
        // Due refreshes run before the cache is consulted, so a removed key stops working
        // within the refresh period even for cached tokens.
        for issuer in &self.issuers {
            if issuer.claim_refetch(false) {
                self.refetch(issuer).await;
            }
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(p) = self.cached(&digest) {
            return Ok(p);
        }
        let generation = self.generation.load(Ordering::Acquire);
        let (principal, exp) = self.verify_signed(token).await?;
        let mut cache = self.verified.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= TOKEN_CACHE_CAPACITY {
            let now = jsonwebtoken::get_current_timestamp();
            cache.retain(|_, c| now < c.exp);
            if cache.len() >= TOKEN_CACHE_CAPACITY {
                cache.clear();
            }
        }
        cache.insert(digest, Cached { principal: principal.clone(), exp, generation });
        Ok(principal)
    }

    fn cached(&self, digest: &[u8; 32]) -> Option<Principal> {
        let now = jsonwebtoken::get_current_timestamp();
        let generation = self.generation.load(Ordering::Acquire);
        let mut cache = self.verified.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match cache.get(digest) {
            // No leeway here: a cached token stops working at its `exp`.
            Some(c) if now < c.exp && c.generation == generation => Some(c.principal.clone()),
            Some(_) => {
                cache.remove(digest);
                None
            }
            None => None,
        }
    }

    /// Checks header, signature and claims; returns the principal and the token's `exp`.
    async fn verify_signed(&self, token: &str) -> Result<(Principal, u64), Error> {
        let header = decode_header(token).map_err(|e| failure(format!("malformed token header: {e}")))?;
        // Keys come from configuration only; a token naming its own key is refused unread.
        if header.jku.is_some() || header.x5u.is_some() || header.jwk.is_some() || header.x5c.is_some() {
            return Err(failure("token names its own key (jku/x5u/jwk/x5c)"));
        }
        // The issuer picks the key and algorithms; the signature is checked with those only.
        let peek: Unverified = jsonwebtoken::dangerous::insecure_decode_claims(token)
            .map_err(|e| failure(format!("malformed token: {e}")))?;
        let iss = peek.iss.ok_or_else(|| failure("token has no `iss`"))?;
        let issuer = self
            .issuers
            .iter()
            .find(|i| i.spec.issuer == iss)
            .ok_or_else(|| failure("token from an untrusted issuer"))?;
        if !issuer.spec.algorithms.contains(&header.alg) {
            return Err(failure(format!("algorithm {:?} is not pinned for this issuer", header.alg)));
        }
        let kid = header.kid.as_deref();
        let mut set = issuer.keys();
        if set.find(kid).is_none() && issuer.claim_refetch(true) {
            self.refetch(issuer).await;
            set = issuer.keys();
        }
        let key = set.find(kid).ok_or_else(|| failure("no key for the token's `kid`"))?;
        let data =
            decode::<Claims>(token, key, &issuer.validation).map_err(|e| failure(format!("token rejected: {e}")))?;
        let claims = data.claims;
        if claims.sub.is_empty() || claims.sub.len() > 256 {
            return Err(failure("`sub` must be 1-256 characters"));
        }
        let kind = match claims.principal_type.as_deref() {
            None | Some("user") => PrincipalKind::User,
            Some("service") => PrincipalKind::Service,
            Some(_) => return Err(failure("unknown `principal_type`")),
        };
        let groups = match claims.rest.get(&issuer.spec.groups_claim) {
            None => Vec::new(),
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_owned).ok_or_else(|| failure("groups must be strings")))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(failure("groups claim must be an array")),
        };
        Ok((Principal { kind, id: claims.sub, groups }, claims.exp))
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header, encode};

    use super::*;

    fn token(secret: &[u8], exp: u64) -> Result<String, String> {
        let now = jsonwebtoken::get_current_timestamp();
        let claims =
            serde_json::json!({"iss": "t", "aud": "a", "sub": "s", "nbf": now - 10, "exp": exp, "groups": ["g"]});
        encode(&Header::default(), &claims, &EncodingKey::from_secret(secret)).map_err(|e| e.to_string())
    }

    fn digest(token: &str) -> [u8; 32] {
        Sha256::digest(token.as_bytes()).into()
    }

    #[actix_web::test]
    async fn verified_tokens_are_cached_until_exp() -> Result<(), String> {
        let secret = Zeroizing::new(b"0123456789abcdef0123456789abcdef".to_vec());
        let issuer = Issuer::hs256("t", "a", "groups", &secret, 0)?;
        let auth = Authenticator::new(vec![issuer]);
        let now = jsonwebtoken::get_current_timestamp();
        let good = token(&secret, now + 60)?;
        assert!(auth.cached(&digest(&good)).is_none(), "nothing cached before the first verification");
        assert_eq!(auth.verify(&good).await.ok().map(|p| p.groups), Some(vec!["g".to_owned()]));
        assert_eq!(auth.cached(&digest(&good)).map(|p| p.id), Some("s".to_owned()), "cached once verified");
        assert_eq!(auth.verify(&good).await.ok().map(|p| p.id), Some("s".to_owned()), "served from the cache");
        // A well-formed token signed with another secret: refused, and never cached.
        let forged = token(b"another-secret-another-secret-xx", now + 60)?;
        assert_eq!(forged.split('.').count(), 3, "a real JWT, not an empty string");
        assert!(auth.verify(&forged).await.is_err(), "other signatures are not in the cache");
        assert!(auth.cached(&digest(&forged)).is_none());
        // A cached token stops working at its exp.
        let short = token(&secret, now + 1)?;
        assert!(auth.verify(&short).await.is_ok());
        std::thread::sleep(std::time::Duration::from_millis(2100));
        assert!(auth.verify(&short).await.is_err());
        Ok(())
    }
}
