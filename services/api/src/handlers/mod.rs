//! HTTP handlers: thin. Each authenticates, parses, calls the domain and shapes the answer;
//! the domain authorizes and audits. Every failure, parsing included, is audited.

pub mod access_keys;
pub mod aliases;
pub mod approvals;
pub mod audit;
pub mod crypto;
pub mod grants;
pub mod health;
pub mod import;
pub mod keys;
pub mod policy;
pub mod signing;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use keyward_core::model::ids::KeyRef;
use keyward_core::operation::Operation;
use keyward_core::service::Scope;
use keyward_core::{Error, Result};
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use crate::dto::policy::DryRunResponse;
use crate::error::ApiError;
use crate::meta;
use crate::state::AppState;

/// Runs an operation: authenticates the caller, opens an audited scope, and answers with
/// `status` and the JSON result, or a problem document. `body` is the raw request body (empty
/// when the operation has none); it and the query are checked for a dry-run request.
pub(crate) async fn run<T: Serialize>(
    state: &AppState,
    req: &HttpRequest,
    op: Operation,
    status: StatusCode,
    body: &[u8],
    f: impl AsyncFnOnce(&mut Scope) -> Result<T>,
) -> Result<HttpResponse, ApiError> {
    respond(
        state,
        req,
        op,
        body,
        async |scope| f(scope).await.map(|v| (v, status)),
        |v, status| HttpResponse::build(status).json(v),
    )
    .await
}

/// As [`run`], with the status chosen by the operation and the response shaped by `render`.
pub(crate) async fn respond<T>(
    state: &AppState,
    req: &HttpRequest,
    op: Operation,
    body: &[u8],
    f: impl AsyncFnOnce(&mut Scope) -> Result<(T, StatusCode)>,
    render: impl FnOnce(T, StatusCode) -> HttpResponse,
) -> Result<HttpResponse, ApiError> {
    let started = std::time::Instant::now();
    let meta = meta::request_meta(req);
    let span = request_span(op, &meta);
    async move {
        let request_id = meta.request_id.clone();
        let principal = state.auth.authenticate(req).instrument(tracing::info_span!("authenticate")).await;
        let scope = keyward_core::service::RequestStart { meta, principal, operation: op };
        // Authentication is checked before anything else is looked at.
        let checked = async |scope: &mut Scope| {
            scope.principal()?;
            f(scope).await
        };
        let dry_run = match dry_run_requested(req.query_string(), body) {
            Ok(d) => d,
            Err(e) => {
                // An unreadable dry-run flag is refused, never run (and audited).
                let refused = state.service.audited(scope, async |scope: &mut Scope| -> Result<()> {
                    scope.principal()?;
                    Err(e)
                });
                let e = refused.await.err().unwrap_or_else(|| Error::internal("refusal without an error"));
                count(op, Some(&e), started);
                return Err(ApiError::new(e, request_id));
            }
        };
        if dry_run {
            let answer = state.service.dry_run(scope, checked).await;
            count(op, answer.as_ref().err(), started);
            let answer = answer.map_err(|e| ApiError::new(e, request_id))?;
            return Ok(HttpResponse::Ok().json(DryRunResponse::from(answer)));
        }
        let outcome = state.service.audited(scope, checked).await;
        count(op, outcome.as_ref().err(), started);
        let (value, status) = outcome.map_err(|e| ApiError::new(e, request_id))?;
        Ok(render(value, status))
    }
    .instrument(span)
    .await
}

/// The request's span, joined to the trace id the response and the audit record carry.
fn request_span(op: Operation, meta: &keyward_core::service::RequestMeta) -> tracing::Span {
    use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let span =
        tracing::info_span!("request", otel.name = op.as_str(), operation = op.as_str(), request_id = %meta.request_id);
    if let Ok(trace_id) = TraceId::from_hex(&meta.trace_id) {
        let parent = SpanContext::new(trace_id, SpanId::from(1), TraceFlags::SAMPLED, true, TraceState::default());
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(parent));
    }
    span
}

/// Counts a request by operation and outcome code, and times it.
pub(crate) fn count(op: Operation, error: Option<&Error>, started: std::time::Instant) {
    let code = error.map_or("Success", |e| e.code().as_str());
    metrics::counter!("keyward_requests_total", "operation" => op.as_str(), "code" => code).increment(1);
    metrics::histogram!("keyward_request_duration_seconds", "operation" => op.as_str())
        .record(started.elapsed().as_secs_f64());
}

#[derive(Deserialize)]
struct DryRunProbe {
    #[serde(default)]
    dry_run: Option<serde_json::Value>,
}

/// Whether a dry run is asked for: `?dry_run=true` (or `1`; `false`/`0` for a real run), or
/// `"dry_run": true` in a JSON body. Any other spelling is refused: a request that meant to be
/// a dry run must never run for real. Bodies are probed only when they mention the field,
/// keeping the common path to one parse.
fn dry_run_requested(query: &str, body: &[u8]) -> Result<bool> {
    let mut asked = false;
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if name != "dry_run" {
            continue;
        }
        asked |= match value {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => return Err(Error::invalid("`dry_run` must be `true` or `false`")),
        };
    }
    if memchr::memmem::find(body, b"\"dry_run\"").is_some() {
        // A body that mentions the flag but does not parse is refused: body-less operations
        // would otherwise ignore it and run.
        let probe = serde_json::from_slice::<DryRunProbe>(body)
            .map_err(|_| Error::invalid("the body mentions `dry_run` but is not a JSON object"))?;
        match probe.dry_run {
            None | Some(serde_json::Value::Null | serde_json::Value::Bool(false)) => {}
            Some(serde_json::Value::Bool(true)) => asked = true,
            Some(_) => return Err(Error::invalid("`dry_run` must be `true` or `false`")),
        }
    }
    Ok(asked)
}

/// The body of an operation that takes none but may carry `{"dry_run": true}`; not part of
/// the documented request (the OpenAPI document lists `?dry_run=true` for these).
pub(crate) struct DryRunBody(pub actix_web::web::Bytes);

impl actix_web::FromRequest for DryRunBody {
    type Error = actix_web::Error;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let bytes = actix_web::web::Bytes::from_request(req, payload);
        Box::pin(async move { bytes.await.map(DryRunBody) })
    }
}

/// Parses a `{key}` path segment: an id, or an alias (`alias%2FNAME` percent-decoded).
pub(crate) fn key_ref(segment: &str) -> Result<KeyRef> {
    let decoded = percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .map_err(|_| Error::invalid("key reference is not valid UTF-8"))?;
    decoded.parse()
}
