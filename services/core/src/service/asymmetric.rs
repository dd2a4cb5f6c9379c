//! Encrypt and Decrypt with an RSA ENCRYPT_DECRYPT key (RSAES-OAEP). As in AWS KMS the
//! ciphertext is the raw RSA output, not a Keyward blob: it names no key, so Decrypt takes the
//! key and the algorithm, and no encryption context is bound (OAEP has no associated data).

use tracing::Instrument;
use zeroize::Zeroizing;

use super::{KeyService, Scope, backend_err};
use crate::error::{Error, Result};
use crate::model::ids::{KeyId, KeyRef};
use crate::model::key::{KeyRecord, KeyUsage};
use crate::model::signing::EncryptionAlgorithm;
use crate::model::version::{Usage, VersionRecord};
use crate::operation::Operation;
use crate::ports::backend::{DynBackend as _, VersionHandle};

/// Encrypt's input for an RSA key.
#[derive(Debug)]
pub struct AsymmetricEncryptInput {
    /// The RSA ENCRYPT_DECRYPT key.
    pub key: KeyRef,
    /// At most the algorithm's limit for the key size.
    pub plaintext: Zeroizing<Vec<u8>>,
    /// `RSAES_OAEP_SHA_1` or `RSAES_OAEP_SHA_256`.
    pub algorithm: EncryptionAlgorithm,
}

/// Decrypt's input for an RSA key.
#[derive(Debug)]
pub struct AsymmetricDecryptInput {
    /// The key the ciphertext was made under.
    pub key: KeyRef,
    /// The raw RSA ciphertext.
    pub ciphertext: Vec<u8>,
    /// The algorithm it was made with.
    pub algorithm: EncryptionAlgorithm,
}

/// What an RSA Encrypt or Decrypt produced.
#[derive(Debug)]
pub struct AsymmetricOutput {
    /// The key.
    pub key_id: KeyId,
    /// Ciphertext (Encrypt) or plaintext (Decrypt).
    pub bytes: Zeroizing<Vec<u8>>,
}

impl KeyService {
    /// Encrypt under an RSA key's public key.
    pub async fn encrypt_asymmetric(
        &self,
        scope: &mut Scope,
        input: AsymmetricEncryptInput,
    ) -> Result<AsymmetricOutput> {
        scope.note_detail("encryption_algorithm", input.algorithm.as_str());
        let (key, record) = self.rsa_key(scope, Operation::Encrypt, &input.key).await?;
        input.algorithm.check(key.spec, input.plaintext.len())?;
        let backend = self.backends.lookup(&key.backend)?;
        offers(backend.capabilities(), input.algorithm, &key.backend)?;
        let handle = VersionHandle { key_id: key.id, version: record.version, material: &record.material };
        let span = tracing::info_span!("backend", backend = %key.backend, call = "encrypt_asymmetric");
        let ciphertext = backend
            .encrypt_asymmetric(handle, key.spec, input.algorithm, &input.plaintext)
            .instrument(span)
            .await
            .map_err(backend_err)?;
        self.store.record_usage(key.id, record.version, Usage::Encrypt, self.clock.now());
        Ok(AsymmetricOutput { key_id: key.id, bytes: Zeroizing::new(ciphertext) })
    }

    /// Decrypt with an RSA key's private key. Every failure about the ciphertext is
    /// `InvalidCiphertext`.
    pub async fn decrypt_asymmetric(
        &self,
        scope: &mut Scope,
        input: AsymmetricDecryptInput,
    ) -> Result<AsymmetricOutput> {
        scope.note_detail("encryption_algorithm", input.algorithm.as_str());
        let (key, record) = self.rsa_key(scope, Operation::Decrypt, &input.key).await?;
        if !EncryptionAlgorithm::for_spec(key.spec).contains(&input.algorithm) {
            return Err(Error::new(
                crate::error::ErrorCode::InvalidKeyUsage,
                format!("a {} key does not decrypt {}", key.spec, input.algorithm),
            ));
        }
        if input.ciphertext.len() != key.spec.bits() / 8 {
            return Err(Error::invalid_ciphertext(format!(
                "an RSA ciphertext under a {} key is {} bytes, not {}",
                key.spec,
                key.spec.bits() / 8,
                input.ciphertext.len()
            )));
        }
        let backend = self.backends.lookup(&key.backend)?;
        offers(backend.capabilities(), input.algorithm, &key.backend)?;
        let handle = VersionHandle { key_id: key.id, version: record.version, material: &record.material };
        let span = tracing::info_span!("backend", backend = %key.backend, call = "decrypt_asymmetric");
        let plaintext = backend
            .decrypt_asymmetric(handle, key.spec, input.algorithm, &input.ciphertext)
            .instrument(span)
            .await
            .map_err(backend_err)?;
        self.store.record_usage(key.id, record.version, Usage::Decrypt, self.clock.now());
        Ok(AsymmetricOutput { key_id: key.id, bytes: plaintext })
    }

    /// The key, authorized for `op` (with no encryption context), usable, an RSA key of
    /// ENCRYPT_DECRYPT usage, with its only version.
    async fn rsa_key(&self, scope: &mut Scope, op: Operation, key: &KeyRef) -> Result<(KeyRecord, VersionRecord)> {
        let (key, record) = self.usable_key(scope, op, key, KeyUsage::EncryptDecrypt).await?;
        if !key.spec.is_rsa() {
            return Err(Error::new(
                crate::error::ErrorCode::InvalidKeyUsage,
                format!("RSAES-OAEP needs an RSA key, not {}", key.spec),
            ));
        }
        Ok((key, record))
    }
}

/// Ok when the key's backend does this OAEP algorithm (tokens differ: SoftHSM2 does SHA-1 only).
fn offers(caps: &crate::ports::backend::Capabilities, algorithm: EncryptionAlgorithm, backend: &str) -> Result<()> {
    if caps.rsa_oaep.contains(&algorithm) {
        return Ok(());
    }
    Err(Error::new(
        crate::error::ErrorCode::UnsupportedOperation,
        format!("backend `{backend}` does not do {algorithm}"),
    ))
}
