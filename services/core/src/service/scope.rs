//! A request's scope: who called, what they asked, and what the audit record will say.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::model::context::EncryptionContext;
use crate::model::ids::KeyId;
use crate::model::principal::Principal;
use crate::operation::Operation;
use crate::ports::audit::AuditRecord;
use crate::ports::authorizer::{AlgorithmFacts, Decision};
use crate::ports::store::Change;

/// Transport facts about a request, gathered at the edge.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    /// The request id (echoed in `x-request-id`).
    pub request_id: String,
    /// The W3C trace id.
    pub trace_id: String,
    /// The caller's address.
    pub source_ip: Option<IpAddr>,
    /// The caller's user agent.
    pub user_agent: Option<String>,
    /// A justification the caller gave (header `x-keyward-justification`).
    pub justification: Option<String>,
    /// The front door, when not the REST API (`aws-kms`, `xks`, `kubernetes`).
    pub interface: Option<&'static str>,
    /// What a front door relays about the request it serves for another system (the XKS
    /// proxy: AWS KMS's `requestMetadata`), given to policies as `context.forwarded`.
    pub forwarded: Option<std::collections::BTreeMap<String, String>>,
}

/// What a request brings to the service: its transport facts, the outcome of authentication
/// and the operation asked for. The service turns it into a [`Scope`] inside its audited path.
#[derive(Debug)]
pub struct RequestStart {
    /// Transport facts.
    pub meta: RequestMeta,
    /// The authentication outcome: a failure is kept and audited when the operation asks for
    /// the caller.
    pub principal: Result<Principal>,
    /// The operation.
    pub operation: Operation,
}

/// One request in flight: its caller, its operation and its audit draft.
#[derive(Debug)]
pub struct Scope {
    pub(crate) meta: RequestMeta,
    pub(crate) principal: Result<Arc<Principal>>,
    pub(crate) operation: Operation,
    pub(crate) started: DateTime<Utc>,
    pub(crate) resource: Option<String>,
    pub(crate) key_id: Option<KeyId>,
    pub(crate) key_version: Option<u32>,
    pub(crate) decision: Option<bool>,
    pub(crate) determining_policies: Vec<String>,
    pub(crate) policy_version: Option<String>,
    pub(crate) policy_errors: Vec<String>,
    pub(crate) encryption_context: BTreeMap<String, String>,
    pub(crate) dry_run: bool,
    /// CreateKey's backend instance and whether it links an external key.
    pub(crate) create: Option<(String, bool)>,
    /// The request's state change, committed with its record once the operation succeeds.
    pub(crate) staged: Option<Staged>,
    /// Sign, Verify and the MAC operations: the algorithm asked for (a policy input).
    pub(crate) algorithm: AlgorithmFacts,
    /// Facts the audit record keeps beside its fixed fields (the algorithm, the message's
    /// SHA-256: never the message).
    pub(crate) details: BTreeMap<String, String>,
    /// Whether the request was charged to its principal's quota (once per request).
    pub(crate) quota_charged: bool,
    /// A key pending deletion the request tried to use: the canary raised once it is recorded.
    pub(crate) canary: Option<crate::model::key::KeyRecord>,
    /// The approval this request runs for: it was approved, so it does not wait again.
    pub(crate) approval: Option<uuid::Uuid>,
}

/// A change waiting for the request's outcome, with the error the request answers if the
/// change's condition fails at commit (a lost race).
#[derive(Debug)]
pub(crate) struct Staged {
    pub(crate) change: Change,
    pub(crate) refused: Error,
}

impl Scope {
    pub(crate) fn new(
        meta: RequestMeta,
        principal: Result<Principal>,
        operation: Operation,
        started: DateTime<Utc>,
    ) -> Self {
        Self {
            meta,
            principal: principal.map(Arc::new),
            operation,
            started,
            resource: None,
            key_id: None,
            key_version: None,
            decision: None,
            determining_policies: Vec::new(),
            policy_version: None,
            policy_errors: Vec::new(),
            encryption_context: BTreeMap::new(),
            dry_run: false,
            create: None,
            staged: None,
            algorithm: AlgorithmFacts::default(),
            details: BTreeMap::new(),
            quota_charged: false,
            canary: None,
            approval: None,
        }
    }

