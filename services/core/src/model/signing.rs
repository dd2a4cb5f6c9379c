//! Signing and MAC algorithms, with AWS KMS's names, and which key specs each works with.

use std::fmt;
use std::str::FromStr;

use super::ids::truncate;
use super::key::KeySpec;
use crate::error::{Error, ErrorCode};

/// The hash a signing or MAC algorithm uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hash {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl Hash {
    /// The digest length in bytes.
    pub fn len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }

    /// Never empty; present so `len` reads as a length.
    pub fn is_empty(self) -> bool {
        false
    }
}

/// A signing algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs, reason = "each variant is the AWS KMS algorithm of the same name")]
pub enum SigningAlgorithm {
    RsassaPssSha256,
    RsassaPssSha384,
    RsassaPssSha512,
    RsassaPkcs1V15Sha256,
    RsassaPkcs1V15Sha384,
    RsassaPkcs1V15Sha512,
    EcdsaSha256,
    EcdsaSha384,
    EcdsaSha512,
    Ed25519Sha512,
}

impl SigningAlgorithm {
    /// Every algorithm.
    pub const ALL: [Self; 10] = [
        Self::RsassaPssSha256,
        Self::RsassaPssSha384,
        Self::RsassaPssSha512,
        Self::RsassaPkcs1V15Sha256,
        Self::RsassaPkcs1V15Sha384,
        Self::RsassaPkcs1V15Sha512,
        Self::EcdsaSha256,
        Self::EcdsaSha384,
        Self::EcdsaSha512,
        Self::Ed25519Sha512,
    ];

    /// The algorithm's name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RsassaPssSha256 => "RSASSA_PSS_SHA_256",
            Self::RsassaPssSha384 => "RSASSA_PSS_SHA_384",
            Self::RsassaPssSha512 => "RSASSA_PSS_SHA_512",
            Self::RsassaPkcs1V15Sha256 => "RSASSA_PKCS1_V1_5_SHA_256",
            Self::RsassaPkcs1V15Sha384 => "RSASSA_PKCS1_V1_5_SHA_384",
            Self::RsassaPkcs1V15Sha512 => "RSASSA_PKCS1_V1_5_SHA_512",
            Self::EcdsaSha256 => "ECDSA_SHA_256",
            Self::EcdsaSha384 => "ECDSA_SHA_384",
            Self::EcdsaSha512 => "ECDSA_SHA_512",
            Self::Ed25519Sha512 => "ED25519_SHA_512",
        }
    }

    /// The hash the message is digested with.
    pub fn hash(self) -> Hash {
        match self {
            Self::RsassaPssSha256 | Self::RsassaPkcs1V15Sha256 | Self::EcdsaSha256 => Hash::Sha256,
            Self::RsassaPssSha384 | Self::RsassaPkcs1V15Sha384 | Self::EcdsaSha384 => Hash::Sha384,
            Self::RsassaPssSha512 | Self::RsassaPkcs1V15Sha512 | Self::EcdsaSha512 | Self::Ed25519Sha512 => {
                Hash::Sha512
            }
        }
    }

    /// The algorithms a key spec signs with (AWS KMS pairs each curve with one hash).
    pub fn for_spec(spec: KeySpec) -> &'static [Self] {
        match spec {
            KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => &Self::ALL[..6],
            KeySpec::EccNistP256 => &[Self::EcdsaSha256],
            KeySpec::EccNistP384 => &[Self::EcdsaSha384],
            KeySpec::EccNistP521 => &[Self::EcdsaSha512],
            KeySpec::EccNistEdwards25519 => &[Self::Ed25519Sha512],
            KeySpec::Aes256 | KeySpec::Hmac256 | KeySpec::Hmac384 | KeySpec::Hmac512 => &[],
        }
    }

    /// Ok when a key of `spec` signs with this algorithm and the message type fits it.
    pub fn check(self, spec: KeySpec, message: &Message<'_>) -> Result<(), Error> {
        if !Self::for_spec(spec).contains(&self) {
            return Err(Error::new(
                ErrorCode::InvalidKeyUsage,
                format!(
                    "a {spec} key does not sign with {self}; it signs with {}",
                    Self::for_spec(spec).iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        match message {
            Message::Raw(m) if m.len() > MAX_MESSAGE => Err(Error::new(
                ErrorCode::PayloadTooLarge,
                format!("`message` is {} bytes; at most {MAX_MESSAGE}, or send its digest as DIGEST", m.len()),
            )),
            Message::Raw([]) => Err(Error::invalid("`message` must not be empty")),
            Message::Digest(_) if self == Self::Ed25519Sha512 => {
                Err(Error::invalid("ED25519_SHA_512 signs RAW messages only (EdDSA hashes the message itself)"))
            }
            Message::Digest(d) if d.len() != self.hash().len() => {
                Err(Error::invalid(format!("a DIGEST for {self} is {} bytes, not {}", self.hash().len(), d.len())))
            }
            _ => Ok(()),
        }
    }
}

impl FromStr for SigningAlgorithm {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::ALL.iter().copied().find(|a| a.as_str() == s).ok_or_else(|| {
            Error::invalid(format!(
                "unknown signing algorithm `{}`; one of {}",
                truncate(s),
                Self::ALL.map(Self::as_str).join(", ")
            ))
        })
    }
}

impl fmt::Display for SigningAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Largest RAW message Sign, Verify and the MAC operations take.
pub const MAX_MESSAGE: usize = 4096;

/// Whether a Sign/Verify message is the message itself or its digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// The message; the backend hashes it.
    Raw,
    /// The message's digest under the algorithm's hash.
    Digest,
}

impl MessageType {
    /// The type's name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Raw => "RAW",
            Self::Digest => "DIGEST",
        }
    }
}

