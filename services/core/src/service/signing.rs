//! Sign, Verify, GetPublicKey, GenerateMac and VerifyMac. Each checks the key's usage and the
//! algorithm against its spec after the decision (a caller learns nothing about a key it may
//! not use), runs on the key's only version, and records the algorithm and the message's
//! SHA-256, never the message.

use tracing::Instrument;

use super::{KeyService, Scope, backend_err};
use crate::error::{Error, ErrorCode, Result};
use crate::model::context::EncryptionContext;
use crate::model::ids::{KeyId, KeyRef};
use crate::model::key::{KeyRecord, KeySpec, KeyUsage};
use crate::model::signing::{MAX_MESSAGE, MacAlgorithm, Message, MessageType, SigningAlgorithm};
use crate::model::version::VersionRecord;
use crate::operation::{Action, Operation};
use crate::ports::authorizer::AlgorithmFacts;
use crate::ports::backend::{DynBackend as _, VersionHandle};

/// Largest signature or MAC Verify and VerifyMac take (an RSA-4096 signature is 512 bytes).
pub const MAX_SIGNATURE: usize = 6144;

/// Sign's input.
#[derive(Debug)]
pub struct SignInput {
    /// The key.
    pub key: KeyRef,
    /// The message, or its digest.
    pub message: Vec<u8>,
    /// Which of the two `message` is.
    pub message_type: MessageType,
    /// The algorithm.
    pub algorithm: SigningAlgorithm,
}

/// Sign's output.
#[derive(Debug, Clone)]
pub struct SignOutput {
    /// The key that signed.
    pub key_id: KeyId,
    /// The signature (DER for ECDSA).
    pub signature: Vec<u8>,
    /// The algorithm.
    pub algorithm: SigningAlgorithm,
}

/// Verify's input.
#[derive(Debug)]
pub struct VerifyInput {
    /// What was signed.
    pub sign: SignInput,
    /// The signature.
    pub signature: Vec<u8>,
}

/// Verify's and VerifyMac's output.
#[derive(Debug, Clone, Copy)]
pub struct Verified {
    /// The key.
    pub key_id: KeyId,
    /// Whether the signature or MAC is valid.
    pub valid: bool,
}

/// GetPublicKey's output.
#[derive(Debug, Clone)]
pub struct PublicKeyOutput {
    /// The key.
    pub key_id: KeyId,
    /// DER SubjectPublicKeyInfo.
    pub public_key: Vec<u8>,
    /// The spec.
    pub spec: KeySpec,
    /// The usage.
    pub usage: KeyUsage,
    /// What the key signs with (empty unless SIGN_VERIFY).
    pub signing_algorithms: &'static [SigningAlgorithm],
}

/// GenerateMac's input.
#[derive(Debug)]
pub struct MacInput {
    /// The key.
    pub key: KeyRef,
    /// The message.
    pub message: Vec<u8>,
    /// The algorithm.
    pub algorithm: MacAlgorithm,
}

/// GenerateMac's output.
#[derive(Debug, Clone)]
pub struct MacOutput {
    /// The key.
    pub key_id: KeyId,
    /// The MAC.
    pub mac: Vec<u8>,
    /// The algorithm.
    pub algorithm: MacAlgorithm,
}

/// VerifyMac's input.
#[derive(Debug)]
pub struct VerifyMacInput {
    /// What was MACed.
    pub mac_input: MacInput,
    /// The MAC.
    pub mac: Vec<u8>,
}

