//! The console's OIDC sign-in: its endpoints, from `[console.oidc]` or the provider's
//! discovery document (fetched once at start; a failure refuses to start, like a JWKS).

use std::time::Duration;

use keyward_api::auth::check_fetch_url;
use keyward_api::console::OidcSignIn;
use serde::Deserialize;

use crate::config::ConsoleOidc;

/// The fields of an OpenID Provider's metadata the console uses.
#[derive(Debug, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
}

/// Resolves the sign-in, discovering the endpoints the configuration does not name.
pub async fn resolve(config: Option<&ConsoleOidc>) -> Result<Option<OidcSignIn>, String> {
    let Some(c) = config else { return Ok(None) };
    let (authorization_endpoint, token_endpoint) = match (&c.authorization_endpoint, &c.token_endpoint) {
        (Some(a), Some(t)) => (a.clone(), t.clone()),
        (a, t) => {
            let found = discover(&c.issuer).await?;
            (a.clone().unwrap_or(found.authorization_endpoint), t.clone().unwrap_or(found.token_endpoint))
        }
    };
    for (name, url) in [("authorization_endpoint", &authorization_endpoint), ("token_endpoint", &token_endpoint)] {
        check_fetch_url(url).map_err(|e| format!("console OIDC {name}: {e}"))?;
    }
    Ok(Some(OidcSignIn {
        issuer: c.issuer.clone(),
        client_id: c.client_id.clone(),
        scopes: c.scopes.clone(),
        token: c.token.clone(),
        authorization_endpoint,
        token_endpoint,
    }))
}

async fn discover(issuer: &str) -> Result<Discovery, String> {
    let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
    let failed = |e: String| format!("console OIDC discovery at {url} failed: {e}");
    let response = reqwest::Client::new()
        .get(&url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .map_err(|e| failed(e.to_string()))?;
    if !response.status().is_success() {
        return Err(failed(format!("HTTP {}", response.status())));
    }
    let found: Discovery = response.json().await.map_err(|e| failed(e.to_string()))?;
    // OpenID Connect Discovery: the document's issuer must be the one asked for, exactly.
    if found.issuer != issuer {
        return Err(failed(format!("it names issuer `{}`, not `{issuer}`", found.issuer)));
    }
    Ok(found)
}
