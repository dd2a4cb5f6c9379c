//! The AWS KMS External Key Store (XKS) proxy: `POST [/<prefix>]/kms/xks/v1/keys/<id>/metadata
//! | encrypt | decrypt` and `.../health`, authenticated by SigV4 (service `kms-xks-proxy`) with
//! each key store's own credentials, onto the same [`KeyService`]: the AWS principal in the
//! request metadata is the Cedar principal (a `Keyward::Service` in the store's group), the
//! rest of the metadata is `context.forwarded`, and every call is one audit record marked
//! `interface = "xks"` whose request id is AWS KMS's `kmsRequestId`. This module owns only
//! translation: paths, wire shapes, error names and the signature check.

pub mod error;
mod replay;
mod wire;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::http::header::{CONTENT_TYPE, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::NaiveDate;
use keyward_core::Error;
use keyward_core::model::ids::KeyRef;
use keyward_core::model::key::KeyState;
use keyward_core::model::principal::{Principal, PrincipalKind};
use keyward_core::operation::Operation;
use keyward_core::ports::backend::{RAW_NONCE_LEN, RAW_TAG_LEN, RawGcm};
use keyward_core::service::{KeyService, RequestStart, Scope};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::aws::sigv4::{self, SigV4Error};
use crate::meta;
use crate::state::AppState;
use error::XksError;
use replay::ReplayGuard;
use wire::{Request, b64, base64_field};

/// The audit trail's name for this front door.
pub const INTERFACE: &str = "xks";

/// The SigV4 service name AWS KMS signs XKS requests for.
pub const SIGNING_SERVICE: &str = "kms-xks-proxy";

/// Largest body read: a 4300-byte plaintext and 8 KiB of AAD in base64 fit with room to spare.
pub const MAX_BODY: usize = 64 * 1024;

/// The path every operation's URI contains, after the store's optional prefix.
const API_PATH: &str = "kms/xks/v1";
/// [`API_PATH`] as a path segment, which every XKS request's path contains.
const API_SEGMENT: &str = "/kms/xks/v1/";

/// How long a deep health check is reused (the specification allows a minute).
const HEALTH_TTL: Duration = Duration::from_secs(30);

/// One SigV4 credential of a key store.
#[derive(Clone)]
pub struct XksCredential {
    /// 20 to 30 characters of `A-Z2-7`.
    pub access_key_id: String,
    /// 43 to 64 characters.
    pub secret: Zeroizing<String>,
}

impl std::fmt::Debug for XksCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XksCredential").field("access_key_id", &self.access_key_id).finish_non_exhaustive()
    }
}

/// A logical key store: its path prefix, its credentials and the keys it exposes.
#[derive(Debug, Clone)]
pub struct XksStore {
    /// `""` or 1 to 128 characters of `A-Za-z0-9/_-`.
    pub path_prefix: String,
    /// Any of these may sign (two or more allow rotation without downtime).
    pub credentials: Vec<XksCredential>,
    /// External key id → Keyward key.
    pub keys: BTreeMap<String, KeyRef>,
    /// The group the AWS principals calling through this store are members of.
    pub group: String,
}

/// The XKS front door's settings and state.
#[derive(Debug, Default)]
pub struct Xks {
    stores: Vec<XksStore>,
    fleet_size: u32,
    replay: ReplayGuard,
    health: Mutex<Option<(Instant, Value)>>,
}

fn valid_path_prefix(p: &str) -> bool {
    p.len() <= 128 && p.bytes().all(|b| b.is_ascii_alphanumeric() || b"/_-".contains(&b)) && !p.starts_with('/')
}

fn valid_external_key_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
}

