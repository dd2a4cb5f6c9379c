//! M-of-N approvals. A request the policies mark sensitive (the Cedar action
//! `RequireApproval`, asked with the operation as `context.operation`) does not run where
//! approvals are configured: it is stored as an approval request (`ApprovalPending`, REST 202)
//! and runs, as its requester, once `required` principals other than the requester, each
//! allowed `Approve` on its resource, have approved it before it expires. Anyone allowed
//! `Reject` may reject it. Asking, each approval, the rejection, the expiry and the run are
//! each audited; the run's record names its approvers.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use uuid::Uuid;

use super::{CreateGrantInput, KeyService, RequestMeta, RequestStart, Scope, store_err};
use crate::error::{Detail, Error, ErrorCode, Result};
use crate::gate::Permit;
use crate::model::approval::{ApprovalRecord, ApprovalState, PendingRequest, Vote};
use crate::model::context::EncryptionContext;
use crate::model::grant::GrantConstraints;
use crate::model::ids::KeyRef;
use crate::model::key::KeyRecord;
use crate::model::principal::Principal;
use crate::operation::{Action, Operation};
use crate::ports::authorizer::ResourceRef;
use crate::ports::backend::DynBackend as _;
use crate::ports::store::Write;

/// A key's tag that raises its quorum (0-10).
pub const APPROVALS_TAG: &str = "approvals-required";

/// The largest quorum.
pub const MAX_APPROVALS: u32 = 10;

/// How many approvals sensitive requests need, and for how long they wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalConfig {
    /// For requests on the system, and on keys whose namespace and tags set none (0: none).
    pub required: u32,
    /// Per namespace.
    pub namespaces: BTreeMap<String, u32>,
    /// How long a request waits before it expires.
    pub ttl: chrono::Duration,
}

impl Default for ApprovalConfig {
    fn default() -> Self {
        Self { required: 0, namespaces: BTreeMap::new(), ttl: chrono::Duration::hours(24) }
    }
}

/// ListApprovals' page.
#[derive(Debug, Clone)]
pub struct ListApprovalsOutput {
    /// The page.
    pub approvals: Vec<ApprovalRecord>,
    /// Cursor for the next page.
    pub next_token: Option<String>,
}

impl KeyService {
    /// Sets the quorums and the waiting time.
    #[must_use]
    pub fn with_approvals(mut self, approvals: ApprovalConfig) -> Self {
        self.approvals = approvals;
        self
    }

    /// The quorum for a resource: its namespace's or the default, raised by a key's tag. A
    /// tag never lowers it: whoever may tag a key must not be able to waive its approvals.
    fn approvals_required(&self, resource: ResourceRef<'_>) -> u32 {
        match resource {
            ResourceRef::Key { key, .. } => {
                let configured =
                    self.approvals.namespaces.get(key.namespace.as_str()).copied().unwrap_or(self.approvals.required);
                let tagged = key
                    .tags
                    .get(APPROVALS_TAG)
                    .and_then(|t| t.parse::<u32>().ok())
                    .filter(|n| *n <= MAX_APPROVALS)
                    .unwrap_or(0);
                configured.max(tagged)
            }
            ResourceRef::Namespace(ns) => {
                self.approvals.namespaces.get(ns.as_str()).copied().unwrap_or(self.approvals.required)
            }
            ResourceRef::System => self.approvals.required,
        }
    }

