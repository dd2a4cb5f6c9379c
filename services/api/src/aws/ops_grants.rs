//! CreateGrant, ListGrants, ListRetirableGrants, RevokeGrant, RetireGrant. A grant's principal is a Keyward entity
//! uid; an IAM user or role ARN of the configured account maps to `Keyward::User` or
//! `Keyward::Service` of the same name. The grant token is the grant id.

use std::collections::BTreeMap;

use keyward_core::Error;
use keyward_core::model::grant::GrantConstraints;
use keyward_core::service::{CreateGrantInput, GrantOutput, Scope};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::Call;
use super::error::constraint;
use super::wire::{epoch, parse};

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct Constraints {
    encryption_context_equals: Option<BTreeMap<String, String>>,
    encryption_context_subset: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateGrantRequest {
    key_id: Option<String>,
    grantee_principal: Option<String>,
    operations: Option<Vec<String>>,
    constraints: Option<Constraints>,
    retiring_principal: Option<String>,
}

/// The Keyward uid a `GranteePrincipal` names.
fn grantee(call: &Call<'_>, value: &str) -> Result<String, Error> {
    if value.starts_with("Keyward::") {
        return Ok(value.to_owned());
    }
    let iam = format!("arn:aws:iam::{}:", call.aws.settings.account_id);
    let named = |kind: &str, name: &str| {
        let ok = !name.is_empty() && name.len() <= 256 && !name.contains(['"', '\\']);
        ok.then(|| format!("Keyward::{kind}::\"{name}\""))
    };
    let mapped = value.strip_prefix(&iam).and_then(|rest| {
        if let Some(name) = rest.strip_prefix("user/") {
            named("User", name.rsplit('/').next().unwrap_or(name))
        } else if let Some(name) = rest.strip_prefix("role/") {
            named("Service", name.rsplit('/').next().unwrap_or(name))
        } else {
            None
        }
    });
    mapped.ok_or_else(|| {
        constraint("granteePrincipal", "Member must be a Keyward entity uid or an IAM user or role ARN of this account")
    })
}

pub(super) async fn create_grant(call: &Call<'_>, scope: &mut Scope) -> Result<Value, Error> {
    let r: CreateGrantRequest = parse(call.body)?;
    let key = call.key_id(r.key_id.as_deref())?;
    let grantee_uid = grantee(
        call,
        r.grantee_principal.as_deref().ok_or_else(|| constraint("granteePrincipal", "Member must not be null"))?,
    )?;
    let operations = r.operations.ok_or_else(|| constraint("operations", "Member must not be null"))?;
    let retiring_principal = r.retiring_principal.as_deref().map(|p| grantee(call, p)).transpose()?;
    let c = r.constraints.unwrap_or_default();
    let input = CreateGrantInput {
        key,
        grantee: grantee_uid,
        operations,
        constraints: GrantConstraints {
            encryption_context_equals: c.encryption_context_equals,
            encryption_context_subset: c.encryption_context_subset,
        },
        retiring_principal,
    };
    let out = call.service.create_grant(scope, input).await?;
    let id = out.grant_id.to_string();
    Ok(json!({ "GrantId": id, "GrantToken": id }))
}

fn grant(call: &Call<'_>, g: &GrantOutput) -> Value {
    let mut v = json!({
        "KeyId": call.aws.settings.key_arn(g.key_id),
        "GrantId": g.grant_id.to_string(),
        "CreationDate": epoch(g.created_at),
        "GranteePrincipal": g.grantee,
        "IssuingAccount": format!("arn:aws:iam::{}:root", call.aws.settings.account_id),
        "Operations": g.operations,
    });
    let mut c = serde_json::Map::new();
    if let Some(e) = &g.constraints.encryption_context_equals {
        c.insert("EncryptionContextEquals".into(), json!(e));
    }
    if let Some(s) = &g.constraints.encryption_context_subset {
        c.insert("EncryptionContextSubset".into(), json!(s));
    }
    if !c.is_empty() {
        v["Constraints"] = Value::Object(c);
    }
    if let Some(r) = &g.retiring_principal {
        v["RetiringPrincipal"] = json!(r);
    }
    v
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RetirableRequest {
    retiring_principal: Option<String>,
}

/// ListRetirableGrants: the grants naming a retiring principal, on keys whose grants the
/// caller may list.
pub(super) async fn list_retirable_grants(call: &Call<'_>, scope: &mut Scope) -> Result<Value, Error> {
    let r: RetirableRequest = parse(call.body)?;
    let who = r.retiring_principal.ok_or_else(|| constraint("retiringPrincipal", "Member must not be null"))?;
    let grants = call.service.list_retirable_grants(scope, &grantee(call, &who)?).await?;
    let grants: Vec<Value> = grants.iter().map(|g| grant(call, g)).collect();
    Ok(json!({ "Grants": grants, "Truncated": false }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListGrantsRequest {
    key_id: Option<String>,
    grant_id: Option<String>,
    grantee_principal: Option<String>,
}

pub(super) async fn list_grants(call: &Call<'_>, scope: &mut Scope) -> Result<Value, Error> {
    let r: ListGrantsRequest = parse(call.body)?;
    let key = call.key_id(r.key_id.as_deref())?;
    let wanted_grantee = r.grantee_principal.as_deref().map(|g| grantee(call, g)).transpose()?;
    let grants = call.service.list_grants(scope, &key).await?;
    let grants: Vec<Value> = grants
        .iter()
        .filter(|g| r.grant_id.as_deref().is_none_or(|id| g.grant_id.to_string() == id))
        .filter(|g| wanted_grantee.as_deref().is_none_or(|w| g.grantee == w))
        .map(|g| grant(call, g))
        .collect();
    Ok(json!({ "Grants": grants, "Truncated": false }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RevokeRequest {
    key_id: Option<String>,
    grant_id: Option<String>,
    grant_token: Option<String>,
}

fn grant_id(value: &str) -> Result<Uuid, Error> {
    Uuid::parse_str(value).map_err(|_| {
        Error::invalid(format!("grant id `{}` is not valid", value.chars().take(128).collect::<String>()))
            .with_detail(keyward_core::Detail::InvalidGrantId)
    })
}

pub(super) async fn revoke_grant(call: &Call<'_>, scope: &mut Scope) -> Result<Value, Error> {
    let r: RevokeRequest = parse(call.body)?;
    if r.key_id.is_none() {
        return Err(constraint("keyId", "Member must not be null"));
    }
    let id = grant_id(r.grant_id.as_deref().ok_or_else(|| constraint("grantId", "Member must not be null"))?)?;
    call.service.revoke_grant(scope, id).await?;
    Ok(json!({}))
}

pub(super) async fn retire_grant(call: &Call<'_>, scope: &mut Scope) -> Result<Value, Error> {
    let r: RevokeRequest = parse(call.body)?;
    let id = match (r.grant_token.as_deref(), r.grant_id.as_deref()) {
        (Some(token), _) => grant_id(token)?,
        (None, Some(id)) if r.key_id.is_some() => grant_id(id)?,
        _ => return Err(Error::invalid("give `GrantToken`, or `KeyId` and `GrantId`")),
    };
    call.service.revoke_grant(scope, id).await?;
    Ok(json!({}))
}