impl FromStr for MessageType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "RAW" => Ok(Self::Raw),
            "DIGEST" => Ok(Self::Digest),
            other => Err(Error::invalid(format!("unknown message type `{}`; RAW or DIGEST", truncate(other)))),
        }
    }
}

/// A message to sign or verify, as the caller gave it.
#[derive(Debug, Clone, Copy)]
pub enum Message<'a> {
    /// The message itself.
    Raw(&'a [u8]),
    /// Its digest.
    Digest(&'a [u8]),
}

impl<'a> Message<'a> {
    /// The message from its bytes and type.
    pub fn new(bytes: &'a [u8], kind: MessageType) -> Self {
        match kind {
            MessageType::Raw => Self::Raw(bytes),
            MessageType::Digest => Self::Digest(bytes),
        }
    }

    /// The message's type.
    pub fn kind(&self) -> MessageType {
        match self {
            Self::Raw(_) => MessageType::Raw,
            Self::Digest(_) => MessageType::Digest,
        }
    }

    /// The bytes as given.
    pub fn bytes(&self) -> &'a [u8] {
        match self {
            Self::Raw(b) | Self::Digest(b) => b,
        }
    }
}

/// A MAC algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs, reason = "each variant is the AWS KMS algorithm of the same name")]
pub enum MacAlgorithm {
    HmacSha256,
    HmacSha384,
    HmacSha512,
}

impl MacAlgorithm {
    /// Every algorithm.
    pub const ALL: [Self; 3] = [Self::HmacSha256, Self::HmacSha384, Self::HmacSha512];

    /// The algorithm's name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HmacSha256 => "HMAC_SHA_256",
            Self::HmacSha384 => "HMAC_SHA_384",
            Self::HmacSha512 => "HMAC_SHA_512",
        }
    }

    /// The hash.
    pub fn hash(self) -> Hash {
        match self {
            Self::HmacSha256 => Hash::Sha256,
            Self::HmacSha384 => Hash::Sha384,
            Self::HmacSha512 => Hash::Sha512,
        }
    }

    /// The key sizes in bytes a key of this algorithm may have (AWS KMS's import bounds: from
    /// the hash's length to its block size); generated keys are the hash's length.
    pub fn key_sizes(self) -> std::ops::RangeInclusive<usize> {
        match self {
            Self::HmacSha256 => 32..=64,
            Self::HmacSha384 => 48..=128,
            Self::HmacSha512 => 64..=128,
        }
    }

    /// The algorithms a key spec MACs with (one each, as in AWS KMS).
    pub fn for_spec(spec: KeySpec) -> &'static [Self] {
        match spec {
            KeySpec::Hmac256 => &[Self::HmacSha256],
            KeySpec::Hmac384 => &[Self::HmacSha384],
            KeySpec::Hmac512 => &[Self::HmacSha512],
            _ => &[],
        }
    }

    /// Ok when a key of `spec` MACs with this algorithm and the message fits.
    pub fn check(self, spec: KeySpec, message: &[u8]) -> Result<(), Error> {
        if !Self::for_spec(spec).contains(&self) {
            return Err(Error::new(ErrorCode::InvalidKeyUsage, format!("a {spec} key does not MAC with {self}")));
        }
        if message.is_empty() {
            return Err(Error::invalid("`message` must not be empty"));
        }
        if message.len() > MAX_MESSAGE {
            return Err(Error::new(
                ErrorCode::PayloadTooLarge,
                format!("`message` is {} bytes; at most {MAX_MESSAGE}", message.len()),
            ));
        }
        Ok(())
    }
}

impl FromStr for MacAlgorithm {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::ALL.iter().copied().find(|a| a.as_str() == s).ok_or_else(|| {
            Error::invalid(format!(
                "unknown MAC algorithm `{}`; one of HMAC_SHA_256, HMAC_SHA_384, HMAC_SHA_512",
                truncate(s)
            ))
        })
    }
}

impl fmt::Display for MacAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An encryption algorithm of an ENCRYPT_DECRYPT key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs, reason = "each variant is the AWS KMS algorithm of the same name")]
pub enum EncryptionAlgorithm {
    /// AES-256-GCM into a Keyward blob.
    SymmetricDefault,
    RsaesOaepSha1,
    RsaesOaepSha256,
}

