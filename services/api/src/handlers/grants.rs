//! CreateGrant, ListGrants, RevokeGrant.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, delete, get, post, web};
use keyward_core::Error;
use keyward_core::model::grant::GrantConstraints as Constraints;
use keyward_core::operation::Operation;
use keyward_core::service::{CreateGrantInput, GrantOutput};

use super::{DryRunBody, key_ref, respond, run};
use crate::dto::grants::{CreateGrantRequest, CreateGrantResponse, Grant, GrantConstraints, ListGrantsResponse};
use crate::dto::keys::rfc3339;
use crate::dto::parse_json;
use crate::error::{ApiError, Problem};
use crate::state::AppState;

const KEY_PARAM: &str = "A key id, or an alias written `alias%2FNAME`";

fn grant(g: GrantOutput) -> Grant {
    Grant {
        grant_id: g.grant_id.to_string(),
        key_id: g.key_id.to_string(),
        grantee: g.grantee,
        operations: g.operations,
        constraints: GrantConstraints {
            encryption_context_equals: g.constraints.encryption_context_equals,
            encryption_context_subset: g.constraints.encryption_context_subset,
        },
        granted_by: g.granted_by,
        created_at: rfc3339(g.created_at),
        retiring_principal: g.retiring_principal,
    }
}

/// Delegates operations on a key to a principal or group, optionally only for requests whose
/// encryption context matches. The caller needs `CreateGrant` on the key and must itself be
/// allowed every operation it grants.
#[utoipa::path(
    operation_id = "CreateGrant", tag = "grants", params(("key" = String, Path, description = KEY_PARAM)),
    request_body = CreateGrantRequest,
    responses((status = 201, body = CreateGrantResponse), (status = 202, description = "Waits for approval (docs/operations.md, M-of-N approvals)", body = crate::error::ApprovalAccepted), (status = "4XX", body = Problem), (status = "5XX", body = Problem)),
    security(("bearer" = []))
)]
#[post("/keys/{key}/grants")]
pub async fn create_grant(
    state: web::Data<AppState>,
    req: HttpRequest,
    key: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    run(&state, &req, Operation::CreateGrant, StatusCode::CREATED, &body, async |scope| {
        let r: CreateGrantRequest = parse_json(&body)?;
        let c = r.constraints.unwrap_or_default();
        let input = CreateGrantInput {
            key: key_ref(&key)?,
            grantee: r.grantee,
            operations: r.operations,
            constraints: Constraints {
                encryption_context_equals: c.encryption_context_equals,
                encryption_context_subset: c.encryption_context_subset,
            },
            retiring_principal: r.retiring_principal,
        };
        let out = state.service.create_grant(scope, input).await?;
        Ok(CreateGrantResponse { grant_id: out.grant_id.to_string() })
    })
    .await
}

/// A key's active grants.
#[utoipa::path(
    operation_id = "ListGrants", tag = "grants", params(("key" = String, Path, description = KEY_PARAM)),
    responses((status = 200, body = ListGrantsResponse), (status = "4XX", body = Problem), (status = "5XX", body = Problem)),
    security(("bearer" = []))
)]
#[get("/keys/{key}/grants")]
pub async fn list_grants(
    state: web::Data<AppState>,
    req: HttpRequest,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    run(&state, &req, Operation::ListGrants, StatusCode::OK, b"", async |scope| {
        let grants = state.service.list_grants(scope, &key_ref(&key)?).await?;
        Ok(ListGrantsResponse { grants: grants.into_iter().map(grant).collect() })
    })
    .await
}

/// Revokes a grant: it stops working at once on this server, and on other replicas within
/// their grant sync interval.
#[utoipa::path(
    operation_id = "RevokeGrant", tag = "grants", params(("grant_id" = String, Path, description = "The grant id")),
    responses((status = 204, description = "Revoked"), (status = "4XX", body = Problem), (status = "5XX", body = Problem)),
    security(("bearer" = []))
)]
#[delete("/grants/{grant_id}")]
pub async fn revoke_grant(
    state: web::Data<AppState>,
    req: HttpRequest,
    grant_id: web::Path<String>,
    DryRunBody(body): DryRunBody,
) -> Result<HttpResponse, ApiError> {
    let op = async |scope: &mut _| {
        let id = uuid::Uuid::parse_str(&grant_id).map_err(|_| Error::invalid("grant id is not a UUID"))?;
        state.service.revoke_grant(scope, id).await.map(|()| ((), StatusCode::NO_CONTENT))
    };
    respond(&state, &req, Operation::RevokeGrant, &body, op, |(), _| HttpResponse::NoContent().finish()).await
}
