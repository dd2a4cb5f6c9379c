//! Bring your own key: GetParametersForImport, ImportKeyMaterial, DeleteImportedKeyMaterial,
//! and the expiry of imported material.
//!
//! The import token is stateless: it carries the key, its expiry, the wrapping algorithm and
//! the backend's wrapping state sealed under all of them, so nothing is stored until material
//! is imported. A token works until it expires; material can only be imported into a key
//! waiting for it (`PendingImport`), and only the material the key had before.

use chrono::{DateTime, Duration, DurationRound, Utc};

use super::admin::changed_concurrently;
use super::{KeyService, Scope, backend_err, store_err};
use crate::error::{Detail, Error, ErrorCode, Result};
use crate::gate::Permit;
use crate::model::context::EncryptionContext;
use crate::model::ids::{KeyId, KeyRef};
use crate::model::import::{IMPORT_TOKEN_TTL, ImportToken, KeyOrigin, MAX_ENCRYPTED_MATERIAL, WrappingAlgorithm};
use crate::model::key::{KeyMetadata, KeyRecord, KeySpec, KeyState};
use crate::model::version::VersionRecord;
use crate::operation::{Action, Operation};
use crate::ports::backend::{BackendError, DynBackend as _, ImportRequest};
use crate::ports::store::Write;

/// How far ahead imported material may be set to expire.
pub const MAX_VALID_TO: Duration = Duration::days(365);

/// GetParametersForImport's output.
#[derive(Debug, Clone)]
pub struct ImportParameters {
    /// The key.
    pub key_id: KeyId,
    /// The wrapping public key, a DER SubjectPublicKeyInfo.
    pub public_key: Vec<u8>,
    /// The import token, to send back with the wrapped material.
    pub import_token: Vec<u8>,
    /// When the token and public key stop working.
    pub parameters_valid_to: DateTime<Utc>,
}

/// ImportKeyMaterial's input.
#[derive(Debug, Clone)]
pub struct ImportInput {
    /// The key.
    pub key: KeyRef,
    /// The token from GetParametersForImport.
    pub import_token: Vec<u8>,
    /// The material, wrapped as the token's algorithm says.
    pub encrypted_key_material: Vec<u8>,
    /// When the material expires; none: never.
    pub valid_to: Option<DateTime<Utc>>,
}

impl KeyService {
    /// GetParametersForImport: a fresh RSA wrapping key and an import token valid 24 hours.
    pub async fn get_parameters_for_import(
        &self,
        scope: &mut Scope,
        key: &KeyRef,
        algorithm: WrappingAlgorithm,
        wrapping_spec: KeySpec,
    ) -> Result<ImportParameters> {
        scope.note_detail("wrapping_algorithm", algorithm.as_str());
        scope.note_detail("wrapping_key_spec", wrapping_spec.as_str());
        let (key, permit) = self.imported_key(scope, Operation::GetParametersForImport, key).await?;
        if matches!(key.state, KeyState::PendingDeletion | KeyState::Destroyed) {
            key.state.ensure_usable()?;
        }
        let backend = self.backend_for(&permit, &key)?.clone();
        check_algorithm(&key, backend.capabilities().import.as_slice(), algorithm)?;
        // Whole seconds: the token carries the expiry in seconds.
        let expires_at = (self.clock.now() + IMPORT_TOKEN_TTL)
            .duration_trunc(Duration::seconds(1))
            .map_err(|e| Error::internal(format!("expiry: {e}")))?;
        let binding = ImportToken::binding(key.id, expires_at, algorithm, wrapping_spec);
        let wrapping = backend.prepare_import(key.id, wrapping_spec, &binding).await.map_err(backend_err)?;
        let token = ImportToken { key_id: key.id, expires_at, algorithm, wrapping_spec, state: wrapping.state };
        Ok(ImportParameters {
            key_id: key.id,
            public_key: wrapping.public_key,
            import_token: token.encode(),
            parameters_valid_to: expires_at,
        })
    }