    /// A key as a decision's resource.
    pub(super) fn key_resource<'a>(&self, key: &'a KeyRecord) -> Result<ResourceRef<'a>> {
        Ok(ResourceRef::Key { key, protection: self.backends.lookup(&key.backend)?.capabilities().protection })
    }

    /// After an allowed decision: `None` to run now, or the approvals the request must wait
    /// for (its resource asks for some and the policies mark it sensitive). A request run
    /// by its approval does not ask again.
    pub(super) fn approval_gate(&self, scope: &Scope, op: Operation, resource: ResourceRef<'_>) -> Result<Option<u32>> {
        if scope.approval.is_some() || scope.dry_run {
            return Ok(None);
        }
        let required = self.approvals_required(resource);
        if required == 0 {
            return Ok(None);
        }
        Ok(self.decide_quietly(scope, Action::RequireApproval(op), resource)?.then_some(required))
    }

    /// Stores the request as an approval request (with the request's record) and answers
    /// the `ApprovalPending` it returns.
    pub(super) fn defer(
        &self,
        scope: &mut Scope,
        permit: Permit,
        request: PendingRequest,
        resource: ResourceRef<'_>,
        required: u32,
    ) -> Error {
        let principal = match scope.principal() {
            Ok(p) => p,
            Err(e) => return e,
        };
        let now = self.clock.now();
        let record = ApprovalRecord {
            id: Uuid::now_v7(),
            request,
            resource: resource.uid(),
            requested_by: principal.to_string(),
            requester_groups: principal.groups.clone(),
            required,
            approvals: Vec::new(),
            state: ApprovalState::Pending,
            rejected_by: None,
            created_at: now,
            expires_at: now + self.approvals.ttl,
            result: None,
            revision: 1,
        };
        let (id, expires_at) = (record.id, record.expires_at);
        scope.details.insert("approval_id".into(), id.to_string());
        scope.details.insert("approvals_required".into(), required.to_string());
        let refused = Error::conflict("the approval request could not be stored; retry");
        if let Err(e) = self.stage(scope, permit, Write::InsertApproval(record), refused) {
            return e;
        }
        Error::new(ErrorCode::ApprovalPending, format!("the request waits for {required} approvals (approval {id})"))
            .with_detail(Detail::Approval { id, required, expires_at })
    }

    /// ListApprovals: by id (oldest first), in a state if given.
    pub async fn list_approvals(
        &self,
        scope: &mut Scope,
        state: Option<ApprovalState>,
        next_token: Option<&str>,
        limit: u64,
    ) -> Result<ListApprovalsOutput> {
        let after =
            next_token.map(str::parse::<Uuid>).transpose().map_err(|_| Error::invalid("invalid `next_token`"))?;
        self.authorize(
            scope,
            Action::Op(Operation::ListApprovals),
            ResourceRef::System,
            &EncryptionContext::default(),
        )?;
        let now = self.clock.now();
        // Expired is what pending requests past their time read as until the maintenance
        // pass records it: filter on the state as shown.
        let stored = match state {
            Some(ApprovalState::Expired) => None,
            other => other,
        };
        let mut approvals = Vec::new();
        let mut cursor = after;
        loop {
            let page = self.store.list_approvals(stored, cursor, limit).await.map_err(store_err)?;
            let full = page.len() as u64 == limit;
            for a in page {
                cursor = Some(a.id);
                if state.is_none_or(|s| a.state_at(now) == s) {
                    approvals.push(shown(a, now));
                }
            }
            if !full || approvals.len() as u64 >= limit {
                break;
            }
        }
        approvals.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next_token =
            (approvals.len() as u64 == limit).then(|| approvals.last().map(|a| a.id.to_string())).flatten();
        Ok(ListApprovalsOutput { approvals, next_token })
    }

    /// GetApproval.
    pub async fn get_approval(&self, scope: &mut Scope, id: Uuid) -> Result<ApprovalRecord> {
        let approval = self.load_approval(scope, id).await?;
        self.authorize_approval(scope, Operation::GetApproval, &approval).await?;
        Ok(shown(approval, self.clock.now()))
    }

    /// Reject: the request will never run.
    pub async fn reject(&self, scope: &mut Scope, id: Uuid) -> Result<ApprovalRecord> {
        let approval = self.load_approval(scope, id).await?;
        let permit = self.authorize_approval(scope, Operation::Reject, &approval).await?;
        self.ensure_pending(&approval)?;
        let mut next = approval;
        next.state = ApprovalState::Rejected;
        next.rejected_by = Some(scope.principal()?.to_string());
        next.revision += 1;
        self.stage(scope, permit, Write::UpdateApproval(next.clone()), decided_concurrently())?;
        Ok(next)
    }

    /// Approve: counts the caller's approval; the one that reaches the quorum runs the
    /// request as its requester and records how it ended.
    pub async fn approve(&self, scope: &mut Scope, id: Uuid) -> Result<ApprovalRecord> {
        let approval = self.load_approval(scope, id).await?;
        let permit = self.authorize_approval(scope, Operation::Approve, &approval).await?;
        self.ensure_pending(&approval)?;
        let me = scope.principal()?.to_string();
        if me == approval.requested_by {
            return Err(Error::access_denied(Action::Op(Operation::Approve))
                .with_reason("a requester cannot approve its own request"));
        }
        if approval.approvals.iter().any(|v| v.principal == me) {
            return Err(Error::conflict("you have already approved this request").with_detail(Detail::AlreadyExists));
        }
        let mut next = approval;
        next.approvals.push(Vote { principal: me.clone(), at: self.clock.now() });
        next.revision += 1;
        scope.details.insert("approvals".into(), format!("{}/{}", next.approvals.len(), next.required));
        if (next.approvals.len() as u64) < u64::from(next.required) {
            self.stage(scope, permit, Write::UpdateApproval(next.clone()), decided_concurrently())?;
            return Ok(next);
        }
        // The quorum: claim the run in its own record first, so exactly one approver runs it.
        next.state = ApprovalState::Executing;
        let claim = next.clone();
        let key = claim.request.key_id();
        let start = RequestStart {
            meta: scope.meta.clone(),
            principal: scope.principal().map(|p| Principal::clone(&p)),
            operation: Operation::Approve,
        };
        self.audited(start, async |s| {
            s.resource = Some(claim.resource.clone());
            s.key_id = key;
            s.details.insert("approval_id".into(), claim.id.to_string());
            s.details
                .insert("approvals".into(), format!("{}/{} (quorum: running)", claim.approvals.len(), claim.required));
            let permit = Permit::new(Action::Op(Operation::Approve), key);
            self.stage(s, permit, Write::UpdateApproval(claim.clone()), decided_concurrently())
        })
        .await?;
        let result = self.run_approved(&next).await;
        scope.details.insert("outcome".into(), result["outcome"].as_str().unwrap_or_default().to_owned());
        next.state = ApprovalState::Executed;
        next.result = Some(result);
        next.revision += 1;
        self.stage(scope, permit, Write::UpdateApproval(next.clone()), decided_concurrently())?;
        Ok(next)
    }

    /// Runs an approved request as its requester, in its own audited scope naming the
    /// approval and its approvers; how it ended, as GetApproval's `result`.
    async fn run_approved(&self, approval: &ApprovalRecord) -> Value {
        let meta = RequestMeta {
            request_id: Uuid::new_v4().to_string(),
            trace_id: Uuid::new_v4().simple().to_string(),
            ..RequestMeta::default()
        };
        let principal = Principal::from_uid(&approval.requested_by, approval.requester_groups.clone());
        let start = RequestStart { meta, principal, operation: approval.request.operation() };
        let approvers: Vec<&str> = approval.approvals.iter().map(|v| v.principal.as_str()).collect();
        let outcome = self
            .audited(start, async |s| {
                s.approval = Some(approval.id);
                s.details.insert("approval_id".into(), approval.id.to_string());
                s.details.insert("approved_by".into(), approvers.join(","));
                self.run_pending(s, &approval.request).await
            })
            .await;
        match outcome {
            Ok(mut v) => {
                v["outcome"] = json!("Success");
                v
            }
            Err(e) => json!({ "outcome": e.code().as_str(), "message": e.message() }),
        }
    }

    async fn run_pending(&self, s: &mut Scope, request: &PendingRequest) -> Result<Value> {
        match request {
            PendingRequest::ScheduleKeyDeletion { key_id, pending_window_days } => {
                let m = self.schedule_key_deletion(s, &KeyRef::Id(*key_id), *pending_window_days).await?;
                let deletion_date = m.key.deletion_date.map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
                Ok(
                    json!({ "key_id": key_id.to_string(), "key_state": m.key.state.as_str(), "deletion_date": deletion_date }),
                )
            }
            PendingRequest::DisableKey { key_id } => {
                let m = self.disable_key(s, &KeyRef::Id(*key_id)).await?;
                Ok(json!({ "key_id": key_id.to_string(), "key_state": m.key.state.as_str() }))
            }
            PendingRequest::ReloadPolicies { force } => {
                let r = self.reload_policies(s, *force).await?;
                Ok(json!({ "policy_version": r.version, "proofs": r.proofs }))
            }
            PendingRequest::CreateGrant {
                key_id,
                grantee,
                operations,
                encryption_context_equals,
                encryption_context_subset,
                retiring_principal,
            } => {
                let input = CreateGrantInput {
                    key: KeyRef::Id(*key_id),
                    grantee: grantee.clone(),
                    operations: operations.clone(),
                    constraints: GrantConstraints {
                        encryption_context_equals: encryption_context_equals.clone(),
                        encryption_context_subset: encryption_context_subset.clone(),
                    },
                    retiring_principal: retiring_principal.clone(),
                };
                let g = self.create_grant(s, input).await?;
                Ok(json!({ "grant_id": g.grant_id.to_string(), "key_id": key_id.to_string() }))
            }
            PendingRequest::DeleteAccessKey { access_key_id } => {
                self.delete_access_key(s, access_key_id).await?;
                Ok(json!({ "access_key_id": access_key_id }))
            }
        }
    }

    /// Records as expired the pending requests whose time ran out (the maintenance pass).
    pub(super) async fn expire_approvals(&self) -> Result<usize> {
        let mut expired = 0;
        for approval in self.store.approvals_expired(self.clock.now()).await.map_err(store_err)? {
            let result = self
                .system(Operation::ExpireApproval, async |s, scope| {
                    let key = approval.request.key_id();
                    scope.resource = Some(approval.resource.clone());
                    scope.key_id = key;
                    scope.details.insert("approval_id".into(), approval.id.to_string());
                    let mut next = approval.clone();
                    next.state = ApprovalState::Expired;
                    next.revision += 1;
                    let permit = Permit::new(Action::Op(Operation::ExpireApproval), key);
                    s.stage(scope, permit, Write::UpdateApproval(next), decided_concurrently())
                })
                .await;
            match result {
                Ok(()) => expired += 1,
                Err(e) if e.code() == ErrorCode::Conflict => {}
                Err(e) => tracing::warn!(code = %e.code(), "approval not expired; will retry"),
            }
        }
        Ok(expired)
    }

    async fn load_approval(&self, scope: &mut Scope, id: Uuid) -> Result<ApprovalRecord> {
        scope.details.insert("approval_id".into(), id.to_string());
        let approval = self
            .store
            .approval(id)
            .await
            .map_err(store_err)?
            .ok_or_else(|| Error::not_found(format!("approval `{id}`")))?;
        scope.resource = Some(approval.resource.clone());
        scope.key_id = approval.request.key_id();
        Ok(approval)
    }

    /// Decides `op` on the approval's resource (its key, or the system).
    async fn authorize_approval(&self, scope: &mut Scope, op: Operation, approval: &ApprovalRecord) -> Result<Permit> {
        let empty = EncryptionContext::default();
        match approval.request.key_id() {
            Some(id) => {
                let Some(key) = self.store.key_current(id).await.map_err(store_err)? else {
                    return Err(
                        Error::conflict("the approval's key no longer exists").with_detail(Detail::InvalidState)
                    );
                };
                self.authorize_key(scope, Action::Op(op), &key, &empty)
            }
            None => self.authorize(scope, Action::Op(op), ResourceRef::System, &empty),
        }
    }

    fn ensure_pending(&self, approval: &ApprovalRecord) -> Result<()> {
        match approval.state_at(self.clock.now()) {
            ApprovalState::Pending => Ok(()),
            state => Err(Error::conflict(format!("the approval is `{}`, not pending", state.as_str()))
                .with_detail(Detail::InvalidState)),
        }
    }
}

/// An approval as a reader sees it now (pending past its time reads as expired).
fn shown(mut a: ApprovalRecord, now: chrono::DateTime<chrono::Utc>) -> ApprovalRecord {
    a.state = a.state_at(now);
    a
}

fn decided_concurrently() -> Error {
    Error::conflict("the approval was decided concurrently; read it again").with_detail(Detail::InvalidState)
}
