//! XKS error answers: `{"errorName": ..., "errorMessage": ...}` with the statuses the XKS proxy
//! API specification gives each name. Messages are printable ASCII under 512 characters.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use keyward_core::{Error, ErrorCode};

/// An XKS error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XksError {
    /// The `errorName`.
    pub name: &'static str,
    /// The HTTP status.
    pub status: StatusCode,
    /// The `errorMessage`.
    pub message: String,
}

impl XksError {
    fn new(name: &'static str, status: u16, message: impl Into<String>) -> Self {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Self { name, status, message: message.into() }
    }

    /// 400: an input parameter is invalid.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new("ValidationException", 400, message)
    }

    /// 404: the path names no operation of a configured key store.
    pub fn invalid_uri_path() -> Self {
        Self::new("InvalidUriPathException", 404, "the URI path is not valid")
    }

    /// 405: the operations are POSTs.
    pub fn method_not_allowed() -> Self {
        Self::new("MethodNotAllowed", 405, "XKS proxy operations are POST requests")
    }

    /// 401: the SigV4 signature did not verify.
    pub fn authentication_failed() -> Self {
        Self::new("AuthenticationFailedException", 401, "the request signature is not valid")
    }

    /// 400: the ciphertext, IV, AAD, metadata or tag is wrong.
    pub fn invalid_ciphertext() -> Self {
        Self::new("InvalidCiphertextException", 400, "the ciphertext, IV, AAD, metadata or tag is not valid")
    }

    /// The answer for a domain error.
    pub fn from_error(e: &Error) -> Self {
        match e.code() {
            ErrorCode::InvalidRequest => Self::validation(printable(e.message())),
            ErrorCode::PayloadTooLarge => Self::new("UnsupportedOperationException", 501, printable(e.message())),
            ErrorCode::Unauthenticated => Self::authentication_failed(),
            ErrorCode::AccessDenied => Self::new("AccessDeniedException", 403, "denied by the proxy's policies"),
            ErrorCode::NotFound => Self::new("KeyNotFoundException", 404, "no such external key"),
            ErrorCode::KeyDisabled | ErrorCode::KeyPendingDeletion | ErrorCode::Conflict => {
                Self::new("InvalidStateException", 400, printable(e.message()))
            }
            ErrorCode::InvalidCiphertext => Self::invalid_ciphertext(),
            ErrorCode::InvalidKeyUsage => Self::new("InvalidKeyUsageException", 400, printable(e.message())),
            ErrorCode::UnsupportedOperation => Self::new("UnsupportedOperationException", 501, printable(e.message())),
            ErrorCode::RateLimited => Self::new("ThrottlingException", 429, "the request rate is too high"),
            ErrorCode::ApprovalPending => Self::new("AccessDeniedException", 403, printable(e.message())),
            ErrorCode::KeyUnavailable | ErrorCode::BackendUnavailable => {
                Self::new("DependencyTimeoutException", 503, "the key manager did not answer in time")
            }
            ErrorCode::AuditUnavailable | ErrorCode::Internal => Self::new("InternalException", 500, "internal error"),
        }
    }

    /// The response.
    pub fn response(&self, request_id: &str) -> HttpResponse {
        super::answer(
            self.status,
            request_id,
            &serde_json::json!({ "errorName": self.name, "errorMessage": printable(&self.message) }),
        )
    }
}

/// Printable ASCII, under 512 characters, as the specification requires of messages.
fn printable(m: &str) -> String {
    m.chars().map(|c| if (' '..='~').contains(&c) { c } else { '?' }).take(500).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_code_has_the_specification_name_and_status() {
        let cases = [
            (Error::invalid("bad"), "ValidationException", 400),
            (Error::not_found("key"), "KeyNotFoundException", 404),
            (Error::access_denied("Encrypt"), "AccessDeniedException", 403),
            (Error::new(ErrorCode::KeyDisabled, "off"), "InvalidStateException", 400),
            (Error::invalid_ciphertext("tag"), "InvalidCiphertextException", 400),
            (Error::new(ErrorCode::UnsupportedOperation, "no"), "UnsupportedOperationException", 501),
            (Error::new(ErrorCode::InvalidKeyUsage, "no"), "InvalidKeyUsageException", 400),
            (Error::rate_limited("queue"), "ThrottlingException", 429),
            (Error::backend_unavailable("down"), "DependencyTimeoutException", 503),
            (Error::internal("db password=secret"), "InternalException", 500),
        ];
        for (e, name, status) in cases {
            let x = XksError::from_error(&e);
            assert_eq!((x.name, x.status.as_u16()), (name, status), "{e}");
            assert!(!x.message.contains("secret"));
        }
        assert_eq!(printable("caf\u{e9}\n"), "caf??");
    }
}
