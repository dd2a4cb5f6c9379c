//! AES-256-GCM inside the token. Each key version is its own token key, generated sensitive and
//! non-extractable; the database keeps only its reference (CKA_ID). Random bytes and data keys
//! come from the token's generator; GCM nonces from the OS generator (96 random bits per
//! message, as the software backend; usage counters bound messages per version).

use std::sync::Arc;

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, KeyType, ObjectClass};
use keyward_backend::{AadFn, Backend, BackendError, Capabilities, GcmVector, Sealed, VersionHandle};
use keyward_core::model::context::EncryptionContext;
use keyward_core::model::ids::KeyId;
use keyward_core::model::key::{KeySpec, Protection};
use keyward_core::ports::backend::{RAW_NONCE_LEN, RawGcm};
use zeroize::Zeroizing;

use crate::token::{Lease, OpError, OpResult, Token, is_connection_error};

/// Algorithm id 2: AES-256-GCM in a PKCS#11 token, 96-bit nonce from the token, 128-bit tag.
pub const ALG_PKCS11_AES256_GCM: u8 = 2;
const NONCE_LEN: usize = 12;
const TAG_BITS: u64 = 128;
/// Stored reference format: `1 || key id (16) || version (4, big endian)`.
const REF_FORMAT: u8 = 1;
const REF_LEN: usize = 1 + 16 + 4;

/// The pkcs11 backend.
#[derive(Debug)]
pub struct Pkcs11Backend {
    token: Arc<Token>,
    capabilities: Capabilities,
}

/// The CKA_ID of a key version.
pub(crate) fn object_id(key_id: KeyId, version: u32) -> Vec<u8> {
    let mut id = Vec::with_capacity(20);
    id.extend_from_slice(key_id.0.as_bytes());
    id.extend_from_slice(&version.to_be_bytes());
    id
}

fn stored_id(key: &VersionHandle<'_>) -> Result<Vec<u8>, BackendError> {
    let m = key.material;
    if m.len() != REF_LEN || m[0] != REF_FORMAT {
        return Err(BackendError::InvalidMaterial("unrecognised token key reference".into()));
    }
    let id = m[1..].to_vec();
    if id != object_id(key.key_id, key.version) {
        return Err(BackendError::InvalidMaterial("the reference names another key version".into()));
    }
    Ok(id)
}

/// The template of a token AES-256 key: generated in the token, sensitive, never extractable,
/// for encryption and decryption only.
pub fn aes_key_template(id: Vec<u8>, label: Vec<u8>) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::ValueLen(32.into()),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::Wrap(false),
        Attribute::Unwrap(false),
        Attribute::Id(id),
        Attribute::Label(label),
    ]
}

/// One AES-GCM operation (128-bit tag) with a key object.
pub(crate) fn gcm(
    session: &cryptoki::session::Session,
    key: cryptoki::object::ObjectHandle,
    nonce: &[u8],
    aad: &[u8],
    input: &[u8],
    decrypt: bool,
) -> Result<Vec<u8>, CkError> {
    let mut iv = nonce.to_vec();
    let params = GcmParams::new(&mut iv, aad, TAG_BITS.into())?;
    if decrypt {
        session.decrypt(&Mechanism::AesGcm(params), key, input)
    } else {
        session.encrypt(&Mechanism::AesGcm(params), key, input)
    }
}

/// Maps a failed GCM decryption: a wrong tag or malformed ciphertext is `DecryptFailed`
/// (SoftHSM reports a tag mismatch as a general error), anything else as [`mapped`].
pub(crate) fn decrypt_failure(e: OpError) -> BackendError {
    match e {
        OpError::Ck(CkError::Pkcs11(
            RvError::EncryptedDataInvalid | RvError::EncryptedDataLenRange | RvError::GeneralError,
            _,
        )) => BackendError::DecryptFailed("authentication tag mismatch".into()),
        other => mapped(other),
    }
}

/// Maps a token failure: connection-level errors are `Unavailable`, the rest internal.
pub(crate) fn mapped(e: OpError) -> BackendError {
    match e {
        OpError::Backend(b) => b,
        OpError::Ck(e) if is_connection_error(&e) => BackendError::Unavailable(e.to_string()),
        OpError::Ck(e) => BackendError::Internal(e.to_string()),
    }
}

