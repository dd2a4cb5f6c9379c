//! The AWS KMS-compatible front door: the AWS KMS JSON 1.1 protocol (`POST /` with
//! `X-Amz-Target: TrentService.<Operation>`), authenticated by SigV4 with Keyward-issued access
//! keys, onto the same [`KeyService`](keyward_core::service::KeyService) as the REST API: same
//! decisions, same backends, one audit record per request marked `interface = "aws-kms"`.
//! This module owns only translation: wire shapes, error names, ARNs and the signature check.

pub mod arn;
pub mod credentials;
pub mod error;
mod ops_admin;
mod ops_crypto;
mod ops_grants;
mod ops_import;
mod ops_signing;
mod wire;

/// SigV4 verification (its own crate, shared by every SigV4 front door).
pub use keyward_sigv4 as sigv4;

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::NaiveDate;
use keyward_core::Error;
use keyward_core::operation::Operation;
use keyward_core::service::{AccessKeyInfo, KeyService, Scope};
use serde_json::Value;

pub use arn::AwsSettings;
use credentials::Credentials;
use error::AwsError;
use sigv4::SigV4Error;

use crate::meta;
use crate::state::AppState;

/// The audit trail's name for this front door.
pub const INTERFACE: &str = "aws-kms";

/// The SigV4 service name clients sign for.
pub const SIGNING_SERVICE: &str = "kms";

/// The protocol's content type.
pub const CONTENT_TYPE_JSON: &str = "application/x-amz-json-1.1";

/// Largest body this API reads: a 4 KiB plaintext in base64 plus a context and the other
/// fields fits many times over.
pub const MAX_BODY: usize = 64 * 1024;

/// The front door's configuration and its signing-key cache.
#[derive(Debug, Default)]
pub struct AwsApi {
    /// What ARNs say.
    pub settings: AwsSettings,
    /// Cached signing keys.
    pub credentials: Credentials,
}

/// The operations this API serves: the AWS name, the Keyward operation it runs (its Cedar
/// action and audit `action`), and whether AWS gives it a `DryRun` parameter.
const OPERATIONS: &[(&str, Operation, bool)] = &[
    ("Encrypt", Operation::Encrypt, true),
    ("Decrypt", Operation::Decrypt, true),
    ("ReEncrypt", Operation::ReEncrypt, true),
    ("GenerateDataKey", Operation::GenerateDataKey, true),
    ("GenerateDataKeyWithoutPlaintext", Operation::GenerateDataKeyWithoutPlaintext, true),
    ("GenerateRandom", Operation::GenerateRandom, false),
    ("CreateKey", Operation::CreateKey, false),
    ("DescribeKey", Operation::DescribeKey, false),
    ("ListKeys", Operation::ListKeys, false),
    ("UpdateKeyDescription", Operation::UpdateKey, false),
    ("EnableKey", Operation::EnableKey, false),
    ("DisableKey", Operation::DisableKey, false),
    ("ScheduleKeyDeletion", Operation::ScheduleKeyDeletion, false),
    ("CancelKeyDeletion", Operation::CancelKeyDeletion, false),
    ("CreateAlias", Operation::CreateAlias, false),
    ("UpdateAlias", Operation::CreateAlias, false),
    ("DeleteAlias", Operation::DeleteAlias, false),
    ("ListAliases", Operation::ListAliases, false),
    ("TagResource", Operation::UpdateKey, false),
    ("UntagResource", Operation::UpdateKey, false),
    ("ListResourceTags", Operation::DescribeKey, false),
    ("EnableKeyRotation", Operation::UpdateKey, false),
    ("DisableKeyRotation", Operation::UpdateKey, false),
    ("GetKeyRotationStatus", Operation::DescribeKey, false),
    ("RotateKeyOnDemand", Operation::RotateKey, false),
    ("ListKeyRotations", Operation::ListKeyVersions, false),
    ("CreateGrant", Operation::CreateGrant, true),
    ("ListGrants", Operation::ListGrants, false),
    ("ListRetirableGrants", Operation::ListGrants, false),
    ("RevokeGrant", Operation::RevokeGrant, true),
    ("RetireGrant", Operation::RevokeGrant, true),
    ("GenerateDataKeyPair", Operation::GenerateDataKeyPair, true),
    ("GenerateDataKeyPairWithoutPlaintext", Operation::GenerateDataKeyPairWithoutPlaintext, true),
    ("Sign", Operation::Sign, true),
    ("Verify", Operation::Verify, true),
    ("GetPublicKey", Operation::GetPublicKey, false),
    ("GenerateMac", Operation::GenerateMac, true),
    ("VerifyMac", Operation::VerifyMac, true),
    ("GetParametersForImport", Operation::GetParametersForImport, false),
    ("ImportKeyMaterial", Operation::ImportKeyMaterial, false),
    ("DeleteImportedKeyMaterial", Operation::DeleteImportedKeyMaterial, false),
];

/// Whether a request is for this front door: `POST /` carrying `X-Amz-Target`.
pub fn is_aws_request(ctx: &actix_web::guard::GuardContext<'_>) -> bool {
    ctx.head().headers().contains_key("x-amz-target")
}

