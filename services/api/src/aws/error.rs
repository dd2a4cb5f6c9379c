//! AWS KMS error shapes: `{"__type": "<Name>", "message": "..."}`. SDKs dispatch on `__type`
//! and retry every 5xx, so client faults are 400 and only what a retry can fix is 5xx.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use keyward_core::{Detail, Error, ErrorCode};

use super::sigv4::SigV4Error;

/// An AWS error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    /// The `__type` (e.g. `NotFoundException`).
    pub name: &'static str,
    /// The message; empty where AWS sends none (InvalidCiphertextException).
    pub message: String,
    /// The HTTP status.
    pub status: StatusCode,
}

impl AwsError {
    fn new(name: &'static str, status: StatusCode, message: impl Into<String>) -> Self {
        Self { name, message: message.into(), status }
    }

    /// A 400 `ValidationException` in AWS's wording.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new("ValidationException", StatusCode::BAD_REQUEST, message)
    }

    /// The target names no operation of this API.
    pub fn unknown_operation() -> Self {
        Self::new("UnknownOperationException", StatusCode::BAD_REQUEST, "")
    }

    /// The answer to a DryRun whose decision allowed the request.
    pub fn dry_run_allowed() -> Self {
        Self::new(
            "DryRunOperationException",
            StatusCode::BAD_REQUEST,
            "The request would have succeeded, but the DryRun option is set.",
        )
    }

    /// The answer for a refused signature.
    pub fn from_signature(e: &SigV4Error) -> Self {
        let bad = StatusCode::BAD_REQUEST;
        match e {
            SigV4Error::Missing => {
                Self::new("MissingAuthenticationTokenException", bad, "Missing Authentication Token")
            }
            SigV4Error::Incomplete(m) => Self::new("IncompleteSignatureException", bad, m.clone()),
            SigV4Error::UnknownKey => {
                Self::new("UnrecognizedClientException", bad, "The security token included in the request is invalid.")
            }
            SigV4Error::Mismatch(m) | SigV4Error::Expired(m) => Self::new("InvalidSignatureException", bad, m.clone()),
        }
    }

    /// The answer for a domain error: one exhaustive map, refined by the error's detail.
    pub fn from_error(e: &Error) -> Self {
        let bad = StatusCode::BAD_REQUEST;
        let msg = e.message().to_owned();
        match (e.code(), e.detail()) {
            (ErrorCode::InvalidCiphertext, Some(Detail::IncorrectKey)) => Self::new(
                "IncorrectKeyException",
                bad,
                "The key ID in the request does not identify a CMK that can perform this operation.",
            ),
            (ErrorCode::InvalidCiphertext, _) => Self::new("InvalidCiphertextException", bad, ""),
            (ErrorCode::Conflict, Some(Detail::AlreadyExists)) => Self::new("AlreadyExistsException", bad, msg),
            (ErrorCode::Conflict, Some(Detail::LimitExceeded)) => Self::new("LimitExceededException", bad, msg),
            (ErrorCode::Conflict, _) => Self::new("KMSInvalidStateException", bad, msg),
            (ErrorCode::InvalidRequest, Some(Detail::InvalidAliasName)) => {
                Self::new("InvalidAliasNameException", bad, msg)
            }
            (ErrorCode::InvalidRequest, Some(Detail::InvalidGrantId)) => Self::new("InvalidGrantIdException", bad, msg),
            (ErrorCode::InvalidRequest, Some(Detail::InvalidSignature)) => {
                Self::new("KMSInvalidSignatureException", bad, msg)
            }
            (ErrorCode::InvalidRequest, Some(Detail::InvalidMac)) => Self::new("KMSInvalidMacException", bad, msg),
            (ErrorCode::InvalidRequest, Some(Detail::InvalidImportToken)) => {
                Self::new("InvalidImportTokenException", bad, msg)
            }
            (ErrorCode::InvalidRequest, Some(Detail::ExpiredImportToken)) => {
                Self::new("ExpiredImportTokenException", bad, msg)
            }
            (ErrorCode::InvalidRequest, Some(Detail::IncorrectKeyMaterial)) => {
                Self::new("IncorrectKeyMaterialException", bad, msg)
            }
            (ErrorCode::InvalidRequest, _) => Self::validation(msg),
            (ErrorCode::Unauthenticated, _) => {
                Self::new("UnrecognizedClientException", bad, "The security token included in the request is invalid.")
            }
            (ErrorCode::AccessDenied, _) => Self::new("AccessDeniedException", bad, msg),
            (ErrorCode::NotFound, _) => Self::new("NotFoundException", bad, msg),
            (ErrorCode::KeyDisabled, _) => Self::new("DisabledException", bad, msg),
            (ErrorCode::KeyPendingDeletion, _) => Self::new("KMSInvalidStateException", bad, msg),
            (ErrorCode::PayloadTooLarge, _) => Self::validation(msg),
            (ErrorCode::UnsupportedOperation, _) => Self::new("UnsupportedOperationException", bad, msg),
            (ErrorCode::InvalidKeyUsage, _) => Self::new("InvalidKeyUsageException", bad, msg),
            (ErrorCode::RateLimited, _) => Self::new("ThrottlingException", bad, "Rate exceeded"),
            // AWS has no accepted-for-later answer: the request is refused for now, naming
            // the approval it waits on (GetApproval on the REST API follows it).
            (ErrorCode::ApprovalPending, _) => Self::new("AccessDeniedException", bad, msg),
            (ErrorCode::KeyUnavailable, _) => {
                Self::new("KeyUnavailableException", StatusCode::INTERNAL_SERVER_ERROR, msg)
            }
            (ErrorCode::BackendUnavailable, _) => {
                Self::new("DependencyTimeoutException", StatusCode::SERVICE_UNAVAILABLE, msg)
            }
            (ErrorCode::AuditUnavailable | ErrorCode::Internal, _) => {
                Self::new("KMSInternalException", StatusCode::INTERNAL_SERVER_ERROR, "internal error")
            }
        }
    }

    /// The response body and status, with the protocol's headers.
    pub fn response(&self, request_id: &str) -> HttpResponse {
        super::answer(self.status, request_id, &serde_json::json!({ "__type": self.name, "message": self.message }))
    }
}

