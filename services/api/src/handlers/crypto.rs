//! Cryptographic endpoints.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, post, web};
use keyward_core::Error;
use keyward_core::model::ids::Namespace;
use keyward_core::model::signing::EncryptionAlgorithm;
use keyward_core::operation::Operation;
use keyward_core::service::{
    AsymmetricDecryptInput, AsymmetricEncryptInput, DataKeyInput, DataKeyPairInput, DataKeySize, DecryptInput,
    EncryptInput, ReEncryptInput,
};

use super::{key_ref, run};
use crate::dto::crypto::{
    DecryptRequest, DecryptResponse, EncryptRequest, EncryptResponse, GenerateDataKeyPairRequest,
    GenerateDataKeyPairResponse, GenerateDataKeyPairWithoutPlaintextResponse, GenerateDataKeyRequest,
    GenerateDataKeyResponse, GenerateDataKeyWithoutPlaintextResponse, GenerateRandomRequest, GenerateRandomResponse,
    ReEncryptRequest, ReEncryptResponse,
};
use crate::dto::{b64, b64_decode, context, parse_json};
use crate::error::{ApiError, Problem};
use crate::state::AppState;

const KEY_PARAM: &str = "A key id, or an alias written `alias%2FNAME`";

/// Encrypts up to 4096 bytes under a key's primary version. For more data, use a data key.
#[utoipa::path(
    operation_id = "Encrypt", tag = "crypto", params(("key" = String, Path, description = KEY_PARAM)),
    request_body = EncryptRequest,
    responses((status = 200, body = EncryptResponse), (status = "4XX", body = Problem), (status = "5XX", body = Problem)),
    security(("bearer" = []))
)]
#[post("/keys/{key}/encrypt")]
pub async fn encrypt(
    state: web::Data<AppState>,
    req: HttpRequest,
    key: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    run(&state, &req, Operation::Encrypt, StatusCode::OK, &body, async |scope| {
        let r: EncryptRequest = parse_json(&body)?;
        let algorithm = encryption_algorithm(r.encryption_algorithm.as_deref())?;
        if algorithm != EncryptionAlgorithm::SymmetricDefault {
            no_context(r.encryption_context.as_ref())?;
            let input = AsymmetricEncryptInput {
                key: key_ref(&key)?,
                plaintext: b64_decode("plaintext", &r.plaintext)?,
                algorithm,
            };
            let out = state.service.encrypt_asymmetric(scope, input).await?;
            return Ok(EncryptResponse {
                key_id: out.key_id.to_string(),
                key_version: 1,
                ciphertext_blob: b64(&out.bytes),
                encryption_algorithm: algorithm.as_str().to_owned(),
            });
        }
        let input = EncryptInput {
            key: key_ref(&key)?,
            plaintext: b64_decode("plaintext", &r.plaintext)?,
            context: context(r.encryption_context)?,
        };
        let out = state.service.encrypt(scope, input).await?;
        Ok(EncryptResponse {
            key_id: out.key_id.to_string(),
            key_version: out.key_version,
            ciphertext_blob: b64(&out.ciphertext_blob),
            encryption_algorithm: algorithm.as_str().to_owned(),
        })
    })
    .await
}

/// Decrypts a blob. Every failure about the blob (wrong key, wrong context, tampering) is
/// the same `InvalidCiphertext`.
#[utoipa::path(
    operation_id = "Decrypt", tag = "crypto",
    request_body = DecryptRequest,
    responses((status = 200, body = DecryptResponse), (status = "4XX", body = Problem), (status = "5XX", body = Problem)),
    security(("bearer" = []))
)]
#[post("/decrypt")]
pub async fn decrypt(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    run(&state, &req, Operation::Decrypt, StatusCode::OK, &body, async |scope| {
        let r: DecryptRequest = parse_json(&body)?;
        let algorithm = encryption_algorithm(r.encryption_algorithm.as_deref())?;
        if algorithm != EncryptionAlgorithm::SymmetricDefault {
            no_context(r.encryption_context.as_ref())?;
            let key = r.key_id.as_deref().ok_or_else(|| {
                Error::invalid("`key_id` is required with an RSA `encryption_algorithm`: the ciphertext names no key")
            })?;
            let input = AsymmetricDecryptInput { key: key_ref(key)?, ciphertext: blob(&r.ciphertext_blob)?, algorithm };
            let out = state.service.decrypt_asymmetric(scope, input).await?;
            return Ok(DecryptResponse {
                key_id: out.key_id.to_string(),
                key_version: 1,
                plaintext: b64(&out.bytes),
                encryption_algorithm: algorithm.as_str().to_owned(),
            });
        }
        let input = DecryptInput {
            ciphertext_blob: blob(&r.ciphertext_blob)?,
            context: context(r.encryption_context)?,
            key: r.key_id.as_deref().map(key_ref).transpose()?,
        };
        let out = state.service.decrypt(scope, input).await?;
        Ok(DecryptResponse {
            key_id: out.key_id.to_string(),
            key_version: out.key_version,
            plaintext: b64(&out.plaintext),
            encryption_algorithm: algorithm.as_str().to_owned(),
        })
    })
    .await
}