impl EncryptionAlgorithm {
    /// The algorithm's name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SymmetricDefault => "SYMMETRIC_DEFAULT",
            Self::RsaesOaepSha1 => "RSAES_OAEP_SHA_1",
            Self::RsaesOaepSha256 => "RSAES_OAEP_SHA_256",
        }
    }

    /// The algorithms a key spec encrypts with.
    pub fn for_spec(spec: KeySpec) -> &'static [Self] {
        match spec {
            KeySpec::Aes256 => &[Self::SymmetricDefault],
            s if s.is_rsa() => &[Self::RsaesOaepSha1, Self::RsaesOaepSha256],
            _ => &[],
        }
    }

    /// The largest plaintext RSAES-OAEP takes under a key of `spec`: the modulus length less
    /// twice the hash length less two (RFC 8017, 7.1.1).
    pub fn max_plaintext(self, spec: KeySpec) -> usize {
        let hash = match self {
            Self::RsaesOaepSha1 => 20,
            Self::RsaesOaepSha256 => 32,
            Self::SymmetricDefault => return 4096,
        };
        (spec.bits() / 8).saturating_sub(2 * hash + 2)
    }

    /// Ok when a key of `spec` encrypts with this algorithm and the plaintext fits.
    pub fn check(self, spec: KeySpec, plaintext_len: usize) -> Result<(), Error> {
        if !Self::for_spec(spec).contains(&self) {
            return Err(Error::new(ErrorCode::InvalidKeyUsage, format!("a {spec} key does not encrypt with {self}")));
        }
        if plaintext_len == 0 {
            return Err(Error::invalid("`plaintext` must not be empty"));
        }
        let max = self.max_plaintext(spec);
        if plaintext_len > max {
            return Err(Error::new(
                ErrorCode::PayloadTooLarge,
                format!("{self} under a {spec} key takes at most {max} bytes of plaintext, not {plaintext_len}"),
            ));
        }
        Ok(())
    }
}

impl FromStr for EncryptionAlgorithm {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        [Self::SymmetricDefault, Self::RsaesOaepSha1, Self::RsaesOaepSha256]
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "unknown encryption algorithm `{}`; one of SYMMETRIC_DEFAULT, RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256",
                    truncate(s)
                ))
            })
    }
}

impl fmt::Display for EncryptionAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spec_signs_or_macs_with_what_aws_lists() {
        for spec in KeySpec::ALL {
            let signs = !SigningAlgorithm::for_spec(spec).is_empty();
            let macs = !MacAlgorithm::for_spec(spec).is_empty();
            assert_eq!(signs, spec.allows(crate::model::key::KeyUsage::SignVerify), "{spec}");
            assert_eq!(macs, spec.usage() == crate::model::key::KeyUsage::GenerateVerifyMac, "{spec}");
        }
        for a in SigningAlgorithm::ALL {
            assert_eq!(a.as_str().parse::<SigningAlgorithm>().ok(), Some(a));
        }
    }

    #[test]
    fn oaep_plaintext_limits_are_aws_kms_s() {
        use EncryptionAlgorithm::{RsaesOaepSha1, RsaesOaepSha256};
        let limits: Vec<usize> = [KeySpec::Rsa2048, KeySpec::Rsa3072, KeySpec::Rsa4096]
            .into_iter()
            .flat_map(|s| [RsaesOaepSha1.max_plaintext(s), RsaesOaepSha256.max_plaintext(s)])
            .collect();
        assert_eq!(limits, [214, 190, 342, 318, 470, 446]);
        assert_eq!(RsaesOaepSha256.check(KeySpec::Rsa2048, 191).map_err(|e| e.code()), Err(ErrorCode::PayloadTooLarge));
        assert_eq!(RsaesOaepSha1.check(KeySpec::EccNistP256, 1).map_err(|e| e.code()), Err(ErrorCode::InvalidKeyUsage));
    }

    #[test]
    fn digests_must_have_the_hash_length_and_eddsa_takes_raw_only() {
        let d32 = [0u8; 32];
        assert!(SigningAlgorithm::EcdsaSha256.check(KeySpec::EccNistP256, &Message::Digest(&d32)).is_ok());
        let e = SigningAlgorithm::RsassaPssSha384.check(KeySpec::Rsa2048, &Message::Digest(&d32));
        assert_eq!(e.map_err(|e| e.code()), Err(ErrorCode::InvalidRequest));
        let e = SigningAlgorithm::Ed25519Sha512.check(KeySpec::EccNistEdwards25519, &Message::Digest(&[0; 64]));
        assert_eq!(e.map_err(|e| e.code()), Err(ErrorCode::InvalidRequest));
        let e = SigningAlgorithm::EcdsaSha384.check(KeySpec::EccNistP256, &Message::Raw(b"m"));
        assert_eq!(e.map_err(|e| e.code()), Err(ErrorCode::InvalidKeyUsage));
        let big = vec![0u8; MAX_MESSAGE + 1];
        let e = SigningAlgorithm::EcdsaSha256.check(KeySpec::EccNistP256, &Message::Raw(&big));
        assert_eq!(e.map_err(|e| e.code()), Err(ErrorCode::PayloadTooLarge));
    }
}
