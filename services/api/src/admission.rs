//! Admission control: at most `max_in_flight` requests run at once. A request that finds no
//! free slot waits at most `wait` for one, then is refused at once with `429 RateLimited`
//! (AWS: `ThrottlingException`) and `Retry-After`, before its body is read or its token
//! checked. Under overload the server keeps serving at capacity with bounded latency, instead
//! of queueing without end; refusals are cheap, counted in `keyward_admission_refusals_total`,
//! and not audited (nothing ran, and recording each would spend the capacity being protected).
//! Health, readiness and metrics are never refused.

use std::sync::Arc;
use std::time::Duration;

use actix_web::HttpResponse;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::aws::error::AwsError;
use crate::error::ApiError;

/// The in-flight limit shared by every worker.
#[derive(Debug, Clone)]
pub struct Admission {
    slots: Arc<Semaphore>,
    wait: Duration,
}

/// Paths that are always admitted: an orchestrator must see an overloaded server as alive.
const EXEMPT: &[&str] = &["/healthz", "/readyz", "/metrics"];

impl Admission {
    /// At most `max_in_flight` requests at once; a request waits at most `wait` for a slot.
    pub fn new(max_in_flight: usize, wait: Duration) -> Self {
        Self { slots: Arc::new(Semaphore::new(max_in_flight.max(1))), wait }
    }

    /// A slot for `req`, or `None` when it must be refused. Exempt paths get no slot and are
    /// admitted.
    async fn admit(&self, req: &ServiceRequest) -> Result<Option<OwnedSemaphorePermit>, ()> {
        if EXEMPT.contains(&req.path()) {
            return Ok(None);
        }
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(Some(permit));
        }
        match tokio::time::timeout(self.wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Some(permit)),
            _ => Err(()),
        }
    }
}

/// The middleware (`actix_web::middleware::from_fn`): the limit is the app's [`Admission`].
pub async fn admit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(admission) = req.app_data::<actix_web::web::Data<crate::AppState>>().map(|s| s.admission.clone()) else {
        return next.call(req).await.map(ServiceResponse::map_into_boxed_body);
    };
    match admission.admit(&req).await {
        Ok(permit) => {
            let response = next.call(req).await;
            drop(permit);
            response.map(ServiceResponse::map_into_boxed_body)
        }
        Err(()) => {
            metrics::counter!("keyward_admission_refusals_total").increment(1);
            let request_id = crate::meta::request_id(req.request());
            let response = refusal(&req, &request_id);
            Ok(req.into_response(response))
        }
    }
}

/// The refusal in the front door's own shape.
fn refusal(req: &ServiceRequest, request_id: &str) -> HttpResponse {
    let reason = "the server is at its in-flight limit";
    if crate::xks::is_xks_path(req.path()) {
        let mut r =
            crate::xks::error::XksError::from_error(&keyward_core::Error::rate_limited(reason)).response(request_id);
        r.headers_mut()
            .insert(actix_web::http::header::RETRY_AFTER, actix_web::http::header::HeaderValue::from_static("1"));
        return r;
    }
    if req.headers().contains_key("x-amz-target") {
        let mut r = AwsError::from_error(&keyward_core::Error::rate_limited(reason)).response(request_id);
        r.headers_mut()
            .insert(actix_web::http::header::RETRY_AFTER, actix_web::http::header::HeaderValue::from_static("1"));
        return r;
    }
    actix_web::ResponseError::error_response(&ApiError::new(keyward_core::Error::rate_limited(reason), request_id))
}