    /// The authenticated caller, or `Unauthenticated`.
    pub fn principal(&self) -> Result<Arc<Principal>> {
        self.principal.clone()
    }

    /// The operation.
    pub fn operation(&self) -> Operation {
        self.operation
    }

    /// Makes this request a dry run: decisions are made and audited, nothing is done.
    pub fn set_dry_run(&mut self) {
        self.dry_run = true;
    }

    /// Whether this request is a dry run.
    pub fn is_dry_run(&self) -> bool {
        self.dry_run
    }

    /// The key the request resolved, once it has.
    pub fn key_id(&self) -> Option<KeyId> {
        self.key_id
    }

    /// The request's facts.
    pub fn meta(&self) -> &RequestMeta {
        &self.meta
    }

    pub(crate) fn note_key(&mut self, id: KeyId, version: Option<u32>) {
        self.key_id = Some(id);
        if version.is_some() {
            self.key_version = version;
        }
    }

    pub(crate) fn note_context(&mut self, ctx: &EncryptionContext) {
        self.encryption_context.extend(ctx.entries().iter().map(|(k, v)| (k.clone(), v.clone())));
    }

    /// Notes the algorithm a signing or MAC request names, for the decision and the record,
    /// with the SHA-256 of its message (the message itself is never recorded).
    pub(crate) fn note_algorithm(&mut self, algorithm: AlgorithmFacts, message: &[u8]) {
        self.algorithm = algorithm;
        if let Some(a) = algorithm.signing_algorithm {
            self.details.insert("signing_algorithm".into(), a.as_str().into());
        }
        if let Some(t) = algorithm.message_type {
            self.details.insert("message_type".into(), t.as_str().into());
        }
        if let Some(a) = algorithm.mac_algorithm {
            self.details.insert("mac_algorithm".into(), a.as_str().into());
        }
        let digest = <sha2::Sha256 as sha2::Digest>::digest(message);
        self.details.insert("message_sha256".into(), hex::encode(digest));
    }

    /// Notes one operation-specific fact for the record.
    pub(crate) fn note_detail(&mut self, name: &str, value: &str) {
        self.details.insert(name.to_owned(), value.to_owned());
    }

    pub(crate) fn note_decision(&mut self, resource: String, decision: &Decision) {
        // Several decisions (ReEncrypt) combine: allowed only if all allowed.
        self.decision = Some(self.decision.unwrap_or(true) && decision.allowed);
        self.determining_policies.extend(decision.determining_policies.iter().cloned());
        self.policy_errors.extend(decision.errors.iter().cloned());
        self.policy_version = Some(decision.policy_version.to_string());
        if self.resource.is_none() {
            self.resource = Some(resource);
        }
    }

    /// Stages the request's one state change; it commits with the request's record.
    pub(crate) fn stage(&mut self, change: Change, refused: Error) -> Result<()> {
        if self.staged.is_some() {
            return Err(Error::internal("a request stages at most one change"));
        }
        self.staged = Some(Staged { change, refused });
        Ok(())
    }

    pub(crate) fn into_record(self, finished: DateTime<Utc>, outcome: Option<&Error>) -> AuditRecord {
        let (principal, principal_groups) = match &self.principal {
            Ok(p) => (p.to_string(), p.groups.clone()),
            Err(_) => ("anonymous".to_owned(), Vec::new()),
        };
        let duration_us = (finished - self.started).num_microseconds().and_then(|n| u64::try_from(n).ok());
        AuditRecord {
            time: self.started,
            request_id: self.meta.request_id,
            trace_id: self.meta.trace_id,
            principal,
            principal_groups,
            action: self.operation.as_str().to_owned(),
            resource: self.resource,
            key_id: self.key_id,
            key_version: self.key_version,
            decision: self.decision,
            determining_policies: self.determining_policies,
            policy_version: self.policy_version,
            policy_errors: self.policy_errors,
            outcome: String::new(),
            reason: None,
            encryption_context: self.encryption_context,
            source_ip: self.meta.source_ip.map(|ip| ip.to_string()),
            user_agent: self.meta.user_agent,
            justification: self.meta.justification,
            dry_run: self.dry_run,
            duration_us: duration_us.unwrap_or(0),
            interface: self.meta.interface.map(str::to_owned),
            details: self.details,
        }
        .with_outcome(outcome)
    }
}
