//! Per-request transport facts: request id, trace context, caller address. A middleware
//! assigns them before any handler runs and echoes them on every response.

use std::future::{Ready, ready};

use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use futures_util::future::LocalBoxFuture;
use keyward_core::service::RequestMeta;

/// The response header carrying the request id.
pub const REQUEST_ID: &str = "x-request-id";
/// The request header carrying a justification for policy decisions.
pub const JUSTIFICATION: &str = "x-keyward-justification";

/// Ids assigned to a request.
#[derive(Debug, Clone)]
pub struct RequestIds {
    /// The request id.
    pub request_id: String,
    /// The W3C trace id (32 hex).
    pub trace_id: String,
    /// This hop's span id (16 hex).
    pub span_id: String,
}

impl RequestIds {
    fn from_request(req: &ServiceRequest) -> Self {
        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
        let request_id = header(REQUEST_ID)
            .filter(|v| {
                !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
            })
            .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
        let trace_id = header("traceparent")
            .and_then(parse_traceparent)
            .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        let span_id = uuid::Uuid::new_v4().simple().to_string()[..16].to_owned();
        Self { request_id, trace_id, span_id }
    }
}

/// The trace id of a valid `traceparent` (version 00).
fn parse_traceparent(v: &str) -> Option<String> {
    let mut parts = v.split('-');
    let (version, trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let ok = version == "00" && hex(trace, 32) && hex(span, 16) && hex(flags, 2) && trace != "0".repeat(32);
    ok.then(|| trace.to_owned())
}

/// Builds the domain's request facts from an HTTP request.
pub fn request_meta(req: &HttpRequest) -> RequestMeta {
    let ids = req.extensions().get::<RequestIds>().cloned();
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (request_id, trace_id) = ids.map_or_else(|| (String::new(), String::new()), |i| (i.request_id, i.trace_id));
    RequestMeta {
        request_id,
        trace_id,
        // The socket peer: forwarded headers are not trusted.
        source_ip: req.peer_addr().map(|a| a.ip()),
        user_agent: header("user-agent").map(|ua| ua.chars().take(512).collect()),
        justification: header(JUSTIFICATION).map(|j| j.chars().take(1024).collect()),
        interface: None,
        forwarded: None,
    }
}

/// The request id assigned to a request.
pub fn request_id(req: &HttpRequest) -> String {
    req.extensions().get::<RequestIds>().map(|i| i.request_id.clone()).unwrap_or_default()
}

/// Middleware that assigns [`RequestIds`] and echoes them as `x-request-id` and `traceparent`.
#[derive(Debug, Clone, Copy, Default)]
pub struct AssignIds;

impl<S, B> Transform<S, ServiceRequest> for AssignIds
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Transform = AssignIdsMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(AssignIdsMiddleware { service }))
    }
}

/// The service [`AssignIds`] wraps around the app.
#[derive(Debug)]
pub struct AssignIdsMiddleware<S> {
    service: S,
}

impl<S, B> Service<ServiceRequest> for AssignIdsMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let ids = RequestIds::from_request(&req);
        req.extensions_mut().insert(ids.clone());
        let fut = self.service.call(req);
        Box::pin(async move {
            let mut res = fut.await?;
            let headers = res.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&ids.request_id) {
                headers.insert(HeaderName::from_static(REQUEST_ID), v);
            }
            if let Ok(v) = HeaderValue::from_str(&format!("00-{}-{}-01", ids.trace_id, ids.span_id)) {
                headers.insert(HeaderName::from_static("traceparent"), v);
            }
            Ok(res)
        })
    }
}

/// Extracts the request's [`RequestMeta`]; never fails.
#[derive(Debug)]
pub struct Meta(pub RequestMeta);

impl FromRequest for Meta {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        ready(Ok(Self(request_meta(req))))
    }
}

#[cfg(test)]
mod tests {
    use super::parse_traceparent;

    #[test]
    fn traceparent_is_validated() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(parse_traceparent(good).as_deref(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        assert_eq!(parse_traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01"), None);
        assert_eq!(parse_traceparent("garbage"), None);
        assert_eq!(parse_traceparent("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"), None);
    }
}
