//! HTTP handlers: thin. Each authenticates, parses, calls the domain and shapes the answer;
//! the domain authorizes and audits. Every failure, parsing included, is audited.

pub mod aliases;
pub mod crypto;
pub mod health;
pub mod keys;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use keyward_core::model::ids::KeyRef;
use keyward_core::operation::Operation;
use keyward_core::service::Scope;
use keyward_core::{Error, Result};
use serde::Serialize;

use crate::error::ApiError;
use crate::meta;
use crate::state::AppState;

/// Runs an operation: authenticates the caller, opens an audited scope, and answers with
/// `status` and the JSON result, or a problem document.
pub(crate) async fn run<T: Serialize>(
    state: &AppState,
    req: &HttpRequest,
    op: Operation,
    status: StatusCode,
    f: impl AsyncFnOnce(&mut Scope) -> Result<T>,
) -> Result<HttpResponse, ApiError> {
    let (body, status) = run_with_status(state, req, op, async |scope| f(scope).await.map(|v| (v, status))).await?;
    Ok(HttpResponse::build(status).json(body))
}

/// As [`run`], with the status chosen by the operation.
pub(crate) async fn run_with_status<T>(
    state: &AppState,
    req: &HttpRequest,
    op: Operation,
    f: impl AsyncFnOnce(&mut Scope) -> Result<(T, StatusCode)>,
) -> Result<(T, StatusCode), ApiError> {
    let meta = meta::request_meta(req);
    let request_id = meta.request_id.clone();
    let principal = state.auth.authenticate(req);
    let scope = state.service.begin(meta, principal, op);
    state
        .service
        .audited(scope, async |scope| {
            // Authentication is checked before anything else is looked at.
            scope.principal()?;
            f(scope).await
        })
        .await
        .map_err(|e| ApiError::new(e, request_id))
}

/// Parses a `{key}` path segment: an id, or an alias (`alias%2FNAME` percent-decoded).
pub(crate) fn key_ref(segment: &str) -> Result<KeyRef> {
    let decoded = percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .map_err(|_| Error::invalid("key reference is not valid UTF-8"))?;
    decoded.parse()
}
