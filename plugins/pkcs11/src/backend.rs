//! AES-256-GCM inside the token. Each key version is its own token key, generated sensitive and
//! non-extractable; the database keeps only its reference (CKA_ID). Random bytes and data keys
//! come from the token's generator; GCM nonces from the OS generator (96 random bits per
//! message, as the software backend; usage counters bound messages per version).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass};
use keyward_backend::{
    AadFn, Backend, BackendError, Capabilities, GcmVector, ImportRequest, ImportWrapping, Imported, RsaTestKey, Sealed,
    VersionHandle,
};
use keyward_core::model::context::EncryptionContext;
use keyward_core::model::ids::KeyId;
use keyward_core::model::import::ImportToken;
use keyward_core::model::key::{KeySpec, KeyUsage, Protection};
use keyward_core::model::signing::{EncryptionAlgorithm, MacAlgorithm, Message, SigningAlgorithm};
use keyward_core::ports::backend::{RAW_NONCE_LEN, RawGcm};
use zeroize::Zeroizing;

use crate::signing;
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
    /// Public keys of key versions (public data, read once from the token).
    public_keys: Mutex<HashMap<(KeyId, u32), Vec<u8>>>,
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

/// The specs a token can hold, from its mechanisms: a spec the token lacks a mechanism for is
/// not offered (and its conformance checks are skipped by name). AES keys are always offered
/// (a token found later must have them to serve at all).
fn specs_of(mechanisms: &[MechanismType]) -> Vec<KeySpec> {
    let has = |wanted: &[MechanismType]| wanted.iter().all(|m| mechanisms.contains(m));
    let mut specs = vec![KeySpec::Aes256];
    if has(&[
        MechanismType::RSA_PKCS_KEY_PAIR_GEN,
        MechanismType::RSA_PKCS,
        MechanismType::RSA_PKCS_PSS,
        MechanismType::RSA_PKCS_OAEP,
    ]) {
        specs.extend([KeySpec::Rsa2048, KeySpec::Rsa3072, KeySpec::Rsa4096]);
    }
    if has(&[MechanismType::ECC_KEY_PAIR_GEN, MechanismType::ECDSA]) {
        specs.extend([KeySpec::EccNistP256, KeySpec::EccNistP384, KeySpec::EccNistP521]);
    }
    if has(&[MechanismType::ECC_EDWARDS_KEY_PAIR_GEN, MechanismType::EDDSA]) {
        specs.push(KeySpec::EccNistEdwards25519);
    }
    if has(&[
        MechanismType::GENERIC_SECRET_KEY_GEN,
        MechanismType::SHA256_HMAC,
        MechanismType::SHA384_HMAC,
        MechanismType::SHA512_HMAC,
    ]) {
        specs.extend([KeySpec::Hmac256, KeySpec::Hmac384, KeySpec::Hmac512]);
    }
    specs
}

/// The RSAES-OAEP hashes the token takes: SHA-1 always with `CKM_RSA_PKCS_OAEP`; SHA-256 when
/// it accepts the parameters (SoftHSM2 2.6 takes SHA-1 only), tried once on a session key.
fn oaep_of(token: &Token) -> Vec<EncryptionAlgorithm> {
    let probe = token.run_blocking(|lease| {
        let public = [
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::KeyType(KeyType::RSA),
            Attribute::Token(false),
            Attribute::ModulusBits(1024.into()),
            Attribute::PublicExponent(vec![1, 0, 1]),
            Attribute::Encrypt(true),
        ];
        let private = [Attribute::Class(ObjectClass::PRIVATE_KEY), Attribute::Token(false), Attribute::Decrypt(true)];
        let (pk, sk) = lease.session.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private)?;
        let sha256 = signing::oaep(EncryptionAlgorithm::RsaesOaepSha256)
            .map_err(OpError::Backend)
            .and_then(|m| Ok(lease.session.encrypt(&m, pk, b"probe")?));
        let _ = lease.session.destroy_object(pk);
        let _ = lease.session.destroy_object(sk);
        Ok(sha256.is_ok())
    });
    match probe {
        Ok(true) => vec![EncryptionAlgorithm::RsaesOaepSha1, EncryptionAlgorithm::RsaesOaepSha256],
        _ => vec![EncryptionAlgorithm::RsaesOaepSha1],
    }
}

