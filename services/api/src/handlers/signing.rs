//! Signing, public-key and MAC endpoints.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use keyward_core::model::signing::{EncryptionAlgorithm, MessageType};
use keyward_core::operation::Operation;
use keyward_core::service::{MacInput, SignInput, VerifyInput, VerifyMacInput};

use super::{DryRunBody, key_ref, run};
use crate::dto::signing::{
    GenerateMacRequest, GenerateMacResponse, GetPublicKeyResponse, SignRequest, SignResponse, VerifyMacRequest,
    VerifyMacResponse, VerifyRequest, VerifyResponse,
};
use crate::dto::{b64, b64_decode, parse_json, pem};
use crate::error::{ApiError, Problem};
use crate::state::AppState;

const KEY_PARAM: &str = "A key id, or an alias written `alias%2FNAME`";

fn message_type(t: Option<&str>) -> keyward_core::Result<MessageType> {
    t.map_or(Ok(MessageType::Raw), str::parse)
}

/// Signs a message, or its digest, with a SIGN_VERIFY key.
#[utoipa::path(
    operation_id = "Sign", tag = "signing", params(("key" = String, Path, description = KEY_PARAM)),
    request_body = SignRequest,
    responses((status = 200, body = SignResponse), (status = "4XX", body = Problem), (status = "5XX", body = Problem)),
    security(("bearer" = []))
)]
#[post("/keys/{key}/sign")]
pub async fn sign(
    state: web::Data<AppState>,
    req: HttpRequest,
    key: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    run(&state, &req, Operation::Sign, StatusCode::OK, &body, async |scope| {
        let r: SignRequest = parse_json(&body)?;
        let input = SignInput {
            key: key_ref(&key)?,
            message: b64_decode("message", &r.message)?.to_vec(),
            message_type: message_type(r.message_type.as_deref())?,
            algorithm: r.signing_algorithm.parse()?,
        };
        let out = state.service.sign(scope, input).await?;
        Ok(SignResponse {
            key_id: out.key_id.to_string(),
            signature: b64(&out.signature),
            signing_algorithm: out.algorithm.as_str().to_owned(),
        })
    })
    .await
}

/// Verifies a signature with a SIGN_VERIFY key. An invalid signature is a normal answer.
#[utoipa::path(
    operation_id = "Verify", tag = "signing", params(("key" = String, Path, description = KEY_PARAM)),
    request_body = VerifyRequest,
    responses((status = 200, body = VerifyResponse), (status = "4XX", body = Problem), (status = "5XX", body = Problem)),
    security(("bearer" = []))
)]
#[post("/keys/{key}/verify")]
pub async fn verify(
    state: web::Data<AppState>,
    req: HttpRequest,
    key: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    run(&state, &req, Operation::Verify, StatusCode::OK, &body, async |scope| {
        let r: VerifyRequest = parse_json(&body)?;
        let algorithm = r.signing_algorithm.parse()?;
        let input = VerifyInput {
            sign: SignInput {
                key: key_ref(&key)?,
                message: b64_decode("message", &r.message)?.to_vec(),
                message_type: message_type(r.message_type.as_deref())?,
                algorithm,
            },
            signature: b64_decode("signature", &r.signature)?.to_vec(),
        };
        let out = state.service.verify(scope, input).await?;
        Ok(VerifyResponse {
            key_id: out.key_id.to_string(),
            signature_valid: out.valid,
            signing_algorithm: r.signing_algorithm,
        })
    })
    .await
}

