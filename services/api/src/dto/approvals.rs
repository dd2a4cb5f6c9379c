//! Approval requests' bodies and answers.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// One approval given.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovalVote {
    /// The approver.
    pub principal: String,
    /// When (RFC 3339).
    pub approved_at: String,
}

/// An approval request.
#[derive(Debug, Serialize, ToSchema)]
pub struct Approval {
    /// Its id.
    pub id: String,
    /// The operation it runs once approved.
    pub operation: String,
    /// What it asked, as the operation takes it (`key_id`, `pending_window_days`, ...).
    #[schema(value_type = Object)]
    pub request: serde_json::Value,
    /// The resource's entity uid: the key, or the system.
    pub resource: String,
    /// Who asked.
    pub requested_by: String,
    /// Approvals it needs (from principals other than the requester).
    pub required: u32,
    /// Approvals given.
    pub approvals: Vec<ApprovalVote>,
    /// `Pending`, `Executing`, `Executed`, `Rejected` or `Expired`.
    pub state: String,
    /// Who rejected it.
    pub rejected_by: Option<String>,
    /// When it was asked (RFC 3339).
    pub created_at: String,
    /// When it expires undecided (RFC 3339).
    pub expires_at: String,
    /// Once executed, how the run ended: `outcome` (`Success` or an error code) and the
    /// operation's answer or `message`.
    #[schema(value_type = Option<Object>)]
    pub result: Option<serde_json::Value>,
}

/// ListApprovals' query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListApprovalsQuery {
    /// `true`: answer the authorization decision and do nothing.
    #[serde(default)]
    pub dry_run: Option<bool>,
    /// Only requests in this state.
    pub state: Option<String>,
    /// Page size, 1-1000 (default 100).
    pub limit: Option<u64>,
    /// The cursor from the previous page.
    pub next_token: Option<String>,
}

/// ListApprovals' answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListApprovalsResponse {
    /// The page, oldest first.
    pub approvals: Vec<Approval>,
    /// Pass as `next_token` for the next page; absent on the last page.
    pub next_token: Option<String>,
}