/// The key version's token object, or an error saying it is not there.
fn key_object(lease: &Lease<'_>, id: &[u8]) -> OpResult<cryptoki::object::ObjectHandle> {
    match lease.find(id)? {
        Some(handle) => Ok(handle),
        None if lease.token_present() => {
            Err(OpError::Backend(BackendError::InvalidMaterial("the token has no such key".into())))
        }
        None => Err(OpError::Backend(BackendError::Unavailable("the token is gone".into()))),
    }
}

/// Runs a GCM operation with a cached handle; a stale handle (the object changed under us) is
/// looked up once more.
fn with_key<T>(
    lease: &Lease<'_>,
    id: &[u8],
    op: impl Fn(cryptoki::object::ObjectHandle) -> Result<T, CkError>,
) -> OpResult<T> {
    let handle = key_object(lease, id)?;
    match op(handle) {
        Err(CkError::Pkcs11(RvError::ObjectHandleInvalid | RvError::KeyHandleInvalid, _)) => {
            lease.forget(id);
            Ok(op(key_object(lease, id)?)?)
        }
        other => Ok(other?),
    }
}

impl Pkcs11Backend {
    /// Connects to the configured token (loads the module, finds the token by label, logs in).
    pub fn connect(config: &crate::Pkcs11Config) -> Result<Self, String> {
        let pin = config.pin()?;
        let token = Token::open(
            config.module.clone(),
            config.token_label.clone(),
            pin,
            config.session_limit(),
            config.inline_calls()?,
        )?;
        Ok(Self::new(Arc::new(token)))
    }

    pub(crate) fn new(token: Arc<Token>) -> Self {
        Self {
            token,
            capabilities: Capabilities {
                specs: vec![KeySpec::Aes256],
                max_plaintext: 64 * 1024,
                protection: Protection::Hsm,
                material_leaves: false,
                fixed_nonce_testing: true,
                destroy_is_immediate: true,
                raw_gcm: true,
            },
        }
    }

    /// The token this backend uses.
    pub(crate) fn token(&self) -> &Arc<Token> {
        &self.token
    }

    /// The root key labelled `label` in this token (created on first use).
    pub fn root(&self, label: &str) -> Result<crate::HsmRoot, BackendError> {
        crate::HsmRoot::open(self.token.clone(), label)
    }
}