impl Xks {
    /// Checks the stores; `fleet_size` is the number of replicas answering (reported in health).
    pub fn new(stores: Vec<XksStore>, fleet_size: u32) -> Result<Self, String> {
        let mut prefixes = std::collections::BTreeSet::new();
        let mut key_ids = std::collections::BTreeSet::new();
        for s in &stores {
            let name = format!("xks store `{}`", s.path_prefix);
            if !valid_path_prefix(&s.path_prefix) {
                return Err(format!(
                    "{name}: `path_prefix` must be at most 128 characters of A-Z a-z 0-9 / _ - (no leading /)"
                ));
            }
            if !prefixes.insert(s.path_prefix.trim_end_matches('/')) {
                return Err(format!("{name}: `path_prefix` is used twice"));
            }
            if s.credentials.is_empty() {
                return Err(format!("{name}: needs at least one credential"));
            }
            for c in &s.credentials {
                let id = &c.access_key_id;
                if !(20..=30).contains(&id.len())
                    || !id.bytes().all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
                {
                    return Err(format!("{name}: access key id `{id}` must be 20 to 30 characters of A-Z and 2-7"));
                }
                if !key_ids.insert(id.clone()) {
                    return Err(format!("{name}: access key id `{id}` is used twice"));
                }
                if !(43..=64).contains(&c.secret.len()) {
                    return Err(format!("{name}: the secret of `{id}` must be 43 to 64 characters"));
                }
            }
            if let Some(bad) = s.keys.keys().find(|k| !valid_external_key_id(k)) {
                return Err(format!(
                    "{name}: external key id `{bad}` must be 1 to 128 characters of A-Z a-z 0-9 - . _"
                ));
            }
            if s.group.is_empty() || s.group.contains(['"', '\\']) {
                return Err(format!("{name}: `group` must be a plain group name"));
            }
        }
        Ok(Self { stores, fleet_size: fleet_size.max(1), ..Self::default() })
    }

    /// Whether any store is configured.
    pub fn enabled(&self) -> bool {
        !self.stores.is_empty()
    }
}

/// What a path asks for.
#[derive(Debug, PartialEq, Eq)]
enum Target<'a> {
    Health,
    Key { external_id: &'a str, op: KeyOp },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyOp {
    Metadata,
    Encrypt,
    Decrypt,
}

impl KeyOp {
    fn operation(self) -> Operation {
        match self {
            Self::Metadata => Operation::DescribeKey,
            Self::Encrypt => Operation::Encrypt,
            Self::Decrypt => Operation::Decrypt,
        }
    }
}

/// Splits `/<prefix>/kms/xks/v1/<rest>` into the store's prefix and the target.
fn parse_path(path: &str) -> Option<(&str, Target<'_>)> {
    let path = path.strip_prefix('/')?;
    let (prefix, rest) = match path.strip_prefix(API_PATH) {
        Some(rest) => ("", rest),
        None => {
            let at = path.find(API_SEGMENT)?;
            (&path[..at], &path[at + 1 + API_PATH.len()..])
        }
    };
    let rest = rest.strip_prefix('/')?;
    if rest == "health" {
        return Some((prefix, Target::Health));
    }
    let rest = rest.strip_prefix("keys/")?;
    let (external_id, op) = rest.split_once('/')?;
    let op = match op {
        "metadata" => KeyOp::Metadata,
        "encrypt" => KeyOp::Encrypt,
        "decrypt" => KeyOp::Decrypt,
        _ => return None,
    };
    valid_external_key_id(external_id).then_some((prefix, Target::Key { external_id, op }))
}

/// Whether a path is for this front door: it holds `/kms/xks/v1/` (checked on every request
/// of the main listener, so no allocation).
pub fn is_xks_path(path: &str) -> bool {
    path.contains(API_SEGMENT)
}

/// The route guard of [`is_xks_path`].
pub fn is_xks_request(ctx: &actix_web::guard::GuardContext<'_>) -> bool {
    is_xks_path(ctx.head().uri.path())
}