impl KeyService {
    /// Sign.
    pub async fn sign(&self, scope: &mut Scope, input: SignInput) -> Result<SignOutput> {
        let message = Message::new(&input.message, input.message_type);
        check_message_shape(message)?;
        self.note_signing(scope, input.algorithm, message);
        let (key, record) = self.signing_key(scope, Operation::Sign, &input.key).await?;
        input.algorithm.check(key.spec, &message)?;
        let handle = VersionHandle { key_id: key.id, version: record.version, material: &record.material };
        let backend = self.backends.lookup(&key.backend)?;
        let span = tracing::info_span!("backend", backend = %key.backend, call = "sign");
        let signature =
            backend.sign(handle, key.spec, input.algorithm, message).instrument(span).await.map_err(backend_err)?;
        Ok(SignOutput { key_id: key.id, signature, algorithm: input.algorithm })
    }

    /// Verify: an invalid signature is a normal answer (`valid: false`).
    pub async fn verify(&self, scope: &mut Scope, input: VerifyInput) -> Result<Verified> {
        let message = Message::new(&input.sign.message, input.sign.message_type);
        check_message_shape(message)?;
        check_tag_len(&input.signature, "signature")?;
        self.note_signing(scope, input.sign.algorithm, message);
        let (key, record) = self.signing_key(scope, Operation::Verify, &input.sign.key).await?;
        input.sign.algorithm.check(key.spec, &message)?;
        let handle = VersionHandle { key_id: key.id, version: record.version, material: &record.material };
        let backend = self.backends.lookup(&key.backend)?;
        let span = tracing::info_span!("backend", backend = %key.backend, call = "verify");
        let valid = backend
            .verify(handle, key.spec, input.sign.algorithm, message, &input.signature)
            .instrument(span)
            .await
            .map_err(backend_err)?;
        Ok(Verified { key_id: key.id, valid })
    }

    /// GetPublicKey.
    pub async fn get_public_key(&self, scope: &mut Scope, key: &KeyRef) -> Result<PublicKeyOutput> {
        let key = self.resolve(scope, key).await?;
        let permit =
            self.authorize_key(scope, Action::Op(Operation::GetPublicKey), &key, &EncryptionContext::default())?;
        self.ensure_usable(scope, &key)?;
        if !key.spec.is_asymmetric() {
            return Err(Error::new(
                ErrorCode::InvalidKeyUsage,
                format!("a {} key has no public key; GetPublicKey needs an asymmetric key", key.spec),
            ));
        }
        let record = self.primary_version(scope, &key).await?;
        let backend = self.backend_for(&permit, &key)?;
        let handle = VersionHandle { key_id: key.id, version: record.version, material: &record.material };
        let span = tracing::info_span!("backend", backend = %key.backend, call = "public_key");
        let public_key = backend.public_key(handle, key.spec).instrument(span).await.map_err(backend_err)?;
        let signing_algorithms =
            if key.usage == KeyUsage::SignVerify { SigningAlgorithm::for_spec(key.spec) } else { &[] };
        Ok(PublicKeyOutput { key_id: key.id, public_key, spec: key.spec, usage: key.usage, signing_algorithms })
    }

    /// GenerateMac.
    pub async fn generate_mac(&self, scope: &mut Scope, input: MacInput) -> Result<MacOutput> {
        check_mac_message(&input.message)?;
        self.note_mac(scope, input.algorithm, &input.message);
        let (key, record) = self.mac_key(scope, Operation::GenerateMac, &input.key).await?;
        input.algorithm.check(key.spec, &input.message)?;
        let handle = VersionHandle { key_id: key.id, version: record.version, material: &record.material };
        let backend = self.backends.lookup(&key.backend)?;
        let span = tracing::info_span!("backend", backend = %key.backend, call = "generate_mac");
        let mac = backend.generate_mac(handle, input.algorithm, &input.message).instrument(span).await;
        Ok(MacOutput { key_id: key.id, mac: mac.map_err(backend_err)?, algorithm: input.algorithm })
    }

