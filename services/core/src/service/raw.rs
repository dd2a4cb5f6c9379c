//! Raw AES-256-GCM under a key's versions, for front doors whose protocol carries the nonce and
//! tag itself (the XKS proxy). The same resolution, Encrypt/Decrypt decision, state checks,
//! usage counters and audit as Encrypt and Decrypt; only the output format differs.

use tracing::Instrument;
use zeroize::Zeroizing;

use super::{KeyService, Scope, backend_err, store_err};
use crate::error::{Error, ErrorCode, Result};
use crate::gate::Permit;
use crate::model::context::EncryptionContext;
use crate::model::ids::{KeyId, KeyRef};
use crate::model::key::KeySpec;
use crate::model::version::Usage;
use crate::operation::{Action, Operation};
use crate::ports::backend::{BackendError, DynBackend as _, RawGcm, VersionHandle};

/// Largest raw plaintext (XKS requires at least 4300 bytes).
pub const MAX_RAW_PLAINTEXT: usize = 8192;

/// Prefixed to the caller's associated data, so a raw message and a Keyward blob (whose
/// associated data starts with `KW`) are never valid as each other under the same key.
pub const RAW_AAD_DOMAIN: &[u8] = b"keyward/raw-aes-gcm/v1\0";

/// A raw encryption: the key, the version used, and nonce, ciphertext and tag.
#[derive(Debug)]
pub struct RawSealed {
    /// The key.
    pub key_id: KeyId,
    /// The version that encrypted (the caller must bring it back to decrypt).
    pub version: u32,
    /// Nonce, ciphertext, tag.
    pub gcm: RawGcm,
    /// The Encrypt permit it was made under, which [`KeyService::check_raw`] reuses.
    permit: Permit,
}

fn domain_aad(aad: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(RAW_AAD_DOMAIN.len() + aad.len());
    out.extend_from_slice(RAW_AAD_DOMAIN);
    out.extend_from_slice(aad);
    out
}

fn raw_backend_err(e: BackendError) -> Error {
    match e {
        BackendError::Unsupported(_) => {
            Error::new(ErrorCode::InvalidKeyUsage, "this key's backend cannot do raw AES-GCM (software and pkcs11 can)")
        }
        other => backend_err(other),
    }
}

impl KeyService {
    /// Encrypts under the key's primary version; `aad(version)` gives the associated data,
    /// which may bind the version the caller will bring back.
    pub async fn seal_raw(
        &self,
        scope: &mut Scope,
        key: &KeyRef,
        plaintext: &[u8],
        aad: &(dyn Fn(u32) -> Vec<u8> + Send + Sync),
    ) -> Result<RawSealed> {
        if plaintext.len() > MAX_RAW_PLAINTEXT {
            return Err(Error::new(
                ErrorCode::PayloadTooLarge,
                format!("the plaintext is {} bytes; at most {MAX_RAW_PLAINTEXT}", plaintext.len()),
            ));
        }
        let key = self.resolve(scope, key).await?;
        let permit = self.authorize_key(scope, Action::Op(Operation::Encrypt), &key, &EncryptionContext::default())?;
        if key.spec != KeySpec::Aes256 {
            return Err(Error::new(ErrorCode::InvalidKeyUsage, "raw AES-GCM needs an AES_256 key"));
        }
        self.ensure_usable(scope, &key)?;
        let record = self.primary_version(scope, &key).await?;
        let version = record.version;
        let backend = self.backend_for(&permit, &key)?;
        let handle = VersionHandle { key_id: key.id, version, material: &record.material };
        let span = tracing::info_span!("backend", backend = %key.backend, call = "seal_raw");
        let gcm = backend.seal_raw(handle, plaintext, &domain_aad(&aad(version))).instrument(span).await;
        let gcm = gcm.map_err(raw_backend_err)?;
        self.store.record_usage(key.id, version, Usage::Encrypt, self.clock.now());
        Ok(RawSealed { key_id: key.id, version, gcm, permit })
    }

    /// Proves that what [`KeyService::seal_raw`] returned opens under `aad` (the XKS integrity
    /// check), under the same decision: no second question, no usage counted.
    pub async fn check_raw(&self, sealed: &RawSealed, aad: &[u8]) -> Result<()> {
        let key = self
            .store
            .key(sealed.key_id)
            .await
            .map_err(store_err)?
            .ok_or_else(|| Error::internal("the key vanished after encrypting"))?;
        let record = self
            .store
            .version(key.id, sealed.version)
            .await
            .map_err(store_err)?
            .ok_or_else(|| Error::internal("the version vanished after encrypting"))?;
        let backend = self.backend_for(&sealed.permit, &key)?;
        let handle = VersionHandle { key_id: key.id, version: sealed.version, material: &record.material };
        backend
            .open_raw(handle, &sealed.gcm, &domain_aad(aad))
            .await
            .map(|_| ())
            .map_err(|e| Error::internal(format!("the ciphertext just made does not open: {e}")))
    }

    /// Decrypts what [`KeyService::seal_raw`] made under `version`. Every failure about the
    /// ciphertext (unknown, retired or destroyed version, wrong tag) is `InvalidCiphertext`.
    pub async fn open_raw(
        &self,
        scope: &mut Scope,
        key: &KeyRef,
        version: u32,
        sealed: &RawGcm,
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        let key = self.resolve(scope, key).await?;
        scope.note_key(key.id, Some(version));
        let permit = self.authorize_key(scope, Action::Op(Operation::Decrypt), &key, &EncryptionContext::default())?;
        if key.spec != KeySpec::Aes256 {
            return Err(Error::new(ErrorCode::InvalidKeyUsage, "raw AES-GCM needs an AES_256 key"));
        }
        self.ensure_usable(scope, &key)?;
        if version < key.min_decryption_version {
            return Err(Error::invalid_ciphertext(format!(
                "version {version} is below min_decryption_version {}",
                key.min_decryption_version
            )));
        }
        let record = self
            .store
            .version(key.id, version)
            .await
            .map_err(store_err)?
            .filter(|v| !v.destroyed)
            .ok_or_else(|| Error::invalid_ciphertext("an unknown or destroyed version"))?;
        let backend = self.backend_for(&permit, &key)?;
        let handle = VersionHandle { key_id: key.id, version, material: &record.material };
        let span = tracing::info_span!("backend", backend = %key.backend, call = "open_raw");
        let plaintext = backend.open_raw(handle, sealed, &domain_aad(aad)).instrument(span).await;
        let plaintext = plaintext.map_err(raw_backend_err)?;
        self.store.record_usage(key.id, version, Usage::Decrypt, self.clock.now());
        Ok(plaintext)
    }
}
