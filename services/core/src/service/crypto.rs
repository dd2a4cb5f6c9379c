//! Cryptographic operations: Encrypt, Decrypt, ReEncrypt, data keys, random bytes.

use tracing::Instrument;
use zeroize::Zeroizing;

use super::{KeyService, Scope, backend_err, store_err};
use crate::blob::{Blob, Header};
use crate::error::{Detail, Error, ErrorCode, Result};
use crate::gate::Permit;
use crate::model::context::EncryptionContext;
use crate::model::ids::{KeyId, KeyRef, Namespace};
use crate::model::key::{KeyRecord, KeySpec};
use crate::model::version::Usage;
use crate::operation::{Action, Operation};
use crate::ports::authorizer::ResourceRef;
use crate::ports::backend::{BackendError, DynBackend as _, VersionHandle};

/// Largest plaintext Encrypt takes; larger data belongs under a data key.
pub const MAX_PLAINTEXT: usize = 4096;
/// Largest GenerateRandom / data key request, in bytes.
pub const MAX_RANDOM: usize = 1024;

/// Encrypt's input.
#[derive(Debug)]
pub struct EncryptInput {
    /// The key.
    pub key: KeyRef,
    /// 1 to 4096 bytes.
    pub plaintext: Zeroizing<Vec<u8>>,
    /// Bound as associated data.
    pub context: EncryptionContext,
}

/// Encrypt's output.
#[derive(Debug, Clone)]
pub struct EncryptOutput {
    /// The key that encrypted.
    pub key_id: KeyId,
    /// Its version.
    pub key_version: u32,
    /// The blob.
    pub ciphertext_blob: Vec<u8>,
}

/// Decrypt's input.
#[derive(Debug)]
pub struct DecryptInput {
    /// The blob.
    pub ciphertext_blob: Vec<u8>,
    /// The context it was encrypted under.
    pub context: EncryptionContext,
    /// When given, the blob's key must be this one.
    pub key: Option<KeyRef>,
}

/// Decrypt's output.
#[derive(Debug)]
pub struct DecryptOutput {
    /// The key that decrypted.
    pub key_id: KeyId,
    /// Its version.
    pub key_version: u32,
    /// The plaintext.
    pub plaintext: Zeroizing<Vec<u8>>,
}

/// ReEncrypt's input.
#[derive(Debug)]
pub struct ReEncryptInput {
    /// The blob to re-encrypt.
    pub ciphertext_blob: Vec<u8>,
    /// Its context.
    pub source_context: EncryptionContext,
    /// When given, the blob's key must be this one.
    pub source_key: Option<KeyRef>,
    /// The key to encrypt under.
    pub destination: KeyRef,
    /// The new context.
    pub destination_context: EncryptionContext,
}

/// ReEncrypt's output.
#[derive(Debug, Clone)]
pub struct ReEncryptOutput {
    /// The key that decrypted.
    pub source_key_id: KeyId,
    /// The key that encrypted.
    pub key_id: KeyId,
    /// Its version.
    pub key_version: u32,
    /// The new blob.
    pub ciphertext_blob: Vec<u8>,
}

/// How big a data key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataKeySize {
    /// 32 bytes.
    Aes256,
    /// 16 bytes.
    Aes128,
    /// 1 to 1024 bytes.
    Bytes(usize),
}

impl DataKeySize {
    fn len(self) -> usize {
        match self {
            Self::Aes256 => 32,
            Self::Aes128 => 16,
            Self::Bytes(n) => n,
        }
    }
}

/// GenerateDataKey's input.
#[derive(Debug, Clone)]
pub struct DataKeyInput {
    /// The key to wrap under.
    pub key: KeyRef,
    /// The data key's size.
    pub size: DataKeySize,
    /// Bound as associated data.
    pub context: EncryptionContext,
}

/// GenerateDataKey's output; `plaintext` is absent for the WithoutPlaintext variant.
#[derive(Debug)]
pub struct DataKeyOutput {
    /// The wrapping key.
    pub key_id: KeyId,
    /// Its version.
    pub key_version: u32,
    /// The data key.
    pub plaintext: Option<Zeroizing<Vec<u8>>>,
    /// The data key wrapped.
    pub ciphertext_blob: Vec<u8>,
}

/// GenerateDataKeyPair's input.
#[derive(Debug, Clone)]
pub struct DataKeyPairInput {
    /// The symmetric key that wraps the private half.
    pub key: KeyRef,
    /// The pair's spec (RSA or ECC).
    pub pair_spec: KeySpec,
    /// Bound as associated data of the private key's blob.
    pub context: EncryptionContext,
}