/// AWS's validation wording for one field.
pub fn constraint(field: &str, constraint: &str) -> Error {
    Error::invalid(format!(
        "1 validation error detected: Value at '{field}' failed to satisfy constraint: {constraint}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_faults_are_400_and_only_retryable_faults_are_5xx() {
        let cases = [
            (Error::not_found("key `x`"), "NotFoundException", 400),
            (Error::new(ErrorCode::KeyDisabled, "the key is disabled"), "DisabledException", 400),
            (Error::new(ErrorCode::KeyPendingDeletion, "pending"), "KMSInvalidStateException", 400),
            (Error::invalid_ciphertext("tag"), "InvalidCiphertextException", 400),
            (Error::invalid_ciphertext("other key").with_detail(Detail::IncorrectKey), "IncorrectKeyException", 400),
            (Error::access_denied("Encrypt"), "AccessDeniedException", 400),
            (Error::conflict("taken").with_detail(Detail::AlreadyExists), "AlreadyExistsException", 400),
            (Error::new(ErrorCode::UnsupportedOperation, "no"), "UnsupportedOperationException", 400),
            (Error::rate_limited("queue"), "ThrottlingException", 400),
            (Error::key_unavailable("down"), "KeyUnavailableException", 500),
            (Error::backend_unavailable("down"), "DependencyTimeoutException", 503),
            (Error::internal("db password=secret"), "KMSInternalException", 500),
            (Error::audit_unavailable("db"), "KMSInternalException", 500),
        ];
        for (e, name, status) in cases {
            let a = AwsError::from_error(&e);
            assert_eq!((a.name, a.status.as_u16()), (name, status), "{e}");
            assert!(!a.message.contains("secret"), "internals never reach the body");
        }
        assert_eq!(AwsError::from_error(&Error::invalid_ciphertext("x")).message, "");
    }
}
