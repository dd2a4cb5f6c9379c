//! Imported key material in process: RSA wrapping keys, the RSA-OAEP and RSA-OAEP + AES key
//! wrap (RFC 5649) unwrapping the customer did the other half of, and the checks that the
//! material is a key of the spec.

use aws_lc_rs::digest;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::hmac;
use aws_lc_rs::key_wrap::{AES_256, AesKek, KeyWrapPadded};
use aws_lc_rs::rsa::{KeySize, OaepPrivateDecryptingKey, PrivateDecryptingKey};
use aws_lc_rs::signature::{KeyPair, RsaKeyPair};
use keyward_backend::signature::spki_of;
use keyward_core::model::import::WrappingAlgorithm;
use keyward_core::model::key::KeySpec;
use keyward_core::ports::backend::BackendError;
use zeroize::Zeroizing;

use crate::signing;

/// A wrapping key pair: the PKCS#8 private key and the DER SubjectPublicKeyInfo.
pub(crate) struct WrappingPair {
    pub(crate) private_key: Zeroizing<Vec<u8>>,
    pub(crate) public_key: Vec<u8>,
}

/// A new RSA wrapping key (seconds for RSA-4096: call it off the request threads).
pub(crate) fn wrapping_pair(spec: KeySpec) -> Result<WrappingPair, BackendError> {
    let size = match spec {
        KeySpec::Rsa2048 => KeySize::Rsa2048,
        KeySpec::Rsa3072 => KeySize::Rsa3072,
        KeySpec::Rsa4096 => KeySize::Rsa4096,
        other => return Err(BackendError::InvalidRequest(format!("{other} is not a wrapping key spec"))),
    };
    let pair = RsaKeyPair::generate(size).map_err(|_| BackendError::Internal("RSA key generation failed".into()))?;
    let private_key = Zeroizing::new(
        AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair)
            .map_err(|_| BackendError::Internal("PKCS#8 encoding failed".into()))?
            .as_ref()
            .to_vec(),
    );
    let public_key = spki_of(spec, pair.public_key().as_ref())?;
    Ok(WrappingPair { private_key, public_key })
}

fn unwrap_failed(what: &str) -> BackendError {
    BackendError::DecryptFailed(format!("the encrypted key material did not unwrap ({what})"))
}

/// Undoes the customer's wrapping with the wrapping private key. RSAES-OAEP: the material is
/// one RSA block. RSA-AES key wrap: one RSA block holding an AES-256 key, then the material
/// under that key with AES key wrap with padding.
pub(crate) fn unwrap(
    private_key: &[u8],
    algorithm: WrappingAlgorithm,
    encrypted: &[u8],
) -> Result<Zeroizing<Vec<u8>>, BackendError> {
    let key = PrivateDecryptingKey::from_pkcs8(private_key)
        .map_err(|_| BackendError::Internal("the wrapping key does not parse".into()))?;
    let key = OaepPrivateDecryptingKey::new(key).map_err(|_| BackendError::Internal("RSA-OAEP setup".into()))?;
    let block = key.key_size_bytes();
    let (rsa_part, rest) = if algorithm.key_wrap() {
        if encrypted.len() <= block {
            return Err(unwrap_failed("too short for an RSA block and wrapped material"));
        }
        encrypted.split_at(block)
    } else {
        (encrypted, &[][..])
    };
    let first = signing::oaep_decrypt(&key, algorithm.oaep(), rsa_part).map_err(|_| unwrap_failed("RSA-OAEP"))?;
    if !algorithm.key_wrap() {
        return Ok(first);
    }
    if first.len() != 32 {
        return Err(unwrap_failed("the ephemeral key is not an AES-256 key"));
    }
    let kek = AesKek::new(&AES_256, &first).map_err(|_| unwrap_failed("AES key wrap key"))?;
    let mut out = Zeroizing::new(vec![0u8; rest.len()]);
    let n = kek.unwrap_with_padding(rest, &mut out).map_err(|_| unwrap_failed("AES key wrap"))?.len();
    out.truncate(n);
    Ok(out)
}

/// Checks the material is a key of `spec` and returns its fingerprint: for a key pair the
/// SHA-256 of its public key, for a secret key an HMAC of a fixed label under it.
pub(crate) fn check_material(spec: KeySpec, material: &[u8]) -> Result<Vec<u8>, BackendError> {
    let not_a_key = |why: String| BackendError::InvalidRequest(format!("the key material is not a {spec} key: {why}"));
    if spec == KeySpec::Aes256 {
        if material.len() != 32 {
            return Err(not_a_key(format!("{} bytes, not 32", material.len())));
        }
        return Ok(secret_fingerprint(material));
    }
    let secret = signing::parse(spec, material).map_err(|e| not_a_key(e.to_string()))?;
    if spec.is_asymmetric() {
        let spki = secret.public_key(spec)?;
        return Ok(digest::digest(&digest::SHA256, &spki).as_ref().to_vec());
    }
    Ok(secret_fingerprint(material))
}

