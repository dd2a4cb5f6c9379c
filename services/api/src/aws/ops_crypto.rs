//! Encrypt, Decrypt, ReEncrypt, GenerateDataKey(WithoutPlaintext), GenerateRandom.

use std::collections::BTreeMap;

use keyward_core::Error;
use keyward_core::model::signing::EncryptionAlgorithm;
use keyward_core::service::{
    AsymmetricDecryptInput, AsymmetricEncryptInput, DataKeyInput, DataKeySize, DecryptInput, EncryptInput,
    ReEncryptInput, Scope,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Call;
use super::error::constraint;
use super::wire::{self, b64, blob, parse, symmetric};

/// AWS KMS's Encrypt limit (Keyward's as well).
const MAX_PLAINTEXT: usize = 4096;

/// The largest `CiphertextBlob` AWS accepts.
const MAX_BLOB: usize = 6144;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EncryptRequest {
    key_id: Option<String>,
    plaintext: Option<String>,
    encryption_context: Option<BTreeMap<String, String>>,
    encryption_algorithm: Option<String>,
}

pub(super) async fn encrypt(call: &Call<'_>, scope: &mut Scope) -> Result<Value, Error> {
    let r: EncryptRequest = parse(call.body)?;
    if let Some(algorithm) = rsa_algorithm(r.encryption_algorithm.as_deref())? {
        let plaintext = blob(
            "plaintext",
            r.plaintext.as_deref().ok_or_else(|| constraint("plaintext", "Member must not be null"))?,
        )?;
        let input = AsymmetricEncryptInput { key: call.key_id(r.key_id.as_deref())?, plaintext, algorithm };
        let out = call.service.encrypt_asymmetric(scope, input).await?;
        return Ok(json!({
            "CiphertextBlob": b64(&out.bytes),
            "KeyId": call.aws.settings.key_arn(out.key_id),
            "EncryptionAlgorithm": algorithm.as_str(),
        }));
    }
    let plaintext =
        blob("plaintext", r.plaintext.as_deref().ok_or_else(|| constraint("plaintext", "Member must not be null"))?)?;
    if plaintext.is_empty() {
        return Err(constraint("plaintext", "Member must have length greater than or equal to 1"));
    }
    if plaintext.len() > MAX_PLAINTEXT {
        return Err(constraint("plaintext", "Member must have length less than or equal to 4096"));
    }
    let input = EncryptInput {
        key: call.key_id(r.key_id.as_deref())?,
        plaintext,
        context: wire::context(r.encryption_context)?,
    };
    let out = call.service.encrypt(scope, input).await?;
    Ok(json!({
        "CiphertextBlob": b64(&out.ciphertext_blob),
        "KeyId": call.aws.settings.key_arn(out.key_id),
        "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DecryptRequest {
    ciphertext_blob: Option<String>,
    encryption_context: Option<BTreeMap<String, String>>,
    key_id: Option<String>,
    encryption_algorithm: Option<String>,
    recipient: Option<Value>,
}

fn ciphertext(field: &str, value: Option<&str>) -> Result<Vec<u8>, Error> {
    let value = value.ok_or_else(|| constraint(field, "Member must not be null"))?;
    let bytes = blob(field, value).map_err(|_| Error::invalid_ciphertext(format!("`{field}` is not base64")))?;
    if bytes.is_empty() {
        return Err(constraint(field, "Member must have length greater than or equal to 1"));
    }
    if bytes.len() > MAX_BLOB {
        return Err(constraint(field, "Member must have length less than or equal to 6144"));
    }
    Ok(bytes.to_vec())
}

pub(super) async fn decrypt(call: &Call<'_>, scope: &mut Scope) -> Result<Value, Error> {
    let r: DecryptRequest = parse(call.body)?;
    if let Some(algorithm) = rsa_algorithm(r.encryption_algorithm.as_deref())? {
        // An RSA ciphertext names no key: AWS KMS requires the KeyId here too.
        let input = AsymmetricDecryptInput {
            key: call.key_id(r.key_id.as_deref())?,
            ciphertext: ciphertext("ciphertextBlob", r.ciphertext_blob.as_deref())?,
            algorithm,
        };
        let out = call.service.decrypt_asymmetric(scope, input).await?;
        return Ok(json!({
            "KeyId": call.aws.settings.key_arn(out.key_id),
            "Plaintext": b64(&out.bytes),
            "EncryptionAlgorithm": algorithm.as_str(),
        }));
    }
    if r.recipient.is_some() {
        return Err(Error::new(
            keyward_core::ErrorCode::UnsupportedOperation,
            "`Recipient` (Nitro Enclaves attestation) is not supported",
        ));
    }
    let input = DecryptInput {
        ciphertext_blob: ciphertext("ciphertextBlob", r.ciphertext_blob.as_deref())?,
        context: wire::context(r.encryption_context)?,
        key: r.key_id.as_deref().map(|k| call.aws.settings.key_ref(k)).transpose()?,
    };
    let out = call.service.decrypt(scope, input).await?;
    Ok(json!({
        "KeyId": call.aws.settings.key_arn(out.key_id),
        "Plaintext": b64(&out.plaintext),
        "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
    }))
}

/// An RSAES-OAEP `EncryptionAlgorithm`, or `None` for SYMMETRIC_DEFAULT (or none given).
fn rsa_algorithm(value: Option<&str>) -> Result<Option<EncryptionAlgorithm>, Error> {
    match value.map(str::parse::<EncryptionAlgorithm>).transpose() {
        Ok(None | Some(EncryptionAlgorithm::SymmetricDefault)) => Ok(None),
        Ok(Some(a)) => Ok(Some(a)),
        Err(_) => Err(constraint(
            "encryptionAlgorithm",
            "Member must satisfy enum value set: [SYMMETRIC_DEFAULT, RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256]",
        )),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ReEncryptRequest {
    ciphertext_blob: Option<String>,
    source_encryption_context: Option<BTreeMap<String, String>>,
    source_key_id: Option<String>,
    destination_key_id: Option<String>,
    destination_encryption_context: Option<BTreeMap<String, String>>,
    source_encryption_algorithm: Option<String>,
    destination_encryption_algorithm: Option<String>,
}

pub(super) async fn re_encrypt(call: &Call<'_>, scope: &mut Scope) -> Result<Value, Error> {
    let r: ReEncryptRequest = parse(call.body)?;
    symmetric("SourceEncryptionAlgorithm", r.source_encryption_algorithm.as_deref())?;
    symmetric("DestinationEncryptionAlgorithm", r.destination_encryption_algorithm.as_deref())?;
    let destination =
        r.destination_key_id.as_deref().ok_or_else(|| constraint("destinationKeyId", "Member must not be null"))?;
    let input = ReEncryptInput {
        ciphertext_blob: ciphertext("ciphertextBlob", r.ciphertext_blob.as_deref())?,
        source_context: wire::context(r.source_encryption_context)?,
        source_key: r.source_key_id.as_deref().map(|k| call.aws.settings.key_ref(k)).transpose()?,
        destination: call.aws.settings.key_ref(destination)?,
        destination_context: wire::context(r.destination_encryption_context)?,
    };
    let out = call.service.re_encrypt(scope, input).await?;
    Ok(json!({
        "CiphertextBlob": b64(&out.ciphertext_blob),
        "SourceKeyId": call.aws.settings.key_arn(out.source_key_id),
        "KeyId": call.aws.settings.key_arn(out.key_id),
        "SourceEncryptionAlgorithm": "SYMMETRIC_DEFAULT",
        "DestinationEncryptionAlgorithm": "SYMMETRIC_DEFAULT",
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DataKeyRequest {
    key_id: Option<String>,
    key_spec: Option<String>,
    number_of_bytes: Option<i64>,
    encryption_context: Option<BTreeMap<String, String>>,
}

pub(super) async fn generate_data_key(
    call: &Call<'_>,
    scope: &mut Scope,
    with_plaintext: bool,
) -> Result<Value, Error> {
    let r: DataKeyRequest = parse(call.body)?;
    let size = match (r.key_spec.as_deref(), r.number_of_bytes) {
        (Some(_), Some(_)) => return Err(Error::invalid("Please specify either number of bytes or key spec.")),
        (None, None) => return Err(Error::invalid("Please specify either number of bytes or key spec.")),
        (Some("AES_256"), None) => DataKeySize::Aes256,
        (Some("AES_128"), None) => DataKeySize::Aes128,
        (Some(_), None) => {
            return Err(constraint("keySpec", "Member must satisfy enum value set: [AES_256, AES_128]"));
        }
        (None, Some(n @ 1..=1024)) => DataKeySize::Bytes(usize::try_from(n).unwrap_or(1024)),
        (None, Some(_)) => return Err(constraint("numberOfBytes", "Member must have value between 1 and 1024")),
    };
    let input =
        DataKeyInput { key: call.key_id(r.key_id.as_deref())?, size, context: wire::context(r.encryption_context)? };
    let out = call.service.generate_data_key(scope, input, with_plaintext).await?;
    let mut answer = json!({
        "CiphertextBlob": b64(&out.ciphertext_blob),
        "KeyId": call.aws.settings.key_arn(out.key_id),
    });
    if let Some(p) = &out.plaintext {
        answer["Plaintext"] = Value::String(b64(p));
    }
    Ok(answer)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DataKeyPairRequest {
    key_id: Option<String>,
    key_pair_spec: Option<String>,
    encryption_context: Option<BTreeMap<String, String>>,
    recipient: Option<Value>,
}

pub(super) async fn generate_data_key_pair(
    call: &Call<'_>,
    scope: &mut Scope,
    with_plaintext: bool,
) -> Result<Value, Error> {
    let r: DataKeyPairRequest = parse(call.body)?;
    if r.recipient.is_some() {
        return Err(Error::new(
            keyward_core::ErrorCode::UnsupportedOperation,
            "`Recipient` (Nitro Enclaves attestation) is not supported",
        ));
    }
    let spec = r.key_pair_spec.as_deref().ok_or_else(|| constraint("keyPairSpec", "Member must not be null"))?;
    let pair_spec = spec.parse::<keyward_core::model::key::KeySpec>().map_err(|_| {
        constraint("keyPairSpec", "Member must satisfy enum value set: [RSA_2048, RSA_3072, RSA_4096, ECC_NIST_P256, ECC_NIST_P384, ECC_NIST_P521, ECC_NIST_EDWARDS25519]")
    })?;
    let input = keyward_core::service::DataKeyPairInput {
        key: call.key_id(r.key_id.as_deref())?,
        pair_spec,
        context: wire::context(r.encryption_context)?,
    };
    let out = call.service.generate_data_key_pair(scope, input, with_plaintext).await?;
    let mut answer = json!({
        "KeyId": call.aws.settings.key_arn(out.key_id),
        "KeyPairSpec": out.pair_spec.as_str(),
        "PublicKey": b64(&out.public_key),
        "PrivateKeyCiphertextBlob": b64(&out.private_key_blob),
    });
    if let Some(p) = &out.private_key {
        answer["PrivateKeyPlaintext"] = Value::String(b64(p));
    }
    Ok(answer)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RandomRequest {
    number_of_bytes: Option<i64>,
    custom_key_store_id: Option<String>,
    recipient: Option<Value>,
}

pub(super) async fn generate_random(call: &Call<'_>, scope: &mut Scope) -> Result<Value, Error> {
    let r: RandomRequest = parse(call.body)?;
    if r.custom_key_store_id.is_some() || r.recipient.is_some() {
        return Err(Error::new(
            keyward_core::ErrorCode::UnsupportedOperation,
            "`CustomKeyStoreId` and `Recipient` are not supported",
        ));
    }
    let n = match r.number_of_bytes {
        Some(n @ 1..=1024) => usize::try_from(n).unwrap_or(1024),
        Some(_) => return Err(constraint("numberOfBytes", "Member must have value between 1 and 1024")),
        None => return Err(constraint("numberOfBytes", "Member must not be null")),
    };
    let ns = call.access_key()?.default_namespace.clone();
    let bytes = call.service.generate_random(scope, &ns, n).await?;
    Ok(json!({ "Plaintext": b64(&bytes) }))
}
