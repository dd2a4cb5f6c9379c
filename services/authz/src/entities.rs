//! Builds the Cedar principal, resource, context and entities of one request.
//!
//! Cedar parses type names with its full grammar, which costs more than the decision itself,
//! so the names are parsed once ([`Types`]) and every uid is built from them.

use std::str::FromStr;

use cedar_policy::{Context, Entities, Entity, EntityId, EntityTypeName, EntityUid, RestrictedExpression};
use keyward_core::model::principal::{Principal, PrincipalKind};
use keyward_core::ports::authorizer::{AuthzRequest, ResourceRef};

use crate::bundle::{PolicyBundle, Reads};

/// The entity type names, parsed once per policy bundle.
#[derive(Debug, Clone)]
pub(crate) struct Types {
    user: EntityTypeName,
    service: EntityTypeName,
    group: EntityTypeName,
    namespace: EntityTypeName,
    key: EntityTypeName,
    action: EntityTypeName,
    context: EntityUid,
    forwarded: EntityUid,
    system: EntityUid,
}

impl Types {
    pub(crate) fn new() -> Result<Self, String> {
        let t = |s: &str| EntityTypeName::from_str(s).map_err(|e| e.to_string());
        Ok(Self {
            user: t("Keyward::User")?,
            service: t("Keyward::Service")?,
            group: t("Keyward::Group")?,
            namespace: t("Keyward::Namespace")?,
            key: t("Keyward::Key")?,
            action: t("Keyward::Action")?,
            context: EntityUid::from_type_name_and_id(t("Keyward::EncryptionContext")?, EntityId::new("request")),
            forwarded: EntityUid::from_type_name_and_id(t("Keyward::Forwarded")?, EntityId::new("request")),
            system: EntityUid::from_type_name_and_id(t("Keyward::System")?, EntityId::new("keyward")),
        })
    }

    fn uid(ty: &EntityTypeName, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(ty.clone(), EntityId::new(id))
    }

    /// The owner attribute of a key: `owner_user` or `owner_service` and its uid. Owners are
    /// written by [`Principal`]'s `Display`; only escaped ids need Cedar's parser.
    fn owner(&self, owner: &str) -> Option<(&'static str, EntityUid)> {
        for (prefix, attr, ty) in
            [("Keyward::User::\"", "owner_user", &self.user), ("Keyward::Service::\"", "owner_service", &self.service)]
        {
            if let Some(id) = owner.strip_prefix(prefix).and_then(|r| r.strip_suffix('"')) {
                if !id.contains(['\\', '"']) {
                    return Some((attr, Self::uid(ty, id)));
                }
                let parsed = EntityUid::from_str(owner).ok()?;
                return Some((attr, parsed));
            }
        }
        None
    }
}

/// Everything Cedar needs for one decision.
pub(crate) struct CedarRequest {
    pub principal: EntityUid,
    pub action: EntityUid,
    pub resource: EntityUid,
    pub context: Context,
    pub entities: Entities,
    /// The principal and its groups, for the policy index.
    pub principals: Vec<EntityUid>,
    /// The resource and its namespace, for the policy index.
    pub resources: Vec<EntityUid>,
}

fn principal_entity(types: &Types, p: &Principal) -> Result<(Vec<EntityUid>, Entity), String> {
    let ty = match p.kind {
        PrincipalKind::User => &types.user,
        PrincipalKind::Service => &types.service,
    };
    let mut uids = Vec::with_capacity(1 + p.groups.len());
    uids.push(Types::uid(ty, &p.id));
    uids.extend(p.groups.iter().map(|g| Types::uid(&types.group, g)));
    let entity =
        Entity::new_with_tags(uids[0].clone(), [], uids[1..].iter().cloned(), []).map_err(|e| e.to_string())?;
    Ok((uids, entity))
}

fn namespace_entity(types: &Types, name: &str) -> Result<(EntityUid, Entity), String> {
    let id = Types::uid(&types.namespace, name);
    let group = RestrictedExpression::new_entity_uid(Types::uid(&types.group, name));
    let entity = Entity::new_with_tags(id.clone(), [("group".to_owned(), group)], [], []).map_err(|e| e.to_string())?;
    Ok((id, entity))
}