/// The handler of every XKS path.
pub async fn handle(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let request_id = meta::request_id(&req);
    let xks = &state.xks;
    // Route matching comes before authentication: an unknown store or operation is 404 even
    // with a valid signature, and a GET is 405.
    let Some((prefix, target)) = parse_path(req.path()) else {
        return XksError::invalid_uri_path().response(&request_id);
    };
    let Some(store) = xks.stores.iter().find(|s| s.path_prefix.trim_end_matches('/') == prefix) else {
        return XksError::invalid_uri_path().response(&request_id);
    };
    if req.method() != Method::POST {
        return XksError::method_not_allowed().response(&request_id);
    }
    let started = Instant::now();
    let body = crate::aws::read_capped(payload, MAX_BODY).await;
    let operation = match &target {
        Target::Health => Operation::HealthCheck,
        Target::Key { op, .. } => op.operation(),
    };
    let (req_ref, state_ref, id_ref) = (&req, &state, &request_id);
    let refused = |e: XksError, reason: Error| async move {
        let (req, state, request_id) = (req_ref, state_ref, id_ref);
        // Refusals before the service (signature, body) are audited like any other request.
        let mut meta = meta::request_meta(req);
        meta.interface = Some(INTERFACE);
        let start = RequestStart { meta, principal: Err(reason), operation };
        let _ = state.service.audited(start, async |scope: &mut Scope| scope.principal().map(|_| ())).await;
        crate::handlers::count(operation, Some(&Error::unauthenticated("xks")), started);
        e.response(request_id)
    };
    if body.len() > MAX_BODY {
        let e = Error::new(keyward_core::ErrorCode::PayloadTooLarge, format!("the body is over {MAX_BODY} bytes"));
        return refused(XksError::from_error(&e), Error::unauthenticated("xks: body too large, not read")).await;
    }
    if let Err(reason) = authenticate(xks, store, &req, &body) {
        return refused(XksError::authentication_failed(), Error::unauthenticated(format!("xks sigv4: {reason}")))
            .await;
    }
    let parsed: Request = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(_) => {
            return refused(
                XksError::validation("the body is not the operation's JSON"),
                Error::invalid("xks: malformed JSON"),
            )
            .await;
        }
    };
    let Some(metadata) = parsed.request_metadata.as_ref() else {
        return refused(XksError::validation("requestMetadata is required"), Error::invalid("xks: no requestMetadata"))
            .await;
    };
    let facts = match metadata.facts(&store.path_prefix, target != Target::Health) {
        Ok(f) => f,
        Err(e) => return refused(e, Error::invalid("xks: invalid requestMetadata")).await,
    };
    let mut meta = meta::request_meta(&req);
    meta.interface = Some(INTERFACE);
    // AWS KMS's request id names the record, so CloudTrail and Keyward's trail correlate.
    if let Some(id) = facts
        .get("kms_request_id")
        .filter(|id| id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b)))
    {
        meta.request_id = id.clone();
    }
    let principal = Principal {
        kind: PrincipalKind::Service,
        id: facts.get("aws_principal_arn").cloned().unwrap_or_default(),
        groups: vec![store.group.clone()],
    };
    meta.forwarded = Some(facts);
    let Target::Key { external_id, op } = target else {
        // Health is exempt from policies (the specification requires it) but recorded, as the
        // key store's own principal.
        let store_principal = Principal {
            kind: PrincipalKind::Service,
            id: format!("xks-store:{}", store.path_prefix),
            groups: vec![store.group.clone()],
        };
        let start = RequestStart { meta, principal: Ok(store_principal), operation: Operation::HealthCheck };
        let status = state.service.audited(start, async |_: &mut Scope| Ok(health(&state, xks).await)).await;
        crate::handlers::count(Operation::HealthCheck, status.as_ref().err(), started);
        return match status {
            Ok(value) => answer(StatusCode::OK, &request_id, &value),
            Err(e) => xks_error(&e).response(&request_id),
        };
    };
    let start = RequestStart { meta, principal: Ok(principal), operation: op.operation() };
    let key = store.keys.get(external_id).cloned();
    let outcome = state
        .service
        .audited(start, async |scope: &mut Scope| {
            let key = key.ok_or_else(|| Error::not_found(format!("external key `{external_id}`")))?;
            match op {
                KeyOp::Metadata => metadata_op(&state.service, scope, &key).await,
                KeyOp::Encrypt => encrypt(&state.service, scope, &key, &parsed).await,
                KeyOp::Decrypt => decrypt(&state.service, scope, &key, &parsed).await,
            }
        })
        .await;
    crate::handlers::count(op.operation(), outcome.as_ref().err(), started);
    match outcome {
        Ok(value) => answer(StatusCode::OK, &request_id, &value),
        Err(e) => xks_error(&e).response(&request_id),
    }
}

/// Validation failures carry the XKS error the adapter chose; the rest map by code.
fn xks_error(e: &Error) -> XksError {
    match e.reason() {
        Some(r) if r == CIPHERTEXT_REASON => XksError::invalid_ciphertext(),
        _ => XksError::from_error(e),
    }
}

/// Marks a refusal about the ciphertext's parts (not the request's shape).
const CIPHERTEXT_REASON: &str = "xks: ciphertext parts";

