//! Key administration endpoints.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, patch, post, web};
use keyward_core::Error;
use keyward_core::model::ids::{AliasName, Namespace};
use keyward_core::operation::Operation;
use keyward_core::service::{CreateKeyInput, RotateAfterUpdate, RotationUpdate, TagUpdate, UpdateKeyInput};
use sha2::{Digest, Sha256};

use super::{DryRunBody, key_ref, run};
use crate::dto::keys::{
    CreateKeyRequest, KeyMetadata, KeyUsageQuery, KeyUsageResponse, KeyVersion, ListKeyVersionsResponse, ListKeysQuery,
    ListKeysResponse, NamespaceUsageQuery, NamespaceUsageResponse, ScheduleKeyDeletionRequest,
    SetMinDecryptionVersionRequest, UpdateKeyRequest,
};
use crate::dto::{limit, parse_json, parse_query};
use crate::error::{ApiError, Problem};
use crate::state::AppState;

const KEY_PARAM: &str = "A key id, or an alias written `alias%2FNAME`";

/// Creates a key. Send `Idempotency-Key` to make retries safe: a replay returns the first
/// answer and creates nothing.
#[utoipa::path(
    operation_id = "CreateKey", tag = "keys",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe (1-128 characters)")),
    request_body = CreateKeyRequest,
    responses((status = 201, body = KeyMetadata), (status = "4XX", body = Problem), (status = "5XX", body = Problem)),
    security(("bearer" = []))
)]
#[post("/keys")]
pub async fn create_key(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    run(&state, &req, Operation::CreateKey, StatusCode::CREATED, &body, async |scope| {
        let r: CreateKeyRequest = parse_json(&body)?;
        if let Some(external) = &r.external_key_id
            && (external.is_empty() || external.len() > 2048 || external.chars().any(char::is_control))
        {
            return Err(Error::invalid("`external_key_id` must be 1-2048 characters with no control characters"));
        }
        let idempotency = match req.headers().get("idempotency-key") {
            None => None,
            Some(v) => {
                let key = v
                    .to_str()
                    .ok()
                    .filter(|k| !k.is_empty() && k.len() <= 128)
                    .ok_or_else(|| Error::invalid("`Idempotency-Key` must be 1-128 visible characters"))?;
                Some((key.to_owned(), hex::encode(Sha256::digest(&body))))
            }
        };
        let input = CreateKeyInput {
            namespace: Namespace::parse(&r.namespace)?,
            description: r.description.unwrap_or_default(),
            spec: r.key_spec.as_deref().unwrap_or("AES_256").parse()?,
            usage: r.key_usage.as_deref().map(str::parse).transpose()?,
            tags: r.tags.unwrap_or_default(),
            backend: r.backend,
            alias: r.alias.as_deref().map(AliasName::parse).transpose()?,
            external_key_id: r.external_key_id,
            origin: r.origin.as_deref().map(str::parse).transpose()?.unwrap_or_default(),
            idempotency,
        };
        state.service.create_key(scope, input).await.map(KeyMetadata::from)
    })
    .await
}

/// Lists keys, in one namespace or in every namespace the caller may list.
#[utoipa::path(
    operation_id = "ListKeys", tag = "keys", params(ListKeysQuery),
    responses((status = 200, body = ListKeysResponse), (status = "4XX", body = Problem), (status = "5XX", body = Problem)),
    security(("bearer" = []))
)]
#[get("/keys")]
pub async fn list_keys(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    run(&state, &req, Operation::ListKeys, StatusCode::OK, b"", async |scope| {
        let q: ListKeysQuery = parse_query(req.query_string())?;
        let ns = q.namespace.as_deref().map(Namespace::parse).transpose()?;
        let out = state.service.list_keys(scope, ns, q.next_token.as_deref(), limit(q.limit)?).await?;
        Ok(ListKeysResponse { keys: out.keys.into_iter().map(KeyMetadata::from).collect(), next_token: out.next_token })
    })
    .await
}

/// Describes a key.
#[utoipa::path(
    operation_id = "DescribeKey", tag = "keys", params(("key" = String, Path, description = KEY_PARAM)),
    responses((status = 200, body = KeyMetadata), (status = "4XX", body = Problem), (status = "5XX", body = Problem)),
    security(("bearer" = []))
)]
#[get("/keys/{key}")]
pub async fn describe_key(
    state: web::Data<AppState>,
    req: HttpRequest,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    run(&state, &req, Operation::DescribeKey, StatusCode::OK, b"", async |scope| {
        state.service.describe_key(scope, &key_ref(&key)?).await.map(KeyMetadata::from)
    })
    .await
}

