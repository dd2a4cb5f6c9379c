//! The domain error: one enum, each variant with a stable code that clients and operators grep for.

use std::fmt;

/// Stable, machine-readable error codes. The HTTP layer maps each to one status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// No valid credentials were presented.
    Unauthenticated,
    /// Authenticated, but no policy allows the request (or a forbid denies it).
    AccessDenied,
    /// The named key, alias or version does not exist.
    NotFound,
    /// The key is disabled or destroyed and refuses cryptographic use.
    KeyDisabled,
    /// The key is scheduled for deletion and refuses cryptographic use.
    KeyPendingDeletion,
    /// The key's backend cannot serve it right now.
    KeyUnavailable,
    /// A ciphertext blob did not decrypt: one code for every cause.
    InvalidCiphertext,
    /// The request is malformed or a value is out of range.
    InvalidRequest,
    /// A payload exceeds the operation's limit.
    PayloadTooLarge,
    /// The key or backend cannot perform this operation.
    UnsupportedOperation,
    /// The key's usage does not allow the operation (a signing key asked to encrypt).
    InvalidKeyUsage,
    /// The request conflicts with the current state (duplicate alias, concurrent change).
    Conflict,
    /// The audit trail cannot record, so the operation did not run (fail closed).
    AuditUnavailable,
    /// A backend is down or timed out.
    BackendUnavailable,
    /// The service is shedding load.
    RateLimited,
    /// An unexpected failure; details are in the server log, never in the response.
    Internal,
    /// Not an error: the sensitive request was accepted and waits for approval (REST 202).
    ApprovalPending,
}

impl ErrorCode {
    /// The code as written in problem+json bodies and audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthenticated => "Unauthenticated",
            Self::AccessDenied => "AccessDenied",
            Self::NotFound => "NotFound",
            Self::KeyDisabled => "KeyDisabled",
            Self::KeyPendingDeletion => "KeyPendingDeletion",
            Self::KeyUnavailable => "KeyUnavailable",
            Self::InvalidCiphertext => "InvalidCiphertext",
            Self::InvalidRequest => "InvalidRequest",
            Self::PayloadTooLarge => "PayloadTooLarge",
            Self::UnsupportedOperation => "UnsupportedOperation",
            Self::InvalidKeyUsage => "InvalidKeyUsage",
            Self::Conflict => "Conflict",
            Self::AuditUnavailable => "AuditUnavailable",
            Self::BackendUnavailable => "BackendUnavailable",
            Self::RateLimited => "RateLimited",
            Self::Internal => "Internal",
            Self::ApprovalPending => "ApprovalPending",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A finer reading of some codes, for front doors whose protocol names more cases than
/// Keyward's codes (the AWS KMS API). The REST API answers by code alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Detail {
    /// `InvalidCiphertext` because the blob is under another key than the one named.
    IncorrectKey,
    /// `Conflict` because a name is already taken.
    AlreadyExists,
    /// `Conflict` because the key's state does not allow the change.
    InvalidState,
    /// `InvalidRequest` because an alias name is malformed.
    InvalidAliasName,
    /// `InvalidRequest` because a grant id is malformed.
    InvalidGrantId,
    /// `Conflict` because a count limit (grants per key) is reached.
    LimitExceeded,
    /// `InvalidRequest` because a signature did not verify (the AWS API answers Verify so).
    InvalidSignature,
    /// `InvalidRequest` because a MAC did not verify (the AWS API answers VerifyMac so).
    InvalidMac,
    /// `InvalidRequest` because an import token is malformed, altered or for another key.
    InvalidImportToken,
    /// `InvalidRequest` because an import token's 24 hours have passed.
    ExpiredImportToken,
    /// `InvalidRequest` because re-imported material is not the material the key had.
    IncorrectKeyMaterial,
    /// `RateLimited` by a quota: the seconds until the request would pass.
    RetryAfter(u32),
    /// `ApprovalPending`: the approval request the operation now waits on.
    Approval {
        /// Its id.
        id: uuid::Uuid,
        /// Approvals it needs.
        required: u32,
        /// When it expires.
        expires_at: chrono::DateTime<chrono::Utc>,
    },
}

