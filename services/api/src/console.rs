//! The web console at `/ui`: static assets built into the binary (no CDN, nothing fetched at
//! run time), served with a strict Content-Security-Policy. The console holds no privilege:
//! every action it takes is a call to the REST API with the signed-in user's token.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};

const INDEX: &str = include_str!("console/index.html");
const APP: &str = include_str!("console/app.js");
const STYLE: &str = include_str!("console/style.css");
const ICON: &str = include_str!("console/icon.svg");

/// Scripts and styles from this origin only, no inline script, no framing, calls only to this
/// origin.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
     img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    let mut r = HttpResponse::Ok();
    r.content_type(content_type)
        .insert_header((header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)))
        .insert_header((header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .insert_header((header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-cache")));
    r.body(body)
}

/// Registers `/ui` and its assets.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/ui", web::get().to(|| async { asset("text/html; charset=utf-8", INDEX) }))
        .route("/ui/", web::get().to(|| async { asset("text/html; charset=utf-8", INDEX) }))
        .route("/ui/app.js", web::get().to(|| async { asset("text/javascript; charset=utf-8", APP) }))
        .route("/ui/style.css", web::get().to(|| async { asset("text/css; charset=utf-8", STYLE) }))
        .route("/ui/icon.svg", web::get().to(|| async { asset("image/svg+xml", ICON) }));
}
