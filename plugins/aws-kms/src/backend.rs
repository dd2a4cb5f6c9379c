//! Keys held by an external KMS speaking the AWS KMS API. Keyward stores only the external
//! key's ARN; encryption, decryption, data keys and random bytes run in the external KMS.
//! Keyward's blob carries the external ciphertext, so its header still names the Keyward key
//! and version.

use std::collections::HashMap;
use std::time::Duration;

use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::meta::credentials::CredentialsProviderChain;
use aws_config::profile::ProfileFileCredentialsProvider;
use aws_sdk_kms::Client;
use aws_sdk_kms::config::retry::RetryConfig;
use aws_sdk_kms::config::timeout::TimeoutConfig;
use aws_sdk_kms::config::{BehaviorVersion, Region, StalledStreamProtectionConfig};
use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{
    EncryptionAlgorithmSpec, KeySpec as ExternalSpec, KeyUsageType, MacAlgorithmSpec, MessageType, SigningAlgorithmSpec,
};
use base64::Engine as _;
use keyward_backend::{AadFn, Backend, BackendError, Capabilities, DataKey, Sealed, VersionHandle};
use keyward_core::model::context::EncryptionContext;
use keyward_core::model::ids::KeyId;
use keyward_core::model::key::{KeySpec, KeyUsage, Protection};
use keyward_core::model::signing::{EncryptionAlgorithm, MacAlgorithm, Message, SigningAlgorithm};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::config::AwsKmsConfig;
use crate::failure::{Call, mapped};

/// Algorithm id 3: the ciphertext is an external KMS ciphertext blob; no params.
pub const ALG_EXTERNAL_KMS: u8 = 3;
/// The encryption-context entry binding Keyward's header and context (as associated data) to
/// the external ciphertext: base64 of SHA-256 over Keyward's associated data. It stops a blob's
/// external ciphertext from being replayed under another Keyward key that names the same
/// external key.
pub const AAD_ENTRY: &str = "keyward:aad";
/// The largest plaintext the AWS KMS API encrypts.
const MAX_PLAINTEXT: usize = 4096;
/// The largest ciphertext blob the AWS KMS API takes.
const MAX_CIPHERTEXT: usize = 6144;
/// The most random bytes (and data-key bytes) one call returns.
const MAX_RANDOM: usize = 1024;

/// How a key version's external key came to be, the first byte of what Keyward stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// Keyward created it: rotation creates another, deletion schedules its deletion.
    Created = 1,
    /// The caller linked it: it rotates externally, and deletion only unlinks it.
    Linked = 2,
}

fn stored(origin: Origin, arn: &str) -> Zeroizing<Vec<u8>> {
    let mut m = Zeroizing::new(Vec::with_capacity(1 + arn.len()));
    m.push(origin as u8);
    m.extend_from_slice(arn.as_bytes());
    m
}

fn external_key<'m>(key: &VersionHandle<'m>) -> Result<(Origin, &'m str), BackendError> {
    let (first, rest) = key.material.split_first().ok_or_else(invalid_reference)?;
    let origin = match first {
        1 => Origin::Created,
        2 => Origin::Linked,
        _ => return Err(invalid_reference()),
    };
    let arn = std::str::from_utf8(rest).map_err(|_| invalid_reference())?;
    if arn.is_empty() {
        return Err(invalid_reference());
    }
    Ok((origin, arn))
}

fn invalid_reference() -> BackendError {
    BackendError::InvalidMaterial("unrecognised external key reference".into())
}

/// The encryption context the external KMS sees: the caller's, plus [`AAD_ENTRY`].
fn external_context(context: &EncryptionContext, aad: &[u8]) -> Result<HashMap<String, String>, BackendError> {
    if context.entries().contains_key(AAD_ENTRY) {
        return Err(BackendError::InvalidRequest(format!(
            "the encryption context name `{AAD_ENTRY}` is reserved on external KMS keys"
        )));
    }
    let mut map: HashMap<String, String> = context.entries().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    map.insert(AAD_ENTRY.to_owned(), base64::engine::general_purpose::STANDARD.encode(Sha256::digest(aad)));
    Ok(map)
}

fn byte_count(len: usize) -> Result<i32, BackendError> {
    if len == 0 || len > MAX_RANDOM {
        return Err(BackendError::Unsupported(format!("the external KMS returns 1-{MAX_RANDOM} bytes per call")));
    }
    i32::try_from(len).map_err(|_| BackendError::Unsupported("too many bytes".into()))
}

