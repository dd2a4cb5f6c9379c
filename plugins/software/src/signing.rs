//! Signing and MAC keys in process (aws-lc-rs). A version's secret (PKCS#8 for a key pair,
//! the raw key for HMAC) is wrapped under the root key like AES material, in a format of its
//! own that names the spec. Parsed keys are cached: parsing an RSA private key checks it,
//! which costs more than the signature.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::hmac;
use aws_lc_rs::rsa::{
    KeySize, OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OaepAlgorithm, OaepPrivateDecryptingKey,
    OaepPublicEncryptingKey, PrivateDecryptingKey, PublicEncryptingKey,
};
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, EcdsaSigningAlgorithm, Ed25519KeyPair, KeyPair, RsaEncoding, RsaKeyPair,
};
use keyward_backend::signature::{message_digest, spki_of};
use keyward_core::model::ids::KeyId;
use keyward_core::model::key::KeySpec;
use keyward_core::model::signing::{EncryptionAlgorithm, MacAlgorithm, Message, SigningAlgorithm};
use keyward_core::ports::backend::BackendError;
use zeroize::Zeroizing;

/// A parsed secret of one version.
pub(crate) enum Secret {
    /// An RSA key, ready to sign and to decrypt (its usage decides which is asked for).
    Rsa(RsaKeyPair, Box<OaepPrivateDecryptingKey>),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
    Hmac(Box<hmac::Key>),
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Rsa(..) => "Secret::Rsa",
            Self::Ec(_) => "Secret::Ec",
            Self::Ed(_) => "Secret::Ed",
            Self::Hmac(_) => "Secret::Hmac",
        })
    }
}

fn ecdsa_signing(spec: KeySpec) -> Option<&'static EcdsaSigningAlgorithm> {
    match spec {
        KeySpec::EccNistP256 => Some(&signature::ECDSA_P256_SHA256_ASN1_SIGNING),
        KeySpec::EccNistP384 => Some(&signature::ECDSA_P384_SHA384_ASN1_SIGNING),
        KeySpec::EccNistP521 => Some(&signature::ECDSA_P521_SHA512_ASN1_SIGNING),
        _ => None,
    }
}

fn hmac_algorithm(spec: KeySpec) -> Option<hmac::Algorithm> {
    match spec {
        KeySpec::Hmac256 => Some(hmac::HMAC_SHA256),
        KeySpec::Hmac384 => Some(hmac::HMAC_SHA384),
        KeySpec::Hmac512 => Some(hmac::HMAC_SHA512),
        _ => None,
    }
}

fn rsa_encoding(algorithm: SigningAlgorithm) -> Option<&'static dyn RsaEncoding> {
    use SigningAlgorithm as A;
    Some(match algorithm {
        A::RsassaPssSha256 => &signature::RSA_PSS_SHA256,
        A::RsassaPssSha384 => &signature::RSA_PSS_SHA384,
        A::RsassaPssSha512 => &signature::RSA_PSS_SHA512,
        A::RsassaPkcs1V15Sha256 => &signature::RSA_PKCS1_SHA256,
        A::RsassaPkcs1V15Sha384 => &signature::RSA_PKCS1_SHA384,
        A::RsassaPkcs1V15Sha512 => &signature::RSA_PKCS1_SHA512,
        _ => return None,
    })
}

pub(crate) fn oaep(algorithm: EncryptionAlgorithm) -> Result<&'static OaepAlgorithm, BackendError> {
    match algorithm {
        EncryptionAlgorithm::RsaesOaepSha1 => Ok(&OAEP_SHA1_MGF1SHA1),
        EncryptionAlgorithm::RsaesOaepSha256 => Ok(&OAEP_SHA256_MGF1SHA256),
        EncryptionAlgorithm::SymmetricDefault => Err(BackendError::InvalidRequest("not an RSA algorithm".into())),
    }
}

fn failed(what: &str) -> BackendError {
    BackendError::Internal(format!("{what} failed"))
}