/// A domain error: a stable code, a message safe to show the caller, and (for the audit
/// trail and the server log only) a private reason.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Error {
    code: ErrorCode,
    message: String,
    reason: Option<String>,
    detail: Option<Detail>,
    /// Already in the audit trail (committed with a refused change): not recorded again.
    recorded: bool,
}

impl Error {
    /// An error whose message may be shown to the caller.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), reason: None, detail: None, recorded: false }
    }

    /// Marks the error as already recorded in the audit trail.
    #[must_use]
    pub(crate) fn recorded(mut self) -> Self {
        self.recorded = true;
        self
    }

    /// Whether the error's record is already committed.
    pub(crate) fn is_recorded(&self) -> bool {
        self.recorded
    }

    /// Attaches a finer reading of the code (see [`Detail`]).
    #[must_use]
    pub fn with_detail(mut self, detail: Detail) -> Self {
        self.detail = Some(detail);
        self
    }

    /// The finer reading of the code, if any.
    pub fn detail(&self) -> Option<Detail> {
        self.detail
    }

    /// Attaches a private reason: kept in the audit record and log, never sent to the caller.
    #[must_use]
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The caller-safe message. Generic for 5xx codes.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The private reason, if any.
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    /// `InvalidRequest` with a caller-safe message.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }

    /// `NotFound` for the named thing.
    pub fn not_found(what: impl fmt::Display) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    /// `Conflict` with a caller-safe message.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }

    /// `InvalidCiphertext`: the caller sees one message whatever the cause; the cause is the reason.
    pub fn invalid_ciphertext(reason: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidCiphertext, "the ciphertext blob could not be decrypted").with_reason(reason)
    }

    /// `Internal`: the caller sees a generic message; the detail goes to the log and audit.
    pub fn internal(reason: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, "internal error").with_reason(reason)
    }

    /// Ends a dry run after its decision; [`crate::service::KeyService::dry_run`] turns it
    /// into the answer, so it never reaches a caller.
    pub(crate) fn dry_run_complete() -> Self {
        Self::internal("dry run stopped after its decision")
    }

    /// `RateLimited`: the caller should back off and retry.
    pub fn rate_limited(reason: impl Into<String>) -> Self {
        Self::new(ErrorCode::RateLimited, "too many requests; retry shortly").with_reason(reason)
    }

    /// `Unauthenticated` with a generic message (the reason stays private).
    pub fn unauthenticated(reason: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthenticated, "missing or invalid bearer token").with_reason(reason)
    }

    /// `AccessDenied` for an operation.
    pub fn access_denied(action: impl fmt::Display) -> Self {
        Self::new(ErrorCode::AccessDenied, format!("not allowed to perform `{action}`"))
    }

    /// `AuditUnavailable`: the trail cannot record, so nothing ran or was released.
    pub fn audit_unavailable(reason: impl Into<String>) -> Self {
        Self::new(ErrorCode::AuditUnavailable, "the audit trail is unavailable; the request was not carried out")
            .with_reason(reason)
    }

    /// `BackendUnavailable`: a backend failed or timed out.
    /// The key's backend is down; retrying later may succeed.
    pub fn key_unavailable(reason: impl Into<String>) -> Self {
        Self::new(ErrorCode::KeyUnavailable, "the key's backend is unavailable; retry later").with_reason(reason)
    }

    /// A backend not tied to one key is down.
    pub fn backend_unavailable(reason: impl Into<String>) -> Self {
        Self::new(ErrorCode::BackendUnavailable, "the key backend is unavailable").with_reason(reason)
    }
}

/// Result with the domain error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
