//! Access keys: CreateAccessKey, ListAccessKeys, DeleteAccessKey, and the secret lookup the
//! SigV4 front doors authenticate with.
//!
//! SigV4 needs the secret itself (the server recomputes the HMAC chain), so it cannot be
//! hashed: it is sealed (AES-256-GCM) under a sealing key created for it in the namespace's
//! default backend, bound to the access key id as associated data.

use chrono::{DateTime, Utc};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::{KeyService, Scope, backend_err, store_err};
use crate::error::{Error, Result};
use crate::model::access_key::{self, AccessKeyRecord, SECRET_BYTES};
use crate::model::context::EncryptionContext;
use crate::model::ids::{KeyId, Namespace};
use crate::model::key::KeySpec;
use crate::model::principal::Principal;
use crate::operation::{Action, Operation};
use crate::ports::authorizer::ResourceRef;
use crate::ports::backend::{DynBackend as _, VersionHandle};
use crate::ports::store::Write;

/// CreateAccessKey's input.
#[derive(Debug, Clone)]
pub struct CreateAccessKeyInput {
    /// The principal the key acts as, with its groups.
    pub principal: Principal,
    /// Where keys created through the key land when no namespace is named.
    pub default_namespace: Namespace,
}

/// An access key as listed (never with its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKeyInfo {
    /// The access key id.
    pub access_key_id: String,
    /// The principal it acts as.
    pub principal: Principal,
    /// Its default namespace.
    pub default_namespace: Namespace,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
}

/// ListAccessKeys' output.
#[derive(Debug, Clone)]
pub struct ListAccessKeysOutput {
    /// The page.
    pub access_keys: Vec<AccessKeyInfo>,
    /// Cursor for the next page.
    pub next_token: Option<String>,
}

/// What a SigV4 verifier needs of an access key: who it acts as, and its secret.
pub struct AccessKeySecret {
    /// The access key as listed.
    pub info: AccessKeyInfo,
    /// The secret access key (derive signing keys from it, then drop it).
    pub secret: Zeroizing<String>,
}

impl std::fmt::Debug for AccessKeySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKeySecret").field("info", &self.info).finish_non_exhaustive()
    }
}

fn info(r: &AccessKeyRecord) -> AccessKeyInfo {
    AccessKeyInfo {
        access_key_id: r.id.clone(),
        principal: r.principal.clone(),
        default_namespace: r.default_namespace.clone(),
        created_at: r.created_at,
    }
}

impl KeyService {
    /// CreateAccessKey: issues a SigV4 credential bound to a principal; the secret is returned
    /// once, here, and stored only sealed.
    pub async fn create_access_key(
        &self,
        scope: &mut Scope,
        input: CreateAccessKeyInput,
    ) -> Result<(AccessKeyInfo, Zeroizing<String>)> {
        let caller = scope.principal()?;
        let permit = self.authorize(
            scope,
            Action::Op(Operation::CreateAccessKey),
            ResourceRef::System,
            &EncryptionContext::default(),
        )?;
        let backend_name = self.backends.default_for(input.default_namespace.as_str()).to_owned();
        let backend = self.backends.lookup(&backend_name)?.clone();
        let random =
            backend.generate_random(access_key::ACCESS_KEY_ID_LEN + SECRET_BYTES).await.map_err(backend_err)?;
        let (id_bytes, secret_bytes) = random.split_at(access_key::ACCESS_KEY_ID_LEN);
        let id = access_key::access_key_id_from(id_bytes);
        let secret = access_key::secret_text(secret_bytes);
        let seal_key_id = KeyId(Uuid::new_v4());
        let material = backend
            .create_key(seal_key_id, 1, KeySpec::Aes256, crate::model::key::KeyUsage::EncryptDecrypt)
            .await
            .map_err(backend_err)?;
        let handle = VersionHandle { key_id: seal_key_id, version: 1, material: &material };
        let aad = |algorithm: u8, params: &[u8]| access_key::seal_aad(&id, algorithm, params);
        let sealed = match backend.encrypt(handle, secret.as_bytes(), &EncryptionContext::default(), &aad).await {
            Ok(s) => s,
            Err(e) => {
                let _ = backend.destroy(handle).await;
                return Err(backend_err(e));
            }
        };
        let record = AccessKeyRecord {
            id,
            principal: input.principal,
            default_namespace: input.default_namespace,
            created_at: self.clock.now(),
            created_by: caller.to_string(),
            backend: backend_name,
            seal_key_id,
            material,
            sealed,
        };
        scope.resource = Some(format!("Keyward::AccessKey::{:?}", record.id));
        let output = info(&record);
        let refused = Error::conflict("the access key id is taken; retry");
        self.stage(scope, permit, Write::InsertAccessKey(record), refused)?;
        Ok((output, secret))
    }