/// New secret bytes for a spec: PKCS#8 for key pairs, random bytes for HMAC.
pub(crate) fn generate(
    spec: KeySpec,
    random: impl Fn(&mut [u8]) -> Result<(), BackendError>,
) -> Result<Zeroizing<Vec<u8>>, BackendError> {
    let der = match spec {
        KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => {
            let size = match spec {
                KeySpec::Rsa2048 => KeySize::Rsa2048,
                KeySpec::Rsa3072 => KeySize::Rsa3072,
                _ => KeySize::Rsa4096,
            };
            let pair = RsaKeyPair::generate(size).map_err(|_| failed("RSA key generation"))?;
            AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair)
                .map_err(|_| failed("PKCS#8 encoding"))?
                .as_ref()
                .to_vec()
        }
        KeySpec::EccNistEdwards25519 => Ed25519KeyPair::generate()
            .map_err(|_| failed("Ed25519 key generation"))?
            .to_pkcs8v1()
            .map_err(|_| failed("PKCS#8 encoding"))?
            .as_ref()
            .to_vec(),
        KeySpec::Hmac256 | KeySpec::Hmac384 | KeySpec::Hmac512 => {
            let mut key = Zeroizing::new(vec![0u8; spec.bits() / 8]);
            random(&mut key)?;
            return Ok(key);
        }
        spec => match ecdsa_signing(spec) {
            Some(alg) => EcdsaKeyPair::generate(alg)
                .map_err(|_| failed("EC key generation"))?
                .to_pkcs8v1()
                .map_err(|_| failed("PKCS#8 encoding"))?
                .as_ref()
                .to_vec(),
            None => return Err(BackendError::Unsupported(format!("{spec} keys"))),
        },
    };
    Ok(Zeroizing::new(der))
}

/// Parses a version's secret bytes for its spec.
pub(crate) fn parse(spec: KeySpec, secret: &[u8]) -> Result<Secret, BackendError> {
    let bad = |e: &dyn std::fmt::Display| BackendError::InvalidMaterial(format!("{spec} key rejected: {e}"));
    if spec.is_rsa() {
        let pair = RsaKeyPair::from_pkcs8(secret).map_err(|e| bad(&e))?;
        if pair.public_modulus_len() * 8 != spec.bits() {
            return Err(BackendError::InvalidMaterial(format!(
                "an RSA key of {} bits is not {spec}",
                pair.public_modulus_len() * 8
            )));
        }
        let decrypting = PrivateDecryptingKey::from_pkcs8(secret).map_err(|e| bad(&e))?;
        let decrypting = OaepPrivateDecryptingKey::new(decrypting)
            .map_err(|_| BackendError::InvalidMaterial(format!("{spec} key rejected for RSA-OAEP")))?;
        return Ok(Secret::Rsa(pair, Box::new(decrypting)));
    }
    if let Some(alg) = ecdsa_signing(spec) {
        return EcdsaKeyPair::from_pkcs8(alg, secret).map(Secret::Ec).map_err(|e| bad(&e));
    }
    if spec == KeySpec::EccNistEdwards25519 {
        return Ed25519KeyPair::from_pkcs8(secret).map(Secret::Ed).map_err(|e| bad(&e));
    }
    if let Some(alg) = hmac_algorithm(spec) {
        let sizes = MacAlgorithm::for_spec(spec).first().map(|a| a.key_sizes()).unwrap_or(0..=0);
        if !sizes.contains(&secret.len()) {
            return Err(BackendError::InvalidMaterial(format!("a {spec} key of {} bytes", secret.len())));
        }
        return Ok(Secret::Hmac(Box::new(hmac::Key::new(alg, secret))));
    }
    Err(BackendError::Unsupported(format!("{spec} keys")))
}

