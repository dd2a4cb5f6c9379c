//! Builds the Cedar principal, resource, context and entities of one request.

use std::str::FromStr;

use cedar_policy::{Context, Entities, Entity, EntityUid, RestrictedExpression};
use keyward_core::model::principal::Principal;
use keyward_core::ports::authorizer::{AuthzRequest, ResourceRef};

use crate::bundle::PolicyBundle;

/// The per-request entity that carries the encryption context as tags.
const CONTEXT_ENTITY: &str = r#"Keyward::EncryptionContext::"request""#;

/// Everything Cedar needs for one decision.
pub(crate) struct CedarRequest {
    pub principal: EntityUid,
    pub action: EntityUid,
    pub resource: EntityUid,
    pub context: Context,
    pub entities: Entities,
}

fn uid(type_name: &str, id: &str) -> Result<EntityUid, String> {
    let ty = cedar_policy::EntityTypeName::from_str(type_name).map_err(|e| e.to_string())?;
    Ok(EntityUid::from_type_name_and_id(ty, cedar_policy::EntityId::new(id)))
}

fn principal_entity(p: &Principal) -> Result<(EntityUid, Entity), String> {
    let id = uid(p.entity_type(), &p.id)?;
    let parents = p.groups.iter().map(|g| uid("Keyward::Group", g)).collect::<Result<Vec<_>, _>>()?;
    let entity = Entity::new_with_tags(id.clone(), [], parents, []).map_err(|e| e.to_string())?;
    Ok((id, entity))
}

/// Builds the request; an error here denies.
pub(crate) fn build(bundle: &PolicyBundle, req: &AuthzRequest<'_>) -> Result<CedarRequest, String> {
    let (principal, principal_entity) = principal_entity(req.principal)?;
    let action = uid("Keyward::Action", req.action.as_str())?;
    let mut entities = vec![principal_entity];
    let resource = match req.resource {
        ResourceRef::Key { key, protection } => {
            let ns = uid("Keyward::Namespace", key.namespace.as_str())?;
            let group = uid("Keyward::Group", key.namespace.as_str())?;
            let mut attrs = vec![
                ("namespace_group".to_owned(), RestrictedExpression::new_entity_uid(group.clone())),
                ("spec".to_owned(), RestrictedExpression::new_string(key.spec.as_str().to_owned())),
                ("state".to_owned(), RestrictedExpression::new_string(key.state.as_str().to_owned())),
                ("backend".to_owned(), RestrictedExpression::new_string(key.backend.clone())),
                ("protection".to_owned(), RestrictedExpression::new_string(protection.as_str().to_owned())),
            ];
            if let Ok(owner) = EntityUid::from_str(&key.owner) {
                match owner.type_name().to_string().as_str() {
                    "Keyward::User" => {
                        attrs.push(("owner_user".to_owned(), RestrictedExpression::new_entity_uid(owner)))
                    }
                    "Keyward::Service" => {
                        attrs.push(("owner_service".to_owned(), RestrictedExpression::new_entity_uid(owner)));
                    }
                    _ => {}
                }
            }
            let tags = key.tags.iter().map(|(k, v)| (k.clone(), RestrictedExpression::new_string(v.clone())));
            let id = uid("Keyward::Key", &key.id.to_string())?;
            entities.push(Entity::new_with_tags(id.clone(), attrs, [ns.clone()], tags).map_err(|e| e.to_string())?);
            entities.push(namespace_entity(ns, group)?);
            id
        }
        ResourceRef::Namespace(ns) => {
            let id = uid("Keyward::Namespace", ns.as_str())?;
            let group = uid("Keyward::Group", ns.as_str())?;
            entities.push(namespace_entity(id.clone(), group)?);
            id
        }
    };
    let ctx_uid = EntityUid::from_str(CONTEXT_ENTITY).map_err(|e| e.to_string())?;
    let tags = req
        .facts
        .encryption_context
        .entries()
        .iter()
        .map(|(k, v)| (k.clone(), RestrictedExpression::new_string(v.clone())));
    entities.push(Entity::new_with_tags(ctx_uid.clone(), [], [], tags).map_err(|e| e.to_string())?);
    let mut pairs = vec![
        ("encryption_context".to_owned(), RestrictedExpression::new_entity_uid(ctx_uid)),
        ("dry_run".to_owned(), RestrictedExpression::new_bool(req.facts.dry_run)),
    ];
    if let Some(ip) = req.facts.source_ip {
        pairs.push(("source_ip".to_owned(), RestrictedExpression::new_ip(ip.to_string())));
    }
    if let Some(j) = req.facts.justification {
        pairs.push(("justification".to_owned(), RestrictedExpression::new_string(j.to_owned())));
    }
    let context = Context::from_pairs(pairs).map_err(|e| e.to_string())?;
    // Built by this module's typed code (checked against the schema in tests), so the
    // per-request schema validation, which dominated decision time, is skipped here.
    let entities = bundle.actions.clone().add_entities(entities, None).map_err(|e| e.to_string())?;
    Ok(CedarRequest { principal, action, resource, context, entities })
}

fn namespace_entity(ns: EntityUid, group: EntityUid) -> Result<Entity, String> {
    Entity::new_with_tags(ns, [("group".to_owned(), RestrictedExpression::new_entity_uid(group))], [], [])
        .map_err(|e| e.to_string())
}