/// Builds the request; an error here denies.
pub(crate) fn build(bundle: &PolicyBundle, reads: Reads, req: &AuthzRequest<'_>) -> Result<CedarRequest, String> {
    let types = &bundle.types;
    let (principals, principal_entity) = principal_entity(types, req.principal)?;
    let principal = principals[0].clone();
    let action = Types::uid(&types.action, req.action.as_str());
    let mut entities = Vec::with_capacity(4);
    entities.push(principal_entity);
    let resources = match req.resource {
        ResourceRef::Key { key, protection } => {
            let (ns, ns_entity) = namespace_entity(types, key.namespace.as_str())?;
            let mut attrs = vec![
                (
                    "namespace_group".to_owned(),
                    RestrictedExpression::new_entity_uid(Types::uid(&types.group, key.namespace.as_str())),
                ),
                ("spec".to_owned(), RestrictedExpression::new_string(key.spec.as_str().to_owned())),
                ("key_spec".to_owned(), RestrictedExpression::new_string(key.spec.as_str().to_owned())),
                ("key_usage".to_owned(), RestrictedExpression::new_string(key.usage.as_str().to_owned())),
                ("state".to_owned(), RestrictedExpression::new_string(key.state.as_str().to_owned())),
                ("backend".to_owned(), RestrictedExpression::new_string(key.backend.clone())),
                ("protection".to_owned(), RestrictedExpression::new_string(protection.as_str().to_owned())),
            ];
            if let Some((attr, owner)) = types.owner(&key.owner) {
                attrs.push((attr.to_owned(), RestrictedExpression::new_entity_uid(owner)));
            }
            let tags = key.tags.iter().map(|(k, v)| (k.clone(), RestrictedExpression::new_string(v.clone())));
            let id = Types::uid(&types.key, &key.id.to_string());
            entities.push(Entity::new_with_tags(id.clone(), attrs, [ns.clone()], tags).map_err(|e| e.to_string())?);
            entities.push(ns_entity);
            vec![id, ns]
        }
        ResourceRef::Namespace(ns) => {
            let (id, entity) = namespace_entity(types, ns.as_str())?;
            entities.push(entity);
            vec![id]
        }
        ResourceRef::System => {
            entities.push(Entity::new_no_attrs(types.system.clone(), std::collections::HashSet::new()));
            vec![types.system.clone()]
        }
    };
    let resource = resources[0].clone();
    let tags = req
        .facts
        .encryption_context
        .entries()
        .iter()
        .map(|(k, v)| (k.clone(), RestrictedExpression::new_string(v.clone())));
    entities.push(Entity::new_with_tags(types.context.clone(), [], [], tags).map_err(|e| e.to_string())?);
    let mut pairs = vec![
        ("encryption_context".to_owned(), RestrictedExpression::new_entity_uid(types.context.clone())),
        ("dry_run".to_owned(), RestrictedExpression::new_bool(req.facts.dry_run)),
    ];
    // Extension values run Cedar's parser; they are built only when some policy reads them.
    // A policy reading an absent value errors, which denies.
    if reads.source_ip
        && let Some(ip) = req.facts.source_ip
    {
        pairs.push(("source_ip".to_owned(), RestrictedExpression::new_ip(ip.to_string())));
    }
    if reads.request_time {
        let time = req.facts.request_time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
        pairs.push(("request_time".to_owned(), RestrictedExpression::new_datetime(time)));
    }
    if reads.context_keys {
        let keys = req.facts.encryption_context.entries().keys().map(|k| RestrictedExpression::new_string(k.clone()));
        pairs.push(("encryption_context_keys".to_owned(), RestrictedExpression::new_set(keys)));
    }
    if let Some(c) = req.facts.create {
        pairs.push(("backend".to_owned(), RestrictedExpression::new_string(c.backend.to_owned())));
        pairs.push(("external".to_owned(), RestrictedExpression::new_bool(c.external)));
    }
    if let Some(forwarded) = req.facts.forwarded {
        let tags = forwarded.iter().map(|(k, v)| (k.clone(), RestrictedExpression::new_string(v.clone())));
        entities.push(Entity::new_with_tags(types.forwarded.clone(), [], [], tags).map_err(|e| e.to_string())?);
        pairs.push(("forwarded".to_owned(), RestrictedExpression::new_entity_uid(types.forwarded.clone())));
    }
    let algorithm = &req.facts.algorithm;
    if let Some(a) = algorithm.signing_algorithm {
        pairs.push(("signing_algorithm".to_owned(), RestrictedExpression::new_string(a.as_str().to_owned())));
    }
    if let Some(t) = algorithm.message_type {
        pairs.push(("message_type".to_owned(), RestrictedExpression::new_string(t.as_str().to_owned())));
    }
    if let Some(a) = algorithm.mac_algorithm {
        pairs.push(("mac_algorithm".to_owned(), RestrictedExpression::new_string(a.as_str().to_owned())));
    }
    // RequireApproval asks about another operation: which one.
    if let keyward_core::operation::Action::RequireApproval(op) = req.action {
        pairs.push(("operation".to_owned(), RestrictedExpression::new_string(op.as_str().to_owned())));
    }
    if let Some(j) = req.facts.justification {
        pairs.push(("justification".to_owned(), RestrictedExpression::new_string(j.to_owned())));
    }
    let context = Context::from_pairs(pairs).map_err(|e| e.to_string())?;
    // Only the requested action's entity (its parents are the action groups) is needed;
    // adding all of them costs a transitive closure over every action per request.
    if let Some(a) = bundle.actions.get(&action) {
        entities.push(a.clone());
    }
    // Built by this module's typed code (checked against the schema in tests), so the
    // per-request schema validation, which dominated decision time, is skipped here.
    let entities = Entities::from_entities(entities, None).map_err(|e| e.to_string())?;
    Ok(CedarRequest { principal, action, resource, context, entities, principals, resources })
}
