//! The three calls of the KMS v2 API onto the key service.

use std::collections::BTreeMap;
use std::sync::Arc;

use keyward_core::model::context::EncryptionContext;
use keyward_core::model::ids::KeyRef;
use keyward_core::model::key::KeyState;
use keyward_core::model::principal::Principal;
use keyward_core::operation::Operation;
use keyward_core::service::{DecryptInput, EncryptInput, KeyService, RequestMeta, RequestStart, Scope};
use keyward_core::{Error, ErrorCode};
use tonic::{Request, Response, Status};
use zeroize::Zeroizing;

use crate::proto::key_management_service_server::KeyManagementService;
use crate::proto::{DecryptRequest, DecryptResponse, EncryptRequest, EncryptResponse, StatusRequest, StatusResponse};

/// The KMS API version answered in Status.
pub const API_VERSION: &str = "v2";

/// Largest gRPC message either way: annotations may reach 32 KiB.
pub(crate) const MAX_MESSAGE: usize = 64 * 1024;

/// The apiserver's limits: a ciphertext and a key id of at most 1 KiB, annotations (keys and
/// values) of at most 32 KiB.
const MAX_CIPHERTEXT: usize = 1024;
const MAX_KEY_ID: usize = 1024;
const MAX_ANNOTATIONS: usize = 32 * 1024;

/// Bound into every ciphertext, so a blob made through another front door for the same key
/// is not accepted here, and policies can tell plugin traffic apart.
const CONTEXT: (&str, &str) = ("kubernetes", "kms-v2");

/// The plugin: the key service, the key and the principal it acts as.
#[derive(Debug, Clone)]
pub struct Plugin {
    service: Arc<KeyService>,
    key: KeyRef,
    principal: Principal,
    /// [`CONTEXT`], built once.
    context: EncryptionContext,
}

impl Plugin {
    /// A plugin using `key` as `principal`.
    pub fn new(service: Arc<KeyService>, key: KeyRef, principal: Principal) -> Self {
        // One short pair always fits the context limits.
        let context = EncryptionContext::new(BTreeMap::from([(CONTEXT.0.to_owned(), CONTEXT.1.to_owned())]))
            .unwrap_or_else(|e| unreachable!("{e}"));
        Self { service, key, principal, context }
    }

    fn start(&self, operation: Operation, uid: &str) -> RequestStart {
        let mut meta = RequestMeta { interface: Some(crate::INTERFACE), ..RequestMeta::default() };
        // The apiserver's request uid names the record (a fresh id when it sends none).
        meta.request_id = if !uid.is_empty()
            && uid.len() <= 128
            && uid.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        {
            uid.to_owned()
        } else {
            uuid::Uuid::new_v4().to_string()
        };
        meta.trace_id = uuid::Uuid::new_v4().simple().to_string();
        RequestStart { meta, principal: Ok(self.principal.clone()), operation }
    }
}

/// The key id the apiserver compares: the key and its version, so it changes on rotation.
fn key_id(key: &impl std::fmt::Display, version: u32) -> String {
    format!("{key}:v{version}")
}

fn status_of(e: &Error) -> Status {
    let msg = e.message().to_owned();
    match e.code() {
        ErrorCode::InvalidRequest
        | ErrorCode::PayloadTooLarge
        | ErrorCode::InvalidCiphertext
        | ErrorCode::InvalidKeyUsage => Status::invalid_argument(msg),
        ErrorCode::Unauthenticated => Status::unauthenticated(msg),
        ErrorCode::AccessDenied => Status::permission_denied(msg),
        ErrorCode::NotFound => Status::not_found(msg),
        ErrorCode::KeyDisabled | ErrorCode::KeyPendingDeletion | ErrorCode::Conflict => {
            Status::failed_precondition(msg)
        }
        ErrorCode::UnsupportedOperation => Status::unimplemented(msg),
        ErrorCode::RateLimited => Status::resource_exhausted(msg),
        ErrorCode::ApprovalPending => Status::permission_denied(msg),
        ErrorCode::KeyUnavailable | ErrorCode::BackendUnavailable | ErrorCode::AuditUnavailable => {
            Status::unavailable(msg)
        }
        ErrorCode::Internal => Status::internal("internal error"),
    }
}

