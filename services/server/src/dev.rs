//! The embedded dev setup: a generated HS256 secret, an admin token, and `keyward token`.

use std::io::Write;
use std::path::Path;

use chrono::{Duration, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde::Serialize;
use zeroize::Zeroizing;

/// The dev issuer's `iss`.
pub const DEV_ISSUER: &str = "keyward-dev";
/// The dev issuer's `aud`.
pub const DEV_AUDIENCE: &str = "keyward";

/// Writes a file readable by the owner only; replaces an existing one atomically.
pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(&tmp).map_err(|e| format!("cannot write `{}`: {e}", tmp.display()))?;
    f.write_all(contents).and_then(|()| f.sync_all()).map_err(|e| format!("cannot write `{}`: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot write `{}`: {e}", path.display()))
}

/// Loads the dev HS256 secret from the data directory, generating it on first use.
pub fn dev_secret(data_dir: &Path) -> Result<Zeroizing<Vec<u8>>, String> {
    let path = data_dir.join("dev-jwt-secret");
    if path.exists() {
        return read_secret(&path);
    }
    let mut bytes = Zeroizing::new([0u8; 32]);
    getrandom::fill(bytes.as_mut_slice()).map_err(|e| format!("no randomness: {e}"))?;
    let text = Zeroizing::new(format!("{}\n", hex::encode(bytes.as_slice())));
    write_private(&path, text.as_bytes())?;
    tracing::warn!(path = %path.display(), "generated a dev JWT signing secret: for development only");
    read_secret(&path)
}

/// Reads a secret file: its trimmed contents are the secret bytes.
pub fn read_secret(path: &Path) -> Result<Zeroizing<Vec<u8>>, String> {
    let text =
        Zeroizing::new(std::fs::read(path).map_err(|e| format!("cannot read secret `{}`: {e}", path.display()))?);
    let trimmed = text.trim_ascii();
    if trimmed.len() < 32 {
        return Err(format!("secret `{}` must be at least 32 bytes", path.display()));
    }
    Ok(Zeroizing::new(trimmed.to_vec()))
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    iat: i64,
    nbf: i64,
    exp: i64,
    groups: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    principal_type: Option<&'a str>,
}

/// Parameters of a minted token.
#[derive(Debug, Clone)]
pub struct TokenSpec<'a> {
    /// `iss`.
    pub issuer: &'a str,
    /// `aud`.
    pub audience: &'a str,
    /// `sub`.
    pub sub: &'a str,
    /// Groups claim.
    pub groups: &'a [String],
    /// Lifetime.
    pub ttl: Duration,
    /// A service principal rather than a user.
    pub service: bool,
}

/// Mints an HS256 token.
pub fn mint(secret: &[u8], spec: &TokenSpec<'_>) -> Result<String, String> {
    let now = Utc::now().timestamp();
    let claims = Claims {
        iss: spec.issuer,
        aud: spec.audience,
        sub: spec.sub,
        iat: now,
        nbf: now - 5,
        exp: now + spec.ttl.num_seconds(),
        groups: spec.groups,
        principal_type: spec.service.then_some("service"),
    };
    encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret))
        .map_err(|e| format!("cannot sign: {e}"))
}

/// Whether `token` is a dev admin token signed with `secret` that stays valid for `at_least`.
pub fn admin_token_valid_for(secret: &[u8], token: &str, at_least: Duration) -> bool {
    #[derive(serde::Deserialize)]
    struct Exp {
        exp: i64,
        sub: String,
    }
    let mut v = jsonwebtoken::Validation::new(Algorithm::HS256);
    v.set_issuer(&[DEV_ISSUER]);
    v.set_audience(&[DEV_AUDIENCE]);
    jsonwebtoken::decode::<Exp>(token, &jsonwebtoken::DecodingKey::from_secret(secret), &v)
        .is_ok_and(|t| t.claims.sub == "admin" && t.claims.exp > (Utc::now() + at_least).timestamp())
}

/// Parses `30s`, `15m`, `1h`, `7d`.
pub fn parse_ttl(s: &str) -> Result<Duration, String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num.parse().map_err(|_| format!("ttl `{s}`: write a number and s, m, h or d"))?;
    let d = match unit {
        "s" => Duration::seconds(n),
        "m" => Duration::minutes(n),
        "h" | "" => Duration::hours(n),
        "d" => Duration::days(n),
        _ => return Err(format!("ttl `{s}`: unit must be s, m, h or d")),
    };
    if d <= Duration::zero() || d > Duration::days(366) {
        return Err(format!("ttl `{s}` must be between 1 second and 366 days"));
    }
    Ok(d)
}