/// Decrypts under the source key and encrypts under the destination key, inside the service.
#[utoipa::path(
    operation_id = "ReEncrypt", tag = "crypto",
    request_body = ReEncryptRequest,
    responses((status = 200, body = ReEncryptResponse), (status = "4XX", body = Problem), (status = "5XX", body = Problem)),
    security(("bearer" = []))
)]
#[post("/re-encrypt")]
pub async fn re_encrypt(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    run(&state, &req, Operation::ReEncrypt, StatusCode::OK, &body, async |scope| {
        let r: ReEncryptRequest = parse_json(&body)?;
        let input = ReEncryptInput {
            ciphertext_blob: blob(&r.ciphertext_blob)?,
            source_context: context(r.source_encryption_context)?,
            source_key: None,
            destination: key_ref(&r.destination_key_id)?,
            destination_context: context(r.destination_encryption_context)?,
        };
        let out = state.service.re_encrypt(scope, input).await?;
        Ok(ReEncryptResponse {
            source_key_id: out.source_key_id.to_string(),
            key_id: out.key_id.to_string(),
            key_version: out.key_version,
            ciphertext_blob: b64(&out.ciphertext_blob),
        })
    })
    .await
}

/// Returns a fresh data key and the same key wrapped under `key`.
#[utoipa::path(
    operation_id = "GenerateDataKey", tag = "crypto", params(("key" = String, Path, description = KEY_PARAM)),
    request_body = GenerateDataKeyRequest,
    responses((status = 200, body = GenerateDataKeyResponse), (status = "4XX", body = Problem), (status = "5XX", body = Problem)),
    security(("bearer" = []))
)]
#[post("/keys/{key}/generate-data-key")]
pub async fn generate_data_key(
    state: web::Data<AppState>,
    req: HttpRequest,
    key: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    run(&state, &req, Operation::GenerateDataKey, StatusCode::OK, &body, async |scope| {
        let input = data_key_input(&key, &body)?;
        let out = state.service.generate_data_key(scope, input, true).await?;
        Ok(GenerateDataKeyResponse {
            key_id: out.key_id.to_string(),
            key_version: out.key_version,
            plaintext: out.plaintext.as_deref().map(|p| b64(p)).unwrap_or_default(),
            ciphertext_blob: b64(&out.ciphertext_blob),
        })
    })
    .await
}

/// Returns only the wrapped data key, for a component that stores it for later.
#[utoipa::path(
    operation_id = "GenerateDataKeyWithoutPlaintext", tag = "crypto", params(("key" = String, Path, description = KEY_PARAM)),
    request_body = GenerateDataKeyRequest,
    responses((status = 200, body = GenerateDataKeyWithoutPlaintextResponse), (status = "4XX", body = Problem), (status = "5XX", body = Problem)),
    security(("bearer" = []))
)]
#[post("/keys/{key}/generate-data-key-without-plaintext")]
pub async fn generate_data_key_without_plaintext(
    state: web::Data<AppState>,
    req: HttpRequest,
    key: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    run(&state, &req, Operation::GenerateDataKeyWithoutPlaintext, StatusCode::OK, &body, async |scope| {
        let input = data_key_input(&key, &body)?;
        let out = state.service.generate_data_key(scope, input, false).await?;
        Ok(GenerateDataKeyWithoutPlaintextResponse {
            key_id: out.key_id.to_string(),
            key_version: out.key_version,
            ciphertext_blob: b64(&out.ciphertext_blob),
        })
    })
    .await
}

/// Returns a fresh key pair for use outside Keyward: its public key, its private key, and the
/// private key sealed under `key` (a symmetric key).
#[utoipa::path(
    operation_id = "GenerateDataKeyPair", tag = "crypto", params(("key" = String, Path, description = KEY_PARAM)),
    request_body = GenerateDataKeyPairRequest,
    responses((status = 200, body = GenerateDataKeyPairResponse), (status = "4XX", body = Problem), (status = "5XX", body = Problem)),
    security(("bearer" = []))
)]
#[post("/keys/{key}/generate-data-key-pair")]
pub async fn generate_data_key_pair(
    state: web::Data<AppState>,
    req: HttpRequest,
    key: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    run(&state, &req, Operation::GenerateDataKeyPair, StatusCode::OK, &body, async |scope| {
        let out = state.service.generate_data_key_pair(scope, data_key_pair_input(&key, &body)?, true).await?;
        Ok(GenerateDataKeyPairResponse {
            key_id: out.key_id.to_string(),
            key_version: out.key_version,
            key_pair_spec: out.pair_spec.as_str().to_owned(),
            public_key: b64(&out.public_key),
            private_key_plaintext: out.private_key.as_deref().map(|p| b64(p)).unwrap_or_default(),
            private_key_ciphertext_blob: b64(&out.private_key_blob),
        })
    })
    .await
}

