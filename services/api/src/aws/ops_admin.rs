//! Key administration and aliases: CreateKey, DescribeKey, ListKeys, UpdateKeyDescription,
//! EnableKey, DisableKey, ScheduleKeyDeletion, CancelKeyDeletion, tags, rotation, aliases.

use std::collections::BTreeMap;

use keyward_core::model::ids::{AliasName, KeyRef, Namespace};
use keyward_core::model::import::KeyOrigin;
use keyward_core::model::key::{KeyMetadata, KeySpec, KeyState, KeyUsage, Protection};
use keyward_core::model::signing::{EncryptionAlgorithm, MacAlgorithm, SigningAlgorithm};
use keyward_core::service::{
    AliasWrite, CreateKeyInput, RotateAfterUpdate, RotationUpdate, Scope, TagUpdate, UpdateKeyInput,
};
use keyward_core::{Error, ErrorCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Call;
use super::error::constraint;
use super::wire::{Tag, epoch, limit, parse};

/// The tag that names the namespace of a key created through this API.
pub const NAMESPACE_TAG: &str = "keyward:namespace";

/// AWS's rotation period bounds and default, in days.
const ROTATION_DAYS: std::ops::RangeInclusive<i64> = 90..=2560;
const DEFAULT_ROTATION_DAYS: u32 = 365;

fn unsupported(what: &str) -> Error {
    Error::new(ErrorCode::UnsupportedOperation, what.to_owned())
}

/// A key's metadata as AWS's `KeyMetadata`.
pub(super) fn key_metadata(call: &Call<'_>, m: &KeyMetadata) -> Value {
    let k = &m.key;
    let state = match (k.state, m.backend_up) {
        (KeyState::Enabled, true) => "Enabled",
        (KeyState::Disabled, true) => "Disabled",
        (KeyState::PendingDeletion, _) => "PendingDeletion",
        (KeyState::PendingImport, _) => "PendingImport",
        (KeyState::Enabled | KeyState::Disabled, false) | (KeyState::Destroyed, _) => "Unavailable",
    };
    let origin = match (k.origin, m.protection) {
        (KeyOrigin::External, _) | (_, Protection::External) => "EXTERNAL",
        (KeyOrigin::Keyward, Protection::Software | Protection::Hsm) => "AWS_KMS",
    };
    let mut v = json!({
        "AWSAccountId": call.aws.settings.account_id,
        "KeyId": k.id.to_string(),
        "Arn": call.aws.settings.key_arn(k.id),
        "CreationDate": epoch(k.created_at),
        "Enabled": state == "Enabled",
        "Description": k.description,
        "KeyUsage": k.usage.as_str(),
        "KeyState": state,
        "Origin": origin,
        "KeyManager": "CUSTOMER",
        "CustomerMasterKeySpec": aws_spec(k.spec),
        "KeySpec": aws_spec(k.spec),
        "MultiRegion": false,
    });
    algorithms(&mut v, k.spec, k.usage);
    if k.origin == KeyOrigin::External {
        let expires = if k.valid_to.is_some() { "KEY_MATERIAL_EXPIRES" } else { "KEY_MATERIAL_DOES_NOT_EXPIRE" };
        v["ExpirationModel"] = json!(expires);
    }
    if let Some(t) = k.valid_to {
        v["ValidTo"] = json!(epoch(t));
    }
    if let Some(d) = k.deletion_date {
        v["DeletionDate"] = json!(epoch(d));
    }
    v
}

/// A spec's name in this API (AES-256 keys are `SYMMETRIC_DEFAULT`).
pub(super) fn aws_spec(spec: KeySpec) -> &'static str {
    match spec {
        KeySpec::Aes256 => "SYMMETRIC_DEFAULT",
        other => other.as_str(),
    }
}

