//! Signing and MAC keys in the token: key pairs (RSA, EC, Ed25519) and generic secrets (HMAC),
//! generated sensitive and non-extractable. The message is hashed in process and the token
//! signs the digest (`CKM_RSA_PKCS` over a DigestInfo, `CKM_RSA_PKCS_PSS`, `CKM_ECDSA`), so RAW
//! and DIGEST requests take one path; Ed25519 signs the message itself (`CKM_EDDSA`). The
//! token verifies too (`C_Verify`); ECDSA signatures are DER outside and `r || s` inside.

use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, KeyType, ObjectClass};
use keyward_backend::BackendError;
use keyward_backend::signature::{ecdsa_der_from_fixed, ecdsa_fixed_from_der, message_digest};
use keyward_core::model::key::{KeySpec, KeyUsage};
use keyward_core::model::signing::{EncryptionAlgorithm, Hash, MacAlgorithm, Message, SigningAlgorithm};

/// DER of the curve OIDs (`CKA_EC_PARAMS`).
const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
const P521: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23];
/// id-Ed25519 (RFC 8410).
const ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];

/// The DigestInfo prefix of PKCS#1 v1.5 signatures (RFC 8017, 9.2 note 1).
fn digest_info_prefix(hash: Hash) -> &'static [u8] {
    match hash {
        Hash::Sha256 => &[
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04,
            0x20,
        ],
        Hash::Sha384 => &[
            0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04,
            0x30,
        ],
        Hash::Sha512 => &[
            0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04,
            0x40,
        ],
    }
}

/// The key generation mechanism and the public and private (or secret) templates of a spec
/// (built on the token's thread: mechanisms and attributes hold raw pointers).
pub(crate) struct Generation {
    pub(crate) mechanism: Mechanism<'static>,
    /// Empty for a secret key.
    pub(crate) public: Vec<Attribute>,
    pub(crate) private: Vec<Attribute>,
}

pub(crate) fn generation(
    spec: KeySpec,
    usage: KeyUsage,
    id: Vec<u8>,
    label: Vec<u8>,
) -> Result<Generation, BackendError> {
    // An RSA key either signs or decrypts, never both (its usage is fixed at creation).
    let encrypts = usage == KeyUsage::EncryptDecrypt;
    let common = |class: ObjectClass| {
        vec![
            Attribute::Class(class),
            Attribute::Token(true),
            Attribute::Id(id.clone()),
            Attribute::Label(label.clone()),
        ]
    };
    let private_attrs = |mut v: Vec<Attribute>| {
        v.extend([
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(!encrypts),
            Attribute::Decrypt(encrypts),
            Attribute::Unwrap(false),
        ]);
        v
    };
    let ec = |params: &[u8], key_type: KeyType, mechanism: Mechanism<'static>| {
        let mut public = common(ObjectClass::PUBLIC_KEY);
        public.extend([Attribute::KeyType(key_type), Attribute::EcParams(params.to_vec()), Attribute::Verify(true)]);
        let mut private = common(ObjectClass::PRIVATE_KEY);
        private.push(Attribute::KeyType(key_type));
        Generation { mechanism, public, private: private_attrs(private) }
    };
    Ok(match spec {
        KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => {
            let mut public = common(ObjectClass::PUBLIC_KEY);
            public.extend([
                Attribute::KeyType(KeyType::RSA),
                Attribute::ModulusBits((spec.bits() as u64).into()),
                Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
                Attribute::Verify(!encrypts),
                Attribute::Encrypt(encrypts),
            ]);
            let mut private = common(ObjectClass::PRIVATE_KEY);
            private.push(Attribute::KeyType(KeyType::RSA));
            Generation { mechanism: Mechanism::RsaPkcsKeyPairGen, public, private: private_attrs(private) }
        }
        KeySpec::EccNistP256 => ec(P256, KeyType::EC, Mechanism::EccKeyPairGen),
        KeySpec::EccNistP384 => ec(P384, KeyType::EC, Mechanism::EccKeyPairGen),
        KeySpec::EccNistP521 => ec(P521, KeyType::EC, Mechanism::EccKeyPairGen),
        KeySpec::EccNistEdwards25519 => ec(ED25519, KeyType::EC_EDWARDS, Mechanism::EccEdwardsKeyPairGen),
        KeySpec::Hmac256 | KeySpec::Hmac384 | KeySpec::Hmac512 => {
            let mut secret = common(ObjectClass::SECRET_KEY);
            secret.extend([
                Attribute::KeyType(KeyType::GENERIC_SECRET),
                Attribute::ValueLen(((spec.bits() / 8) as u64).into()),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Sign(true),
                Attribute::Verify(true),
                Attribute::Encrypt(false),
                Attribute::Decrypt(false),
            ]);
            Generation { mechanism: Mechanism::GenericSecretKeyGen, public: Vec::new(), private: secret }
        }
        KeySpec::Aes256 => return Err(BackendError::Internal("AES keys are not signing keys".into())),
    })
}

fn pss(hash: Hash) -> PkcsPssParams {
    let (hash_alg, mgf) = match hash {
        Hash::Sha256 => (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256),
        Hash::Sha384 => (MechanismType::SHA384, PkcsMgfType::MGF1_SHA384),
        Hash::Sha512 => (MechanismType::SHA512, PkcsMgfType::MGF1_SHA512),
    };
    PkcsPssParams { hash_alg, mgf, s_len: (hash.len() as u64).into() }
}

/// A signing mechanism (mechanisms hold raw pointers, so each is built on the token's thread).
#[derive(Debug, Clone, Copy)]
pub(crate) enum SignMechanism {
    /// `CKM_RSA_PKCS` over a DigestInfo.
    RsaPkcs,
    /// `CKM_RSA_PKCS_PSS` with MGF1 of the hash and a salt of its length.
    RsaPss(Hash),
    /// `CKM_ECDSA` over the digest.
    Ecdsa,
    /// `CKM_EDDSA` (pure) over the message.
    Eddsa,
}