fn secret_fingerprint(material: &[u8]) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, material);
    hmac::sign(&key, b"keyward/import/fingerprint/v1").as_ref().to_vec()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use aws_lc_rs::rsa::{OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OaepPublicEncryptingKey, PublicEncryptingKey};

    use super::*;

    fn wrap(public_key: &[u8], algorithm: WrappingAlgorithm, material: &[u8]) -> Vec<u8> {
        let key = OaepPublicEncryptingKey::new(PublicEncryptingKey::from_der(public_key).unwrap()).unwrap();
        let oaep = match algorithm.oaep() {
            keyward_core::model::signing::EncryptionAlgorithm::RsaesOaepSha1 => &OAEP_SHA1_MGF1SHA1,
            _ => &OAEP_SHA256_MGF1SHA256,
        };
        let mut block = vec![0u8; key.ciphertext_size()];
        if !algorithm.key_wrap() {
            let n = key.encrypt(oaep, material, &mut block, None).unwrap().len();
            block.truncate(n);
            return block;
        }
        let aes = [0x42u8; 32];
        key.encrypt(oaep, &aes, &mut block, None).unwrap();
        let mut wrapped = vec![0u8; material.len() + 16];
        let n = AesKek::new(&AES_256, &aes).unwrap().wrap_with_padding(material, &mut wrapped).unwrap().len();
        wrapped.truncate(n);
        block.extend_from_slice(&wrapped);
        block
    }

    #[test]
    fn material_wrapped_each_way_unwraps_and_anything_else_does_not() {
        let pair = wrapping_pair(KeySpec::Rsa2048).unwrap();
        let material = [7u8; 32];
        for algorithm in WrappingAlgorithm::ALL {
            let encrypted = wrap(&pair.public_key, algorithm, &material);
            assert_eq!(unwrap(&pair.private_key, algorithm, &encrypted).unwrap().as_slice(), material, "{algorithm}");
            let mut flipped = encrypted.clone();
            let last = flipped.len() - 1;
            flipped[last] ^= 1;
            assert!(matches!(unwrap(&pair.private_key, algorithm, &flipped), Err(BackendError::DecryptFailed(_))));
            let other = match algorithm {
                WrappingAlgorithm::RsaesOaepSha1 => WrappingAlgorithm::RsaesOaepSha256,
                WrappingAlgorithm::RsaesOaepSha256 => WrappingAlgorithm::RsaesOaepSha1,
                WrappingAlgorithm::RsaAesKeyWrapSha1 => WrappingAlgorithm::RsaAesKeyWrapSha256,
                WrappingAlgorithm::RsaAesKeyWrapSha256 => WrappingAlgorithm::RsaAesKeyWrapSha1,
            };
            assert!(unwrap(&pair.private_key, other, &encrypted).is_err(), "{algorithm} read as {other}");
        }
        assert!(unwrap(&pair.private_key, WrappingAlgorithm::RsaAesKeyWrapSha256, &[1, 2, 3]).is_err());
    }

    #[test]
    fn material_must_be_a_key_of_the_spec_and_its_fingerprint_is_stable() {
        assert!(check_material(KeySpec::Aes256, &[1u8; 31]).is_err());
        let a = check_material(KeySpec::Aes256, &[1u8; 32]).unwrap();
        assert_eq!(a, check_material(KeySpec::Aes256, &[1u8; 32]).unwrap());
        assert_ne!(a, check_material(KeySpec::Aes256, &[2u8; 32]).unwrap());
        assert!(check_material(KeySpec::Hmac256, &[1u8; 16]).is_err(), "too short for HMAC_256");
        assert!(check_material(KeySpec::Hmac256, &[1u8; 48]).is_ok());
        let ec = signing::generate(KeySpec::EccNistP256, |_| Ok(())).unwrap();
        assert!(check_material(KeySpec::EccNistP256, &ec).is_ok());
        assert!(check_material(KeySpec::EccNistP384, &ec).is_err(), "a P-256 key is not ECC_NIST_P384");
        assert!(check_material(KeySpec::EccNistP256, b"not der").is_err());
    }
}
