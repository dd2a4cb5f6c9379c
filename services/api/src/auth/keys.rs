//! Where an issuer's verification keys come from: a shared secret, a PEM public key, or a
//! JWKS document (a file or a URL), and how a JWKS is refreshed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey};
use zeroize::Zeroizing;

/// Largest JWKS document accepted.
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// The configured origin of an issuer's keys.
#[derive(Clone)]
pub enum KeySource {
    /// An HS256 shared secret.
    Secret(Zeroizing<Vec<u8>>),
    /// A PEM public key (RSA, EC P-256 or Ed25519, matching the pinned algorithm).
    Pem(Vec<u8>),
    /// A JWKS document on disk.
    JwksFile(PathBuf),
    /// A JWKS document fetched over HTTPS (plain HTTP only on loopback).
    JwksUrl(String),
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Secret(_) => f.write_str("Secret(..)"),
            Self::Pem(_) => f.write_str("Pem(..)"),
            Self::JwksFile(p) => write!(f, "JwksFile({})", p.display()),
            Self::JwksUrl(u) => write!(f, "JwksUrl({u})"),
        }
    }
}

impl KeySource {
    /// Whether the keys can change while the server runs.
    pub fn is_jwks(&self) -> bool {
        matches!(self, Self::JwksFile(_) | Self::JwksUrl(_))
    }
}

/// The keys in force for one issuer.
#[derive(Clone, Default)]
pub(crate) struct KeySet {
    /// Keys named by `kid` (from a JWKS).
    pub by_kid: HashMap<String, DecodingKey>,
    /// The one key of a secret or PEM source.
    pub single: Option<DecodingKey>,
    /// A fingerprint of the document, to notice changes.
    pub fingerprint: u64,
}

impl KeySet {
    /// The key for a token's `kid`: a JWKS needs a matching `kid` (or has exactly one key).
    pub fn find(&self, kid: Option<&str>) -> Option<&DecodingKey> {
        if let Some(k) = &self.single {
            return Some(k);
        }
        match kid {
            Some(kid) => self.by_kid.get(kid),
            None if self.by_kid.len() == 1 => self.by_kid.values().next(),
            None => None,
        }
    }
}

/// Loads the static key of a secret or PEM source for the pinned algorithms.
pub(crate) fn load_static(source: &KeySource, algorithms: &[Algorithm]) -> Result<KeySet, String> {
    let key = match source {
        KeySource::Secret(secret) => {
            if secret.len() < 32 {
                return Err("an HS256 secret must be at least 32 bytes".into());
            }
            DecodingKey::from_secret(secret)
        }
        KeySource::Pem(pem) => {
            let alg = algorithms.first().copied().ok_or("no algorithm pinned")?;
            let parsed = match alg {
                Algorithm::RS256 => DecodingKey::from_rsa_pem(pem),
                Algorithm::ES256 => DecodingKey::from_ec_pem(pem),
                Algorithm::EdDSA => DecodingKey::from_ed_pem(pem),
                other => return Err(format!("a PEM key cannot verify {other:?}")),
            };
            parsed.map_err(|e| format!("public key: {e}"))?
        }
        KeySource::JwksFile(_) | KeySource::JwksUrl(_) => return Err("not a static key source".into()),
    };
    Ok(KeySet { single: Some(key), ..KeySet::default() })
}

/// Parses a JWKS document, keeping the keys usable with the pinned algorithms.
pub(crate) fn parse_jwks(bytes: &[u8], algorithms: &[Algorithm]) -> Result<KeySet, String> {
    if bytes.len() > MAX_JWKS_BYTES {
        return Err(format!("JWKS is larger than {MAX_JWKS_BYTES} bytes"));
    }
    let set: JwkSet = serde_json::from_slice(bytes).map_err(|e| format!("JWKS is not valid: {e}"))?;
    let mut by_kid = HashMap::new();
    for jwk in &set.keys {
        let Some(kid) = jwk.common.key_id.clone() else { continue };
        let usable = algorithms.iter().any(|alg| match (&jwk.algorithm, alg) {
            (AlgorithmParameters::RSA(_), Algorithm::RS256)
            | (AlgorithmParameters::EllipticCurve(_), Algorithm::ES256)
            | (AlgorithmParameters::OctetKeyPair(_), Algorithm::EdDSA) => true,
            // Symmetric keys are never taken from a JWKS.
            _ => false,
        });
        if !usable || !jwk.is_supported() {
            continue;
        }
        if let Ok(key) = DecodingKey::from_jwk(jwk) {
            by_kid.insert(kid, key);
        }
    }
    let fingerprint = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        bytes.hash(&mut h);
        h.finish()
    };
    Ok(KeySet { by_kid, single: None, fingerprint })
}

/// Fetches a JWKS document from its file or URL.
pub(crate) async fn fetch_jwks(source: &KeySource, http: &reqwest::Client) -> Result<Vec<u8>, String> {
    match source {
        KeySource::JwksFile(path) => {
            tokio_read(path.clone()).await.map_err(|e| format!("cannot read JWKS `{}`: {e}", path.display()))
        }
        KeySource::JwksUrl(url) => {
            let response = http
                .get(url)
                .timeout(Duration::from_secs(5))
                .send()
                .await
                .map_err(|e| format!("JWKS fetch from {url} failed: {e}"))?;
            if !response.status().is_success() {
                return Err(format!("JWKS fetch from {url}: HTTP {}", response.status()));
            }
            let body = response.bytes().await.map_err(|e| format!("JWKS fetch from {url}: {e}"))?;
            Ok(body.to_vec())
        }
        KeySource::Secret(_) | KeySource::Pem(_) => Err("not a JWKS source".into()),
    }
}

async fn tokio_read(path: PathBuf) -> std::io::Result<Vec<u8>> {
    actix_web::rt::task::spawn_blocking(move || std::fs::read(path))
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?
}

/// Checks a URL the server or console fetches from: HTTPS, or plain HTTP to a loopback host
/// (for tests and sidecars).
pub fn check_fetch_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("`{url}`: {e}"))?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" => {
            let host = parsed.host_str().unwrap_or("").trim_start_matches('[').trim_end_matches(']');
            let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
            if loopback { Ok(()) } else { Err(format!("`{url}` must use https")) }
        }
        other => Err(format!("`{url}`: scheme `{other}` is not supported")),
    }
}
