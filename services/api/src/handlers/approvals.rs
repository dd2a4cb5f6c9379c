//! ListApprovals, GetApproval, Approve, Reject: the review of sensitive requests.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use keyward_core::Error;
use keyward_core::model::approval::{ApprovalRecord, ApprovalState};
use keyward_core::operation::Operation;

use super::{DryRunBody, run};
use crate::dto::approvals::{Approval, ApprovalVote, ListApprovalsQuery, ListApprovalsResponse};
use crate::dto::keys::rfc3339;
use crate::dto::{limit, parse_query};
use crate::error::{ApiError, Problem};
use crate::state::AppState;

const ID_PARAM: &str = "The approval request's id";

fn approval(a: ApprovalRecord) -> Approval {
    let request = serde_json::to_value(&a.request).unwrap_or_default();
    Approval {
        id: a.id.to_string(),
        operation: a.request.operation().as_str().to_owned(),
        request,
        resource: a.resource,
        requested_by: a.requested_by,
        required: a.required,
        approvals: a
            .approvals
            .into_iter()
            .map(|v| ApprovalVote { principal: v.principal, approved_at: rfc3339(v.at) })
            .collect(),
        state: a.state.as_str().to_owned(),
        rejected_by: a.rejected_by,
        created_at: rfc3339(a.created_at),
        expires_at: rfc3339(a.expires_at),
        result: a.result,
    }
}

fn approval_id(s: &str) -> Result<uuid::Uuid, Error> {
    s.parse().map_err(|_| Error::invalid("the approval id must be a UUID"))
}

/// Lists approval requests, oldest first, optionally in one state.
#[utoipa::path(
    operation_id = "ListApprovals", tag = "approvals", params(ListApprovalsQuery),
    responses((status = 200, body = ListApprovalsResponse), (status = "4XX", body = Problem), (status = "5XX", body = Problem)),
    security(("bearer" = []))
)]
#[get("/approvals")]
pub async fn list_approvals(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    run(&state, &req, Operation::ListApprovals, StatusCode::OK, b"", async |scope| {
        let q: ListApprovalsQuery = parse_query(req.query_string())?;
        let wanted = q.state.as_deref().map(ApprovalState::parse).transpose()?;
        let out = state.service.list_approvals(scope, wanted, q.next_token.as_deref(), limit(q.limit)?).await?;
        Ok(ListApprovalsResponse {
            approvals: out.approvals.into_iter().map(approval).collect(),
            next_token: out.next_token,
        })
    })
    .await
}

/// One approval request: what it asks, who approved, where it stands and how its run ended.
#[utoipa::path(
    operation_id = "GetApproval", tag = "approvals", params(("id" = String, Path, description = ID_PARAM)),
    responses((status = 200, body = Approval), (status = "4XX", body = Problem), (status = "5XX", body = Problem)),
    security(("bearer" = []))
)]
#[get("/approvals/{id}")]
pub async fn get_approval(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    run(&state, &req, Operation::GetApproval, StatusCode::OK, b"", async |scope| {
        state.service.get_approval(scope, approval_id(&id)?).await.map(approval)
    })
    .await
}

/// Approves a pending request (not one's own). The approval that reaches the quorum runs the
/// request as its requester; the answer then carries its `result`.
#[utoipa::path(
    operation_id = "Approve", tag = "approvals", params(("id" = String, Path, description = ID_PARAM)),
    responses((status = 200, body = Approval), (status = "4XX", body = Problem), (status = "5XX", body = Problem)),
    security(("bearer" = []))
)]
#[post("/approvals/{id}/approve")]
pub async fn approve(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    DryRunBody(body): DryRunBody,
) -> Result<HttpResponse, ApiError> {
    run(&state, &req, Operation::Approve, StatusCode::OK, &body, async |scope| {
        state.service.approve(scope, approval_id(&id)?).await.map(approval)
    })
    .await
}

/// Rejects a pending request: it will never run.
#[utoipa::path(
    operation_id = "Reject", tag = "approvals", params(("id" = String, Path, description = ID_PARAM)),
    responses((status = 200, body = Approval), (status = "4XX", body = Problem), (status = "5XX", body = Problem)),
    security(("bearer" = []))
)]
#[post("/approvals/{id}/reject")]
pub async fn reject(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    DryRunBody(body): DryRunBody,
) -> Result<HttpResponse, ApiError> {
    run(&state, &req, Operation::Reject, StatusCode::OK, &body, async |scope| {
        state.service.reject(scope, approval_id(&id)?).await.map(approval)
    })
    .await
}