/// GenerateDataKeyPair's output; `private_key` is absent for the WithoutPlaintext variant.
#[derive(Debug)]
pub struct DataKeyPairOutput {
    /// The wrapping key.
    pub key_id: KeyId,
    /// Its version.
    pub key_version: u32,
    /// The pair's spec.
    pub pair_spec: KeySpec,
    /// The public key, DER SubjectPublicKeyInfo.
    pub public_key: Vec<u8>,
    /// The private key, DER PKCS#8.
    pub private_key: Option<Zeroizing<Vec<u8>>>,
    /// The private key sealed under the wrapping key (Decrypt returns the PKCS#8).
    pub private_key_blob: Vec<u8>,
}

impl KeyService {
    /// GenerateDataKeyPair and GenerateDataKeyPairWithoutPlaintext: a key pair for use outside
    /// Keyward, its private half returned sealed under a symmetric key (and in the clear when
    /// asked for).
    pub async fn generate_data_key_pair(
        &self,
        scope: &mut Scope,
        input: DataKeyPairInput,
        with_plaintext: bool,
    ) -> Result<DataKeyPairOutput> {
        if !input.pair_spec.is_asymmetric() {
            return Err(Error::invalid(format!("`key_pair_spec` must be an RSA or ECC spec, not {}", input.pair_spec)));
        }
        scope.note_context(&input.context);
        let key = self.resolve(scope, &input.key).await?;
        let op = if with_plaintext {
            Operation::GenerateDataKeyPair
        } else {
            Operation::GenerateDataKeyPairWithoutPlaintext
        };
        let permit = self.authorize_key(scope, Action::Op(op), &key, &input.context)?;
        let source = self
            .key_pairs
            .as_ref()
            .ok_or_else(|| Error::new(ErrorCode::UnsupportedOperation, "this server makes no key pairs"))?;
        let pair = source.generate(input.pair_spec).await.map_err(backend_err)?;
        let (key_version, private_key_blob, _) =
            self.seal(scope, &permit, &key, Sealing::Plaintext(&pair.private_key), &input.context).await?;
        Ok(DataKeyPairOutput {
            key_id: key.id,
            key_version,
            pair_spec: input.pair_spec,
            public_key: pair.public_key,
            private_key: with_plaintext.then_some(pair.private_key),
            private_key_blob,
        })
    }

    /// Encrypt.
    pub async fn encrypt(&self, scope: &mut Scope, input: EncryptInput) -> Result<EncryptOutput> {
        check_plaintext_len(input.plaintext.len())?;
        scope.note_context(&input.context);
        let key = self.resolve(scope, &input.key).await?;
        let permit = self.authorize_key(scope, Action::Op(Operation::Encrypt), &key, &input.context)?;
        let (key_version, ciphertext_blob, _) =
            self.seal(scope, &permit, &key, Sealing::Plaintext(&input.plaintext), &input.context).await?;
        Ok(EncryptOutput { key_id: key.id, key_version, ciphertext_blob })
    }

    /// Decrypt.
    pub async fn decrypt(&self, scope: &mut Scope, input: DecryptInput) -> Result<DecryptOutput> {
        scope.note_context(&input.context);
        let (key, version, plaintext) = self
            .open(scope, Action::Op(Operation::Decrypt), &input.ciphertext_blob, &input.context, input.key.as_ref())
            .await?;
        Ok(DecryptOutput { key_id: key.id, key_version: version, plaintext })
    }

    /// ReEncrypt: decrypts under the source key and encrypts under the destination, without
    /// the plaintext leaving the service.
    pub async fn re_encrypt(&self, scope: &mut Scope, input: ReEncryptInput) -> Result<ReEncryptOutput> {
        scope.note_context(&input.source_context);
        if scope.dry_run {
            return self.re_encrypt_dry_run(scope, &input).await;
        }
        let (source, _, plaintext) = self
            .open(
                scope,
                Action::ReEncryptFrom,
                &input.ciphertext_blob,
                &input.source_context,
                input.source_key.as_ref(),
            )
            .await?;
        let dest = self.resolve(scope, &input.destination).await?;
        // The audit record names the source key; the destination is the resource.
        scope.note_key(source.id, None);
        let permit = self.authorize_key(scope, Action::ReEncryptTo, &dest, &input.destination_context)?;
        let (key_version, ciphertext_blob, _) =
            self.seal(scope, &permit, &dest, Sealing::Plaintext(&plaintext), &input.destination_context).await?;
        scope.note_key(source.id, None);
        Ok(ReEncryptOutput { source_key_id: source.id, key_id: dest.id, key_version, ciphertext_blob })
    }

