//! Decisions of the default policy set.

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use keyward_core::model::context::EncryptionContext;
use keyward_core::model::grant::{GrantConstraints, GrantRecord};
use keyward_core::model::ids::{KeyId, Namespace};
use keyward_core::model::key::{KeyRecord, KeySpec, Protection};
use keyward_core::model::principal::{Principal, PrincipalKind};
use keyward_core::operation::{Action, Operation};
use keyward_core::ports::authorizer::{Authorizer, AuthzRequest, Decision, RequestFacts, ResourceRef};

use crate::{CedarAuthorizer, PolicyBundle};

fn authorizer() -> CedarAuthorizer {
    match PolicyBundle::embedded() {
        Ok(b) => CedarAuthorizer::new(b).unwrap_or_else(|e| unreachable!("{e}")),
        Err(e) => unreachable!("default policies must validate: {e}"),
    }
}

fn now() -> chrono::DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000, 0).single().unwrap_or_default()
}

/// Facts with only an encryption context (no address, no justification).
fn facts(ctx: &EncryptionContext) -> RequestFacts<'_> {
    RequestFacts {
        encryption_context: ctx,
        source_ip: None,
        justification: None,
        request_time: now(),
        dry_run: false,
        create: None,
        forwarded: None,
        algorithm: Default::default(),
    }
}

fn set(sources: Vec<(String, String)>) -> CedarAuthorizer {
    let bundle = PolicyBundle::from_sources("t".into(), sources).unwrap_or_else(|e| unreachable!("{e}"));
    CedarAuthorizer::new(bundle).unwrap_or_else(|e| unreachable!("{e}"))
}

fn with_schema(policies: &[(&str, &str)]) -> Vec<(String, String)> {
    let schema = crate::EMBEDDED[0];
    let mut v = vec![(schema.0.to_string(), schema.1.to_string())];
    v.extend(policies.iter().map(|(n, t)| (n.to_string(), t.to_string())));
    v
}

fn user(id: &str, groups: &[&str]) -> Principal {
    Principal { kind: PrincipalKind::User, id: id.into(), groups: groups.iter().map(|g| g.to_string()).collect() }
}

fn key(ns: &str, owner: &str, tags: &[(&str, &str)]) -> KeyRecord {
    let t = Utc.timestamp_opt(1_700_000_000, 0).single().unwrap_or_default();
    let namespace = Namespace::parse(ns).unwrap_or_else(|e| unreachable!("{e}"));
    KeyRecord {
        tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
        ..KeyRecord::new(
            KeyId(uuid::Uuid::from_u128(42)),
            namespace,
            owner.into(),
            "software".into(),
            KeySpec::Aes256,
            t,
        )
    }
}

fn decide_key(p: &Principal, op: Operation, k: &KeyRecord, justification: Option<&str>) -> (bool, Vec<String>) {
    let ctx = EncryptionContext::default();
    let facts = RequestFacts { justification, ..facts(&ctx) };
    let d = authorizer().decide(&AuthzRequest {
        principal: p,
        action: Action::Op(op),
        resource: ResourceRef::Key { key: k, protection: Protection::Software },
        facts,
    });
    assert!(d.errors.is_empty(), "unexpected evaluation errors: {:?}", d.errors);
    (d.allowed, d.determining_policies)
}

fn decide_ns(p: &Principal, op: Operation, ns: &str) -> bool {
    let ctx = EncryptionContext::default();
    let ns = Namespace::parse(ns).unwrap_or_else(|e| unreachable!("{e}"));
    let facts = facts(&ctx);
    authorizer()
        .decide(&AuthzRequest { principal: p, action: Action::Op(op), resource: ResourceRef::Namespace(&ns), facts })
        .allowed
}

