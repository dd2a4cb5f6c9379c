//! Alias endpoints.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, delete, get, put, web};
use keyward_core::model::ids::AliasName;
use keyward_core::operation::Operation;
use keyward_core::service::AliasWrite;

use super::{DryRunBody, key_ref, respond, run};
use crate::dto::aliases::{Alias, CreateAliasRequest, ListAliasesQuery, ListAliasesResponse};
use crate::dto::{limit, parse_json, parse_query};
use crate::error::{ApiError, Problem};
use crate::state::AppState;

fn alias_name(segment: &str) -> keyward_core::Result<AliasName> {
    let decoded = percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .map_err(|_| keyward_core::Error::invalid("alias is not valid UTF-8"))?;
    AliasName::parse(&decoded)
}

/// Creates an alias, or points an existing one at another key.
#[utoipa::path(
    operation_id = "CreateAlias", tag = "aliases",
    params(("name" = String, Path, description = "The alias, written `alias%2FNAME`")),
    request_body = CreateAliasRequest,
    responses(
        (status = 201, description = "Created", body = Alias),
        (status = 200, description = "Pointed at another key", body = Alias),
        (status = "4XX", body = Problem), (status = "5XX", body = Problem)
    ),
    security(("bearer" = []))
)]
#[put("/aliases/{name}")]
pub async fn create_alias(
    state: web::Data<AppState>,
    req: HttpRequest,
    name: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let op = async |scope: &mut _| {
        let r: CreateAliasRequest = parse_json(&body)?;
        let (out, created) = state
            .service
            .create_alias(scope, alias_name(&name)?, &key_ref(&r.target_key_id)?, AliasWrite::Upsert)
            .await?;
        let alias = Alias { alias_name: out.alias_name.to_string(), target_key_id: out.target_key_id.to_string() };
        Ok((alias, if created { StatusCode::CREATED } else { StatusCode::OK }))
    };
    respond(&state, &req, Operation::CreateAlias, &body, op, |alias, status| HttpResponse::build(status).json(alias))
        .await
}

/// Deletes an alias; the key is untouched.
#[utoipa::path(
    operation_id = "DeleteAlias", tag = "aliases",
    params(("name" = String, Path, description = "The alias, written `alias%2FNAME`")),
    responses((status = 204, description = "Deleted"), (status = "4XX", body = Problem), (status = "5XX", body = Problem)),
    security(("bearer" = []))
)]
#[delete("/aliases/{name}")]
pub async fn delete_alias(
    state: web::Data<AppState>,
    req: HttpRequest,
    name: web::Path<String>,
    DryRunBody(body): DryRunBody,
) -> Result<HttpResponse, ApiError> {
    let op = async |scope: &mut _| {
        state.service.delete_alias(scope, &alias_name(&name)?).await.map(|()| ((), StatusCode::NO_CONTENT))
    };
    respond(&state, &req, Operation::DeleteAlias, &body, op, |(), _| HttpResponse::NoContent().finish()).await
}

/// Lists aliases, of one key or of every namespace the caller may list.
#[utoipa::path(
    operation_id = "ListAliases", tag = "aliases", params(ListAliasesQuery),
    responses((status = 200, body = ListAliasesResponse), (status = "4XX", body = Problem), (status = "5XX", body = Problem)),
    security(("bearer" = []))
)]
#[get("/aliases")]
pub async fn list_aliases(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    run(&state, &req, Operation::ListAliases, StatusCode::OK, b"", async |scope| {
        let q: ListAliasesQuery = parse_query(req.query_string())?;
        let key = q.key_id.as_deref().map(key_ref).transpose()?;
        let out = state.service.list_aliases(scope, key.as_ref(), q.next_token.as_deref(), limit(q.limit)?).await?;
        Ok(ListAliasesResponse {
            aliases: out
                .aliases
                .into_iter()
                .map(|a| Alias { alias_name: a.alias_name.to_string(), target_key_id: a.target_key_id.to_string() })
                .collect(),
            next_token: out.next_token,
        })
    })
    .await
}