/// The public key of an asymmetric key, as DER and PEM.
#[utoipa::path(
    operation_id = "GetPublicKey", tag = "signing",
    params(("key" = String, Path, description = KEY_PARAM), ("dry_run" = Option<bool>, Query, description = "Answer the authorization decision and do nothing")),
    responses((status = 200, body = GetPublicKeyResponse), (status = "4XX", body = Problem), (status = "5XX", body = Problem)),
    security(("bearer" = []))
)]
#[get("/keys/{key}/public-key")]
pub async fn get_public_key(
    state: web::Data<AppState>,
    req: HttpRequest,
    key: web::Path<String>,
    body: DryRunBody,
) -> Result<HttpResponse, ApiError> {
    run(&state, &req, Operation::GetPublicKey, StatusCode::OK, &body.0, async |scope| {
        let out = state.service.get_public_key(scope, &key_ref(&key)?).await?;
        Ok(GetPublicKeyResponse {
            key_id: out.key_id.to_string(),
            public_key: b64(&out.public_key),
            public_key_pem: pem("PUBLIC KEY", &out.public_key),
            key_spec: out.spec.as_str().to_owned(),
            key_usage: out.usage.as_str().to_owned(),
            signing_algorithms: out.signing_algorithms.iter().map(|a| a.as_str().to_owned()).collect(),
            encryption_algorithms: if out.usage == keyward_core::model::key::KeyUsage::EncryptDecrypt {
                EncryptionAlgorithm::for_spec(out.spec).iter().map(|a| a.as_str().to_owned()).collect()
            } else {
                Vec::new()
            },
        })
    })
    .await
}

/// The HMAC of a message under a GENERATE_VERIFY_MAC key.
#[utoipa::path(
    operation_id = "GenerateMac", tag = "signing", params(("key" = String, Path, description = KEY_PARAM)),
    request_body = GenerateMacRequest,
    responses((status = 200, body = GenerateMacResponse), (status = "4XX", body = Problem), (status = "5XX", body = Problem)),
    security(("bearer" = []))
)]
#[post("/keys/{key}/generate-mac")]
pub async fn generate_mac(
    state: web::Data<AppState>,
    req: HttpRequest,
    key: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    generate_mac_at(state, req, key, body).await
}

/// GenerateMac at `/v1/keys/{key}/mac`, the path the design first named.
pub async fn generate_mac_at(
    state: web::Data<AppState>,
    req: HttpRequest,
    key: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    run(&state, &req, Operation::GenerateMac, StatusCode::OK, &body, async |scope| {
        let r: GenerateMacRequest = parse_json(&body)?;
        let input = MacInput {
            key: key_ref(&key)?,
            message: b64_decode("message", &r.message)?.to_vec(),
            algorithm: r.mac_algorithm.parse()?,
        };
        let out = state.service.generate_mac(scope, input).await?;
        Ok(GenerateMacResponse {
            key_id: out.key_id.to_string(),
            mac: b64(&out.mac),
            mac_algorithm: out.algorithm.as_str().to_owned(),
        })
    })
    .await
}

/// Checks a MAC under a GENERATE_VERIFY_MAC key, in constant time. A wrong MAC is a normal answer.
#[utoipa::path(
    operation_id = "VerifyMac", tag = "signing", params(("key" = String, Path, description = KEY_PARAM)),
    request_body = VerifyMacRequest,
    responses((status = 200, body = VerifyMacResponse), (status = "4XX", body = Problem), (status = "5XX", body = Problem)),
    security(("bearer" = []))
)]
#[post("/keys/{key}/verify-mac")]
pub async fn verify_mac(
    state: web::Data<AppState>,
    req: HttpRequest,
    key: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    run(&state, &req, Operation::VerifyMac, StatusCode::OK, &body, async |scope| {
        let r: VerifyMacRequest = parse_json(&body)?;
        let input = VerifyMacInput {
            mac_input: MacInput {
                key: key_ref(&key)?,
                message: b64_decode("message", &r.message)?.to_vec(),
                algorithm: r.mac_algorithm.parse()?,
            },
            mac: b64_decode("mac", &r.mac)?.to_vec(),
        };
        let out = state.service.verify_mac(scope, input).await?;
        Ok(VerifyMacResponse { key_id: out.key_id.to_string(), mac_valid: out.valid, mac_algorithm: r.mac_algorithm })
    })
    .await
}