/// Adds the algorithm lists a key of this spec and usage has, as `KeyMetadata` and
/// `GetPublicKey` show them.
pub(super) fn algorithms(v: &mut Value, spec: KeySpec, usage: KeyUsage) {
    match usage {
        KeyUsage::EncryptDecrypt => {
            v["EncryptionAlgorithms"] =
                json!(EncryptionAlgorithm::for_spec(spec).iter().map(|a| a.as_str()).collect::<Vec<_>>());
        }
        KeyUsage::SignVerify => {
            v["SigningAlgorithms"] =
                json!(SigningAlgorithm::for_spec(spec).iter().map(|a| a.as_str()).collect::<Vec<_>>());
        }
        KeyUsage::GenerateVerifyMac => {
            v["MacAlgorithms"] = json!(MacAlgorithm::for_spec(spec).iter().map(|a| a.as_str()).collect::<Vec<_>>());
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyIdRequest {
    key_id: Option<String>,
}

fn key_of(call: &Call<'_>) -> Result<KeyRef, Error> {
    let r: KeyIdRequest = parse(call.body)?;
    call.key_id(r.key_id.as_deref())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateKeyRequest {
    description: Option<String>,
    key_usage: Option<String>,
    key_spec: Option<String>,
    customer_master_key_spec: Option<String>,
    origin: Option<String>,
    tags: Option<Vec<Tag>>,
    policy: Option<String>,
    custom_key_store_id: Option<String>,
    multi_region: Option<bool>,
    xks_key_id: Option<String>,
}

/// A `KeySpec` value: `SYMMETRIC_DEFAULT` is AES-256; the rest are Keyward's own names.
fn spec_of(s: &str) -> Result<KeySpec, Error> {
    match s {
        "SYMMETRIC_DEFAULT" => Ok(KeySpec::Aes256),
        "AES_256" => Err(Error::invalid("KeySpec `AES_256` is written `SYMMETRIC_DEFAULT` in this API")),
        other => other.parse::<KeySpec>().map_err(|_| {
            Error::new(
                ErrorCode::UnsupportedOperation,
                format!("KeySpec `{}` is not supported", other.chars().take(64).collect::<String>()),
            )
        }),
    }
}

pub(super) async fn create_key(call: &Call<'_>, scope: &mut Scope) -> Result<Value, Error> {
    let r: CreateKeyRequest = parse(call.body)?;
    let spec = match (r.key_spec.as_deref(), r.customer_master_key_spec.as_deref()) {
        (Some(a), Some(b)) if a != b => {
            return Err(Error::invalid("KeySpec and CustomerMasterKeySpec differ; send KeySpec only"));
        }
        (Some(s), _) | (None, Some(s)) => spec_of(s)?,
        (None, None) => KeySpec::Aes256,
    };
    let usage = r.key_usage.as_deref().map(str::parse::<KeyUsage>).transpose()?;
    let origin = match r.origin.as_deref() {
        None | Some("AWS_KMS") => KeyOrigin::Keyward,
        Some("EXTERNAL") => KeyOrigin::External,
        Some(_) => return Err(unsupported("Origin is AWS_KMS or EXTERNAL (custom key stores are not supported)")),
    };
    if r.policy.is_some() {
        return Err(unsupported(
            "key policies are not supported: Keyward decides with Cedar policies (see docs/aws-kms-api.md)",
        ));
    }
    if r.custom_key_store_id.is_some() || r.xks_key_id.is_some() || r.multi_region == Some(true) {
        return Err(unsupported("custom key stores and multi-Region keys are not supported"));
    }
    let mut tags: BTreeMap<String, String> = r.tags.unwrap_or_default().into_iter().map(|t| (t.key, t.value)).collect();
    let namespace = match tags.remove(NAMESPACE_TAG) {
        Some(ns) => Namespace::parse(&ns)?,
        None => call.access_key()?.default_namespace.clone(),
    };
    let input = CreateKeyInput {
        namespace,
        description: r.description.unwrap_or_default(),
        spec,
        usage,
        tags,
        backend: None,
        alias: None,
        external_key_id: None,
        origin,
        idempotency: None,
    };
    let m = call.service.create_key(scope, input).await?;
    Ok(json!({ "KeyMetadata": key_metadata(call, &m) }))
}

pub(super) async fn describe_key(call: &Call<'_>, scope: &mut Scope) -> Result<Value, Error> {
    let m = call.service.describe_key(scope, &key_of(call)?).await?;
    Ok(json!({ "KeyMetadata": key_metadata(call, &m) }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PageRequest {
    limit: Option<i64>,
    marker: Option<String>,
    key_id: Option<String>,
}

fn page(next: Option<String>) -> Value {
    match next {
        Some(m) => json!({ "Truncated": true, "NextMarker": m }),
        None => json!({ "Truncated": false }),
    }
}

pub(super) async fn list_keys(call: &Call<'_>, scope: &mut Scope) -> Result<Value, Error> {
    let r: PageRequest = parse(call.body)?;
    let out = call.service.list_keys(scope, None, r.marker.as_deref(), limit(r.limit)?).await?;
    let keys: Vec<Value> = out
        .keys
        .iter()
        .map(|m| json!({ "KeyId": m.key.id.to_string(), "KeyArn": call.aws.settings.key_arn(m.key.id) }))
        .collect();
    let mut answer = page(out.next_token);
    answer["Keys"] = Value::Array(keys);
    Ok(answer)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescriptionRequest {
    key_id: Option<String>,
    description: Option<String>,
}

pub(super) async fn update_key_description(call: &Call<'_>, scope: &mut Scope) -> Result<Value, Error> {
    let r: DescriptionRequest = parse(call.body)?;
    let key = call.key_id(r.key_id.as_deref())?;
    let description = r.description.ok_or_else(|| constraint("description", "Member must not be null"))?;
    let input = UpdateKeyInput {
        description: Some(description),
        tags: TagUpdate::Keep,
        rotation: RotationUpdate::Keep,
        rotate_after: RotateAfterUpdate::Keep,
        on_use_while_pending: None,
    };
    call.service.update_key(scope, &key, input).await?;
    Ok(json!({}))
}

pub(super) async fn enable_key(call: &Call<'_>, scope: &mut Scope, enable: bool) -> Result<Value, Error> {
    let key = key_of(call)?;
    if enable {
        call.service.enable_key(scope, &key).await?;
    } else {
        call.service.disable_key(scope, &key).await?;
    }
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ScheduleRequest {
    key_id: Option<String>,
    pending_window_in_days: Option<i64>,
}

pub(super) async fn schedule_key_deletion(call: &Call<'_>, scope: &mut Scope) -> Result<Value, Error> {
    let r: ScheduleRequest = parse(call.body)?;
    let key = call.key_id(r.key_id.as_deref())?;
    let days = match r.pending_window_in_days {
        None => None,
        Some(d @ 7..=30) => Some(u32::try_from(d).unwrap_or(30)),
        Some(_) => return Err(constraint("pendingWindowInDays", "Member must have value between 7 and 30")),
    };
    let m = call.service.schedule_key_deletion(scope, &key, days).await?;
    let mut answer = json!({
        "KeyId": call.aws.settings.key_arn(m.key.id),
        "KeyState": "PendingDeletion",
        "PendingWindowInDays": days.unwrap_or(30),
    });
    if let Some(d) = m.key.deletion_date {
        answer["DeletionDate"] = json!(epoch(d));
    }
    Ok(answer)
}

pub(super) async fn cancel_key_deletion(call: &Call<'_>, scope: &mut Scope) -> Result<Value, Error> {
    let m = call.service.cancel_key_deletion(scope, &key_of(call)?).await?;
    Ok(json!({ "KeyId": call.aws.settings.key_arn(m.key.id) }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AliasRequest {
    alias_name: Option<String>,
    target_key_id: Option<String>,
}

fn alias_name(value: Option<&str>) -> Result<AliasName, Error> {
    let value = value.ok_or_else(|| constraint("aliasName", "Member must not be null"))?;
    if value.starts_with("alias/aws/") {
        return Err(Error::invalid("alias names beginning with alias/aws/ are reserved")
            .with_detail(keyward_core::Detail::InvalidAliasName));
    }
    AliasName::parse(value)
}

pub(super) async fn create_alias(call: &Call<'_>, scope: &mut Scope, update: bool) -> Result<Value, Error> {
    let r: AliasRequest = parse(call.body)?;
    let name = alias_name(r.alias_name.as_deref())?;
    let target = call.key_id(r.target_key_id.as_deref())?;
    if matches!(target, KeyRef::Alias(_)) {
        return Err(constraint("targetKeyId", "Member must be a key id or key ARN, not an alias"));
    }
    let mode = if update { AliasWrite::UpdateOnly } else { AliasWrite::CreateOnly };
    call.service.create_alias(scope, name, &target, mode).await?;
    Ok(json!({}))
}

pub(super) async fn delete_alias(call: &Call<'_>, scope: &mut Scope) -> Result<Value, Error> {
    let r: AliasRequest = parse(call.body)?;
    call.service.delete_alias(scope, &alias_name(r.alias_name.as_deref())?).await?;
    Ok(json!({}))
}

pub(super) async fn list_aliases(call: &Call<'_>, scope: &mut Scope) -> Result<Value, Error> {
    let r: PageRequest = parse(call.body)?;
    let key = r.key_id.as_deref().map(|k| call.aws.settings.key_ref(k)).transpose()?;
    let out = call.service.list_aliases(scope, key.as_ref(), r.marker.as_deref(), limit(r.limit)?).await?;
    let aliases: Vec<Value> = out
        .aliases
        .iter()
        .map(|a| {
            json!({
                "AliasName": a.alias_name.as_str(),
                "AliasArn": call.aws.settings.alias_arn(&a.alias_name),
                "TargetKeyId": a.target_key_id.to_string(),
            })
        })
        .collect();
    let mut answer = page(out.next_token);
    answer["Aliases"] = Value::Array(aliases);
    Ok(answer)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TagRequest {
    key_id: Option<String>,
    tags: Option<Vec<Tag>>,
    tag_keys: Option<Vec<String>>,
}

fn reserved(name: &str) -> Result<(), Error> {
    if name == NAMESPACE_TAG {
        return Err(Error::invalid(format!(
            "`{NAMESPACE_TAG}` names a key's namespace at creation and cannot be changed"
        )));
    }
    Ok(())
}

pub(super) async fn tag_resource(call: &Call<'_>, scope: &mut Scope) -> Result<Value, Error> {
    let r: TagRequest = parse(call.body)?;
    let key = call.key_id(r.key_id.as_deref())?;
    let tags = r.tags.ok_or_else(|| constraint("tags", "Member must not be null"))?;
    let mut set = BTreeMap::new();
    for t in tags {
        reserved(&t.key)?;
        set.insert(t.key, t.value);
    }
    let input = UpdateKeyInput {
        description: None,
        tags: TagUpdate::Change { set, remove: Vec::new() },
        rotation: RotationUpdate::Keep,
        rotate_after: RotateAfterUpdate::Keep,
        on_use_while_pending: None,
    };
    call.service.update_key(scope, &key, input).await?;
    Ok(json!({}))
}

pub(super) async fn untag_resource(call: &Call<'_>, scope: &mut Scope) -> Result<Value, Error> {
    let r: TagRequest = parse(call.body)?;
    let key = call.key_id(r.key_id.as_deref())?;
    let remove = r.tag_keys.ok_or_else(|| constraint("tagKeys", "Member must not be null"))?;
    let input = UpdateKeyInput {
        description: None,
        tags: TagUpdate::Change { set: BTreeMap::new(), remove },
        rotation: RotationUpdate::Keep,
        rotate_after: RotateAfterUpdate::Keep,
        on_use_while_pending: None,
    };
    call.service.update_key(scope, &key, input).await?;
    Ok(json!({}))
}

pub(super) async fn list_resource_tags(call: &Call<'_>, scope: &mut Scope) -> Result<Value, Error> {
    let m = call.service.describe_key(scope, &key_of(call)?).await?;
    let tags: Vec<Value> = m.key.tags.iter().map(|(k, v)| json!({ "TagKey": k, "TagValue": v })).collect();
    Ok(json!({ "Tags": tags, "Truncated": false }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RotationRequest {
    key_id: Option<String>,
    rotation_period_in_days: Option<i64>,
}

pub(super) async fn set_rotation(call: &Call<'_>, scope: &mut Scope, enable: bool) -> Result<Value, Error> {
    let r: RotationRequest = parse(call.body)?;
    let key = call.key_id(r.key_id.as_deref())?;
    let rotation = match (enable, r.rotation_period_in_days) {
        (false, _) => RotationUpdate::Off,
        (true, None) => RotationUpdate::Every(DEFAULT_ROTATION_DAYS),
        (true, Some(d)) if ROTATION_DAYS.contains(&d) => {
            RotationUpdate::Every(u32::try_from(d).unwrap_or(DEFAULT_ROTATION_DAYS))
        }
        (true, Some(_)) => {
            return Err(constraint("rotationPeriodInDays", "Member must have value between 90 and 2560"));
        }
    };
    call.service
        .update_key(
            scope,
            &key,
            UpdateKeyInput {
                description: None,
                tags: TagUpdate::Keep,
                rotation,
                rotate_after: RotateAfterUpdate::Keep,
                on_use_while_pending: None,
            },
        )
        .await?;
    Ok(json!({}))
}

pub(super) async fn get_key_rotation_status(call: &Call<'_>, scope: &mut Scope) -> Result<Value, Error> {
    let m = call.service.describe_key(scope, &key_of(call)?).await?;
    let mut answer = json!({
        "KeyId": call.aws.settings.key_arn(m.key.id),
        "KeyRotationEnabled": m.key.rotation_period_days.is_some(),
    });
    if let Some(d) = m.key.rotation_period_days {
        answer["RotationPeriodInDays"] = json!(d);
    }
    if let Some(t) = m.key.next_rotation_at {
        answer["NextRotationDate"] = json!(epoch(t));
    }
    Ok(answer)
}

pub(super) async fn rotate_key_on_demand(call: &Call<'_>, scope: &mut Scope) -> Result<Value, Error> {
    let m = call.service.rotate_key(scope, &key_of(call)?).await?;
    Ok(json!({ "KeyId": call.aws.settings.key_arn(m.key.id) }))
}

pub(super) async fn list_key_rotations(call: &Call<'_>, scope: &mut Scope) -> Result<Value, Error> {
    let key = key_of(call)?;
    let versions = call.service.list_key_versions(scope, &key).await?;
    let key_arn = match &key {
        KeyRef::Id(id) => call.aws.settings.key_arn(*id),
        KeyRef::Alias(_) => scope_key_arn(call, scope),
    };
    // Every version after the first was a rotation.
    let rotations: Vec<Value> = versions
        .iter()
        .filter(|v| v.version > 1)
        .map(|v| json!({ "KeyId": key_arn, "RotationDate": epoch(v.created_at) }))
        .collect();
    Ok(json!({ "Rotations": rotations, "Truncated": false }))
}

fn scope_key_arn(call: &Call<'_>, scope: &Scope) -> String {
    scope.key_id().map(|id| call.aws.settings.key_arn(id)).unwrap_or_default()
}