fn invalid(e: XksError) -> Error {
    if e.name == "InvalidCiphertextException" {
        Error::invalid_ciphertext(e.message).with_reason(CIPHERTEXT_REASON)
    } else {
        Error::invalid(e.message)
    }
}

fn check_algorithm(r: &Request) -> Result<(), Error> {
    match r.encryption_algorithm.as_deref() {
        Some("AES_GCM") => Ok(()),
        Some(_) => Err(invalid(XksError::validation("encryptionAlgorithm must be AES_GCM"))),
        None => Err(invalid(XksError::validation("encryptionAlgorithm is required"))),
    }
}

async fn metadata_op(service: &KeyService, scope: &mut Scope, key: &KeyRef) -> keyward_core::Result<Value> {
    let m = service.describe_key(scope, key).await?;
    let status = if m.key.state == KeyState::Enabled { "ENABLED" } else { "DISABLED" };
    Ok(json!({ "keySpec": m.key.spec.as_str(), "keyUsage": ["ENCRYPT", "DECRYPT"], "keyStatus": status }))
}

async fn encrypt(service: &KeyService, scope: &mut Scope, key: &KeyRef, r: &Request) -> keyward_core::Result<Value> {
    check_algorithm(r)?;
    let plaintext = Zeroizing::new(
        base64_field("plaintext", r.plaintext.as_deref())
            .map_err(invalid)?
            .ok_or_else(|| invalid(XksError::validation("plaintext is required")))?,
    );
    let aad = base64_field("additionalAuthenticatedData", r.additional_authenticated_data.as_deref())
        .map_err(invalid)?
        .unwrap_or_default();
    let want_cdiv = match r.ciphertext_data_integrity_value_algorithm.as_deref() {
        None => false,
        Some("SHA_256") => true,
        Some(_) => return Err(invalid(XksError::validation("ciphertextDataIntegrityValueAlgorithm must be SHA_256"))),
    };
    // Bound before sealing: the version is only known inside, so the closure builds it.
    wire::bound_aad(&aad, &wire::metadata(0)).map_err(invalid)?;
    let bind = |version: u32| wire::bound_aad(&aad, &wire::metadata(version)).unwrap_or_default();
    let sealed = service.seal_raw(scope, key, &plaintext, &bind).await?;
    let md = wire::metadata(sealed.version);
    let g = &sealed.gcm;
    let mut answer = json!({
        "ciphertext": b64(&g.ciphertext),
        "ciphertextMetadata": b64(&md),
        "initializationVector": b64(&g.nonce),
        "authenticationTag": b64(&g.tag),
    });
    if want_cdiv {
        // As the specification orders it: the integrity value first, then a decryption of
        // exactly what is returned proves it opens.
        let cdiv = wire::cdiv(&aad, &md, &g.nonce, &g.ciphertext, &g.tag);
        service.check_raw(&sealed, &bind(sealed.version)).await?;
        answer["ciphertextDataIntegrityValue"] = json!(b64(&cdiv));
    }
    Ok(answer)
}

async fn decrypt(service: &KeyService, scope: &mut Scope, key: &KeyRef, r: &Request) -> keyward_core::Result<Value> {
    check_algorithm(r)?;
    let field = |name: &str, v: Option<&str>| {
        base64_field(name, v)
            .map_err(invalid)?
            .ok_or_else(|| invalid(XksError::validation(format!("{name} is required"))))
    };
    let ciphertext = field("ciphertext", r.ciphertext.as_deref())?;
    let iv = field("initializationVector", r.initialization_vector.as_deref())?;
    let tag = field("authenticationTag", r.authentication_tag.as_deref())?;
    let aad = base64_field("additionalAuthenticatedData", r.additional_authenticated_data.as_deref())
        .map_err(invalid)?
        .unwrap_or_default();
    let md = base64_field("ciphertextMetadata", r.ciphertext_metadata.as_deref()).map_err(invalid)?;
    // Keyward always writes metadata naming the version; without it, or with another IV or
    // tag size, the ciphertext cannot be one of Keyward's.
    let bad = || invalid(XksError::invalid_ciphertext());
    let md = md.ok_or_else(bad)?;
    if md.len() > 20 || iv.len() != 12 && iv.len() != 16 {
        return Err(invalid(XksError::validation("ciphertextMetadata or initializationVector has an invalid size")));
    }
    if tag.len() != RAW_TAG_LEN {
        return Err(invalid(XksError::validation("authenticationTag must be 16 bytes")));
    }
    let version = wire::version_of(&md).ok_or_else(bad)?;
    let nonce: [u8; RAW_NONCE_LEN] = iv.as_slice().try_into().map_err(|_| bad())?;
    let tag: [u8; RAW_TAG_LEN] = tag.as_slice().try_into().map_err(|_| bad())?;
    let sealed = RawGcm { nonce, ciphertext, tag };
    let bound = wire::bound_aad(&aad, &md).map_err(invalid)?;
    let plaintext = service.open_raw(scope, key, version, &sealed, &bound).await?;
    Ok(json!({ "plaintext": b64(&plaintext) }))
}