/// Everything an operation's translation needs.
pub(crate) struct Call<'a> {
    pub service: &'a KeyService,
    pub aws: &'a AwsApi,
    pub access_key: Option<&'a AccessKeyInfo>,
    pub body: &'a [u8],
}

impl Call<'_> {
    /// The caller's access key (present whenever the scope's principal is).
    pub fn access_key(&self) -> Result<&AccessKeyInfo, Error> {
        self.access_key.ok_or_else(|| Error::unauthenticated("no access key"))
    }

    /// A required `KeyId` parameter, in any of its spellings.
    pub fn key_id(&self, value: Option<&str>) -> Result<keyward_core::model::ids::KeyRef, Error> {
        self.aws.settings.key_ref(value.ok_or_else(|| error::constraint("keyId", "Member must not be null"))?)
    }
}

/// The handler of `POST /` with `X-Amz-Target`.
pub async fn handle(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let started = std::time::Instant::now();
    let request_id = meta::request_id(&req);
    let target = req.headers().get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("");
    let name = target.strip_prefix("TrentService.").unwrap_or("");
    let known = OPERATIONS.iter().find(|(n, ..)| *n == name).copied();
    let (op, dry_run_capable) = known.map_or((Operation::Unsupported, false), |(_, op, d)| (op, d));
    // Read at most MAX_BODY + 1 bytes: an oversized body is refused (and audited) unread.
    let body = read_capped(payload, MAX_BODY).await;
    let too_large = body.len() > MAX_BODY;

    let authenticated = if too_large {
        Err(Refusal::Service(Error::new(
            keyward_core::ErrorCode::PayloadTooLarge,
            format!("the request body is over {MAX_BODY} bytes"),
        )))
    } else {
        authenticate(&state, &req, &body).await
    };
    let (principal, access_key, refusal) = match authenticated {
        Ok(info) => (Ok(info.principal.clone()), Some(info), None),
        Err(Refusal::Signature(e)) => (Err(Error::unauthenticated(format!("sigv4: {e:?}"))), None, Some(e)),
        Err(Refusal::Service(e)) => (Err(e), None, None),
    };
    let mut meta = meta::request_meta(&req);
    meta.interface = Some(INTERFACE);
    let scope = keyward_core::service::RequestStart { meta, principal, operation: op };
    let call = Call { service: &state.service, aws: &state.aws, access_key: access_key.as_deref(), body: &body };
    let run = async |scope: &mut Scope| -> keyward_core::Result<Value> {
        scope.principal()?;
        if known.is_none() {
            return Err(Error::new(
                keyward_core::ErrorCode::UnsupportedOperation,
                format!("Keyward does not support `{}`", name.chars().take(64).collect::<String>()),
            )
            .with_reason(format!("X-Amz-Target `{}`", target.chars().take(128).collect::<String>())));
        }
        dispatch(name, &call, scope).await
    };
    let dry_run = dry_run_capable && wire::dry_run(&body);
    let outcome = if dry_run {
        match state.service.dry_run(scope, run).await {
            Ok(a) if a.allowed => Ok(None),
            Ok(_) => Err(Error::access_denied(op)),
            Err(e) => Err(e),
        }
    } else {
        state.service.audited(scope, run).await.map(Some)
    };
    crate::handlers::count(op, outcome.as_ref().err(), started);
    match outcome {
        Ok(Some(value)) => answer(StatusCode::OK, &request_id, &value),
        Ok(None) => AwsError::dry_run_allowed().response(&request_id),
        Err(e) => aws_error(&e, refusal.as_ref()).response(&request_id),
    }
}

/// Reads at most `max` + 1 bytes of a body: one more than allowed tells it is too large.
pub(crate) async fn read_capped(mut payload: web::Payload, max: usize) -> Vec<u8> {
    use futures_util::StreamExt as _;
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let Ok(chunk) = chunk else { break };
        body.extend_from_slice(&chunk);
        if body.len() > max {
            break;
        }
    }
    body
}

fn aws_error(e: &Error, refusal: Option<&SigV4Error>) -> AwsError {
    match (e.code(), refusal) {
        (keyward_core::ErrorCode::Unauthenticated, Some(r)) => AwsError::from_signature(r),
        _ => AwsError::from_error(e),
    }
}