#[tonic::async_trait]
impl KeyManagementService for Plugin {
    async fn status(&self, _request: Request<StatusRequest>) -> Result<Response<StatusResponse>, Status> {
        let start = self.start(Operation::DescribeKey, "");
        let described = self
            .service
            .audited(start, async |scope: &mut Scope| self.service.describe_key(scope, &self.key).await)
            .await;
        let (healthz, key_id) = match described {
            Ok(m) => {
                let id = key_id(&m.key.id, m.key.primary_version);
                let backend_up = self.service.probe_backend(&m.key.backend).await;
                let healthz = match (m.key.state, backend_up) {
                    (KeyState::Enabled, true) => "ok".to_owned(),
                    (KeyState::Enabled, false) => format!("the key's backend `{}` is down", m.key.backend),
                    (state, _) => format!("the key is {state:?}"),
                };
                (healthz, id)
            }
            Err(e) => (format!("{}: {}", e.code(), e.message()), String::new()),
        };
        Ok(Response::new(StatusResponse { version: API_VERSION.to_owned(), healthz, key_id }))
    }

    async fn encrypt(&self, request: Request<EncryptRequest>) -> Result<Response<EncryptResponse>, Status> {
        let r = request.into_inner();
        let plaintext = Zeroizing::new(r.plaintext);
        let start = self.start(Operation::Encrypt, &r.uid);
        let out = self
            .service
            .audited(start, async |scope: &mut Scope| {
                let input =
                    EncryptInput { key: self.key.clone(), plaintext: plaintext.clone(), context: self.context.clone() };
                self.service.encrypt(scope, input).await
            })
            .await
            .map_err(|e| status_of(&e))?;
        if out.ciphertext_blob.len() > MAX_CIPHERTEXT {
            return Err(Status::internal("the ciphertext is over the apiserver's 1 KiB"));
        }
        Ok(Response::new(EncryptResponse {
            ciphertext: out.ciphertext_blob,
            key_id: key_id(&out.key_id, out.key_version),
            annotations: Default::default(),
        }))
    }

    async fn decrypt(&self, request: Request<DecryptRequest>) -> Result<Response<DecryptResponse>, Status> {
        let r = request.into_inner();
        let start = self.start(Operation::Decrypt, &r.uid);
        let annotations: usize = r.annotations.iter().map(|(k, v)| k.len() + v.len()).sum();
        let out = self
            .service
            .audited(start, async |scope: &mut Scope| {
                if r.ciphertext.is_empty() || r.ciphertext.len() > MAX_CIPHERTEXT {
                    return Err(Error::invalid("`ciphertext` must be 1 byte to 1 KiB"));
                }
                if r.key_id.len() > MAX_KEY_ID || annotations > MAX_ANNOTATIONS {
                    return Err(Error::invalid("`key_id` over 1 KiB or annotations over 32 KiB"));
                }
                // The blob names its key and version: ciphertexts from before a rotation (or
                // before the alias was repointed) decrypt under theirs, if the policies allow.
                let input =
                    DecryptInput { ciphertext_blob: r.ciphertext.clone(), context: self.context.clone(), key: None };
                self.service.decrypt(scope, input).await
            })
            .await
            .map_err(|e| status_of(&e))?;
        Ok(Response::new(DecryptResponse { plaintext: out.plaintext.to_vec() }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_change_with_the_version_and_fit() {
        assert_ne!(key_id(&"k", 1), key_id(&"k", 2));
        assert!(key_id(&uuid::Uuid::new_v4(), u32::MAX).len() <= MAX_KEY_ID);
    }

    #[test]
    fn errors_map_to_grpc_codes() {
        assert_eq!(status_of(&Error::access_denied("Decrypt")).code(), tonic::Code::PermissionDenied);
        assert_eq!(status_of(&Error::invalid_ciphertext("tag")).code(), tonic::Code::InvalidArgument);
        assert_eq!(status_of(&Error::backend_unavailable("down")).code(), tonic::Code::Unavailable);
        assert_eq!(status_of(&Error::internal("secret detail")).message(), "internal error");
    }
}