/// Updates a key's description, tags or rotation period.
#[utoipa::path(
    operation_id = "UpdateKey", tag = "keys", params(("key" = String, Path, description = KEY_PARAM)),
    request_body = UpdateKeyRequest,
    responses((status = 200, body = KeyMetadata), (status = "4XX", body = Problem), (status = "5XX", body = Problem)),
    security(("bearer" = []))
)]
#[patch("/keys/{key}")]
pub async fn update_key(
    state: web::Data<AppState>,
    req: HttpRequest,
    key: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    run(&state, &req, Operation::UpdateKey, StatusCode::OK, &body, async |scope| {
        let r: UpdateKeyRequest = parse_json(&body)?;
        let rotation = match r.rotation_period_days {
            None => RotationUpdate::Keep,
            Some(None) => RotationUpdate::Off,
            Some(Some(days)) => RotationUpdate::Every(days),
        };
        let rotate_after = match r.rotate_after_encryptions {
            None => RotateAfterUpdate::Keep,
            Some(None) => RotateAfterUpdate::Default,
            Some(Some(n)) => RotateAfterUpdate::After(n),
        };
        let tags = r.tags.map_or(TagUpdate::Keep, TagUpdate::Replace);
        let on_use_while_pending = r.on_use_while_pending.as_deref().map(str::parse).transpose()?;
        let input = UpdateKeyInput { description: r.description, tags, rotation, rotate_after, on_use_while_pending };
        state.service.update_key(scope, &key_ref(&key)?, input).await.map(KeyMetadata::from)
    })
    .await
}

/// Enables a disabled key.
#[utoipa::path(
    operation_id = "EnableKey", tag = "keys", params(("key" = String, Path, description = KEY_PARAM)),
    responses((status = 200, body = KeyMetadata), (status = "4XX", body = Problem), (status = "5XX", body = Problem)),
    security(("bearer" = []))
)]
#[post("/keys/{key}/enable")]
pub async fn enable_key(
    state: web::Data<AppState>,
    req: HttpRequest,
    key: web::Path<String>,
    DryRunBody(body): DryRunBody,
) -> Result<HttpResponse, ApiError> {
    run(&state, &req, Operation::EnableKey, StatusCode::OK, &body, async |scope| {
        state.service.enable_key(scope, &key_ref(&key)?).await.map(KeyMetadata::from)
    })
    .await
}

/// Disables a key: it stops doing cryptography until enabled.
#[utoipa::path(
    operation_id = "DisableKey", tag = "keys", params(("key" = String, Path, description = KEY_PARAM)),
    responses((status = 200, body = KeyMetadata), (status = 202, description = "Waits for approval (docs/operations.md, M-of-N approvals)", body = crate::error::ApprovalAccepted), (status = "4XX", body = Problem), (status = "5XX", body = Problem)),
    security(("bearer" = []))
)]
#[post("/keys/{key}/disable")]
pub async fn disable_key(
    state: web::Data<AppState>,
    req: HttpRequest,
    key: web::Path<String>,
    DryRunBody(body): DryRunBody,
) -> Result<HttpResponse, ApiError> {
    run(&state, &req, Operation::DisableKey, StatusCode::OK, &body, async |scope| {
        state.service.disable_key(scope, &key_ref(&key)?).await.map(KeyMetadata::from)
    })
    .await
}

/// Schedules a key's destruction after a waiting period of 7-30 days (default 30).
///
/// When the waiting period ends, Keyward destroys every version. On an external KMS backend
/// (`aws-kms`), a key Keyward created has each version's external key scheduled for deletion
/// there (after the instance's `external_pending_window_days`); a linked key
/// (`external_key_id`) is only unlinked, and its external key is left as it is.
#[utoipa::path(
    operation_id = "ScheduleKeyDeletion", tag = "keys", params(("key" = String, Path, description = KEY_PARAM)),
    request_body(content = Option<ScheduleKeyDeletionRequest>),
    responses((status = 200, body = KeyMetadata), (status = 202, description = "Waits for approval (docs/operations.md, M-of-N approvals)", body = crate::error::ApprovalAccepted), (status = "4XX", body = Problem), (status = "5XX", body = Problem)),
    security(("bearer" = []))
)]
#[post("/keys/{key}/schedule-deletion")]
pub async fn schedule_key_deletion(
    state: web::Data<AppState>,
    req: HttpRequest,
    key: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    run(&state, &req, Operation::ScheduleKeyDeletion, StatusCode::OK, &body, async |scope| {
        let r: ScheduleKeyDeletionRequest = parse_json(&body)?;
        state.service.schedule_key_deletion(scope, &key_ref(&key)?, r.pending_window_days).await.map(KeyMetadata::from)
    })
    .await
}

/// Cancels a scheduled deletion; the key comes back `Disabled`.
#[utoipa::path(
    operation_id = "CancelKeyDeletion", tag = "keys", params(("key" = String, Path, description = KEY_PARAM)),
    responses((status = 200, body = KeyMetadata), (status = "4XX", body = Problem), (status = "5XX", body = Problem)),
    security(("bearer" = []))
)]
#[post("/keys/{key}/cancel-deletion")]
pub async fn cancel_key_deletion(
    state: web::Data<AppState>,
    req: HttpRequest,
    key: web::Path<String>,
    DryRunBody(body): DryRunBody,
) -> Result<HttpResponse, ApiError> {
    run(&state, &req, Operation::CancelKeyDeletion, StatusCode::OK, &body, async |scope| {
        state.service.cancel_key_deletion(scope, &key_ref(&key)?).await.map(KeyMetadata::from)
    })
    .await
}

