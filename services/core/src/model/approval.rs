//! M-of-N approvals: a sensitive request waits, stored with what it asked, until enough other
//! principals approve it (then it runs as its requester) or someone rejects it or it expires.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::ids::KeyId;
use crate::error::Error;
use crate::operation::Operation;

/// Where an approval stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalState {
    /// Waiting for approvals.
    Pending,
    /// Enough approvals: the request is running (a moment, or interrupted by a crash).
    Executing,
    /// The request ran; `result` says how it ended.
    Executed,
    /// Someone rejected it; it never ran.
    Rejected,
    /// Its time ran out; it never ran.
    Expired,
}

impl ApprovalState {
    /// The state's name in the API and store.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Executing => "Executing",
            Self::Executed => "Executed",
            Self::Rejected => "Rejected",
            Self::Expired => "Expired",
        }
    }

    /// Parses a state name.
    pub fn parse(s: &str) -> Result<Self, Error> {
        match s {
            "Pending" => Ok(Self::Pending),
            "Executing" => Ok(Self::Executing),
            "Executed" => Ok(Self::Executed),
            "Rejected" => Ok(Self::Rejected),
            "Expired" => Ok(Self::Expired),
            _ => Err(Error::invalid("`state` must be Pending, Executing, Executed, Rejected or Expired")),
        }
    }
}

/// The request a sensitive operation made, kept to run it once approved.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "operation", deny_unknown_fields)]
pub enum PendingRequest {
    /// ScheduleKeyDeletion.
    ScheduleKeyDeletion {
        /// The key.
        key_id: KeyId,
        /// The pending window asked for.
        pending_window_days: Option<u32>,
    },
    /// DisableKey.
    DisableKey {
        /// The key.
        key_id: KeyId,
    },
    /// ReloadPolicies.
    ReloadPolicies {
        /// Whether the requester forced it past the proofs.
        force: bool,
    },
    /// CreateGrant.
    CreateGrant {
        /// The key.
        key_id: KeyId,
        /// The grantee's uid.
        grantee: String,
        /// Operation names.
        operations: Vec<String>,
        /// `encryption_context_equals`.
        encryption_context_equals: Option<BTreeMap<String, String>>,
        /// `encryption_context_subset`.
        encryption_context_subset: Option<BTreeMap<String, String>>,
        /// The principal expected to retire it.
        retiring_principal: Option<String>,
    },
    /// DeleteAccessKey.
    DeleteAccessKey {
        /// The access key id.
        access_key_id: String,
    },
}

impl PendingRequest {
    /// The operation it runs.
    pub fn operation(&self) -> Operation {
        match self {
            Self::ScheduleKeyDeletion { .. } => Operation::ScheduleKeyDeletion,
            Self::DisableKey { .. } => Operation::DisableKey,
            Self::ReloadPolicies { .. } => Operation::ReloadPolicies,
            Self::CreateGrant { .. } => Operation::CreateGrant,
            Self::DeleteAccessKey { .. } => Operation::DeleteAccessKey,
        }
    }

    /// The key it acts on, if any.
    pub fn key_id(&self) -> Option<KeyId> {
        match self {
            Self::ScheduleKeyDeletion { key_id, .. }
            | Self::DisableKey { key_id }
            | Self::CreateGrant { key_id, .. } => Some(*key_id),
            Self::ReloadPolicies { .. } | Self::DeleteAccessKey { .. } => None,
        }
    }
}

/// One approval given.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Vote {
    /// The approver's uid.
    pub principal: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// An approval request as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalRecord {
    /// Its id.
    pub id: Uuid,
    /// What it runs.
    pub request: PendingRequest,
    /// The resource's entity uid (the key, or the system).
    pub resource: String,
    /// The requester's uid.
    pub requested_by: String,
    /// The requester's groups when asking (it runs with them).
    pub requester_groups: Vec<String>,
    /// Approvals it needs.
    pub required: u32,
    /// Approvals given, in order.
    pub approvals: Vec<Vote>,
    /// Where it stands.
    pub state: ApprovalState,
    /// The rejecting principal, when rejected.
    pub rejected_by: Option<String>,
    /// When it was asked.
    pub created_at: DateTime<Utc>,
    /// When it expires while pending.
    pub expires_at: DateTime<Utc>,
    /// How the run ended: `{"outcome": "Success", ...}` or `{"outcome": <code>, "message"}`.
    pub result: Option<serde_json::Value>,
    /// Optimistic-concurrency counter.
    pub revision: i64,
}

impl ApprovalRecord {
    /// The state as a reader sees it at `now`: a pending request past its time is expired
    /// (the maintenance pass records it so).
    pub fn state_at(&self, now: DateTime<Utc>) -> ApprovalState {
        if self.state == ApprovalState::Pending && now >= self.expires_at { ApprovalState::Expired } else { self.state }
    }
}
