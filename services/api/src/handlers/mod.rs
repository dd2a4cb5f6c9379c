//! HTTP handlers: thin. Each authenticates, parses, calls the domain and shapes the answer;
//! the domain authorizes and audits. Every failure, parsing included, is audited.

pub mod access_keys;
pub mod aliases;
pub mod audit;
pub mod crypto;
pub mod grants;
pub mod health;
pub mod keys;
pub mod policy;

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
        let scope = state.service.begin(meta, principal, op);
        // Authentication is checked before anything else is looked at.
        let checked = async |scope: &mut Scope| {
            scope.principal()?;
            f(scope).await
        };
        if dry_run_requested(req.query_string(), body) {
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
    dry_run: Option<bool>,
}

/// `?dry_run=true`, or `"dry_run": true` in a JSON body. Bodies are probed only when they
/// mention the field, keeping the common path to one parse.
fn dry_run_requested(query: &str, body: &[u8]) -> bool {
    let in_query = query.split('&').any(|pair| pair == "dry_run=true");
    let in_body = || {
        body.windows(9).any(|w| w == b"\"dry_run\"")
            && serde_json::from_slice::<DryRunProbe>(body).ok().and_then(|p| p.dry_run) == Some(true)
    };
    in_query || in_body()
}

/// Parses a `{key}` path segment: an id, or an alias (`alias%2FNAME` percent-decoded).
pub(crate) fn key_ref(segment: &str) -> Result<KeyRef> {
    let decoded = percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .map_err(|_| Error::invalid("key reference is not valid UTF-8"))?;
    decoded.parse()
}
