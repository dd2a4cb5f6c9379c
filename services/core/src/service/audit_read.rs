//! QueryAudit and VerifyAudit: reading the trail is itself authorized and audited.

use super::{KeyService, Scope};
use crate::error::{Error, ErrorCode, Result};
use crate::model::context::EncryptionContext;
use crate::operation::{Action, Operation};
use crate::ports::audit::{AuditFilter, StoredAuditRecord, VerifyOutcome};
use crate::ports::authorizer::ResourceRef;

impl KeyService {
    pub(super) fn reader(&self) -> Result<&std::sync::Arc<dyn crate::ports::audit::AuditReader>> {
        self.audit_reader
            .as_ref()
            .ok_or_else(|| Error::new(ErrorCode::UnsupportedOperation, "this server's audit store cannot be read"))
    }

    /// QueryAudit: records matching the filter, oldest first, after the cursor.
    pub async fn query_audit(&self, scope: &mut Scope, filter: AuditFilter) -> Result<Vec<StoredAuditRecord>> {
        let empty = EncryptionContext::default();
        self.authorize(scope, Action::Op(Operation::QueryAudit), ResourceRef::System, &empty)?;
        self.reader()?.query(&filter).await.map_err(|e| Error::audit_unavailable(e.0))
    }

    /// VerifyAudit: walks every chain and checkpoint.
    pub async fn verify_audit(&self, scope: &mut Scope) -> Result<VerifyOutcome> {
        let empty = EncryptionContext::default();
        self.authorize(scope, Action::Op(Operation::VerifyAudit), ResourceRef::System, &empty)?;
        self.reader()?.verify().await.map_err(|e| Error::audit_unavailable(e.0))
    }
}