    /// VerifyMac: a wrong MAC is a normal answer (`valid: false`).
    pub async fn verify_mac(&self, scope: &mut Scope, input: VerifyMacInput) -> Result<Verified> {
        let MacInput { key, message, algorithm } = &input.mac_input;
        check_mac_message(message)?;
        check_tag_len(&input.mac, "mac")?;
        self.note_mac(scope, *algorithm, message);
        let (key, record) = self.mac_key(scope, Operation::VerifyMac, key).await?;
        algorithm.check(key.spec, message)?;
        let handle = VersionHandle { key_id: key.id, version: record.version, material: &record.material };
        let backend = self.backends.lookup(&key.backend)?;
        let span = tracing::info_span!("backend", backend = %key.backend, call = "verify_mac");
        let valid = backend.verify_mac(handle, *algorithm, message, &input.mac).instrument(span).await;
        Ok(Verified { key_id: key.id, valid: valid.map_err(backend_err)? })
    }

    fn note_signing(&self, scope: &mut Scope, algorithm: SigningAlgorithm, message: Message<'_>) {
        let facts = AlgorithmFacts {
            signing_algorithm: Some(algorithm),
            message_type: Some(message.kind()),
            mac_algorithm: None,
        };
        scope.note_algorithm(facts, message.bytes());
    }

    fn note_mac(&self, scope: &mut Scope, algorithm: MacAlgorithm, message: &[u8]) {
        let facts = AlgorithmFacts { mac_algorithm: Some(algorithm), ..AlgorithmFacts::default() };
        scope.note_algorithm(facts, message);
    }

    /// The key, authorized for `op`, usable, of SIGN_VERIFY usage, with its version's material.
    async fn signing_key(&self, scope: &mut Scope, op: Operation, key: &KeyRef) -> Result<(KeyRecord, VersionRecord)> {
        self.usable_key(scope, op, key, KeyUsage::SignVerify).await
    }

    /// The key, authorized for `op`, usable, of GENERATE_VERIFY_MAC usage.
    async fn mac_key(&self, scope: &mut Scope, op: Operation, key: &KeyRef) -> Result<(KeyRecord, VersionRecord)> {
        self.usable_key(scope, op, key, KeyUsage::GenerateVerifyMac).await
    }

    pub(super) async fn usable_key(
        &self,
        scope: &mut Scope,
        op: Operation,
        key: &KeyRef,
        usage: KeyUsage,
    ) -> Result<(KeyRecord, VersionRecord)> {
        let key = self.resolve(scope, key).await?;
        let permit = self.authorize_key(scope, Action::Op(op), &key, &EncryptionContext::default())?;
        self.ensure_usable(scope, &key)?;
        key.usage.ensure(usage, op.as_str())?;
        let record = self.primary_version(scope, &key).await?;
        // The permit names this key; the callers reach the backend by the key's name.
        self.backend_for(&permit, &key)?;
        Ok((key, record))
    }
}

/// Size checks that need no key: a RAW message is 1 to 4096 bytes, a DIGEST at most 64.
fn check_message_shape(message: Message<'_>) -> Result<()> {
    match message {
        Message::Raw([]) | Message::Digest([]) => Err(Error::invalid("`message` must not be empty")),
        Message::Raw(m) if m.len() > MAX_MESSAGE => Err(Error::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "`message` is {} bytes; at most {MAX_MESSAGE}, or send its digest with `message_type` DIGEST",
                m.len()
            ),
        )),
        Message::Digest(d) if d.len() > 64 => {
            Err(Error::invalid(format!("a DIGEST is at most 64 bytes, not {}", d.len())))
        }
        _ => Ok(()),
    }
}

fn check_mac_message(message: &[u8]) -> Result<()> {
    check_message_shape(Message::Raw(message))
}

fn check_tag_len(tag: &[u8], field: &str) -> Result<()> {
    if tag.is_empty() {
        return Err(Error::invalid(format!("`{field}` must not be empty")));
    }
    if tag.len() > MAX_SIGNATURE {
        return Err(Error::new(ErrorCode::PayloadTooLarge, format!("`{field}` is at most {MAX_SIGNATURE} bytes")));
    }
    Ok(())
}
