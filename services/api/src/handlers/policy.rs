//! Authorize, GetPolicies, ReloadPolicies.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use keyward_core::Error;
use keyward_core::model::ids::{KeyRef, Namespace};
use keyward_core::model::principal::Principal;
use keyward_core::operation::{Action, Operation};
use keyward_core::service::{AskedResource, AuthorizeInput};

use super::run;
use crate::dto::policy::{
    AuthorizeRequest, DryRunResponse, GetPoliciesResponse, PolicyDocument, ReloadPoliciesRequest,
    ReloadPoliciesResponse,
};
use crate::dto::{context, parse_json};
use crate::error::{ApiError, Problem};
use crate::state::AppState;

/// The id inside `Type::"id"` for one of the given type prefixes.
fn uid_id<'a>(uid: &'a str, ty: &str) -> Option<&'a str> {
    uid.strip_prefix(ty)?
        .strip_prefix("::\"")?
        .strip_suffix('"')
        .filter(|id| !id.is_empty() && !id.contains(['"', '\\']))
}

fn resource(uid: &str) -> Result<AskedResource, Error> {
    if let Some(id) = uid_id(uid, "Keyward::Key") {
        return Ok(AskedResource::Key(id.parse::<KeyRef>()?));
    }
    if let Some(ns) = uid_id(uid, "Keyward::Namespace") {
        return Ok(AskedResource::Namespace(Namespace::parse(ns)?));
    }
    Err(Error::invalid("`resource` must be Keyward::Key::\"<id or alias/NAME>\" or Keyward::Namespace::\"<name>\""))
}

fn action(name: &str) -> Result<Action, Error> {
    let bare = uid_id(name, "Keyward::Action").unwrap_or(name);
    bare.parse::<Action>().map_err(|()| Error::invalid("`action` is not a Keyward action"))
}

/// Answers "may this principal do this action on this resource in this context?" without
/// doing anything. Asking about another principal needs a policy allowing `Authorize`.
#[utoipa::path(
    operation_id = "Authorize", tag = "policies",
    request_body = AuthorizeRequest,
    responses((status = 200, body = DryRunResponse), (status = "4XX", body = Problem), (status = "5XX", body = Problem)),
    security(("bearer" = []))
)]
#[post("/authorize")]
pub async fn authorize(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    // The answer is itself a decision; `dry_run` does not apply.
    run(&state, &req, Operation::Authorize, StatusCode::OK, b"", async |scope| {
        let r: AuthorizeRequest = parse_json(&body)?;
        let ctx = r.context.unwrap_or_default();
        let asked = match r.principal {
            Some(uid) => Some(Principal::from_uid(&uid, r.groups.unwrap_or_default())?),
            None if r.groups.is_some() => return Err(Error::invalid("`groups` needs `principal`")),
            None => None,
        };
        let source_ip = ctx
            .source_ip
            .as_deref()
            .map(|s| s.parse().map_err(|_| Error::invalid("`context.source_ip` is not an IP address")))
            .transpose()?;
        let input = AuthorizeInput {
            principal: asked,
            action: action(&r.action)?,
            resource: resource(&r.resource)?,
            encryption_context: context(ctx.encryption_context)?,
            justification: ctx.justification,
            source_ip,
            algorithm: keyward_core::ports::authorizer::AlgorithmFacts {
                signing_algorithm: ctx.signing_algorithm.as_deref().map(str::parse).transpose()?,
                message_type: ctx.message_type.as_deref().map(str::parse).transpose()?,
                mac_algorithm: ctx.mac_algorithm.as_deref().map(str::parse).transpose()?,
            },
        };
        state.service.authorize_question(scope, input).await.map(DryRunResponse::from)
    })
    .await
}

/// The active policy set, its version and the schema.
#[utoipa::path(
    operation_id = "GetPolicies", tag = "policies",
    responses((status = 200, body = GetPoliciesResponse), (status = "4XX", body = Problem), (status = "5XX", body = Problem)),
    security(("bearer" = []))
)]
#[get("/policies")]
pub async fn get_policies(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    run(&state, &req, Operation::GetPolicies, StatusCode::OK, b"", async |scope| {
        let snapshot = state.service.get_policies(scope).await?;
        Ok(GetPoliciesResponse {
            policy_version: snapshot.version,
            policies: snapshot.policies.into_iter().map(|p| PolicyDocument { id: p.id, text: p.text }).collect(),
            schema: snapshot.schema,
        })
    })
    .await
}

/// Reloads the policy directory. An invalid set, or one that fails its safety proofs
/// (no policy errors; admins keep ScheduleKeyDeletion, CancelKeyDeletion and ReloadPolicies),
/// is refused (400, with the problems and a counterexample) and the active set stays, unless
/// an admin forces it.
#[utoipa::path(
    operation_id = "ReloadPolicies", tag = "policies",
    request_body(content = Option<ReloadPoliciesRequest>),
    responses((status = 200, body = ReloadPoliciesResponse), (status = 202, description = "Waits for approval (docs/operations.md, M-of-N approvals)", body = crate::error::ApprovalAccepted), (status = "4XX", body = Problem), (status = "5XX", body = Problem)),
    security(("bearer" = []))
)]
#[post("/policies/reload")]
pub async fn reload_policies(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    run(&state, &req, Operation::ReloadPolicies, StatusCode::OK, &body, async |scope| {
        let r: ReloadPoliciesRequest = parse_json(&body)?;
        let reloaded = state.service.reload_policies(scope, r.force).await?;
        Ok(ReloadPoliciesResponse { policy_version: reloaded.version, proofs: reloaded.proofs })
    })
    .await
}
