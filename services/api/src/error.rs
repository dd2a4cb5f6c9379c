//! Domain errors as `application/problem+json`, mapped to HTTP in one exhaustive match.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use keyward_core::error::Detail;
use keyward_core::{Error, ErrorCode};
use serde::Serialize;
use utoipa::ToSchema;

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type: `urn:keyward:error:<code>`.
    #[serde(rename = "type")]
    pub type_: String,
    /// A short summary of the problem type.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// The stable error code.
    pub code: String,
    /// What went wrong in this request (never internals).
    pub detail: String,
    /// The request's id, as in `x-request-id`.
    pub request_id: String,
}

/// A sensitive request's answer (202): it waits for approval.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovalAccepted {
    /// The approval request's id, as GetApproval names it.
    pub id: String,
    /// The same id, for callers that read the request's answer apart from the approval.
    pub approval_id: String,
    /// `Pending`.
    pub state: String,
    /// Approvals it needs.
    pub required: u32,
    /// When it expires undecided (RFC 3339).
    pub expires_at: String,
    /// The request's id, as in `x-request-id`.
    pub request_id: String,
}

/// The HTTP status of each error code.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorCode::AccessDenied => StatusCode::FORBIDDEN,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::KeyDisabled | ErrorCode::KeyPendingDeletion | ErrorCode::Conflict => StatusCode::CONFLICT,
        ErrorCode::KeyUnavailable | ErrorCode::AuditUnavailable | ErrorCode::BackendUnavailable => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        ErrorCode::InvalidCiphertext | ErrorCode::InvalidRequest | ErrorCode::InvalidKeyUsage => {
            StatusCode::BAD_REQUEST
        }
        ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::UnsupportedOperation => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::ApprovalPending => StatusCode::ACCEPTED,
    }
}

fn title_of(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::Unauthenticated => "authentication required",
        ErrorCode::AccessDenied => "access denied",
        ErrorCode::NotFound => "not found",
        ErrorCode::KeyDisabled => "key disabled",
        ErrorCode::KeyPendingDeletion => "key pending deletion",
        ErrorCode::KeyUnavailable => "key unavailable",
        ErrorCode::InvalidCiphertext => "invalid ciphertext",
        ErrorCode::InvalidRequest => "invalid request",
        ErrorCode::PayloadTooLarge => "payload too large",
        ErrorCode::UnsupportedOperation => "unsupported operation",
        ErrorCode::InvalidKeyUsage => "invalid key usage",
        ErrorCode::Conflict => "conflict",
        ErrorCode::AuditUnavailable => "audit trail unavailable",
        ErrorCode::BackendUnavailable => "backend unavailable",
        ErrorCode::RateLimited => "rate limited",
        ErrorCode::Internal => "internal error",
        ErrorCode::ApprovalPending => "approval pending",
    }
}

/// A domain error on its way out, with the request id it belongs to.
#[derive(Debug)]
pub struct ApiError {
    error: Error,
    request_id: String,
}

impl ApiError {
    /// Wraps a domain error for a request.
    pub fn new(error: Error, request_id: impl Into<String>) -> Self {
        Self { error, request_id: request_id.into() }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        status_of(self.error.code())
    }

    fn error_response(&self) -> HttpResponse {
        if let Some(Detail::Approval { id, required, expires_at }) = self.error.detail() {
            let accepted = ApprovalAccepted {
                id: id.to_string(),
                approval_id: id.to_string(),
                state: "Pending".into(),
                required,
                expires_at: crate::dto::keys::rfc3339(expires_at),
                request_id: self.request_id.clone(),
            };
            return HttpResponse::Accepted()
                .insert_header((header::LOCATION, format!("/v1/approvals/{id}")))
                .json(accepted);
        }
        let code = self.error.code();
        let status = status_of(code);
        let problem = Problem {
            type_: format!("urn:keyward:error:{code}"),
            title: title_of(code).to_owned(),
            status: status.as_u16(),
            code: code.as_str().to_owned(),
            // 5xx messages are generic by construction in the domain error.
            detail: self.error.message().to_owned(),
            request_id: self.request_id.clone(),
        };
        let mut response = HttpResponse::build(status);
        response.content_type("application/problem+json");
        if status == StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        if let Some(Detail::RetryAfter(seconds)) = self.error.detail() {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from(seconds)));
        } else if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
        }
        response.json(problem)
    }
}