impl Backend for Pkcs11Backend {
    fn kind(&self) -> &'static str {
        crate::KIND
    }

    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    async fn create_key(&self, key_id: KeyId, version: u32, spec: KeySpec) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        let KeySpec::Aes256 = spec;
        let id = object_id(key_id, version);
        let label = format!("keyward:{key_id}:v{version}");
        let template = aes_key_template(id.clone(), label.into_bytes());
        self.token
            .run(move |lease| {
                lease.session.generate_key(&Mechanism::AesKeyGen, &template)?;
                Ok(())
            })
            .await
            .map_err(mapped)?;
        let mut reference = Zeroizing::new(Vec::with_capacity(REF_LEN));
        reference.push(REF_FORMAT);
        reference.extend_from_slice(&id);
        Ok(reference)
    }

    async fn encrypt(
        &self,
        key: VersionHandle<'_>,
        plaintext: &[u8],
        _context: &EncryptionContext,
        aad: AadFn<'_>,
    ) -> Result<Sealed, BackendError> {
        let id = stored_id(&key)?;
        // The nonce is drawn here (OS generator) because the associated data covers it: one
        // trip to the token per encryption. Random bytes and data keys still come from the token.
        let mut nonce = vec![0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| BackendError::Unavailable(format!("no randomness: {e}")))?;
        let aad = aad(ALG_PKCS11_AES256_GCM, &nonce);
        let plaintext = Zeroizing::new(plaintext.to_vec());
        let params = nonce.clone();
        let ciphertext = self
            .token
            .run(move |lease| with_key(lease, &id, |key| gcm(&lease.session, key, &params, &aad, &plaintext, false)))
            .await
            .map_err(mapped)?;
        Ok(Sealed { algorithm: ALG_PKCS11_AES256_GCM, params: nonce, ciphertext })
    }

    async fn decrypt(
        &self,
        key: VersionHandle<'_>,
        algorithm: u8,
        params: &[u8],
        ciphertext: &[u8],
        _context: &EncryptionContext,
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        if algorithm != ALG_PKCS11_AES256_GCM {
            return Err(BackendError::DecryptFailed(format!("unknown algorithm {algorithm}")));
        }
        if params.len() != NONCE_LEN {
            return Err(BackendError::DecryptFailed("bad nonce length".into()));
        }
        if ciphertext.len() < 16 {
            return Err(BackendError::DecryptFailed("ciphertext shorter than its tag".into()));
        }
        let id = stored_id(&key)?;
        let (nonce, ciphertext, aad) = (params.to_vec(), ciphertext.to_vec(), aad.to_vec());
        self.token
            .run(move |lease| with_key(lease, &id, |key| gcm(&lease.session, key, &nonce, &aad, &ciphertext, true)))
            .await
            .map(Zeroizing::new)
            .map_err(decrypt_failure)
    }

    async fn seal_raw(&self, key: VersionHandle<'_>, plaintext: &[u8], aad: &[u8]) -> Result<RawGcm, BackendError> {
        let id = stored_id(&key)?;
        let mut nonce = [0u8; RAW_NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| BackendError::Unavailable(format!("no randomness: {e}")))?;
        let (plaintext, aad) = (Zeroizing::new(plaintext.to_vec()), aad.to_vec());
        // CKM_AES_GCM appends the tag; the protocol carries it apart.
        let sealed = self
            .token
            .run(move |lease| with_key(lease, &id, |key| gcm(&lease.session, key, &nonce, &aad, &plaintext, false)))
            .await
            .map_err(mapped)?;
        RawGcm::from_sealed(nonce, sealed)
    }

    async fn open_raw(
        &self,
        key: VersionHandle<'_>,
        sealed: &RawGcm,
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        let id = stored_id(&key)?;
        let (input, nonce, aad) = (sealed.joined(), sealed.nonce, aad.to_vec());
        self.token
            .run(move |lease| with_key(lease, &id, |key| gcm(&lease.session, key, &nonce, &aad, &input, true)))
            .await
            .map(Zeroizing::new)
            .map_err(decrypt_failure)
    }

    async fn generate_random(&self, len: usize) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        self.token
            .run(move |lease| {
                let mut buf = Zeroizing::new(vec![0u8; len]);
                lease.session.generate_random_slice(&mut buf)?;
                Ok(buf)
            })
            .await
            .map_err(mapped)
    }

    async fn destroy(&self, key: VersionHandle<'_>) -> Result<(), BackendError> {
        let id = stored_id(&key)?;
        self.token
            .run(move |lease| {
                // Already gone is done: destruction may be retried after a crash.
                if let Some(handle) = lease.find(&id)? {
                    lease.session.destroy_object(handle)?;
                    lease.forget(&id);
                }
                Ok(())
            })
            .await
            .map_err(mapped)
    }

    async fn health(&self) -> Result<(), BackendError> {
        // A session can still make random bytes after its token's store went away; asking for
        // the token's own information reads the store.
        let ask = |lease: &crate::token::Lease<'_>| -> crate::token::OpResult<()> {
            lease.session.generate_random_vec(1)?;
            if lease.token_labelled() {
                Ok(())
            } else {
                Err(crate::token::OpError::Backend(BackendError::Unavailable("the token no longer answers".into())))
            }
        };
        let probe = self.token.run(ask).await;
        match probe {
            Ok(_) => Ok(()),
            Err(_) => {
                // Reconnect (re-reading the token), then ask once more.
                let token = self.token.clone();
                tokio::task::spawn_blocking(move || token.reconnect())
                    .await
                    .map_err(|e| BackendError::Internal(e.to_string()))??;
                self.token.run(ask).await.map_err(mapped)
            }
        }
    }

    fn test_vector(&self, case: GcmVector<'_>) -> Result<Vec<u8>, BackendError> {
        // A session object (never stored in the token) holding the vector's key.
        self.token
            .run_blocking(|lease| {
                let key = lease.session.create_object(&[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::AES),
                    Attribute::Token(false),
                    Attribute::Encrypt(true),
                    Attribute::Decrypt(true),
                    Attribute::Value(case.key.to_vec()),
                ])?;
                let out = gcm(&lease.session, key, case.nonce, case.aad, case.input, case.decrypt);
                lease.session.destroy_object(key)?;
                Ok(out?)
            })
            .map_err(decrypt_failure)
    }
}