    /// ImportKeyMaterial: unwraps the material in the key's backend and enables the key.
    pub async fn import_key_material(&self, scope: &mut Scope, input: ImportInput) -> Result<KeyMetadata> {
        if input.encrypted_key_material.is_empty() {
            return Err(Error::invalid("`encrypted_key_material` must not be empty"));
        }
        if input.encrypted_key_material.len() > MAX_ENCRYPTED_MATERIAL {
            return Err(Error::new(
                ErrorCode::PayloadTooLarge,
                format!("`encrypted_key_material` is at most {MAX_ENCRYPTED_MATERIAL} bytes"),
            ));
        }
        let token = ImportToken::parse(&input.import_token)?;
        scope.note_detail("wrapping_algorithm", token.algorithm.as_str());
        let (mut key, permit) = self.imported_key(scope, Operation::ImportKeyMaterial, &input.key).await?;
        let now = self.clock.now();
        token.check(key.id, now)?;
        if let Some(valid_to) = input.valid_to {
            if valid_to <= now {
                return Err(Error::invalid("`valid_to` must be in the future"));
            }
            if valid_to > now + MAX_VALID_TO {
                return Err(Error::invalid("`valid_to` is at most 365 days ahead"));
            }
            scope.note_detail("valid_to", &valid_to.to_rfc3339());
        }
        if key.state != KeyState::PendingImport {
            key.state.ensure_usable()?;
            return Err(Error::conflict(
                "the key already has key material; delete it with DeleteImportedKeyMaterial to import again",
            )
            .with_detail(Detail::InvalidState));
        }
        let backend = self.backend_for(&permit, &key)?.clone();
        check_algorithm(&key, backend.capabilities().import.as_slice(), token.algorithm)?;
        let version = key.primary_version;
        let binding = token.header();
        let request = ImportRequest {
            key_id: key.id,
            version,
            spec: key.spec,
            usage: key.usage,
            algorithm: token.algorithm,
            binding: &binding,
            state: &token.state,
            encrypted: &input.encrypted_key_material,
        };
        let imported = backend.import_key(request).await.map_err(import_err)?;
        let fingerprint = hex::encode(&imported.fingerprint);
        let record = VersionRecord::new(version, imported.material, now);
        if key.material_fingerprint.as_ref().is_some_and(|f| *f != fingerprint) {
            // The key has known other material: its old ciphertexts and signatures must keep
            // meaning what they meant.
            self.discard_material(&key, &record).await;
            return Err(Error::invalid("the key material is not the material this key had before")
                .with_detail(Detail::IncorrectKeyMaterial));
        }
        if let Err(e) = backend.discard_import(&token.state).await {
            tracing::warn!(key = %key.id, error = %e, "import wrapping key not discarded; it expires with its token");
        }
        key.state = KeyState::Enabled;
        key.valid_to = input.valid_to;
        key.material_fingerprint = Some(fingerprint);
        key.updated_at = now;
        key.revision += 1;
        scope.note_key(key.id, Some(version));
        let metadata = self.metadata(key.clone()).await?;
        let write = Write::SetMaterial { key, version: record, replaced: None };
        self.stage(scope, permit, write, changed_concurrently())?;
        Ok(metadata)
    }

    /// DeleteImportedKeyMaterial: the key goes back to `PendingImport` and its material is
    /// destroyed in the backend once that is recorded. Deleting again changes nothing.
    pub async fn delete_imported_key_material(&self, scope: &mut Scope, key: &KeyRef) -> Result<KeyMetadata> {
        let (key, permit) = self.imported_key(scope, Operation::DeleteImportedKeyMaterial, key).await?;
        if matches!(key.state, KeyState::PendingDeletion | KeyState::Destroyed) {
            key.state.ensure_usable()?;
        }
        if key.state == KeyState::PendingImport {
            return self.metadata(key).await;
        }
        self.unload(scope, permit, key).await
    }

