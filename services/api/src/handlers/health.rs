//! Liveness and readiness.

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

/// Readiness report.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `not ready`.
    pub status: String,
    /// The parts that failed, by name (`database`, `audit`, `backend:NAME`).
    pub failing: Vec<String>,
    /// Every backend instance: `up` or `down`.
    pub backends: std::collections::BTreeMap<String, String>,
}

/// The process is up.
#[utoipa::path(operation_id = "Healthz", tag = "health", responses((status = 200, description = "Up")))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// The database answers and no backend is marked down (by failing requests or the
/// background probe, which checks every backend every ten seconds).
#[utoipa::path(
    operation_id = "Readyz", tag = "health",
    responses((status = 200, body = Readiness), (status = 503, body = Readiness))
)]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let mut failing = Vec::new();
    if let Err(e) = state.service.ping_database().await {
        tracing::warn!(error = %e, "readiness: database not answering");
        failing.push("database".to_owned());
    }
    if !state.service.audit_ready() {
        failing.push("audit".to_owned());
    }
    let mut instances = std::collections::BTreeMap::new();
    // The state the background probe and failing requests keep: a readiness check never
    // calls a backend (a flood of them would throttle an external KMS).
    for (name, up) in state.service.backend_states() {
        if !up {
            failing.push(format!("backend:{name}"));
        }
        instances.insert(name, if up { "up" } else { "down" }.to_owned());
    }
    let ready = failing.is_empty();
    let body = Readiness { status: if ready { "ready" } else { "not ready" }.to_owned(), failing, backends: instances };
    if ready { HttpResponse::Ok().json(body) } else { HttpResponse::ServiceUnavailable().json(body) }
}

/// Request counts and latency by operation and code, audit batch size, commit latency and
/// queue depth, backend latency: Prometheus text format.
#[utoipa::path(operation_id = "Metrics", tag = "health", responses((status = 200, description = "Prometheus text")))]
#[get("/metrics")]
pub async fn metrics(req: actix_web::HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    match &state.metrics {
        Some(render) => HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(render()),
        // Without a recorder (an embedder installed its own) there is nothing here: the same
        // problem document as any unknown route.
        None => actix_web::ResponseError::error_response(&crate::error::ApiError::new(
            keyward_core::Error::not_found("route `GET /metrics`"),
            crate::meta::request_id(&req),
        )),
    }
}