impl Secret {
    /// The public key as a DER SubjectPublicKeyInfo.
    pub(crate) fn public_key(&self, spec: KeySpec) -> Result<Vec<u8>, BackendError> {
        match self {
            Self::Rsa(p, _) => spki_of(spec, p.public_key().as_ref()),
            Self::Ec(p) => spki_of(spec, p.public_key().as_ref()),
            Self::Ed(p) => spki_of(spec, p.public_key().as_ref()),
            Self::Hmac(_) => Err(BackendError::InvalidRequest("an HMAC key has no public key".into())),
        }
    }

    pub(crate) fn sign(&self, algorithm: SigningAlgorithm, message: Message<'_>) -> Result<Vec<u8>, BackendError> {
        match (self, message) {
            (Self::Ed(p), Message::Raw(m)) if algorithm == SigningAlgorithm::Ed25519Sha512 => {
                Ok(p.sign(m).as_ref().to_vec())
            }
            (Self::Ec(p), message)
                if matches!(
                    algorithm,
                    SigningAlgorithm::EcdsaSha256 | SigningAlgorithm::EcdsaSha384 | SigningAlgorithm::EcdsaSha512
                ) =>
            {
                let digest = message_digest(algorithm, message)?;
                p.sign_digest(&digest).map(|s| s.as_ref().to_vec()).map_err(|_| failed("ECDSA signing"))
            }
            (Self::Rsa(p, _), message) => {
                let encoding = rsa_encoding(algorithm)
                    .ok_or_else(|| BackendError::InvalidRequest(format!("an RSA key does not sign {algorithm}")))?;
                let digest = message_digest(algorithm, message)?;
                let mut out = vec![0u8; p.public_modulus_len()];
                p.sign_digest(encoding, &digest, &mut out).map_err(|_| failed("RSA signing"))?;
                Ok(out)
            }
            _ => Err(BackendError::InvalidRequest(format!("this key does not sign {algorithm} {:?}", message.kind()))),
        }
    }