    /// Stages a key's move to `PendingImport` with its material marked destroyed.
    async fn unload(&self, scope: &mut Scope, permit: Permit, mut key: KeyRecord) -> Result<KeyMetadata> {
        let mut version = self
            .store
            .version(key.id, key.primary_version)
            .await
            .map_err(store_err)?
            .ok_or_else(|| Error::internal(format!("primary version of {} missing", key.id)))?;
        scope.note_key(key.id, Some(version.version));
        let replaced = (!version.destroyed).then(|| std::mem::take(&mut version.material));
        version.destroyed = true;
        key.state = KeyState::PendingImport;
        key.valid_to = None;
        key.updated_at = self.clock.now();
        key.revision += 1;
        let metadata = self.metadata(key.clone()).await?;
        self.stage(scope, permit, Write::SetMaterial { key, version, replaced }, changed_concurrently())?;
        Ok(metadata)
    }

    /// The maintenance task's part: a key whose imported material expired goes back to
    /// `PendingImport` (recorded as a DeleteImportedKeyMaterial by the system).
    pub(super) async fn expire_material(&self, scope: &mut Scope, key: KeyRecord) -> Result<()> {
        scope.note_key(key.id, None);
        if key.state == KeyState::PendingImport || !key.material_expired(self.clock.now()) {
            return Err(Error::conflict("the key's material is no longer due to expire"));
        }
        let permit = Permit::new(Action::Op(Operation::DeleteImportedKeyMaterial), Some(key.id));
        self.unload(scope, permit, key).await.map(|_| ())
    }

    /// Resolves and authorizes a key for an import operation; only `EXTERNAL` keys take them.
    async fn imported_key(&self, scope: &mut Scope, op: Operation, key: &KeyRef) -> Result<(KeyRecord, Permit)> {
        let key = self.resolve(scope, key).await?;
        let permit = self.authorize_key(scope, Action::Op(op), &key, &EncryptionContext::default())?;
        if key.origin != KeyOrigin::External {
            return Err(Error::new(
                ErrorCode::UnsupportedOperation,
                format!("{op} is for keys created with origin EXTERNAL; this key's material is Keyward's own"),
            ));
        }
        Ok((key, permit))
    }

    /// Destroys material imported for a change that will not be made.
    async fn discard_material(&self, key: &KeyRecord, record: &VersionRecord) {
        let Ok(backend) = self.backends.lookup(&key.backend) else { return };
        let handle = crate::ports::backend::VersionHandle {
            key_id: key.id,
            version: record.version,
            material: &record.material,
        };
        if let Err(e) = backend.destroy(handle).await {
            tracing::warn!(key = %key.id, error = %e, "refused imported material not destroyed in its backend");
        }
    }
}

/// The algorithm must be one the backend imports with, and able to carry the key's material:
/// an RSA private key is larger than one RSA-OAEP block.
fn check_algorithm(key: &KeyRecord, offered: &[WrappingAlgorithm], algorithm: WrappingAlgorithm) -> Result<()> {
    if !offered.contains(&algorithm) {
        let names: Vec<&str> = offered.iter().map(|a| a.as_str()).collect();
        return Err(Error::new(
            ErrorCode::UnsupportedOperation,
            format!("backend `{}` does not import with {algorithm}; it offers {}", key.backend, names.join(", ")),
        ));
    }
    if key.spec.is_rsa() && !algorithm.key_wrap() {
        return Err(Error::invalid(format!(
            "{} private keys do not fit in one RSA-OAEP block; wrap them with RSA_AES_KEY_WRAP_SHA_256",
            key.spec
        )));
    }
    Ok(())
}

/// A failed import: material that does not unwrap is `InvalidCiphertext` (as AWS answers).
fn import_err(e: BackendError) -> Error {
    match e {
        BackendError::DecryptFailed(reason) => {
            Error::new(ErrorCode::InvalidCiphertext, "the encrypted key material could not be unwrapped")
                .with_reason(reason)
        }
        other => backend_err(other),
    }
}