    /// Both ReEncrypt decisions, with nothing decrypted: the blob's header names the source.
    async fn re_encrypt_dry_run(&self, scope: &mut Scope, input: &ReEncryptInput) -> Result<ReEncryptOutput> {
        let blob = Blob::parse(&input.ciphertext_blob).map_err(|e| Error::invalid_ciphertext(e.to_string()))?;
        let source = self
            .store
            .key(blob.header.key_id)
            .await
            .map_err(store_err)?
            .ok_or_else(|| Error::invalid_ciphertext("blob names an unknown key"))?;
        scope.note_key(source.id, Some(blob.header.key_version));
        let protection = self.backends.lookup(&source.backend)?.capabilities().protection;
        let resource = ResourceRef::Key { key: &source, protection };
        self.decide_and_note(scope, Action::ReEncryptFrom, resource, &input.source_context)?;
        let dest = self.resolve(scope, &input.destination).await?;
        scope.note_key(source.id, None);
        self.authorize_key(scope, Action::ReEncryptTo, &dest, &input.destination_context)?;
        Err(Error::dry_run_complete())
    }

    /// GenerateDataKey and GenerateDataKeyWithoutPlaintext.
    pub async fn generate_data_key(
        &self,
        scope: &mut Scope,
        input: DataKeyInput,
        with_plaintext: bool,
    ) -> Result<DataKeyOutput> {
        let len = input.size.len();
        if len == 0 || len > MAX_RANDOM {
            return Err(Error::invalid(format!("`number_of_bytes` must be 1-{MAX_RANDOM}")));
        }
        scope.note_context(&input.context);
        let key = self.resolve(scope, &input.key).await?;
        let op = if with_plaintext { Operation::GenerateDataKey } else { Operation::GenerateDataKeyWithoutPlaintext };
        let permit = self.authorize_key(scope, Action::Op(op), &key, &input.context)?;
        self.ensure_usable(scope, &key)?;
        let (key_version, ciphertext_blob, plaintext) =
            self.seal(scope, &permit, &key, Sealing::DataKey { len, with_plaintext }, &input.context).await?;
        Ok(DataKeyOutput { key_id: key.id, key_version, plaintext, ciphertext_blob })
    }

    /// GenerateRandom, from the default backend's generator.
    pub async fn generate_random(
        &self,
        scope: &mut Scope,
        namespace: &Namespace,
        len: usize,
    ) -> Result<Zeroizing<Vec<u8>>> {
        if len == 0 || len > MAX_RANDOM {
            return Err(Error::invalid(format!("`number_of_bytes` must be 1-{MAX_RANDOM}")));
        }
        self.authorize_namespace(scope, Action::Op(Operation::GenerateRandom), namespace)?;
        let backend = self.backends.lookup(self.backends.default_name())?;
        backend.generate_random(len).await.map_err(|e| match e {
            BackendError::Unavailable(reason) => Error::backend_unavailable(reason),
            other => backend_err(other),
        })
    }

    /// Encrypts under the key's primary version and builds the blob.
    async fn seal(
        &self,
        scope: &mut Scope,
        permit: &Permit,
        key: &KeyRecord,
        what: Sealing<'_>,
        context: &EncryptionContext,
    ) -> Result<(u32, Vec<u8>, Option<Zeroizing<Vec<u8>>>)> {
        self.ensure_usable(scope, key)?;
        ensure_symmetric(key)?;
        let backend = self.backend_for(permit, key)?;
        if let Sealing::Plaintext(plaintext) = what
            && plaintext.len() > backend.capabilities().max_plaintext
        {
            return Err(Error::new(ErrorCode::PayloadTooLarge, "plaintext exceeds the backend's limit"));
        }
        let record = self.primary_version(scope, key).await?;
        let version = record.version;
        let handle = VersionHandle { key_id: key.id, version, material: &record.material };
        let aad = |algorithm: u8, params: &[u8]| {
            Header { key_id: key.id, key_version: version, algorithm, params: params.to_vec() }.associated_data(context)
        };
        let started = std::time::Instant::now();
        let (sealed, data_key) = match what {
            Sealing::Plaintext(plaintext) => {
                let span = tracing::info_span!("backend", backend = %key.backend, call = "encrypt");
                let sealed = backend.encrypt(handle, plaintext, context, &aad).instrument(span).await;
                backend_timing(&key.backend, "encrypt", started);
                (sealed.map_err(backend_err)?, None)
            }
            Sealing::DataKey { len, with_plaintext } => {
                let span = tracing::info_span!("backend", backend = %key.backend, call = "generate_data_key");
                let made = backend.generate_data_key(handle, len, context, &aad, with_plaintext).instrument(span).await;
                backend_timing(&key.backend, "generate_data_key", started);
                let made = made.map_err(backend_err)?;
                if with_plaintext && made.plaintext.as_ref().is_none_or(|p| p.len() != len) {
                    return Err(Error::internal("backend returned a data key of the wrong length"));
                }
                (made.sealed, made.plaintext)
            }
        };
        if sealed.params.len() > crate::blob::MAX_PARAMS {
            return Err(Error::internal("backend produced oversized params"));
        }
        self.store.record_usage(key.id, version, Usage::Encrypt, self.clock.now());
        let blob = Blob {
            header: Header { key_id: key.id, key_version: version, algorithm: sealed.algorithm, params: sealed.params },
            ciphertext: sealed.ciphertext,
        };
        Ok((version, blob.encode(), data_key))
    }