/// As GenerateDataKeyPair, without the private key in the clear.
#[utoipa::path(
    operation_id = "GenerateDataKeyPairWithoutPlaintext", tag = "crypto", params(("key" = String, Path, description = KEY_PARAM)),
    request_body = GenerateDataKeyPairRequest,
    responses((status = 200, body = GenerateDataKeyPairWithoutPlaintextResponse), (status = "4XX", body = Problem), (status = "5XX", body = Problem)),
    security(("bearer" = []))
)]
#[post("/keys/{key}/generate-data-key-pair-without-plaintext")]
pub async fn generate_data_key_pair_without_plaintext(
    state: web::Data<AppState>,
    req: HttpRequest,
    key: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    run(&state, &req, Operation::GenerateDataKeyPairWithoutPlaintext, StatusCode::OK, &body, async |scope| {
        let out = state.service.generate_data_key_pair(scope, data_key_pair_input(&key, &body)?, false).await?;
        Ok(GenerateDataKeyPairWithoutPlaintextResponse {
            key_id: out.key_id.to_string(),
            key_version: out.key_version,
            key_pair_spec: out.pair_spec.as_str().to_owned(),
            public_key: b64(&out.public_key),
            private_key_ciphertext_blob: b64(&out.private_key_blob),
        })
    })
    .await
}

fn data_key_pair_input(key: &str, body: &[u8]) -> Result<DataKeyPairInput, Error> {
    let r: GenerateDataKeyPairRequest = parse_json(body)?;
    Ok(DataKeyPairInput {
        key: key_ref(key)?,
        pair_spec: r.key_pair_spec.parse()?,
        context: context(r.encryption_context)?,
    })
}

/// Returns random bytes from the default backend's generator.
#[utoipa::path(
    operation_id = "GenerateRandom", tag = "crypto",
    request_body = GenerateRandomRequest,
    responses((status = 200, body = GenerateRandomResponse), (status = "4XX", body = Problem), (status = "5XX", body = Problem)),
    security(("bearer" = []))
)]
#[post("/random")]
pub async fn generate_random(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    run(&state, &req, Operation::GenerateRandom, StatusCode::OK, &body, async |scope| {
        let r: GenerateRandomRequest = parse_json(&body)?;
        let ns = Namespace::parse(&r.namespace)?;
        let len = usize::try_from(r.number_of_bytes).map_err(|_| Error::invalid("`number_of_bytes` out of range"))?;
        let bytes = state.service.generate_random(scope, &ns, len).await?;
        Ok(GenerateRandomResponse { plaintext: b64(&bytes) })
    })
    .await
}

fn encryption_algorithm(value: Option<&str>) -> Result<EncryptionAlgorithm, Error> {
    value.map_or(Ok(EncryptionAlgorithm::SymmetricDefault), str::parse)
}

/// RSAES-OAEP binds no associated data: a context would be silently unchecked, so it is refused.
fn no_context(context: Option<&std::collections::BTreeMap<String, String>>) -> Result<(), Error> {
    if context.is_some_and(|c| !c.is_empty()) {
        return Err(Error::invalid("`encryption_context` is not supported with an RSA `encryption_algorithm`"));
    }
    Ok(())
}

fn blob(value: &str) -> Result<Vec<u8>, Error> {
    // Undecodable base64 is a bad blob like any other.
    b64_decode("ciphertext_blob", value)
        .map(|b| b.to_vec())
        .map_err(|_| Error::invalid_ciphertext("ciphertext_blob is not base64"))
}

fn data_key_input(key: &str, body: &[u8]) -> Result<DataKeyInput, Error> {
    let r: GenerateDataKeyRequest = parse_json(body)?;
    let size = match (r.key_spec.as_deref(), r.number_of_bytes) {
        (Some(_), Some(_)) => return Err(Error::invalid("give `key_spec` or `number_of_bytes`, not both")),
        (None | Some("AES_256"), None) => DataKeySize::Aes256,
        (Some("AES_128"), None) => DataKeySize::Aes128,
        (Some(other), None) => {
            return Err(Error::invalid(format!("data key spec `{other}` is not `AES_256` or `AES_128`")));
        }
        (None, Some(n)) => {
            DataKeySize::Bytes(usize::try_from(n).map_err(|_| Error::invalid("`number_of_bytes` out of range"))?)
        }
    };
    Ok(DataKeyInput { key: key_ref(key)?, size, context: context(r.encryption_context)? })
}
