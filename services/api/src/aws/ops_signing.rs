//! Sign, Verify, GetPublicKey, GenerateMac and VerifyMac. As in AWS KMS, a signature or MAC
//! that does not verify is an error here (`KMSInvalidSignatureException`,
//! `KMSInvalidMacException`), recorded as that refusal.

use keyward_core::model::signing::MessageType;
use keyward_core::service::{MacInput, Scope, SignInput, VerifyInput, VerifyMacInput};
use keyward_core::{Detail, Error};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Call;
use super::error::constraint;
use super::ops_admin::{algorithms, aws_spec};
use super::wire::{b64, blob, parse};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SignRequest {
    key_id: Option<String>,
    message: Option<String>,
    message_type: Option<String>,
    signing_algorithm: Option<String>,
    signature: Option<String>,
}

fn required<'a>(field: &str, value: Option<&'a str>) -> Result<&'a str, Error> {
    value.ok_or_else(|| constraint(field, "Member must not be null"))
}

fn bytes(field: &str, value: Option<&str>) -> Result<Vec<u8>, Error> {
    Ok(blob(field, required(field, value)?)?.to_vec())
}

fn sign_input(call: &Call<'_>, r: &SignRequest) -> Result<SignInput, Error> {
    Ok(SignInput {
        key: call.key_id(r.key_id.as_deref())?,
        message: bytes("message", r.message.as_deref())?,
        message_type: r.message_type.as_deref().map_or(Ok(MessageType::Raw), str::parse)?,
        algorithm: required("signingAlgorithm", r.signing_algorithm.as_deref())?.parse()?,
    })
}

pub(super) async fn sign(call: &Call<'_>, scope: &mut Scope) -> Result<Value, Error> {
    let r: SignRequest = parse(call.body)?;
    let out = call.service.sign(scope, sign_input(call, &r)?).await?;
    Ok(json!({
        "KeyId": call.aws.settings.key_arn(out.key_id),
        "Signature": b64(&out.signature),
        "SigningAlgorithm": out.algorithm.as_str(),
    }))
}

pub(super) async fn verify(call: &Call<'_>, scope: &mut Scope) -> Result<Value, Error> {
    let r: SignRequest = parse(call.body)?;
    let input = VerifyInput { sign: sign_input(call, &r)?, signature: bytes("signature", r.signature.as_deref())? };
    let algorithm = input.sign.algorithm;
    let out = call.service.verify(scope, input).await?;
    if !out.valid {
        return Err(Error::invalid("the signature is not valid").with_detail(Detail::InvalidSignature));
    }
    Ok(json!({
        "KeyId": call.aws.settings.key_arn(out.key_id),
        "SignatureValid": true,
        "SigningAlgorithm": algorithm.as_str(),
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyRequest {
    key_id: Option<String>,
}

pub(super) async fn get_public_key(call: &Call<'_>, scope: &mut Scope) -> Result<Value, Error> {
    let r: KeyRequest = parse(call.body)?;
    let out = call.service.get_public_key(scope, &call.key_id(r.key_id.as_deref())?).await?;
    let mut v = json!({
        "KeyId": call.aws.settings.key_arn(out.key_id),
        "PublicKey": b64(&out.public_key),
        "KeySpec": aws_spec(out.spec),
        "CustomerMasterKeySpec": aws_spec(out.spec),
        "KeyUsage": out.usage.as_str(),
    });
    algorithms(&mut v, out.spec, out.usage);
    Ok(v)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MacRequest {
    key_id: Option<String>,
    message: Option<String>,
    mac_algorithm: Option<String>,
    mac: Option<String>,
}

fn mac_input(call: &Call<'_>, r: &MacRequest) -> Result<MacInput, Error> {
    Ok(MacInput {
        key: call.key_id(r.key_id.as_deref())?,
        message: bytes("message", r.message.as_deref())?,
        algorithm: required("macAlgorithm", r.mac_algorithm.as_deref())?.parse()?,
    })
}

pub(super) async fn generate_mac(call: &Call<'_>, scope: &mut Scope) -> Result<Value, Error> {
    let r: MacRequest = parse(call.body)?;
    let out = call.service.generate_mac(scope, mac_input(call, &r)?).await?;
    Ok(json!({
        "KeyId": call.aws.settings.key_arn(out.key_id),
        "Mac": b64(&out.mac),
        "MacAlgorithm": out.algorithm.as_str(),
    }))
}

pub(super) async fn verify_mac(call: &Call<'_>, scope: &mut Scope) -> Result<Value, Error> {
    let r: MacRequest = parse(call.body)?;
    let input = VerifyMacInput { mac_input: mac_input(call, &r)?, mac: bytes("mac", r.mac.as_deref())? };
    let algorithm = input.mac_input.algorithm;
    let out = call.service.verify_mac(scope, input).await?;
    if !out.valid {
        return Err(Error::invalid("the MAC is not valid").with_detail(Detail::InvalidMac));
    }
    Ok(json!({
        "KeyId": call.aws.settings.key_arn(out.key_id),
        "MacValid": true,
        "MacAlgorithm": algorithm.as_str(),
    }))
}
