//! Grants as Cedar policies. A grant without constraints links one template per operation
//! (`grant:<id>:<Operation>`); a grant that constrains the encryption context becomes one
//! generated policy (`grant:<id>`), since template slots cover only principal and resource.
//! Strings enter policy text only through Cedar's own escaping and are parsed back.

use std::collections::HashMap;
use std::str::FromStr;

use cedar_policy::{EntityUid, Policy, PolicyId, PolicySet, SlotId, Template};
use keyward_core::model::grant::{GRANTABLE, GrantRecord};

/// A string as a Cedar literal (Cedar prints literals the same way).
fn literal(s: &str) -> String {
    format!("\"{}\"", s.escape_debug())
}

fn template_id(op: &str) -> PolicyId {
    PolicyId::new(format!("grant-template:{op}"))
}

/// One template per grantable operation.
pub(crate) fn templates() -> Result<Vec<Template>, String> {
    GRANTABLE
        .iter()
        .map(|op| {
            let text = format!(
                "permit (principal in ?principal, action == Keyward::Action::{}, resource == ?resource);",
                literal(op)
            );
            Template::parse(Some(template_id(op)), text).map_err(|e| e.to_string())
        })
        .collect()
}

/// The grantee as a uid of an allowed type.
fn grantee(g: &GrantRecord) -> Result<EntityUid, String> {
    let uid = EntityUid::from_str(&g.grantee).map_err(|e| format!("grantee: {e}"))?;
    let ty = uid.type_name().to_string();
    if !["Keyward::User", "Keyward::Service", "Keyward::Group"].contains(&ty.as_str()) {
        return Err(format!("grantee type `{ty}` is not a user, service or group"));
    }
    Ok(uid)
}

fn key_uid(g: &GrantRecord) -> Result<EntityUid, String> {
    EntityUid::from_str(&format!("Keyward::Key::{}", literal(&g.key_id.to_string()))).map_err(|e| e.to_string())
}

/// The policies of one grant, linked against [`templates`] in `set`.
pub(crate) fn add_grant(set: &mut PolicySet, g: &GrantRecord) -> Result<(), String> {
    let principal = grantee(g)?;
    let resource = key_uid(g)?;
    let c = &g.constraints;
    if c.is_empty() {
        for op in &g.operations {
            let vals =
                HashMap::from([(SlotId::principal(), principal.clone()), (SlotId::resource(), resource.clone())]);
            let id = PolicyId::new(format!("{}:{}", g.policy_id(), op.as_str()));
            set.link(template_id(op.as_str()), id, vals).map_err(|e| e.to_string())?;
        }
        return Ok(());
    }
    let actions: Vec<String> =
        g.operations.iter().map(|op| format!("Keyward::Action::{}", literal(op.as_str()))).collect();
    let mut conditions = Vec::new();
    let pairs = c.encryption_context_equals.as_ref().or(c.encryption_context_subset.as_ref());
    for (k, v) in pairs.into_iter().flatten() {
        conditions.push(format!(
            "context.encryption_context.hasTag({k}) && context.encryption_context.getTag({k}) == {v}",
            k = literal(k),
            v = literal(v)
        ));
    }
    if let Some(eq) = &c.encryption_context_equals {
        if eq.is_empty() {
            conditions.push("context.encryption_context_keys.isEmpty()".into());
        } else {
            let keys: Vec<String> = eq.keys().map(|k| literal(k)).collect();
            conditions.push(format!("context.encryption_context_keys == [{}]", keys.join(", ")));
        }
    }
    let text = format!(
        "permit (principal in {principal}, action in [{}], resource == {resource}) when {{ {} }};",
        actions.join(", "),
        conditions.join(" && ")
    );
    let policy = Policy::parse(Some(PolicyId::new(g.policy_id())), text).map_err(|e| e.to_string())?;
    set.add(policy).map_err(|e| e.to_string())
}

/// Every grant's policies in one set with the templates.
pub(crate) fn policy_set(grants: &[GrantRecord]) -> Result<(PolicySet, Vec<Template>), String> {
    let templates = templates()?;
    let mut set = PolicySet::new();
    for t in &templates {
        set.add_template(t.clone()).map_err(|e| e.to_string())?;
    }
    for g in grants {
        add_grant(&mut set, g).map_err(|e| format!("grant {}: {e}", g.id))?;
    }
    Ok((set, templates))
}
