//! Bring your own key: import parameters, import, and deletion of imported material.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, delete, post, web};
use chrono::{DateTime, Utc};
use keyward_core::model::import::{WrappingAlgorithm, wrapping_key_spec};
use keyward_core::model::key::KeySpec;
use keyward_core::operation::Operation;
use keyward_core::service::ImportInput;

use super::{DryRunBody, key_ref, run};
use crate::dto::import::{ImportKeyMaterialRequest, ImportParametersRequest, ImportParametersResponse};
use crate::dto::keys::{KeyMetadata, rfc3339};
use crate::dto::{b64, b64_decode, parse_json, pem};
use crate::error::{ApiError, Problem};
use crate::state::AppState;

const KEY_PARAM: &str = "A key id, or an alias written `alias%2FNAME`";

/// A fresh RSA wrapping public key and an import token, valid 24 hours, for a key created
/// with origin `EXTERNAL`.
#[utoipa::path(
    operation_id = "GetParametersForImport", tag = "import", params(("key" = String, Path, description = KEY_PARAM)),
    request_body = ImportParametersRequest,
    responses((status = 200, body = ImportParametersResponse), (status = "4XX", body = Problem), (status = "5XX", body = Problem)),
    security(("bearer" = []))
)]
#[post("/keys/{key}/import-parameters")]
pub async fn get_parameters_for_import(
    state: web::Data<AppState>,
    req: HttpRequest,
    key: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    run(&state, &req, Operation::GetParametersForImport, StatusCode::OK, &body, async |scope| {
        let r: ImportParametersRequest = parse_json(&body)?;
        let algorithm =
            r.wrapping_algorithm.as_deref().map_or(Ok(WrappingAlgorithm::RsaAesKeyWrapSha256), str::parse)?;
        let spec = r.wrapping_key_spec.as_deref().map_or(Ok(KeySpec::Rsa4096), wrapping_key_spec)?;
        let out = state.service.get_parameters_for_import(scope, &key_ref(&key)?, algorithm, spec).await?;
        Ok(ImportParametersResponse {
            key_id: out.key_id.to_string(),
            public_key: b64(&out.public_key),
            public_key_pem: pem("PUBLIC KEY", &out.public_key),
            import_token: b64(&out.import_token),
            parameters_valid_to: rfc3339(out.parameters_valid_to),
        })
    })
    .await
}

/// Imports wrapped key material into a key waiting for it (`PendingImport`); the key becomes
/// `Enabled`. A key that had material takes only the same material again.
#[utoipa::path(
    operation_id = "ImportKeyMaterial", tag = "import", params(("key" = String, Path, description = KEY_PARAM)),
    request_body = ImportKeyMaterialRequest,
    responses((status = 200, body = KeyMetadata), (status = "4XX", body = Problem), (status = "5XX", body = Problem)),
    security(("bearer" = []))
)]
#[post("/keys/{key}/import")]
pub async fn import_key_material(
    state: web::Data<AppState>,
    req: HttpRequest,
    key: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    run(&state, &req, Operation::ImportKeyMaterial, StatusCode::OK, &body, async |scope| {
        let r: ImportKeyMaterialRequest = parse_json(&body)?;
        let valid_to = r
            .valid_to
            .as_deref()
            .map(|t| {
                DateTime::parse_from_rfc3339(t)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| keyward_core::Error::invalid("`valid_to` is not an RFC 3339 time"))
            })
            .transpose()?;
        let input = ImportInput {
            key: key_ref(&key)?,
            import_token: b64_decode("import_token", &r.import_token)?.to_vec(),
            encrypted_key_material: b64_decode("encrypted_key_material", &r.encrypted_key_material)?.to_vec(),
            valid_to,
        };
        state.service.import_key_material(scope, input).await.map(KeyMetadata::from)
    })
    .await
}

/// Deletes a key's imported material: the key goes back to `PendingImport` until the same
/// material is imported again.
#[utoipa::path(
    operation_id = "DeleteImportedKeyMaterial", tag = "import", params(("key" = String, Path, description = KEY_PARAM)),
    responses((status = 200, body = KeyMetadata), (status = "4XX", body = Problem), (status = "5XX", body = Problem)),
    security(("bearer" = []))
)]
#[delete("/keys/{key}/import")]
pub async fn delete_imported_key_material(
    state: web::Data<AppState>,
    req: HttpRequest,
    key: web::Path<String>,
    DryRunBody(body): DryRunBody,
) -> Result<HttpResponse, ApiError> {
    run(&state, &req, Operation::DeleteImportedKeyMaterial, StatusCode::OK, &body, async |scope| {
        state.service.delete_imported_key_material(scope, &key_ref(&key)?).await.map(KeyMetadata::from)
    })
    .await
}