    /// ListAccessKeys: every issued key, without secrets.
    pub async fn list_access_keys(
        &self,
        scope: &mut Scope,
        limit: u64,
        next_token: Option<&str>,
    ) -> Result<ListAccessKeysOutput> {
        self.authorize(
            scope,
            Action::Op(Operation::ListAccessKeys),
            ResourceRef::System,
            &EncryptionContext::default(),
        )?;
        if let Some(t) = next_token
            && !access_key::is_access_key_id(t)
        {
            return Err(Error::invalid("`next_token` is not a token this API returned"));
        }
        let limit = limit.clamp(1, 1000);
        let rows = self.store.list_access_keys(next_token, limit + 1).await.map_err(store_err)?;
        let more = rows.len() as u64 > limit;
        let access_keys: Vec<AccessKeyInfo> = rows.iter().take(limit as usize).map(info).collect();
        let next_token = more.then(|| access_keys.last().map(|k| k.access_key_id.clone())).flatten();
        Ok(ListAccessKeysOutput { access_keys, next_token })
    }

    /// DeleteAccessKey: requests signed with it fail from now on; its sealing key is destroyed.
    pub async fn delete_access_key(&self, scope: &mut Scope, id: &str) -> Result<()> {
        scope.resource = Some(format!("Keyward::AccessKey::{id:?}"));
        let permit = self.authorize(
            scope,
            Action::Op(Operation::DeleteAccessKey),
            ResourceRef::System,
            &EncryptionContext::default(),
        )?;
        if !access_key::is_access_key_id(id) {
            return Err(Error::not_found(format!("access key `{}`", id.chars().take(40).collect::<String>())));
        }
        let record = self.store.access_key(id).await.map_err(store_err)?;
        let Some(record) = record else {
            return Err(Error::not_found(format!("access key `{id}`")));
        };
        if let Some(required) = self.approval_gate(scope, Operation::DeleteAccessKey, ResourceRef::System)? {
            let request = crate::model::approval::PendingRequest::DeleteAccessKey { access_key_id: id.to_owned() };
            return Err(self.defer(scope, permit, request, ResourceRef::System, required));
        }
        let refused = Error::not_found(format!("access key `{id}`"));
        self.stage(scope, permit, Write::DeleteAccessKey(record), refused)
    }

    /// The secret of an access key, unsealed, for a SigV4 verifier to derive signing keys
    /// from. Not an operation: it authenticates a request, which is then authorized and
    /// audited as that request. `None` when no such key exists.
    pub async fn access_key_secret_for_authentication(&self, id: &str) -> Result<Option<AccessKeySecret>> {
        if !access_key::is_access_key_id(id) {
            return Ok(None);
        }
        let Some(record) = self.store.access_key(id).await.map_err(store_err)? else {
            return Ok(None);
        };
        let backend = self.backends.lookup(&record.backend)?;
        let handle = VersionHandle { key_id: record.seal_key_id, version: 1, material: &record.material };
        let aad = access_key::seal_aad(&record.id, record.sealed.algorithm, &record.sealed.params);
        let plain = backend
            .decrypt(
                handle,
                record.sealed.algorithm,
                &record.sealed.params,
                &record.sealed.ciphertext,
                &EncryptionContext::default(),
                &aad,
            )
            .await
            .map_err(backend_err)?;
        let secret = Zeroizing::new(
            String::from_utf8(plain.to_vec())
                .map_err(|_| Error::internal("an unsealed access key secret is not text"))?,
        );
        Ok(Some(AccessKeySecret { info: info(&record), secret }))
    }

    /// Whether an access key still exists (a verifier's cache re-checks this).
    pub async fn access_key_exists(&self, id: &str) -> Result<bool> {
        Ok(self.store.access_key(id).await.map_err(store_err)?.is_some())
    }
}