/// The deep health check: every backend instance probed, cached for [`HEALTH_TTL`].
async fn health(state: &AppState, xks: &Xks) -> Value {
    if let Ok(cached) = xks.health.lock()
        && let Some((at, value)) = cached.as_ref()
        && at.elapsed() < HEALTH_TTL
    {
        return value.clone();
    }
    state.service.probe_backends(true).await;
    let details: Vec<Value> = state
        .service
        .backend_states()
        .into_iter()
        .take(10)
        .map(|(name, up)| {
            json!({
                "id": name,
                "model": format!("Keyward backend `{name}`"),
                "healthStatus": if up { "ACTIVE" } else { "UNAVAILABLE" },
            })
        })
        .collect();
    let value = json!({
        "xksProxyFleetSize": xks.fleet_size,
        "xksProxyVendor": "Keyward",
        "xksProxyModel": format!("Keyward XKS proxy {}", env!("CARGO_PKG_VERSION")),
        "ekmVendor": "Keyward",
        "ekmFleetDetails": details,
    });
    if let Ok(mut cached) = xks.health.lock() {
        *cached = Some((Instant::now(), value.clone()));
    }
    value
}

/// Checks the SigV4 signature with the store's credentials, and refuses a replay.
fn authenticate(xks: &Xks, store: &XksStore, req: &HttpRequest, body: &[u8]) -> Result<(), String> {
    let headers = req.headers();
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let authorization = text("authorization").ok_or("no Authorization header")?;
    let auth = sigv4::parse_authorization(authorization).map_err(|e| format!("{e:?}"))?;
    if auth.service != SIGNING_SERVICE {
        return Err(format!("signed for service `{}`", auth.service));
    }
    let amz_date = text("x-amz-date");
    sigv4::check_time(&auth, amz_date, chrono::Utc::now()).map_err(|e| format!("{e:?}"))?;
    let date = NaiveDate::parse_from_str(auth.date, "%Y%m%d").map_err(|_| "invalid credential date".to_owned())?;
    let credential = store
        .credentials
        .iter()
        .find(|c| c.access_key_id == auth.access_key_id)
        .ok_or_else(|| format!("unknown access key id for store `{}`", store.path_prefix))?;
    let key = sigv4::signing_key(&credential.secret, date, auth.region, auth.service);
    let request = sigv4::Request { method: req.method().as_str(), path: req.path(), query: req.query_string(), body };
    let header = |name: &str| headers.get_all(name).map(HeaderValue::as_bytes).collect();
    sigv4::verify(&auth, request, header, amz_date.unwrap_or(""), &key).map_err(|e: SigV4Error| format!("{e:?}"))?;
    if !xks.replay.first_use(auth.signature) {
        return Err("a signature already used (replay)".into());
    }
    Ok(())
}

fn answer(status: StatusCode, request_id: &str, value: &Value) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((CONTENT_TYPE, "application/json"))
        .insert_header((meta::REQUEST_ID, request_id))
        .body(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_a_store_and_an_operation() {
        assert_eq!(parse_path("/kms/xks/v1/health"), Some(("", Target::Health)));
        assert_eq!(
            parse_path("/example/uri/path/prefix/kms/xks/v1/keys/foo/encrypt"),
            Some(("example/uri/path/prefix", Target::Key { external_id: "foo", op: KeyOp::Encrypt }))
        );
        assert_eq!(parse_path("/p/kms/xks/v1/keys/foo/sign"), None);
        assert_eq!(parse_path("/p/kms/xks/v1/keys/f%20o/metadata"), None);
        assert_eq!(parse_path("/p/kms/xks/v2/health"), None);
    }
}