    /// Parses, authorizes and decrypts a blob. Every failure after parsing that is about the
    /// blob itself is `InvalidCiphertext`; the precise reason goes to the audit record.
    async fn open(
        &self,
        scope: &mut Scope,
        action: Action,
        blob: &[u8],
        context: &EncryptionContext,
        expected: Option<&KeyRef>,
    ) -> Result<(KeyRecord, u32, Zeroizing<Vec<u8>>)> {
        let blob = Blob::parse(blob).map_err(|e| Error::invalid_ciphertext(e.to_string()))?;
        let header = &blob.header;
        scope.note_key(header.key_id, Some(header.key_version));
        if let Some(expected) = expected {
            let want = self.resolve(scope, expected).await?;
            if want.id != header.key_id {
                scope.note_key(header.key_id, None);
                return Err(Error::invalid_ciphertext(format!("blob is under key {}, not {}", header.key_id, want.id))
                    .with_detail(Detail::IncorrectKey));
            }
        }
        let Some(key) = self.store.key(header.key_id).await.map_err(store_err)? else {
            let missing = Error::invalid_ciphertext("blob names an unknown key");
            return Err(self.unknown_key(scope, action, &KeyRef::Id(header.key_id), missing));
        };
        let permit = self.authorize_key(scope, action, &key, context)?;
        self.ensure_usable(scope, &key)?;
        ensure_symmetric(&key)?;
        if header.key_version < key.min_decryption_version {
            return Err(Error::invalid_ciphertext(format!(
                "version {} is below min_decryption_version {}",
                header.key_version, key.min_decryption_version
            )));
        }
        let version = self
            .store
            .version(key.id, header.key_version)
            .await
            .map_err(store_err)?
            .filter(|v| !v.destroyed)
            .ok_or_else(|| Error::invalid_ciphertext("blob names an unknown or destroyed version"))?;
        let backend = self.backend_for(&permit, &key)?;
        let handle = VersionHandle { key_id: key.id, version: version.version, material: &version.material };
        let aad = header.associated_data(context);
        let started = std::time::Instant::now();
        let span = tracing::info_span!("backend", backend = %key.backend, call = "decrypt");
        let plaintext = backend
            .decrypt(handle, header.algorithm, &header.params, &blob.ciphertext, context, &aad)
            .instrument(span)
            .await;
        backend_timing(&key.backend, "decrypt", started);
        let plaintext = plaintext.map_err(backend_err)?;
        self.store.record_usage(key.id, version.version, Usage::Decrypt, self.clock.now());
        Ok((key, version.version, plaintext))
    }
}

/// What [`KeyService::seal`] encrypts: the caller's plaintext, or a data key the backend makes.
#[derive(Clone, Copy)]
enum Sealing<'a> {
    Plaintext(&'a [u8]),
    DataKey { len: usize, with_plaintext: bool },
}

/// Blobs are AES-256-GCM: a signing, MAC or RSA key neither makes nor opens them.
fn ensure_symmetric(key: &KeyRecord) -> Result<()> {
    key.usage.ensure(crate::model::key::KeyUsage::EncryptDecrypt, "this operation")?;
    if key.spec != crate::model::key::KeySpec::Aes256 {
        let hint =
            if key.spec.is_rsa() { "; give `encryption_algorithm` RSAES_OAEP_SHA_256 or RSAES_OAEP_SHA_1" } else { "" };
        return Err(Error::new(
            ErrorCode::InvalidKeyUsage,
            format!("a {} key does not make ciphertext blobs{hint}", key.spec),
        ));
    }
    Ok(())
}

fn check_plaintext_len(len: usize) -> Result<()> {
    if len == 0 {
        return Err(Error::invalid("`plaintext` must not be empty"));
    }
    if len > MAX_PLAINTEXT {
        return Err(Error::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "`plaintext` is {len} bytes; Encrypt takes at most {MAX_PLAINTEXT}. Encrypt larger data locally \
                 under a data key from GenerateDataKey"
            ),
        ));
    }
    Ok(())
}

/// Backend latency by instance and call, for `/metrics`.
fn backend_timing(backend: &str, call: &'static str, started: std::time::Instant) {
    metrics::histogram!("keyward_backend_seconds", "backend" => backend.to_owned(), "call" => call)
        .record(started.elapsed().as_secs_f64());
}