fn missing(what: &str) -> BackendError {
    BackendError::Internal(format!("external KMS answer without {what}"))
}

/// The aws-kms backend.
#[derive(Debug)]
pub struct AwsKmsBackend {
    config: aws_sdk_kms::Config,
    id: usize,
    capabilities: Capabilities,
    pending_window_days: i32,
}

impl AwsKmsBackend {
    /// A client for the configured endpoint and region. Nothing is called yet: an unreachable
    /// KMS shows in the health probe, not as a refusal to start.
    pub fn connect(config: &AwsKmsConfig) -> Result<Self, String> {
        config.validate()?;
        let profile = match &config.profile {
            Some(name) => ProfileFileCredentialsProvider::builder().profile_name(name),
            None => ProfileFileCredentialsProvider::builder(),
        }
        .build();
        let credentials =
            CredentialsProviderChain::first_try("environment", EnvironmentVariableCredentialsProvider::new())
                .or_else("profile", profile);
        let timeout = config.timeout();
        let timeouts = TimeoutConfig::builder()
            .operation_timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_millis(500)))
            .build();
        // A KMS call sits on a request's path: short backoffs, bounded by the call deadline.
        let retries = RetryConfig::standard()
            .with_max_attempts(config.attempts())
            .with_initial_backoff(Duration::from_millis(20))
            .with_max_backoff(Duration::from_millis(250));
        let mut builder = aws_sdk_kms::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()))
            .credentials_provider(credentials)
            .timeout_config(timeouts)
            .retry_config(retries)
            // Bodies here are a few KiB under a hard deadline; the per-request stall watchdog
            // (timers on every poll) adds cost and nothing the deadline does not cover.
            .stalled_stream_protection(StalledStreamProtectionConfig::disabled());
        if let Some(endpoint) = &config.endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        Ok(Self {
            config: builder.build(),
            id: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            capabilities: Capabilities {
                // AWS KMS's specs; its Ed25519 keys are not offered yet.
                specs: KeySpec::ALL.into_iter().filter(|s| *s != KeySpec::EccNistEdwards25519).collect(),
                max_plaintext: MAX_PLAINTEXT,
                protection: Protection::External,
                material_leaves: false,
                fixed_nonce_testing: false,
                destroy_is_immediate: false,
                raw_gcm: false,
                signs_digests: config.digest_messages.unwrap_or(true),
                rsa_oaep: if config.rsa_encryption.unwrap_or(true) {
                    vec![EncryptionAlgorithm::RsaesOaepSha1, EncryptionAlgorithm::RsaesOaepSha256]
                } else {
                    Vec::new()
                },
                // Material imported here would have to be re-wrapped for the external KMS,
                // leaving it in Keyward's memory: import into the external KMS directly.
                import: Vec::new(),
                import_specs: Vec::new(),
            },
            pending_window_days: config.pending_window_days(),
        })
    }

    /// This thread's SDK client (tests inspect the external side with it).
    pub fn client(&self) -> Client {
        self.local()
    }

    /// This thread's client. Each server worker runs its own event loop; a connection pool
    /// shared between them would drive each connection on one worker and wake it from the
    /// other on every call, so every thread gets its own pool.
    fn local(&self) -> Client {
        thread_local! {
            static CLIENTS: std::cell::RefCell<HashMap<usize, Client>> = std::cell::RefCell::new(HashMap::new());
        }
        CLIENTS.with(|c| {
            c.borrow_mut()
                .entry(self.id)
                .or_insert_with(|| {
                    let http = aws_smithy_http_client::Builder::new()
                        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                            aws_smithy_http_client::tls::rustls_provider::CryptoMode::AwsLc,
                        ))
                        .build_https();
                    Client::from_conf(self.config.to_builder().http_client(http).build())
                })
                .clone()
        })
    }
}

impl AwsKmsBackend {
    /// The external message type; DIGEST only where the external KMS takes it.
    fn message_type(&self, message: Message<'_>) -> Result<MessageType, BackendError> {
        match message {
            Message::Raw(_) => Ok(MessageType::Raw),
            Message::Digest(_) if self.capabilities.signs_digests => Ok(MessageType::Digest),
            Message::Digest(_) => Err(BackendError::Unsupported(
                "this external KMS does not take DIGEST messages (`digest_messages = false`)".into(),
            )),
        }
    }
}

