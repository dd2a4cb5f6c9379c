//! Maps AWS KMS API failures onto the backend contract's errors.

use aws_sdk_kms::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use keyward_backend::BackendError;

/// What the call was, since the same service error means different things per call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Call {
    /// Decrypt: every complaint about the blob or its key is a decryption failure.
    Decrypt,
    /// Linking a caller-named key: a missing key is the caller's mistake.
    Link,
    /// Anything else.
    Other,
}

/// Classifies a failed call. Transport failures, timeouts, throttling that outlasted the
/// retries, and credential problems make the instance `Unavailable` (marked down until a probe
/// succeeds); per-key refusals make only that key unusable.
pub(crate) fn mapped<E, R>(call: Call, e: SdkError<E, R>) -> BackendError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let code = match &e {
        SdkError::ServiceError(service) => service.err().code().unwrap_or("Unknown").to_owned(),
        // Timeouts, transport failures, unreadable answers, and requests that could not be built
        // (typically: no credentials could be loaded).
        _ => return BackendError::Unavailable(format!("external KMS: {}", DisplayErrorContext(&e))),
    };
    let reason = format!("external KMS: {code}");
    match (call, code.as_str()) {
        // Some compatible servers answer a blob of another key with AccessDenied rather than
        // IncorrectKey; either way this blob does not open under this version.
        (
            Call::Decrypt,
            "InvalidCiphertextException" | "IncorrectKeyException" | "NotFoundException" | "AccessDeniedException",
        ) => BackendError::DecryptFailed(reason),
        (Call::Link, "NotFoundException" | "InvalidArnException") => {
            BackendError::InvalidRequest("the external key does not exist".into())
        }
        (_, "NotFoundException") => BackendError::InvalidMaterial(reason),
        (_, "DisabledException" | "KMSInvalidStateException" | "AccessDeniedException" | "KeyUnavailableException") => {
            BackendError::KeyUnusable(reason)
        }
        (
            _,
            "ThrottlingException"
            | "LimitExceededException"
            | "KMSInternalException"
            | "DependencyTimeoutException"
            | "UnrecognizedClientException"
            | "InvalidSignatureException"
            | "ExpiredTokenException"
            | "InvalidClientTokenId"
            | "IncompleteSignature",
        ) => BackendError::Unavailable(reason),
        _ => BackendError::Internal(format!("{reason}: {}", DisplayErrorContext(&e))),
    }
}
