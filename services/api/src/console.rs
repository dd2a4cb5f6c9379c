//! The web console at `/ui`: static assets built into the binary (no CDN, nothing fetched at
//! run time), served with a strict Content-Security-Policy. The console holds no privilege:
//! every action it takes is a call to the REST API with the signed-in user's token.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};
use serde::Serialize;

use crate::state::AppState;

const INDEX: &str = include_str!("console/index.html");
const APP: &str = include_str!("console/app.js");
const STYLE: &str = include_str!("console/style.css");
const ICON: &str = include_str!("console/icon.svg");

/// Sign-in through an OpenID Connect provider: the authorization code flow with PKCE, as a
/// public client (the browser holds no secret), the token then used like a pasted one.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OidcSignIn {
    /// The provider's issuer (one of the server's trusted issuers).
    pub issuer: String,
    /// The console's client id at the provider.
    pub client_id: String,
    /// The scopes asked for, space-separated.
    pub scopes: String,
    /// Which token of the token response the console sends: `access_token` or `id_token`.
    pub token: String,
    /// Where the browser goes to sign in.
    pub authorization_endpoint: String,
    /// Where the browser exchanges the code (it must allow this origin by CORS).
    pub token_endpoint: String,
}

/// The console's settings.
#[derive(Debug, Clone)]
pub struct Console {
    oidc: Option<OidcSignIn>,
    csp: HeaderValue,
}

impl Default for Console {
    fn default() -> Self {
        Self::new(None)
    }
}

impl Console {
    /// The console, with OIDC sign-in when `oidc` is set.
    pub fn new(oidc: Option<OidcSignIn>) -> Self {
        // Calls go to this origin only, and to the provider's token endpoint when one signs in
        // there (the sign-in itself is a navigation, which the policy does not restrict).
        let provider = oidc
            .as_ref()
            .and_then(|o| reqwest::Url::parse(&o.token_endpoint).ok())
            .map(|u| format!(" {}", u.origin().ascii_serialization()))
            .unwrap_or_default();
        let csp = format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'{provider}; \
             img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        );
        let csp = HeaderValue::from_str(&csp).unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"));
        Self { oidc, csp }
    }

    /// The OIDC sign-in, when configured.
    pub fn oidc(&self) -> Option<&OidcSignIn> {
        self.oidc.as_ref()
    }

    fn respond(&self, content_type: &'static str, body: impl actix_web::body::MessageBody + 'static) -> HttpResponse {
        let mut r = HttpResponse::Ok();
        r.content_type(content_type)
            .insert_header((header::CONTENT_SECURITY_POLICY, self.csp.clone()))
            .insert_header((header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
            .insert_header((header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
            .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-cache")));
        r.body(body)
    }
}

/// What the console needs to know before anyone signs in (public: no secret in it).
#[derive(Debug, Serialize)]
struct ConsoleConfig<'a> {
    oidc: Option<&'a OidcSignIn>,
}

fn asset(state: &AppState, content_type: &'static str, body: &'static str) -> HttpResponse {
    state.console.respond(content_type, body)
}

async fn config(state: web::Data<AppState>) -> HttpResponse {
    let body = serde_json::to_string(&ConsoleConfig { oidc: state.console.oidc() }).unwrap_or_else(|_| "{}".into());
    state.console.respond("application/json", body)
}

/// Registers `/ui`, its assets and its public configuration.
pub fn routes(cfg: &mut web::ServiceConfig) {
    let index = async |s: web::Data<AppState>| asset(&s, "text/html; charset=utf-8", INDEX);
    cfg.route("/ui", web::get().to(index))
        .route("/ui/", web::get().to(index))
        .route("/ui/config.json", web::get().to(config))
        .route(
            "/ui/app.js",
            web::get().to(async |s: web::Data<AppState>| asset(&s, "text/javascript; charset=utf-8", APP)),
        )
        .route(
            "/ui/style.css",
            web::get().to(async |s: web::Data<AppState>| asset(&s, "text/css; charset=utf-8", STYLE)),
        )
        .route("/ui/icon.svg", web::get().to(async |s: web::Data<AppState>| asset(&s, "image/svg+xml", ICON)));
}