#[test]
fn admins_may_do_everything() {
    let admin = user("root", &["admins"]);
    let k = key("payments", r#"Keyward::User::"alice""#, &[]);
    assert_eq!(decide_key(&admin, Operation::Encrypt, &k, None), (true, vec!["admins-all".to_string()]));
    assert!(decide_key(&admin, Operation::DisableKey, &k, None).0);
    assert!(decide_ns(&admin, Operation::CreateKey, "anything"));
}

#[test]
fn namespace_members_use_but_do_not_manage() {
    let bob = user("bob", &["payments"]);
    let k = key("payments", r#"Keyward::User::"alice""#, &[]);
    assert_eq!(decide_key(&bob, Operation::Decrypt, &k, None), (true, vec!["namespace-members-use".to_string()]));
    assert!(decide_key(&bob, Operation::DescribeKey, &k, None).0);
    assert!(!decide_key(&bob, Operation::DisableKey, &k, None).0);
    assert!(decide_ns(&bob, Operation::CreateKey, "payments"));
    assert!(!decide_ns(&bob, Operation::CreateKey, "billing"));
}

#[test]
fn strangers_are_denied_by_default() {
    let eve = user("eve", &["billing"]);
    let k = key("payments", r#"Keyward::User::"alice""#, &[]);
    assert_eq!(decide_key(&eve, Operation::Encrypt, &k, None), (false, vec![]));
    assert!(!decide_ns(&eve, Operation::GenerateRandom, "payments"));
}

#[test]
fn owners_manage_their_keys() {
    let alice = user("alice", &[]);
    let k = key("payments", r#"Keyward::User::"alice""#, &[]);
    assert_eq!(decide_key(&alice, Operation::RotateKey, &k, None), (true, vec!["owner-user".to_string()]));
    // A service with the same name is another principal.
    let svc = Principal { kind: PrincipalKind::Service, id: "alice".into(), groups: vec![] };
    assert!(!decide_key(&svc, Operation::RotateKey, &k, None).0);
}

#[test]
fn protected_keys_need_a_justification_to_delete() {
    let admin = user("root", &["admins"]);
    let k = key("payments", r#"Keyward::User::"alice""#, &[("protected", "true")]);
    assert_eq!(
        decide_key(&admin, Operation::ScheduleKeyDeletion, &k, None),
        (false, vec!["protected-keys-need-justification".to_string()])
    );
    assert!(decide_key(&admin, Operation::ScheduleKeyDeletion, &k, Some("INC-42 decommission")).0);
    let unprotected = key("payments", r#"Keyward::User::"alice""#, &[("protected", "false")]);
    assert!(decide_key(&admin, Operation::ScheduleKeyDeletion, &unprotected, None).0);
}

#[test]
fn invalid_sets_are_refused_with_reasons() {
    let schema = crate::EMBEDDED[0];
    let src = |p: &str| vec![(schema.0.to_string(), schema.1.to_string()), ("p.cedar".to_string(), p.to_string())];
    let no_id = PolicyBundle::from_sources("t".into(), src("permit(principal, action, resource);"));
    assert!(no_id.is_err_and(|e| e.to_string().contains("@id")));
    let bad_attr = PolicyBundle::from_sources(
        "t".into(),
        src(r#"@id("x") permit(principal, action, resource is Keyward::Key) when { resource.colour == "red" };"#),
    );
    assert!(bad_attr.is_err_and(|e| e.to_string().contains("colour")));
    let ok = PolicyBundle::from_sources("t".into(), src(r#"@id("x") permit(principal, action, resource);"#));
    assert!(ok.is_ok());
}

#[test]
fn requests_conform_to_the_schema() {
    // The decision path skips per-request schema validation; this proves what it builds conforms.
    let bundle = PolicyBundle::embedded().unwrap_or_else(|e| unreachable!("{e}"));
    let ctx = EncryptionContext::new(BTreeMap::from([("tenant".to_string(), "acme".to_string())]))
        .unwrap_or_else(|e| unreachable!("{e}"));
    assert_eq!(ctx.entries().len(), 1, "the request carries a context");
    let ns = Namespace::parse("payments").unwrap_or_else(|e| unreachable!("{e}"));
    let k = key("payments", r#"Keyward::Service::"batch""#, &[("env", "prod")]);
    let principal = user("bob", &["payments", "admins"]);
    let forwarded = BTreeMap::from([("kms_via_service".to_owned(), "ebs".to_owned())]);
    let resources = [ResourceRef::Key { key: &k, protection: Protection::Hsm }, ResourceRef::Namespace(&ns)];
    for (resource, op) in resources.into_iter().zip([Operation::Encrypt, Operation::CreateKey]) {
        let facts = RequestFacts {
            encryption_context: &ctx,
            source_ip: "10.1.2.3".parse().ok(),
            justification: Some("why"),
            request_time: now(),
            dry_run: true,
            create: (op == Operation::CreateKey)
                .then_some(keyward_core::ports::authorizer::CreateFacts { backend: "hsm", external: true }),
            forwarded: Some(&forwarded),
            algorithm: Default::default(),
        };
        let req = AuthzRequest { principal: &principal, action: Action::Op(op), resource, facts };
        let reads = crate::bundle::Reads { source_ip: true, request_time: true, context_keys: true };
        let built = crate::entities::build(&bundle, reads, &req).unwrap_or_else(|e| unreachable!("{e}"));
        let entities: Vec<_> =
            built.entities.iter().filter(|e| !e.uid().type_name().to_string().ends_with("Action")).cloned().collect();
        let checked = cedar_policy::Entities::from_entities(entities, Some(&bundle.schema));
        assert!(checked.is_ok(), "entities conform: {:?}", checked.err());
        let r = cedar_policy::Request::new(
            built.principal,
            built.action,
            built.resource,
            built.context,
            Some(&bundle.schema),
        );
        assert!(r.is_ok(), "request conforms: {:?}", r.err());
    }
}

#[test]
fn source_ip_is_available_to_policies_that_read_it() {
    let schema = crate::EMBEDDED[0];
    let policy = r#"@id("loopback-only") permit(principal, action, resource) when { context has source_ip && context.source_ip.isLoopback() };"#;
    let sources = vec![(schema.0.to_string(), schema.1.to_string()), ("ip.cedar".to_string(), policy.to_string())];
    let authz = set(sources);
    let ctx = EncryptionContext::default();
    let ns = Namespace::parse("n").unwrap_or_else(|e| unreachable!("{e}"));
    let p = user("eve", &[]);
    let decide = |ip: &str| {
        let facts = RequestFacts {
            encryption_context: &ctx,
            source_ip: ip.parse().ok(),
            justification: None,
            request_time: now(),
            dry_run: false,
            create: None,
            forwarded: None,
            algorithm: Default::default(),
        };
        let req = AuthzRequest {
            principal: &p,
            action: Action::Op(Operation::CreateKey),
            resource: ResourceRef::Namespace(&ns),
            facts,
        };
        authz.decide(&req)
    };
    assert!(decide("127.0.0.1").allowed);
    let remote = decide("10.0.0.1");
    assert!(!remote.allowed && remote.errors.is_empty());
}

#[test]
fn policies_can_limit_who_creates_hsm_and_external_keys() {
    let schema = crate::EMBEDDED[0];
    let policies = r#"
        @id("members-create") permit(principal, action == Keyward::Action::"CreateKey", resource);
        @id("hsm-needs-admins") forbid(principal, action == Keyward::Action::"CreateKey", resource)
          when { context has backend && context.backend == "hsm" } unless { principal in Keyward::Group::"admins" };
        @id("no-external-links") forbid(principal, action == Keyward::Action::"CreateKey", resource)
          when { context has external && context.external };
    "#;
    let sources = vec![(schema.0.to_string(), schema.1.to_string()), ("c.cedar".to_string(), policies.to_string())];
    let authz = set(sources);
    let ctx = EncryptionContext::default();
    let ns = Namespace::parse("n").unwrap_or_else(|e| unreachable!("{e}"));
    let decide = |p: &Principal, backend: &str, external: bool| {
        let facts = RequestFacts {
            encryption_context: &ctx,
            source_ip: None,
            justification: None,
            request_time: now(),
            dry_run: false,
            create: Some(keyward_core::ports::authorizer::CreateFacts { backend, external }),
            forwarded: None,
            algorithm: Default::default(),
        };
        let req = AuthzRequest {
            principal: p,
            action: Action::Op(Operation::CreateKey),
            resource: ResourceRef::Namespace(&ns),
            facts,
        };
        let d = authz.decide(&req);
        assert!(d.errors.is_empty(), "{:?}", d.errors);
        (d.allowed, d.determining_policies)
    };
    let (eve, root) = (user("eve", &[]), user("root", &["admins"]));
    assert_eq!(decide(&eve, "software", false), (true, vec!["members-create".to_string()]));
    assert_eq!(decide(&eve, "hsm", false), (false, vec!["hsm-needs-admins".to_string()]));
    assert!(decide(&root, "hsm", false).0);
    assert_eq!(decide(&root, "aws", true), (false, vec!["no-external-links".to_string()]));
}

#[test]
fn owners_with_escaped_ids_are_recognised() {
    let odd = user("a\"b", &[]);
    let k = key("payments", &odd.to_string(), &[]);
    assert!(decide_key(&odd, Operation::RotateKey, &k, None).0);
}

fn decide_with(
    authz: &CedarAuthorizer,
    p: &Principal,
    action: Action,
    k: &KeyRecord,
    ctx: &[(&str, &str)],
) -> Decision {
    let ctx = EncryptionContext::new(ctx.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect())
        .unwrap_or_else(|e| unreachable!("{e}"));
    let facts = facts(&ctx);
    let resource = ResourceRef::Key { key: k, protection: Protection::Software };
    authz.decide(&AuthzRequest { principal: p, action, resource, facts })
}

#[test]
fn an_erroring_forbid_denies() {
    // Integer overflow passes strict validation and errors at evaluation: Cedar alone would
    // skip this forbid and let the permit through.
    let authz = set(with_schema(&[
        ("allow.cedar", r#"@id("allow-all") permit(principal, action, resource);"#),
        (
            "broken.cedar",
            r#"@id("broken-forbid") forbid(principal, action, resource is Keyward::Key) when { resource.hasTag("legacy") && 9223372036854775807 + 1 > 0 };"#,
        ),
    ]));
    let tagged = key("n", "", &[("legacy", "y")]);
    let d = decide_with(&authz, &user("u", &[]), Action::Op(Operation::Encrypt), &tagged, &[]);
    assert!(!d.allowed);
    assert!(!d.errors.is_empty(), "the error is reported");
    assert!(decide_with(&authz, &user("u", &[]), Action::Op(Operation::Encrypt), &key("n", "", &[]), &[]).allowed);
}

fn grant(ops: &[Action], constraints: GrantConstraints) -> GrantRecord {
    GrantRecord {
        retiring_principal: None,
        id: uuid::Uuid::from_u128(7),
        key_id: KeyId(uuid::Uuid::from_u128(42)),
        grantee: r#"Keyward::User::"carol""#.into(),
        operations: ops.to_vec(),
        constraints,
        granted_by: r#"Keyward::User::"owner""#.into(),
        created_at: now(),
    }
}

#[test]
fn grants_allow_exactly_what_they_name() {
    let authz = authorizer();
    let carol = user("carol", &[]);
    let k = key("payments", "", &[]);
    let encrypt = Action::Op(Operation::Encrypt);
    assert!(!decide_with(&authz, &carol, encrypt, &k, &[]).allowed);
    let g = grant(&[encrypt], GrantConstraints::default());
    assert!(authz.check_grant(&g).is_ok());
    assert!(authz.set_grants(std::slice::from_ref(&g)).is_ok());
    let d = decide_with(&authz, &carol, encrypt, &k, &[]);
    assert!(d.allowed);
    assert_eq!(d.determining_policies, vec![format!("grant:{}:Encrypt", g.id)]);
    assert!(!decide_with(&authz, &carol, Action::Op(Operation::Decrypt), &k, &[]).allowed);
    assert!(!decide_with(&authz, &user("dave", &[]), encrypt, &k, &[]).allowed);
    let other = KeyRecord { id: KeyId(uuid::Uuid::from_u128(43)), ..k.clone() };
    assert!(!decide_with(&authz, &carol, encrypt, &other, &[]).allowed);
    assert!(authz.set_grants(&[]).is_ok());
    assert!(!decide_with(&authz, &carol, encrypt, &k, &[]).allowed, "revoked");
}

#[test]
fn grant_constraints_bind_the_encryption_context() {
    let authz = authorizer();
    let carol = user("carol", &[]);
    let k = key("payments", "", &[]);
    let decrypt = Action::Op(Operation::Decrypt);
    let pairs = BTreeMap::from([("tenant".to_string(), "acme\" || true".to_string())]);
    let subset =
        grant(&[decrypt], GrantConstraints { encryption_context_subset: Some(pairs.clone()), ..Default::default() });
    assert!(authz.set_grants(&[subset]).is_ok());
    let value = "acme\" || true";
    assert!(decide_with(&authz, &carol, decrypt, &k, &[("tenant", value)]).allowed);
    assert!(decide_with(&authz, &carol, decrypt, &k, &[("tenant", value), ("x", "y")]).allowed, "subset");
    assert!(!decide_with(&authz, &carol, decrypt, &k, &[("tenant", "acme")]).allowed, "no injection");
    assert!(!decide_with(&authz, &carol, decrypt, &k, &[]).allowed);
    let equals = grant(&[decrypt], GrantConstraints { encryption_context_equals: Some(pairs), ..Default::default() });
    assert!(authz.set_grants(&[equals]).is_ok());
    assert!(decide_with(&authz, &carol, decrypt, &k, &[("tenant", value)]).allowed);
    assert!(!decide_with(&authz, &carol, decrypt, &k, &[("tenant", value), ("x", "y")]).allowed, "exact");
}

#[test]
fn indexed_decisions_match_whole_set_decisions() {
    // Policies of every scope shape; every request decided through the index and by Cedar
    // over the whole set must agree.
    let policies = [
        ("a.cedar", r#"@id("p-user") permit(principal == Keyward::User::"u1", action, resource);"#),
        (
            "b.cedar",
            r#"@id("p-group") permit(principal in Keyward::Group::"g1", action in Keyward::Action::"UseKey", resource);"#,
        ),
        (
            "c.cedar",
            r#"@id("p-ns") permit(principal, action == Keyward::Action::"DescribeKey", resource in Keyward::Namespace::"n1");"#,
        ),
        (
            "d.cedar",
            r#"@id("f-group") forbid(principal in Keyward::Group::"g2", action, resource) when { resource is Keyward::Key };"#,
        ),
        (
            "e.cedar",
            r#"@id("f-ns") forbid(principal, action == Keyward::Action::"Decrypt", resource in Keyward::Namespace::"n2");"#,
        ),
        (
            "f.cedar",
            r#"@id("p-any") permit(principal is Keyward::User, action == Keyward::Action::"ListKeyVersions", resource);"#,
        ),
    ];
    let sources = with_schema(&policies);
    let authz = set(sources.clone());
    let bundle = PolicyBundle::from_sources("t".into(), sources).unwrap_or_else(|e| unreachable!("{e}"));
    let cedar = cedar_policy::Authorizer::new();
    let reads = crate::bundle::Reads::default();
    let principals = [user("u1", &[]), user("u2", &["g1"]), user("u3", &["g1", "g2"]), user("u4", &["g2"])];
    let keys = [key("n1", "", &[]), key("n2", "", &[]), key("n3", "", &[])];
    let ops = [
        Operation::Encrypt,
        Operation::Decrypt,
        Operation::DescribeKey,
        Operation::ListKeyVersions,
        Operation::RotateKey,
    ];
    let ctx = EncryptionContext::default();
    for p in &principals {
        for k in &keys {
            for op in ops {
                let facts = facts(&ctx);
                let req = AuthzRequest {
                    principal: p,
                    action: Action::Op(op),
                    resource: ResourceRef::Key { key: k, protection: Protection::Software },
                    facts,
                };
                let built = crate::entities::build(&bundle, reads, &req).unwrap_or_else(|e| unreachable!("{e}"));
                let request =
                    cedar_policy::Request::new(built.principal, built.action, built.resource, built.context, None)
                        .unwrap_or_else(|e| unreachable!("{e}"));
                let whole = cedar.is_authorized(&request, &bundle.policies, &built.entities);
                let mut reasons: Vec<String> = whole.diagnostics().reason().map(ToString::to_string).collect();
                reasons.sort();
                let indexed = authz.decide(&req);
                assert_eq!(
                    indexed.allowed,
                    whole.decision() == cedar_policy::Decision::Allow,
                    "{p:?} {op} {}",
                    k.namespace
                );
                assert_eq!(indexed.determining_policies, reasons, "{p:?} {op} {}", k.namespace);
            }
        }
    }
}

/// Policy shapes the cache must be faithful to: by principal, group, namespace, owner, tag,
/// encryption context, action group, dry run, justification and signing algorithm.
const SHAPES: [&str; 10] = [
    r#"permit(principal == Keyward::User::"u1", action, resource);"#,
    r#"permit(principal in Keyward::Group::"g1", action in Keyward::Action::"UseKey", resource);"#,
    r#"permit(principal, action == Keyward::Action::"DescribeKey", resource in Keyward::Namespace::"n1");"#,
    r#"forbid(principal in Keyward::Group::"g2", action, resource) when { resource is Keyward::Key };"#,
    r#"permit(principal, action, resource is Keyward::Key) when { resource has owner_user && resource.owner_user == principal };"#,
    r#"forbid(principal, action == Keyward::Action::"Decrypt", resource is Keyward::Key) when { resource.hasTag("locked") };"#,
    r#"permit(principal, action == Keyward::Action::"Encrypt", resource) when { context.encryption_context.hasTag("app") && context.encryption_context.getTag("app") == "a1" };"#,
    r#"forbid(principal, action, resource) when { context.dry_run };"#,
    r#"forbid(principal, action == Keyward::Action::"ScheduleKeyDeletion", resource) unless { context has justification };"#,
    r#"permit(principal, action == Keyward::Action::"Sign", resource) when { context has signing_algorithm && context.signing_algorithm == "ECDSA_SHA_256" };"#,
];

fn shaped_set(mask: u16) -> CedarAuthorizer {
    set(shaped_sources(mask))
}

fn shaped_sources(mask: u16) -> Vec<(String, String)> {
    let chosen: Vec<(String, String)> = SHAPES
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(i, p)| (format!("p{i}.cedar"), format!("@id(\"p{i}\") {p}")))
        .collect();
    let schema = crate::EMBEDDED[0];
    let mut sources = vec![(schema.0.to_string(), schema.1.to_string())];
    sources.extend(chosen);
    sources
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Across random policy sets, principals, keys and contexts, and asked in any order and
    /// any number of times, the cached decision is Cedar's.
    #[test]
    fn cached_decisions_equal_fresh_cedar_decisions(
        mask in 0u16..1024,
        requests in proptest::collection::vec(
            (0usize..4, 0usize..4, 0usize..5, 0usize..4, 0usize..3, proptest::bool::ANY, proptest::bool::ANY, 0usize..3),
            1..40,
        ),
    ) {
        let authz = shaped_set(mask);
        let principals = [user("u1", &[]), user("u2", &["g1"]), user("u3", &["g1", "g2"]), user("u4", &["g2"])];
        let keys = [
            key("n1", r#"Keyward::User::"u2""#, &[]),
            key("n2", r#"Keyward::User::"u1""#, &[("locked", "yes")]),
            key("n1", "", &[("locked", "no")]),
            KeyRecord { state: keyward_core::model::key::KeyState::Disabled, ..key("n3", "", &[]) },
        ];
        let ops = [Operation::Encrypt, Operation::Decrypt, Operation::DescribeKey, Operation::ScheduleKeyDeletion, Operation::Sign];
        let contexts = [
            EncryptionContext::default(),
            EncryptionContext::new([("app".to_owned(), "a1".to_owned())].into()).unwrap_or_default(),
            EncryptionContext::new([("app".to_owned(), "a2".to_owned())].into()).unwrap_or_default(),
            EncryptionContext::new([("other".to_owned(), "a1".to_owned())].into()).unwrap_or_default(),
        ];
        let algorithms = [
            None,
            Some(keyward_core::model::signing::SigningAlgorithm::EcdsaSha256),
            Some(keyward_core::model::signing::SigningAlgorithm::EcdsaSha384),
        ];
        for (p, k, op, c, alg, dry_run, justified, _) in requests {
            let facts = RequestFacts {
                dry_run,
                justification: justified.then_some("ticket"),
                algorithm: keyward_core::ports::authorizer::AlgorithmFacts { signing_algorithm: algorithms[alg], ..Default::default() },
                ..facts(&contexts[c])
            };
            let req = AuthzRequest {
                principal: &principals[p],
                action: Action::Op(ops[op]),
                resource: ResourceRef::Key { key: &keys[k], protection: Protection::Software },
                facts,
            };
            let fresh = authz.decide_fresh(&req);
            proptest::prop_assert_eq!(authz.decide(&req), fresh.clone(), "first ask");
            proptest::prop_assert_eq!(authz.decide(&req), fresh, "from the cache");
        }
    }
}

#[test]
fn a_reload_a_grant_or_a_changed_key_is_seen_at_once() {
    let authz = shaped_set(1 << 5 | 1 << 1);
    let member = user("u2", &["g1"]);
    let ctx = EncryptionContext::default();
    let ask = |authz: &CedarAuthorizer, k: &KeyRecord, op: Operation| {
        authz
            .decide(&AuthzRequest {
                principal: &member,
                action: Action::Op(op),
                resource: ResourceRef::Key { key: k, protection: Protection::Software },
                facts: facts(&ctx),
            })
            .allowed
    };
    let open = key("n1", "", &[]);
    assert!(ask(&authz, &open, Operation::Decrypt), "g1 uses keys");
    assert!(ask(&authz, &open, Operation::Decrypt), "cached");
    assert_eq!(authz.cached_decisions(), 1, "one entry for the one request");
    // The key's tags change: the forbid applies to the very next request.
    let locked = KeyRecord { tags: [("locked".to_owned(), "yes".to_owned())].into(), ..open.clone() };
    assert!(!ask(&authz, &locked, Operation::Decrypt));
    assert!(ask(&authz, &open, Operation::Decrypt));
    // A reload to a set without the group's permit denies at once.
    let reloaded =
        PolicyBundle::from_sources("t2".into(), shaped_sources(1 << 5)).unwrap_or_else(|e| unreachable!("{e}"));
    authz.replace(reloaded).unwrap_or_else(|e| unreachable!("{e}"));
    assert!(!ask(&authz, &open, Operation::Decrypt), "the reload is seen");
    // A grant allows at once, and its revocation denies at once.
    let g = GrantRecord {
        grantee: r#"Keyward::User::"u2""#.into(),
        ..grant(&[Action::Op(Operation::Decrypt)], GrantConstraints::default())
    };
    authz.set_grants(std::slice::from_ref(&g)).unwrap_or_else(|e| unreachable!("{e}"));
    assert!(ask(&authz, &open, Operation::Decrypt), "the grant is seen");
    authz.set_grants(&[]).unwrap_or_else(|e| unreachable!("{e}"));
    assert!(!ask(&authz, &open, Operation::Decrypt), "the revocation is seen");
}

#[test]
fn nothing_is_cached_while_a_policy_reads_the_time() {
    let schema = crate::EMBEDDED[0];
    let timed = r#"@id("office-hours") permit(principal, action, resource) when { context has request_time && context.request_time.toTime() < duration("12h") };"#;
    let authz = set(vec![(schema.0.to_string(), schema.1.to_string()), ("t.cedar".into(), timed.into())]);
    let ctx = EncryptionContext::default();
    let p = user("u1", &[]);
    let k = key("n1", "", &[]);
    let at = |hour: i64| RequestFacts { request_time: now() + chrono::Duration::hours(hour), ..facts(&ctx) };
    let ask = |hour| {
        authz.decide(&AuthzRequest {
            principal: &p,
            action: Action::Op(Operation::Encrypt),
            resource: ResourceRef::Key { key: &k, protection: Protection::Software },
            facts: at(hour),
        })
    };
    let first = ask(0).allowed;
    let mut seen = std::collections::BTreeSet::new();
    for h in 0..24 {
        seen.insert(ask(h).allowed);
    }
    assert_eq!(seen.len(), 2, "the time of day decides, request by request (first: {first})");
    assert_eq!(authz.cached_decisions(), 0);
}
