//! GetParametersForImport, ImportKeyMaterial and DeleteImportedKeyMaterial: bring your own
//! key material into a key created with `Origin` `EXTERNAL`.

use chrono::{DateTime, Utc};
use keyward_core::Error;
use keyward_core::model::import::{WrappingAlgorithm, wrapping_key_spec};
use keyward_core::service::{ImportInput, Scope};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Call;
use super::error::constraint;
use super::wire::{b64, blob, epoch, parse};

fn required<'a>(field: &str, value: Option<&'a str>) -> Result<&'a str, Error> {
    value.ok_or_else(|| constraint(field, "Member must not be null"))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ParametersRequest {
    key_id: Option<String>,
    wrapping_algorithm: Option<String>,
    wrapping_key_spec: Option<String>,
}

pub(super) async fn get_parameters_for_import(call: &Call<'_>, scope: &mut Scope) -> Result<Value, Error> {
    let r: ParametersRequest = parse(call.body)?;
    let key = call.key_id(r.key_id.as_deref())?;
    let algorithm: WrappingAlgorithm = required("wrappingAlgorithm", r.wrapping_algorithm.as_deref())?.parse()?;
    let spec = wrapping_key_spec(required("wrappingKeySpec", r.wrapping_key_spec.as_deref())?)?;
    let out = call.service.get_parameters_for_import(scope, &key, algorithm, spec).await?;
    Ok(json!({
        "KeyId": call.aws.settings.key_arn(out.key_id),
        "ImportToken": b64(&out.import_token),
        "PublicKey": b64(&out.public_key),
        "ParametersValidTo": epoch(out.parameters_valid_to),
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ImportRequest {
    key_id: Option<String>,
    import_token: Option<String>,
    encrypted_key_material: Option<String>,
    expiration_model: Option<String>,
    valid_to: Option<f64>,
    import_type: Option<String>,
    key_material_description: Option<String>,
    key_material_id: Option<String>,
}

/// `ValidTo` as the protocol sends it (epoch seconds), checked against `ExpirationModel`
/// (default `KEY_MATERIAL_EXPIRES`, which needs a `ValidTo`).
fn valid_to(model: Option<&str>, valid_to: Option<f64>) -> Result<Option<DateTime<Utc>>, Error> {
    match (model.unwrap_or("KEY_MATERIAL_EXPIRES"), valid_to) {
        ("KEY_MATERIAL_EXPIRES", Some(secs)) => {
            #[allow(clippy::cast_possible_truncation, reason = "a finite time in seconds, checked for range below")]
            let micros = (secs * 1e6).round() as i64;
            match DateTime::from_timestamp_micros(micros) {
                Some(t) if secs.is_finite() => Ok(Some(t)),
                _ => Err(constraint("validTo", "Member must be a valid timestamp")),
            }
        }
        ("KEY_MATERIAL_EXPIRES", None) => {
            Err(Error::invalid("ValidTo is required when ExpirationModel is KEY_MATERIAL_EXPIRES (the default)"))
        }
        ("KEY_MATERIAL_DOES_NOT_EXPIRE", None) => Ok(None),
        ("KEY_MATERIAL_DOES_NOT_EXPIRE", Some(_)) => {
            Err(Error::invalid("ValidTo must be omitted when ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE"))
        }
        _ => Err(constraint(
            "expirationModel",
            "Member must satisfy enum value set: [KEY_MATERIAL_EXPIRES, KEY_MATERIAL_DOES_NOT_EXPIRE]",
        )),
    }
}

pub(super) async fn import_key_material(call: &Call<'_>, scope: &mut Scope) -> Result<Value, Error> {
    let r: ImportRequest = parse(call.body)?;
    if r.import_type.as_deref().is_some_and(|t| t != "EXISTING_KEY_MATERIAL")
        || r.key_material_id.is_some()
        || r.key_material_description.is_some()
    {
        return Err(Error::new(
            keyward_core::ErrorCode::UnsupportedOperation,
            "a key holds one key material: new key material, material ids and descriptions are not supported",
        ));
    }
    let key = call.key_id(r.key_id.as_deref())?;
    let input = ImportInput {
        key,
        import_token: blob("importToken", required("importToken", r.import_token.as_deref())?)?.to_vec(),
        encrypted_key_material: blob(
            "encryptedKeyMaterial",
            required("encryptedKeyMaterial", r.encrypted_key_material.as_deref())?,
        )?
        .to_vec(),
        valid_to: valid_to(r.expiration_model.as_deref(), r.valid_to)?,
    };
    let m = call.service.import_key_material(scope, input).await?;
    Ok(json!({ "KeyId": call.aws.settings.key_arn(m.key.id) }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteRequest {
    key_id: Option<String>,
    key_material_id: Option<String>,
}

pub(super) async fn delete_imported_key_material(call: &Call<'_>, scope: &mut Scope) -> Result<Value, Error> {
    let r: DeleteRequest = parse(call.body)?;
    if r.key_material_id.is_some() {
        return Err(Error::new(
            keyward_core::ErrorCode::UnsupportedOperation,
            "a key holds one key material: omit KeyMaterialId",
        ));
    }
    let m = call.service.delete_imported_key_material(scope, &call.key_id(r.key_id.as_deref())?).await?;
    Ok(json!({ "KeyId": call.aws.settings.key_arn(m.key.id) }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn expiration_follows_the_model() {
        assert!(valid_to(None, None).is_err(), "the default model needs ValidTo");
        assert_eq!(valid_to(None, Some(2_000_000_000.5)).unwrap().unwrap().timestamp_millis(), 2_000_000_000_500);
        assert_eq!(valid_to(Some("KEY_MATERIAL_DOES_NOT_EXPIRE"), None).unwrap(), None);
        assert!(valid_to(Some("KEY_MATERIAL_DOES_NOT_EXPIRE"), Some(1.0)).is_err());
        assert!(valid_to(Some("SOMETIMES"), None).is_err());
        assert!(valid_to(None, Some(f64::NAN)).is_err());
        assert!(valid_to(None, Some(1e300)).is_err());
    }
}
