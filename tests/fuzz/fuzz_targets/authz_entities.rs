//! The request-to-Cedar entity builder and the decision under the default policies: any
//! principal, groups, key attributes, tags, encryption context and justification give a
//! decision (never a panic), the same one twice, and a caller who is neither the key's owner
//! nor an administrator is never allowed to change it.
#![no_main]

use std::collections::BTreeMap;

use keyward_authz::{CedarAuthorizer, PolicyBundle};
use keyward_core::model::context::EncryptionContext;
use keyward_core::model::ids::{KeyId, Namespace};
use keyward_core::model::key::{KeyRecord, KeySpec, Protection};
use keyward_core::model::principal::{Principal, PrincipalKind};
use keyward_core::model::signing::{MessageType, SigningAlgorithm};
use keyward_core::operation::{Action, Operation};
use keyward_core::ports::authorizer::{AlgorithmFacts, Authorizer, AuthzRequest, RequestFacts, ResourceRef};
use libfuzzer_sys::fuzz_target;

thread_local! {
    static AUTHZ: CedarAuthorizer =
        CedarAuthorizer::new(PolicyBundle::embedded().unwrap_or_else(|e| panic!("{e}"))).unwrap_or_else(|e| panic!("{e}"));
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let fields: Vec<&str> = text.split('\u{1f}').collect();
    let field = |i: usize| fields.get(i).copied().unwrap_or("");
    let groups: Vec<String> = field(1).split(',').filter(|g| !g.is_empty()).map(str::to_owned).collect();
    let kind = if field(0).starts_with('s') { PrincipalKind::Service } else { PrincipalKind::User };
    let principal = Principal { kind, id: field(0).to_owned(), groups };
    let Ok(namespace) = Namespace::parse(field(2)) else { return };
    let tags: BTreeMap<String, String> =
        field(3).split(',').filter_map(|t| t.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
    let context: BTreeMap<String, String> =
        field(4).split(',').filter_map(|t| t.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
    let Ok(context) = EncryptionContext::new(context) else { return };
    let now = chrono::DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default();
    let mut key =
        KeyRecord::new(KeyId(uuid::Uuid::nil()), namespace, field(5).to_owned(), "software".into(), KeySpec::Aes256, now);
    key.tags = tags;
    let operations =
        [Operation::Encrypt, Operation::Decrypt, Operation::DisableKey, Operation::ScheduleKeyDeletion, Operation::Sign];
    let op = operations[data.first().map_or(0, |b| usize::from(*b) % operations.len())];
    let facts = RequestFacts {
        encryption_context: &context,
        source_ip: None,
        justification: Some(field(6)).filter(|j| !j.is_empty()),
        request_time: now,
        dry_run: false,
        create: None,
        forwarded: None,
        // Sign requests name an algorithm and message type (tag-pinned keys refuse others).
        algorithm: AlgorithmFacts {
            signing_algorithm: (op == Operation::Sign)
                .then(|| SigningAlgorithm::ALL[data.get(1).map_or(0, |b| usize::from(*b) % SigningAlgorithm::ALL.len())]),
            message_type: (op == Operation::Sign)
                .then(|| if data.get(2).is_some_and(|b| b % 2 == 0) { MessageType::Raw } else { MessageType::Digest }),
            mac_algorithm: None,
        },
    };
    let request = AuthzRequest {
        principal: &principal,
        action: Action::Op(op),
        resource: ResourceRef::Key { key: &key, protection: Protection::Software },
        facts,
    };
    AUTHZ.with(|authz| {
        let first = authz.decide(&request);
        let again = authz.decide(&request);
        assert_eq!(first.allowed, again.allowed, "a decision is deterministic");
        let owner = principal.to_string() == key.owner;
        let admin = principal.groups.iter().any(|g| g == "admins");
        // Owners are compared as text, so only where one spelling exists (no escapes).
        let plain = !key.owner.contains('\\') && !principal.id.contains(['\\', '"']);
        if plain && first.allowed && matches!(op, Operation::DisableKey | Operation::ScheduleKeyDeletion) {
            assert!(owner || admin, "a stranger may change a key: {principal:?} {key:?} {first:?}");
        }
    });
});