impl SignMechanism {
    pub(crate) fn mechanism(self) -> Mechanism<'static> {
        match self {
            Self::RsaPkcs => Mechanism::RsaPkcs,
            Self::RsaPss(hash) => Mechanism::RsaPkcsPss(pss(hash)),
            Self::Ecdsa => Mechanism::Ecdsa,
            Self::Eddsa => Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
        }
    }
}

/// What the token signs or verifies for a request: the mechanism and its input.
pub(crate) fn to_be_signed(
    algorithm: SigningAlgorithm,
    message: Message<'_>,
) -> Result<(SignMechanism, Vec<u8>), BackendError> {
    use SigningAlgorithm as A;
    if algorithm == A::Ed25519Sha512 {
        return match message {
            Message::Raw(m) => Ok((SignMechanism::Eddsa, m.to_vec())),
            Message::Digest(_) => Err(BackendError::InvalidRequest("ED25519_SHA_512 signs RAW messages only".into())),
        };
    }
    let digest = message_digest(algorithm, message)?;
    let digest = digest.as_ref();
    Ok(match algorithm {
        A::RsassaPssSha256 | A::RsassaPssSha384 | A::RsassaPssSha512 => {
            (SignMechanism::RsaPss(algorithm.hash()), digest.to_vec())
        }
        A::RsassaPkcs1V15Sha256 | A::RsassaPkcs1V15Sha384 | A::RsassaPkcs1V15Sha512 => {
            (SignMechanism::RsaPkcs, [digest_info_prefix(algorithm.hash()), digest].concat())
        }
        A::EcdsaSha256 | A::EcdsaSha384 | A::EcdsaSha512 => (SignMechanism::Ecdsa, digest.to_vec()),
        A::Ed25519Sha512 => return Err(BackendError::Internal("EdDSA is handled above".into())),
    })
}

/// A token's signature as the API returns it (DER for ECDSA).
pub(crate) fn from_token(spec: KeySpec, algorithm: SigningAlgorithm, raw: Vec<u8>) -> Result<Vec<u8>, BackendError> {
    match algorithm {
        SigningAlgorithm::EcdsaSha256 | SigningAlgorithm::EcdsaSha384 | SigningAlgorithm::EcdsaSha512 => {
            ecdsa_der_from_fixed(spec, &raw)
        }
        _ => Ok(raw),
    }
}

/// A caller's signature as the token verifies it; `None` when it cannot be valid (malformed DER).
pub(crate) fn to_token(spec: KeySpec, algorithm: SigningAlgorithm, signature: &[u8]) -> Option<Vec<u8>> {
    match algorithm {
        SigningAlgorithm::EcdsaSha256 | SigningAlgorithm::EcdsaSha384 | SigningAlgorithm::EcdsaSha512 => {
            ecdsa_fixed_from_der(spec, signature)
        }
        _ => Some(signature.to_vec()),
    }
}

/// `CKM_RSA_PKCS_OAEP` for an algorithm (MGF1 with the same hash, no label).
pub(crate) fn oaep(algorithm: EncryptionAlgorithm) -> Result<Mechanism<'static>, BackendError> {
    let (hash, mgf) = match algorithm {
        EncryptionAlgorithm::RsaesOaepSha1 => (MechanismType::SHA1, PkcsMgfType::MGF1_SHA1),
        EncryptionAlgorithm::RsaesOaepSha256 => (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256),
        EncryptionAlgorithm::SymmetricDefault => {
            return Err(BackendError::InvalidRequest("not an RSA algorithm".into()));
        }
    };
    Ok(Mechanism::RsaPkcsOaep(PkcsOaepParams::new(hash, mgf, PkcsOaepSource::empty())))
}

/// The HMAC mechanism of an algorithm.
pub(crate) fn hmac(algorithm: MacAlgorithm) -> Mechanism<'static> {
    match algorithm {
        MacAlgorithm::HmacSha256 => Mechanism::Sha256Hmac,
        MacAlgorithm::HmacSha384 => Mechanism::Sha384Hmac,
        MacAlgorithm::HmacSha512 => Mechanism::Sha512Hmac,
    }
}

/// The EC point inside `CKA_EC_POINT`, which tokens give DER-wrapped (an OCTET STRING) or raw.
pub(crate) fn ec_point(value: &[u8]) -> &[u8] {
    match value {
        [0x04, len, rest @ ..] if usize::from(*len) == rest.len() => rest,
        [0x04, 0x81, len, rest @ ..] if usize::from(*len) == rest.len() => rest,
        other => other,
    }
}

/// The curve public key of an SPKI (what a token takes as `CKA_EC_POINT`): its last bytes.
pub(crate) fn spki_point(spec: KeySpec, spki: &[u8]) -> Option<&[u8]> {
    let len = match spec {
        KeySpec::EccNistP256 => 65,
        KeySpec::EccNistP384 => 97,
        KeySpec::EccNistP521 => 133,
        KeySpec::EccNistEdwards25519 => 32,
        _ => return None,
    };
    spki.len().checked_sub(len).map(|start| &spki[start..])
}

/// `CKA_EC_PARAMS` of an EC spec.
pub(crate) fn ec_params(spec: KeySpec) -> Option<&'static [u8]> {
    match spec {
        KeySpec::EccNistP256 => Some(P256),
        KeySpec::EccNistP384 => Some(P384),
        KeySpec::EccNistP521 => Some(P521),
        KeySpec::EccNistEdwards25519 => Some(ED25519),
        _ => None,
    }
}