    /// RSAES-OAEP encryption with the public key.
    pub(crate) fn encrypt_oaep(
        &self,
        spec: KeySpec,
        algorithm: EncryptionAlgorithm,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, BackendError> {
        let public = PublicEncryptingKey::from_der(&self.public_key(spec)?)
            .map_err(|_| BackendError::InvalidMaterial("RSA public key".into()))?;
        let key = OaepPublicEncryptingKey::new(public).map_err(|_| failed("RSA-OAEP setup"))?;
        let mut out = vec![0u8; key.ciphertext_size()];
        let n =
            key.encrypt(oaep(algorithm)?, plaintext, &mut out, None).map_err(|_| failed("RSA-OAEP encryption"))?.len();
        out.truncate(n);
        Ok(out)
    }

    /// RSAES-OAEP decryption; any failure is a decryption failure.
    pub(crate) fn decrypt_oaep(
        &self,
        algorithm: EncryptionAlgorithm,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        let Self::Rsa(_, key) = self else {
            return Err(BackendError::InvalidRequest("not an RSA key".into()));
        };
        oaep_decrypt(key, algorithm, ciphertext)
    }

    pub(crate) fn mac(&self, message: &[u8]) -> Result<Vec<u8>, BackendError> {
        match self {
            Self::Hmac(k) => Ok(hmac::sign(k, message).as_ref().to_vec()),
            _ => Err(BackendError::InvalidRequest("not an HMAC key".into())),
        }
    }

    pub(crate) fn verify_mac(&self, message: &[u8], mac: &[u8]) -> Result<bool, BackendError> {
        match self {
            // Constant time.
            Self::Hmac(k) => Ok(hmac::verify(k, message, mac).is_ok()),
            _ => Err(BackendError::InvalidRequest("not an HMAC key".into())),
        }
    }
}

/// RSAES-OAEP decryption with a PKCS#8 key given outright (known-answer tests).
pub(crate) fn oaep_decrypt_pkcs8(
    pkcs8: &[u8],
    algorithm: EncryptionAlgorithm,
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, BackendError> {
    let key = PrivateDecryptingKey::from_pkcs8(pkcs8)
        .map_err(|e| BackendError::InvalidMaterial(format!("RSA key rejected: {e}")))?;
    let key = OaepPrivateDecryptingKey::new(key).map_err(|_| failed("RSA-OAEP setup"))?;
    oaep_decrypt(&key, algorithm, ciphertext)
}

/// RSAES-OAEP decryption with a parsed key; any failure is a decryption failure.
pub(crate) fn oaep_decrypt(
    key: &OaepPrivateDecryptingKey,
    algorithm: EncryptionAlgorithm,
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, BackendError> {
    let mut out = Zeroizing::new(vec![0u8; key.key_size_bytes()]);
    let n = key
        .decrypt(oaep(algorithm)?, ciphertext, &mut out, None)
        .map_err(|_| BackendError::DecryptFailed("RSA-OAEP decryption failed".into()))?
        .len();
    out.truncate(n);
    Ok(out)
}

/// The MAC algorithm fits the key's spec.
pub(crate) fn check_mac(spec: KeySpec, algorithm: MacAlgorithm) -> Result<(), BackendError> {
    if MacAlgorithm::for_spec(spec).contains(&algorithm) {
        Ok(())
    } else {
        Err(BackendError::InvalidRequest(format!("a {spec} key does not MAC with {algorithm}")))
    }
}

/// Parsed secrets by version, each with the wrapped material it came from (a version's
/// material never changes; the check keeps a stale entry from ever answering).
#[derive(Debug, Default)]
pub(crate) struct SecretCache(Mutex<HashMap<(KeyId, u32), CachedSecret>>);

/// A parsed secret with the wrapped material it came from.
type CachedSecret = (Vec<u8>, Arc<Secret>);

/// Most parsed secrets kept.
const CACHE_LIMIT: usize = 10_000;

impl SecretCache {
    pub(crate) fn get(&self, key_id: KeyId, version: u32, material: &[u8]) -> Option<Arc<Secret>> {
        let cache = self.0.lock().ok()?;
        cache.get(&(key_id, version)).filter(|(m, _)| m == material).map(|(_, s)| s.clone())
    }

    pub(crate) fn put(&self, key_id: KeyId, version: u32, material: &[u8], secret: Arc<Secret>) {
        if let Ok(mut cache) = self.0.lock() {
            if cache.len() >= CACHE_LIMIT {
                cache.clear();
            }
            cache.insert((key_id, version), (material.to_vec(), secret));
        }
    }

    pub(crate) fn forget(&self, key_id: KeyId, version: u32) {
        if let Ok(mut cache) = self.0.lock() {
            cache.remove(&(key_id, version));
        }
    }
}

/// Key pairs made in process with aws-lc-rs, for GenerateDataKeyPair.
#[derive(Debug, Default, Clone, Copy)]
pub struct InProcessKeyPairs;

impl keyward_core::ports::key_pairs::KeyPairs for InProcessKeyPairs {
    fn generate(
        &self,
        spec: KeySpec,
    ) -> keyward_core::ports::backend::BoxFuture<'_, Result<keyward_core::ports::key_pairs::KeyPair, BackendError>>
    {
        Box::pin(async move {
            if !spec.is_asymmetric() {
                return Err(BackendError::InvalidRequest(format!("{spec} is not a key pair")));
            }
            off_thread(move || {
                let private_key =
                    generate(spec, |_| Err(BackendError::Internal("key pairs draw no raw bytes".into())))?;
                let public_key = parse(spec, &private_key)?.public_key(spec)?;
                Ok(keyward_core::ports::key_pairs::KeyPair { public_key, private_key })
            })
            .await
        })
    }
}

/// Runs CPU-heavy work (RSA key generation) on the blocking pool, not a request thread.
pub(crate) async fn off_thread<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, BackendError> + Send + 'static,
) -> Result<T, BackendError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| BackendError::Internal(format!("key generation: {e}")))?
}