/// A key version's object of a class (a key pair's private or public half, an HMAC secret).
fn object(lease: &Lease<'_>, id: &[u8], class: ObjectClass) -> OpResult<cryptoki::object::ObjectHandle> {
    match lease.find_class(id, class)? {
        Some(handle) => Ok(handle),
        None if lease.token_labelled() => {
            Err(OpError::Backend(BackendError::InvalidMaterial("the token has no such key".into())))
        }
        None => Err(OpError::Backend(BackendError::Unavailable("the token is gone".into()))),
    }
}

/// A `C_Verify` answer: a signature that does not verify is `false`, not a failure.
fn verified(r: Result<(), CkError>) -> OpResult<bool> {
    match r {
        Ok(()) => Ok(true),
        Err(CkError::Pkcs11(RvError::SignatureInvalid | RvError::SignatureLenRange, _)) => Ok(false),
        Err(e) => Err(e.into()),
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
        let mechanisms = token.mechanisms();
        let specs = specs_of(&mechanisms);
        let rsa_oaep = if specs.contains(&KeySpec::Rsa2048) { oaep_of(&token) } else { Vec::new() };
        let import = crate::import::algorithms(&rsa_oaep, &mechanisms);
        let import_specs = if import.is_empty() { Vec::new() } else { crate::import::specs(&specs) };
        Self {
            token,
            public_keys: Mutex::new(HashMap::new()),
            capabilities: Capabilities {
                specs,
                max_plaintext: 64 * 1024,
                protection: Protection::Hsm,
                material_leaves: false,
                fixed_nonce_testing: true,
                destroy_is_immediate: true,
                raw_gcm: true,
                signs_digests: true,
                rsa_oaep,
                import,
                import_specs,
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

    async fn create_key(
        &self,
        key_id: KeyId,
        version: u32,
        spec: KeySpec,
        usage: KeyUsage,
    ) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        if !self.capabilities.specs.contains(&spec) {
            return Err(BackendError::Unsupported(format!("{spec} keys (the token lacks the mechanism)")));
        }
        let id = object_id(key_id, version);
        let label = format!("keyward:{key_id}:v{version}");
        if spec == KeySpec::Aes256 {
            let template = aes_key_template(id.clone(), label.into_bytes());
            self.token
                .run(move |lease| {
                    lease.session.generate_key(&Mechanism::AesKeyGen, &template)?;
                    Ok(())
                })
                .await
                .map_err(mapped)?;
        } else {
            let (id, label) = (id.clone(), label.into_bytes());
            self.token
                .run(move |lease| {
                    let g = signing::generation(spec, usage, id, label)?;
                    if g.public.is_empty() {
                        lease.session.generate_key(&g.mechanism, &g.private)?;
                    } else {
                        lease.session.generate_key_pair(&g.mechanism, &g.public, &g.private)?;
                    }
                    Ok(())
                })
                .await
                .map_err(mapped)?;
        }
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

    async fn prepare_import(
        &self,
        _key_id: KeyId,
        wrapping_spec: KeySpec,
        binding: &[u8],
    ) -> Result<ImportWrapping, BackendError> {
        let expires = ImportToken::binding_expiry(binding)
            .ok_or_else(|| BackendError::Internal("the binding names no expiry".into()))?
            .timestamp();
        let now = chrono::Utc::now().timestamp();
        let binding = binding.to_vec();
        let (state, n, e) = self
            .token
            .run(move |lease| crate::import::prepare(lease, wrapping_spec, &binding, expires, now))
            .await
            .map_err(mapped)?;
        Ok(ImportWrapping { public_key: keyward_backend::signature::rsa_spki(&n, &e)?, state })
    }

    async fn import_key(&self, r: ImportRequest<'_>) -> Result<Imported, BackendError> {
        if !self.capabilities.import_specs.contains(&r.spec) {
            return Err(BackendError::Unsupported(format!("importing {} keys into this token", r.spec)));
        }
        let expires = ImportToken::binding_expiry(r.binding)
            .ok_or_else(|| BackendError::InvalidRequest("the binding names no expiry".into()))?
            .timestamp();
        let id = object_id(r.key_id, r.version);
        let target = crate::import::Target {
            spec: r.spec,
            usage: r.usage,
            algorithm: r.algorithm,
            id: id.clone(),
            label: format!("keyward:{}:v{}", r.key_id, r.version).into_bytes(),
        };
        let (state, binding, encrypted) = (r.state.to_vec(), r.binding.to_vec(), r.encrypted.to_vec());
        let fingerprint = self
            .token
            .run(move |lease| crate::import::unwrap(lease, &target, &state, &binding, expires, &encrypted))
            .await
            .map_err(mapped)?;
        if let Ok(mut m) = self.public_keys.lock() {
            m.remove(&(r.key_id, r.version));
        }
        let mut reference = Zeroizing::new(Vec::with_capacity(REF_LEN));
        reference.push(REF_FORMAT);
        reference.extend_from_slice(&id);
        Ok(Imported { material: reference, fingerprint })
    }

    async fn discard_import(&self, state: &[u8]) -> Result<(), BackendError> {
        let state = state.to_vec();
        self.token.run(move |lease| crate::import::discard(&lease.session, &state)).await.map_err(mapped)
    }

    async fn public_key(&self, key: VersionHandle<'_>, spec: KeySpec) -> Result<Vec<u8>, BackendError> {
        let id = stored_id(&key)?;
        let cache_key = (key.key_id, key.version);
        if let Some(spki) = self.public_keys.lock().ok().and_then(|m| m.get(&cache_key).cloned()) {
            return Ok(spki);
        }
        let raw = self
            .token
            .run(move |lease| {
                let handle = object(lease, &id, ObjectClass::PUBLIC_KEY)?;
                let wanted: &[AttributeType] = if spec.is_rsa() {
                    &[AttributeType::Modulus, AttributeType::PublicExponent]
                } else {
                    &[AttributeType::EcPoint]
                };
                Ok(lease.session.get_attributes(handle, wanted)?)
            })
            .await
            .map_err(mapped)?;
        let spki = match raw.as_slice() {
            [Attribute::Modulus(n), Attribute::PublicExponent(e)] => keyward_backend::signature::rsa_spki(n, e)?,
            [Attribute::EcPoint(point)] => keyward_backend::signature::spki_of(spec, signing::ec_point(point))?,
            _ => return Err(BackendError::Internal("the token gave no public key attributes".into())),
        };
        if let Ok(mut m) = self.public_keys.lock() {
            m.insert(cache_key, spki.clone());
        }
        Ok(spki)
    }

    async fn sign(
        &self,
        key: VersionHandle<'_>,
        spec: KeySpec,
        algorithm: SigningAlgorithm,
        message: Message<'_>,
    ) -> Result<Vec<u8>, BackendError> {
        let id = stored_id(&key)?;
        let (mechanism, input) = signing::to_be_signed(algorithm, message)?;
        let raw = self
            .token
            .run(move |lease| {
                let handle = object(lease, &id, ObjectClass::PRIVATE_KEY)?;
                Ok(lease.session.sign(&mechanism.mechanism(), handle, &input)?)
            })
            .await
            .map_err(mapped)?;
        signing::from_token(spec, algorithm, raw)
    }

    async fn verify(
        &self,
        key: VersionHandle<'_>,
        spec: KeySpec,
        algorithm: SigningAlgorithm,
        message: Message<'_>,
        signature: &[u8],
    ) -> Result<bool, BackendError> {
        let id = stored_id(&key)?;
        let (mechanism, input) = signing::to_be_signed(algorithm, message)?;
        let Some(signature) = signing::to_token(spec, algorithm, signature) else { return Ok(false) };
        self.token
            .run(move |lease| {
                let handle = object(lease, &id, ObjectClass::PUBLIC_KEY)?;
                verified(lease.session.verify(&mechanism.mechanism(), handle, &input, &signature))
            })
            .await
            .map_err(mapped)
    }

    async fn encrypt_asymmetric(
        &self,
        key: VersionHandle<'_>,
        _spec: KeySpec,
        algorithm: EncryptionAlgorithm,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, BackendError> {
        let id = stored_id(&key)?;
        let plaintext = Zeroizing::new(plaintext.to_vec());
        self.token
            .run(move |lease| {
                let handle = object(lease, &id, ObjectClass::PUBLIC_KEY)?;
                Ok(lease.session.encrypt(&signing::oaep(algorithm)?, handle, &plaintext)?)
            })
            .await
            .map_err(mapped)
    }

    async fn decrypt_asymmetric(
        &self,
        key: VersionHandle<'_>,
        _spec: KeySpec,
        algorithm: EncryptionAlgorithm,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        let id = stored_id(&key)?;
        let ciphertext = ciphertext.to_vec();
        self.token
            .run(move |lease| {
                let handle = object(lease, &id, ObjectClass::PRIVATE_KEY)?;
                Ok(Zeroizing::new(lease.session.decrypt(&signing::oaep(algorithm)?, handle, &ciphertext)?))
            })
            .await
            .map_err(decrypt_failure)
    }

    async fn generate_mac(
        &self,
        key: VersionHandle<'_>,
        algorithm: MacAlgorithm,
        message: &[u8],
    ) -> Result<Vec<u8>, BackendError> {
        let id = stored_id(&key)?;
        let message = message.to_vec();
        self.token
            .run(move |lease| {
                let handle = object(lease, &id, ObjectClass::SECRET_KEY)?;
                Ok(lease.session.sign(&signing::hmac(algorithm), handle, &message)?)
            })
            .await
            .map_err(mapped)
    }

    async fn verify_mac(
        &self,
        key: VersionHandle<'_>,
        algorithm: MacAlgorithm,
        message: &[u8],
        mac: &[u8],
    ) -> Result<bool, BackendError> {
        let id = stored_id(&key)?;
        let (message, mac) = (message.to_vec(), mac.to_vec());
        if mac.len() != algorithm.hash().len() {
            return Ok(false);
        }
        self.token
            .run(move |lease| {
                let handle = object(lease, &id, ObjectClass::SECRET_KEY)?;
                verified(lease.session.verify(&signing::hmac(algorithm), handle, &message, &mac))
            })
            .await
            .map_err(mapped)
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
        if let Ok(mut m) = self.public_keys.lock() {
            m.remove(&(key.key_id, key.version));
        }
        self.token
            .run(move |lease| {
                // Already gone is done: destruction may be retried after a crash. A key pair is
                // two objects under one id.
                for class in [ObjectClass::SECRET_KEY, ObjectClass::PRIVATE_KEY, ObjectClass::PUBLIC_KEY] {
                    if let Some(handle) = lease.find_class(&id, class)? {
                        lease.session.destroy_object(handle)?;
                    }
                }
                lease.forget(&id);
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

    fn test_verify(
        &self,
        spec: KeySpec,
        algorithm: SigningAlgorithm,
        public_key: &[u8],
        message: Message<'_>,
        signature: &[u8],
    ) -> Result<bool, BackendError> {
        // The vector's key as a session object (never stored in the token), checked by C_Verify.
        let spki = keyward_backend::signature::spki_of(spec, public_key)?;
        let mut template =
            vec![Attribute::Class(ObjectClass::PUBLIC_KEY), Attribute::Token(false), Attribute::Verify(true)];
        if spec.is_rsa() {
            let (n, e) = keyward_backend::signature::rsa_components(&spki)?;
            template.extend([Attribute::KeyType(KeyType::RSA), Attribute::Modulus(n), Attribute::PublicExponent(e)]);
        } else {
            let point =
                signing::spki_point(spec, &spki).ok_or_else(|| BackendError::InvalidRequest("EC key".into()))?;
            let params = signing::ec_params(spec).ok_or_else(|| BackendError::InvalidRequest("EC key".into()))?;
            let key_type = if spec == KeySpec::EccNistEdwards25519 { KeyType::EC_EDWARDS } else { KeyType::EC };
            // CKA_EC_POINT is the point as a DER OCTET STRING.
            let mut wrapped = vec![0x04];
            if point.len() > 127 {
                wrapped.push(0x81);
            }
            wrapped.push(point.len() as u8);
            wrapped.extend_from_slice(point);
            template.extend([
                Attribute::KeyType(key_type),
                Attribute::EcParams(params.to_vec()),
                Attribute::EcPoint(wrapped),
            ]);
        }
        let (mechanism, input) = signing::to_be_signed(algorithm, message)?;
        let Some(signature) = signing::to_token(spec, algorithm, signature) else { return Ok(false) };
        self.token
            .run_blocking(|lease| {
                let key = lease.session.create_object(&template)?;
                let answer = verified(lease.session.verify(&mechanism.mechanism(), key, &input, &signature));
                lease.session.destroy_object(key)?;
                answer
            })
            .map_err(mapped)
    }

    fn test_mac(&self, algorithm: MacAlgorithm, key: &[u8], message: &[u8]) -> Result<Vec<u8>, BackendError> {
        self.token
            .run_blocking(|lease| {
                let handle = lease.session.create_object(&[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::GENERIC_SECRET),
                    Attribute::Token(false),
                    Attribute::Sign(true),
                    Attribute::Value(key.to_vec()),
                ])?;
                let out = lease.session.sign(&signing::hmac(algorithm), handle, message);
                lease.session.destroy_object(handle)?;
                Ok(out?)
            })
            .map_err(mapped)
    }

    fn test_oaep_decrypt(
        &self,
        algorithm: EncryptionAlgorithm,
        key: RsaTestKey<'_>,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        // The token's own CKM_RSA_PKCS_OAEP, on a session key made from the vector's parts.
        let part = |b: &[u8]| b.to_vec();
        self.token
            .run_blocking(|lease| {
                let handle = lease.session.create_object(&[
                    Attribute::Class(ObjectClass::PRIVATE_KEY),
                    Attribute::KeyType(KeyType::RSA),
                    Attribute::Token(false),
                    Attribute::Decrypt(true),
                    Attribute::Modulus(part(key.n)),
                    Attribute::PublicExponent(part(key.e)),
                    Attribute::PrivateExponent(part(key.d)),
                    Attribute::Prime1(part(key.p)),
                    Attribute::Prime2(part(key.q)),
                    Attribute::Exponent1(part(key.dp)),
                    Attribute::Exponent2(part(key.dq)),
                    Attribute::Coefficient(part(key.qinv)),
                ])?;
                let out = lease.session.decrypt(&signing::oaep(algorithm)?, handle, ciphertext);
                lease.session.destroy_object(handle)?;
                Ok(Zeroizing::new(out?))
            })
            .map_err(decrypt_failure)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_is_offered_only_with_every_mechanism_it_needs() {
        let everything = [
            MechanismType::RSA_PKCS_KEY_PAIR_GEN,
            MechanismType::RSA_PKCS,
            MechanismType::RSA_PKCS_PSS,
            MechanismType::RSA_PKCS_OAEP,
            MechanismType::ECC_KEY_PAIR_GEN,
            MechanismType::ECDSA,
            MechanismType::ECC_EDWARDS_KEY_PAIR_GEN,
            MechanismType::EDDSA,
            MechanismType::GENERIC_SECRET_KEY_GEN,
            MechanismType::SHA256_HMAC,
            MechanismType::SHA384_HMAC,
            MechanismType::SHA512_HMAC,
        ];
        assert_eq!(specs_of(&everything), KeySpec::ALL.to_vec());
        // A token without EdDSA (older SoftHSM2 builds) offers everything else.
        let no_eddsa: Vec<MechanismType> = everything.iter().copied().filter(|m| *m != MechanismType::EDDSA).collect();
        let specs = specs_of(&no_eddsa);
        assert!(!specs.contains(&KeySpec::EccNistEdwards25519) && specs.contains(&KeySpec::EccNistP256));
        // Without PSS, no RSA signing keys: every RSA algorithm must work.
        let no_pss: Vec<MechanismType> =
            everything.iter().copied().filter(|m| *m != MechanismType::RSA_PKCS_PSS).collect();
        assert!(!specs_of(&no_pss).contains(&KeySpec::Rsa2048));
        assert_eq!(specs_of(&[]), vec![KeySpec::Aes256]);
    }
}