async fn dispatch(name: &str, call: &Call<'_>, scope: &mut Scope) -> keyward_core::Result<Value> {
    match name {
        "Encrypt" => ops_crypto::encrypt(call, scope).await,
        "Decrypt" => ops_crypto::decrypt(call, scope).await,
        "ReEncrypt" => ops_crypto::re_encrypt(call, scope).await,
        "GenerateDataKey" => ops_crypto::generate_data_key(call, scope, true).await,
        "GenerateDataKeyWithoutPlaintext" => ops_crypto::generate_data_key(call, scope, false).await,
        "GenerateRandom" => ops_crypto::generate_random(call, scope).await,
        "CreateKey" => ops_admin::create_key(call, scope).await,
        "DescribeKey" => ops_admin::describe_key(call, scope).await,
        "ListKeys" => ops_admin::list_keys(call, scope).await,
        "UpdateKeyDescription" => ops_admin::update_key_description(call, scope).await,
        "EnableKey" => ops_admin::enable_key(call, scope, true).await,
        "DisableKey" => ops_admin::enable_key(call, scope, false).await,
        "ScheduleKeyDeletion" => ops_admin::schedule_key_deletion(call, scope).await,
        "CancelKeyDeletion" => ops_admin::cancel_key_deletion(call, scope).await,
        "CreateAlias" => ops_admin::create_alias(call, scope, false).await,
        "UpdateAlias" => ops_admin::create_alias(call, scope, true).await,
        "DeleteAlias" => ops_admin::delete_alias(call, scope).await,
        "ListAliases" => ops_admin::list_aliases(call, scope).await,
        "TagResource" => ops_admin::tag_resource(call, scope).await,
        "UntagResource" => ops_admin::untag_resource(call, scope).await,
        "ListResourceTags" => ops_admin::list_resource_tags(call, scope).await,
        "EnableKeyRotation" => ops_admin::set_rotation(call, scope, true).await,
        "DisableKeyRotation" => ops_admin::set_rotation(call, scope, false).await,
        "GetKeyRotationStatus" => ops_admin::get_key_rotation_status(call, scope).await,
        "RotateKeyOnDemand" => ops_admin::rotate_key_on_demand(call, scope).await,
        "ListKeyRotations" => ops_admin::list_key_rotations(call, scope).await,
        "CreateGrant" => ops_grants::create_grant(call, scope).await,
        "ListGrants" => ops_grants::list_grants(call, scope).await,
        "ListRetirableGrants" => ops_grants::list_retirable_grants(call, scope).await,
        "RevokeGrant" => ops_grants::revoke_grant(call, scope).await,
        "RetireGrant" => ops_grants::retire_grant(call, scope).await,
        "GenerateDataKeyPair" => ops_crypto::generate_data_key_pair(call, scope, true).await,
        "GenerateDataKeyPairWithoutPlaintext" => ops_crypto::generate_data_key_pair(call, scope, false).await,
        "Sign" => ops_signing::sign(call, scope).await,
        "Verify" => ops_signing::verify(call, scope).await,
        "GetPublicKey" => ops_signing::get_public_key(call, scope).await,
        "GenerateMac" => ops_signing::generate_mac(call, scope).await,
        "VerifyMac" => ops_signing::verify_mac(call, scope).await,
        "GetParametersForImport" => ops_import::get_parameters_for_import(call, scope).await,
        "ImportKeyMaterial" => ops_import::import_key_material(call, scope).await,
        "DeleteImportedKeyMaterial" => ops_import::delete_imported_key_material(call, scope).await,
        other => Err(Error::internal(format!("no translation for `{other}`"))),
    }
}

enum Refusal {
    Signature(SigV4Error),
    Service(Error),
}

/// Checks the request's SigV4 signature; returns the access key it was signed with.
async fn authenticate(state: &AppState, req: &HttpRequest, body: &[u8]) -> Result<Arc<AccessKeyInfo>, Refusal> {
    let headers = req.headers();
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(authorization) = text("authorization") else {
        return Err(Refusal::Signature(SigV4Error::Missing));
    };
    if headers.contains_key("x-amz-security-token") {
        // No session mechanism exists: a session token names nothing Keyward issued.
        return Err(Refusal::Signature(SigV4Error::UnknownKey));
    }
    let auth = sigv4::parse_authorization(authorization).map_err(Refusal::Signature)?;
    if auth.service != SIGNING_SERVICE {
        return Err(Refusal::Signature(SigV4Error::Mismatch(format!(
            "Credential should be scoped to correct service: '{SIGNING_SERVICE}'."
        ))));
    }
    let amz_date = text("x-amz-date");
    sigv4::check_time(&auth, amz_date, chrono::Utc::now()).map_err(Refusal::Signature)?;
    let date = NaiveDate::parse_from_str(auth.date, "%Y%m%d")
        .map_err(|_| Refusal::Signature(SigV4Error::Incomplete("the credential scope's date is invalid".into())))?;
    let found = state
        .aws
        .credentials
        .signing_key(&state.service, auth.access_key_id, date, auth.region, auth.service)
        .await
        .map_err(Refusal::Service)?;
    let Some((info, key)) = found else {
        return Err(Refusal::Signature(SigV4Error::UnknownKey));
    };
    let request = sigv4::Request { method: req.method().as_str(), path: req.path(), query: req.query_string(), body };
    let header = |name: &str| headers.get_all(name).map(HeaderValue::as_bytes).collect();
    sigv4::verify(&auth, request, header, amz_date.unwrap_or(""), &key).map_err(Refusal::Signature)?;
    Ok(info)
}

fn answer(status: StatusCode, request_id: &str, value: &Value) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((CONTENT_TYPE, CONTENT_TYPE_JSON))
        .insert_header(("x-amzn-RequestId", request_id))
        .body(value.to_string())
}