/// Rotates a key: a new version becomes primary; older versions keep decrypting.
///
/// On an external KMS backend, each version Keyward creates is a new external key. A linked
/// key (`external_key_id`) rotates in its own KMS, so rotating it here is refused with 422
/// `UnsupportedOperation`.
#[utoipa::path(
    operation_id = "RotateKey", tag = "keys", params(("key" = String, Path, description = KEY_PARAM)),
    responses((status = 200, body = KeyMetadata), (status = "4XX", body = Problem), (status = "5XX", body = Problem)),
    security(("bearer" = []))
)]
#[post("/keys/{key}/rotate")]
pub async fn rotate_key(
    state: web::Data<AppState>,
    req: HttpRequest,
    key: web::Path<String>,
    DryRunBody(body): DryRunBody,
) -> Result<HttpResponse, ApiError> {
    run(&state, &req, Operation::RotateKey, StatusCode::OK, &body, async |scope| {
        state.service.rotate_key(scope, &key_ref(&key)?).await.map(KeyMetadata::from)
    })
    .await
}

/// Lists a key's versions with their usage counters.
#[utoipa::path(
    operation_id = "ListKeyVersions", tag = "keys", params(("key" = String, Path, description = KEY_PARAM)),
    responses((status = 200, body = ListKeyVersionsResponse), (status = "4XX", body = Problem), (status = "5XX", body = Problem)),
    security(("bearer" = []))
)]
#[get("/keys/{key}/versions")]
pub async fn list_key_versions(
    state: web::Data<AppState>,
    req: HttpRequest,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    run(&state, &req, Operation::ListKeyVersions, StatusCode::OK, b"", async |scope| {
        let versions = state.service.list_key_versions(scope, &key_ref(&key)?).await?;
        Ok(ListKeyVersionsResponse { versions: versions.into_iter().map(KeyVersion::from).collect() })
    })
    .await
}

/// Per version: use counters, recent decryptions and principals from the audit trail, and
/// whether it is safe to retire; the minimum decryption version that would refuse nothing seen.
#[utoipa::path(
    operation_id = "GetKeyUsage", tag = "keys", params(("key" = String, Path, description = KEY_PARAM), KeyUsageQuery),
    responses((status = 200, body = KeyUsageResponse), (status = "4XX", body = Problem), (status = "5XX", body = Problem)),
    security(("bearer" = []))
)]
#[get("/keys/{key}/usage")]
pub async fn get_key_usage(
    state: web::Data<AppState>,
    req: HttpRequest,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    run(&state, &req, Operation::GetKeyUsage, StatusCode::OK, b"", async |scope| {
        let q: KeyUsageQuery = parse_query(req.query_string())?;
        let usage = state.service.get_key_usage(scope, &key_ref(&key)?, q.days.unwrap_or(30)).await?;
        Ok(KeyUsageResponse::from(usage))
    })
    .await
}

/// GetKeyUsage's report for every key of a namespace, a page at a time.
#[utoipa::path(
    operation_id = "GetNamespaceUsage", tag = "keys",
    params(("namespace" = String, Path, description = "The namespace"), NamespaceUsageQuery),
    responses((status = 200, body = NamespaceUsageResponse), (status = "4XX", body = Problem), (status = "5XX", body = Problem)),
    security(("bearer" = []))
)]
#[get("/namespaces/{namespace}/usage")]
pub async fn get_namespace_usage(
    state: web::Data<AppState>,
    req: HttpRequest,
    namespace: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    run(&state, &req, Operation::GetNamespaceUsage, StatusCode::OK, b"", async |scope| {
        let q: NamespaceUsageQuery = parse_query(req.query_string())?;
        let ns = Namespace::parse(&namespace)?;
        let limit = q.limit.unwrap_or(keyward_core::service::MAX_USAGE_KEYS);
        let days = q.days.unwrap_or(30);
        let usage = state.service.get_namespace_usage(scope, &ns, days, q.next_token.as_deref(), limit).await?;
        Ok(NamespaceUsageResponse::from(usage))
    })
    .await
}

/// Retires versions below `version`: they stop decrypting but are not destroyed.
#[utoipa::path(
    operation_id = "SetMinDecryptionVersion", tag = "keys", params(("key" = String, Path, description = KEY_PARAM)),
    request_body = SetMinDecryptionVersionRequest,
    responses((status = 200, body = KeyMetadata), (status = "4XX", body = Problem), (status = "5XX", body = Problem)),
    security(("bearer" = []))
)]
#[post("/keys/{key}/min-decryption-version")]
pub async fn set_min_decryption_version(
    state: web::Data<AppState>,
    req: HttpRequest,
    key: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    run(&state, &req, Operation::SetMinDecryptionVersion, StatusCode::OK, &body, async |scope| {
        let r: SetMinDecryptionVersionRequest = parse_json(&body)?;
        state.service.set_min_decryption_version(scope, &key_ref(&key)?, r.version).await.map(KeyMetadata::from)
    })
    .await
}