impl Backend for AwsKmsBackend {
    fn kind(&self) -> &'static str {
        crate::KIND
    }

    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    async fn create_key(
        &self,
        key_id: KeyId,
        version: u32,
        spec: KeySpec,
        usage: KeyUsage,
    ) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        if !self.capabilities.specs.contains(&spec) {
            return Err(BackendError::Unsupported(format!("{spec} keys")));
        }
        let external_spec = match spec {
            KeySpec::Aes256 => ExternalSpec::SymmetricDefault,
            s => ExternalSpec::from(s.as_str()),
        };
        let usage = match usage {
            KeyUsage::EncryptDecrypt => KeyUsageType::EncryptDecrypt,
            KeyUsage::SignVerify => KeyUsageType::SignVerify,
            KeyUsage::GenerateVerifyMac => KeyUsageType::GenerateVerifyMac,
        };
        let out = self
            .local()
            .create_key()
            .description(format!("Keyward key {key_id} version {version}"))
            .key_usage(usage)
            .key_spec(external_spec)
            .send()
            .await
            .map_err(|e| mapped(Call::Other, e))?;
        let meta = out.key_metadata().ok_or_else(|| missing("key metadata"))?;
        Ok(stored(Origin::Created, meta.arn().unwrap_or(meta.key_id())))
    }

    async fn link_key(&self, _key_id: KeyId, external_key_id: &str) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        if external_key_id.starts_with("alias/") || external_key_id.contains(":alias/") {
            // An alias can be repointed outside Keyward; bind the key itself.
            return Err(BackendError::InvalidRequest("link a key id or key ARN, not an alias".into()));
        }
        let out =
            self.local().describe_key().key_id(external_key_id).send().await.map_err(|e| mapped(Call::Link, e))?;
        let meta = out.key_metadata().ok_or_else(|| missing("key metadata"))?;
        if meta.key_spec().is_some_and(|s| *s != ExternalSpec::SymmetricDefault)
            || meta.key_usage().is_some_and(|u| *u != KeyUsageType::EncryptDecrypt)
        {
            return Err(BackendError::InvalidRequest(
                "the external key is not a symmetric encryption key (SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT)".into(),
            ));
        }
        if !meta.enabled() {
            return Err(BackendError::InvalidRequest("the external key is not enabled".into()));
        }
        Ok(stored(Origin::Linked, meta.arn().unwrap_or(meta.key_id())))
    }

    fn can_rotate(&self, current: VersionHandle<'_>) -> Result<(), BackendError> {
        match external_key(&current)? {
            (Origin::Created, _) => Ok(()),
            (Origin::Linked, _) => Err(BackendError::Unsupported(
                "a linked external key rotates in its own KMS; Keyward does not add versions to it".into(),
            )),
        }
    }

    async fn encrypt(
        &self,
        key: VersionHandle<'_>,
        plaintext: &[u8],
        context: &EncryptionContext,
        aad: AadFn<'_>,
    ) -> Result<Sealed, BackendError> {
        let (_, arn) = external_key(&key)?;
        if plaintext.len() > MAX_PLAINTEXT {
            return Err(BackendError::Unsupported(format!("the external KMS encrypts at most {MAX_PLAINTEXT} bytes")));
        }
        let context = external_context(context, &aad(ALG_EXTERNAL_KMS, &[]))?;
        let out = self
            .local()
            .encrypt()
            .key_id(arn)
            .plaintext(Blob::new(plaintext.to_vec()))
            .set_encryption_context(Some(context))
            .send()
            .await
            .map_err(|e| mapped(Call::Other, e))?;
        let ciphertext = out.ciphertext_blob.ok_or_else(|| missing("a ciphertext"))?.into_inner();
        Ok(Sealed { algorithm: ALG_EXTERNAL_KMS, params: Vec::new(), ciphertext })
    }

    async fn decrypt(
        &self,
        key: VersionHandle<'_>,
        algorithm: u8,
        params: &[u8],
        ciphertext: &[u8],
        context: &EncryptionContext,
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        if algorithm != ALG_EXTERNAL_KMS || !params.is_empty() {
            return Err(BackendError::DecryptFailed(format!("not an external KMS blob (algorithm {algorithm})")));
        }
        if ciphertext.is_empty() || ciphertext.len() > MAX_CIPHERTEXT {
            return Err(BackendError::DecryptFailed("external ciphertext of impossible length".into()));
        }
        let (_, arn) = external_key(&key)?;
        let out = self
            .local()
            .decrypt()
            .key_id(arn)
            .ciphertext_blob(Blob::new(ciphertext.to_vec()))
            .set_encryption_context(Some(external_context(context, aad)?))
            .send()
            .await
            .map_err(|e| mapped(Call::Decrypt, e))?;
        // The external KMS names the key that decrypted; it must be this version's.
        if out.key_id().is_some_and(|used| used != arn) {
            return Err(BackendError::DecryptFailed("decrypted by another external key".into()));
        }
        let plaintext = out.plaintext.ok_or_else(|| missing("a plaintext"))?;
        Ok(Zeroizing::new(plaintext.into_inner()))
    }

    async fn generate_data_key(
        &self,
        key: VersionHandle<'_>,
        len: usize,
        context: &EncryptionContext,
        aad: AadFn<'_>,
        with_plaintext: bool,
    ) -> Result<DataKey, BackendError> {
        let (_, arn) = external_key(&key)?;
        let bytes = byte_count(len)?;
        let context = external_context(context, &aad(ALG_EXTERNAL_KMS, &[]))?;
        let (plaintext, ciphertext) = if with_plaintext {
            let out = self
                .local()
                .generate_data_key()
                .key_id(arn)
                .number_of_bytes(bytes)
                .set_encryption_context(Some(context))
                .send()
                .await
                .map_err(|e| mapped(Call::Other, e))?;
            let plaintext = Zeroizing::new(out.plaintext.ok_or_else(|| missing("a plaintext"))?.into_inner());
            (Some(plaintext), out.ciphertext_blob)
        } else {
            let out = self
                .local()
                .generate_data_key_without_plaintext()
                .key_id(arn)
                .number_of_bytes(bytes)
                .set_encryption_context(Some(context))
                .send()
                .await
                .map_err(|e| mapped(Call::Other, e))?;
            (None, out.ciphertext_blob)
        };
        let ciphertext = ciphertext.ok_or_else(|| missing("a ciphertext"))?.into_inner();
        Ok(DataKey { plaintext, sealed: Sealed { algorithm: ALG_EXTERNAL_KMS, params: Vec::new(), ciphertext } })
    }

    async fn public_key(&self, key: VersionHandle<'_>, spec: KeySpec) -> Result<Vec<u8>, BackendError> {
        let (_, arn) = external_key(&key)?;
        let out = self.local().get_public_key().key_id(arn).send().await.map_err(|e| mapped(Call::Other, e))?;
        let der = out.public_key.ok_or_else(|| missing("a public key"))?.into_inner();
        // Checked against the spec, and re-encoded as Keyward's other backends encode it.
        keyward_backend::signature::spki_of(spec, &der)
    }

    async fn sign(
        &self,
        key: VersionHandle<'_>,
        _spec: KeySpec,
        algorithm: SigningAlgorithm,
        message: Message<'_>,
    ) -> Result<Vec<u8>, BackendError> {
        let (_, arn) = external_key(&key)?;
        let message_type = self.message_type(message)?;
        let out = self
            .local()
            .sign()
            .key_id(arn)
            .message(Blob::new(message.bytes().to_vec()))
            .message_type(message_type)
            .signing_algorithm(SigningAlgorithmSpec::from(algorithm.as_str()))
            .send()
            .await
            .map_err(|e| mapped(Call::Other, e))?;
        Ok(out.signature.ok_or_else(|| missing("a signature"))?.into_inner())
    }

    async fn verify(
        &self,
        key: VersionHandle<'_>,
        _spec: KeySpec,
        algorithm: SigningAlgorithm,
        message: Message<'_>,
        signature: &[u8],
    ) -> Result<bool, BackendError> {
        let (_, arn) = external_key(&key)?;
        let message_type = self.message_type(message)?;
        let answer = self
            .local()
            .verify()
            .key_id(arn)
            .message(Blob::new(message.bytes().to_vec()))
            .message_type(message_type)
            .signature(Blob::new(signature.to_vec()))
            .signing_algorithm(SigningAlgorithmSpec::from(algorithm.as_str()))
            .send()
            .await;
        match answer {
            Ok(out) => Ok(out.signature_valid),
            // The AWS KMS API answers an invalid signature with an error.
            Err(e) if matches!(e.code(), Some("KMSInvalidSignatureException")) => Ok(false),
            Err(e) => Err(mapped(Call::Other, e)),
        }
    }

    async fn encrypt_asymmetric(
        &self,
        key: VersionHandle<'_>,
        _spec: KeySpec,
        algorithm: EncryptionAlgorithm,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, BackendError> {
        let (_, arn) = external_key(&key)?;
        let out = self
            .local()
            .encrypt()
            .key_id(arn)
            .plaintext(Blob::new(plaintext.to_vec()))
            .encryption_algorithm(EncryptionAlgorithmSpec::from(algorithm.as_str()))
            .send()
            .await
            .map_err(|e| mapped(Call::Other, e))?;
        Ok(out.ciphertext_blob.ok_or_else(|| missing("a ciphertext"))?.into_inner())
    }

    async fn decrypt_asymmetric(
        &self,
        key: VersionHandle<'_>,
        _spec: KeySpec,
        algorithm: EncryptionAlgorithm,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        let (_, arn) = external_key(&key)?;
        let out = self
            .local()
            .decrypt()
            .key_id(arn)
            .ciphertext_blob(Blob::new(ciphertext.to_vec()))
            .encryption_algorithm(EncryptionAlgorithmSpec::from(algorithm.as_str()))
            .send()
            .await
            .map_err(|e| mapped(Call::Decrypt, e))?;
        Ok(Zeroizing::new(out.plaintext.ok_or_else(|| missing("a plaintext"))?.into_inner()))
    }

    async fn generate_mac(
        &self,
        key: VersionHandle<'_>,
        algorithm: MacAlgorithm,
        message: &[u8],
    ) -> Result<Vec<u8>, BackendError> {
        let (_, arn) = external_key(&key)?;
        let out = self
            .local()
            .generate_mac()
            .key_id(arn)
            .message(Blob::new(message.to_vec()))
            .mac_algorithm(MacAlgorithmSpec::from(algorithm.as_str()))
            .send()
            .await
            .map_err(|e| mapped(Call::Other, e))?;
        Ok(out.mac.ok_or_else(|| missing("a MAC"))?.into_inner())
    }

    async fn verify_mac(
        &self,
        key: VersionHandle<'_>,
        algorithm: MacAlgorithm,
        message: &[u8],
        mac: &[u8],
    ) -> Result<bool, BackendError> {
        let (_, arn) = external_key(&key)?;
        let answer = self
            .local()
            .verify_mac()
            .key_id(arn)
            .message(Blob::new(message.to_vec()))
            .mac(Blob::new(mac.to_vec()))
            .mac_algorithm(MacAlgorithmSpec::from(algorithm.as_str()))
            .send()
            .await;
        match answer {
            Ok(out) => Ok(out.mac_valid),
            Err(e) if matches!(e.code(), Some("KMSInvalidMacException")) => Ok(false),
            Err(e) => Err(mapped(Call::Other, e)),
        }
    }

    async fn generate_random(&self, len: usize) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        let out = self
            .local()
            .generate_random()
            .number_of_bytes(byte_count(len)?)
            .send()
            .await
            .map_err(|e| mapped(Call::Other, e))?;
        let bytes = Zeroizing::new(out.plaintext.ok_or_else(|| missing("random bytes"))?.into_inner());
        if bytes.len() != len {
            return Err(BackendError::Internal(format!("asked for {len} random bytes, got {}", bytes.len())));
        }
        Ok(bytes)
    }

    async fn destroy(&self, key: VersionHandle<'_>) -> Result<(), BackendError> {
        let (origin, arn) = external_key(&key)?;
        if origin == Origin::Linked {
            return Ok(());
        }
        // Keys Keyward created are in its own account and region, so the bare key id names them;
        // some compatible servers take only that form here.
        let key_id = arn.rsplit_once(":key/").map_or(arn, |(_, id)| id);
        let call = self.local().schedule_key_deletion().key_id(key_id).pending_window_in_days(self.pending_window_days);
        match call.send().await {
            Ok(_) => Ok(()),
            // Already scheduled or gone: destruction may be retried after a crash.
            Err(e) if matches!(e.code(), Some("KMSInvalidStateException" | "NotFoundException")) => Ok(()),
            Err(e) => Err(mapped(Call::Other, e)),
        }
    }

    async fn health(&self) -> Result<(), BackendError> {
        self.generate_random(1).await.map(|_| ())
    }
}
