//! CreateAccessKey, ListAccessKeys, DeleteAccessKey: credentials for the SigV4 front doors.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, delete, get, post, web};
use keyward_core::model::ids::Namespace;
use keyward_core::model::principal::Principal;
use keyward_core::operation::Operation;
use keyward_core::service::{AccessKeyInfo, CreateAccessKeyInput};

use super::{DryRunBody, respond, run};
use crate::dto::access_keys::{
    AccessKey, CreateAccessKeyRequest, CreateAccessKeyResponse, ListAccessKeysQuery, ListAccessKeysResponse,
};
use crate::dto::keys::rfc3339;
use crate::dto::{limit, parse_json, parse_query};
use crate::error::{ApiError, Problem};
use crate::state::AppState;

fn access_key(k: AccessKeyInfo) -> AccessKey {
    AccessKey {
        access_key_id: k.access_key_id,
        principal: k.principal.to_string(),
        groups: k.principal.groups,
        default_namespace: k.default_namespace.to_string(),
        created_at: rfc3339(k.created_at),
    }
}

/// Issues an access key for the AWS-compatible API (SigV4), bound to a principal, its groups
/// and a default namespace. The secret is in this answer only; Keyward stores it sealed.
#[utoipa::path(
    operation_id = "CreateAccessKey", tag = "access-keys",
    request_body = CreateAccessKeyRequest,
    responses((status = 201, body = CreateAccessKeyResponse), (status = "4XX", body = Problem), (status = "5XX", body = Problem)),
    security(("bearer" = []))
)]
#[post("/access-keys")]
pub async fn create_access_key(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    run(&state, &req, Operation::CreateAccessKey, StatusCode::CREATED, &body, async |scope| {
        let r: CreateAccessKeyRequest = parse_json(&body)?;
        let input = CreateAccessKeyInput {
            principal: Principal::from_uid(&r.principal, r.groups)?,
            default_namespace: Namespace::parse(&r.default_namespace)?,
        };
        let (k, secret) = state.service.create_access_key(scope, input).await?;
        let k = access_key(k);
        Ok(CreateAccessKeyResponse {
            access_key_id: k.access_key_id,
            secret_access_key: secret.to_string(),
            principal: k.principal,
            groups: k.groups,
            default_namespace: k.default_namespace,
            created_at: k.created_at,
        })
    })
    .await
}

/// Lists the issued access keys (never their secrets).
#[utoipa::path(
    operation_id = "ListAccessKeys", tag = "access-keys", params(ListAccessKeysQuery),
    responses((status = 200, body = ListAccessKeysResponse), (status = "4XX", body = Problem), (status = "5XX", body = Problem)),
    security(("bearer" = []))
)]
#[get("/access-keys")]
pub async fn list_access_keys(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    run(&state, &req, Operation::ListAccessKeys, StatusCode::OK, b"", async |scope| {
        let q: ListAccessKeysQuery = parse_query(req.query_string())?;
        let out = state.service.list_access_keys(scope, limit(q.limit)?, q.next_token.as_deref()).await?;
        Ok(ListAccessKeysResponse {
            access_keys: out.access_keys.into_iter().map(access_key).collect(),
            next_token: out.next_token,
        })
    })
    .await
}

/// Deletes an access key: requests signed with it are refused from now on.
#[utoipa::path(
    operation_id = "DeleteAccessKey", tag = "access-keys",
    params(("access_key_id" = String, Path, description = "The access key id")),
    responses((status = 204, description = "Deleted"), (status = 202, description = "Waits for approval (docs/operations.md, M-of-N approvals)", body = crate::error::ApprovalAccepted), (status = "4XX", body = Problem), (status = "5XX", body = Problem)),
    security(("bearer" = []))
)]
#[delete("/access-keys/{access_key_id}")]
pub async fn delete_access_key(
    state: web::Data<AppState>,
    req: HttpRequest,
    access_key_id: web::Path<String>,
    DryRunBody(body): DryRunBody,
) -> Result<HttpResponse, ApiError> {
    let op = async |scope: &mut _| {
        state.service.delete_access_key(scope, &access_key_id).await?;
        // Other replicas notice within their cache's re-check interval; this one at once.
        state.aws.credentials.forget(&access_key_id);
        Ok(((), StatusCode::NO_CONTENT))
    };
    respond(&state, &req, Operation::DeleteAccessKey, &body, op, |(), _| HttpResponse::NoContent().finish()).await
}
