//! Imported key material, unwrapped inside the token (`C_UnwrapKey`): the customer's material
//! is never in Keyward's memory. The wrapping key pair is generated in the token; its private
//! half (unwrap only, sensitive) is a token object whose label binds it to one import token,
//! and it is destroyed after a successful import or, past its expiry, by the next import.
//!
//! Imports AES-256 and HMAC keys and RSA private keys (whose public half is read back from
//! the unwrapped key). EC keys are not imported: a token does not give the public point of an
//! unwrapped EC private key.

use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use keyward_core::model::import::WrappingAlgorithm;
use keyward_core::model::key::{KeySpec, KeyUsage};
use keyward_core::model::signing::{EncryptionAlgorithm, MacAlgorithm};
use keyward_core::ports::backend::BackendError;
use sha2::{Digest, Sha256};

use crate::signing;
use crate::token::{Lease, OpError, OpResult};

/// Stored wrapping state format: `1 || CKA_ID (16)`.
const STATE_FORMAT: u8 = 1;
const LABEL_PREFIX: &str = "keyward-import:";
const FINGERPRINT_LABEL: &[u8] = b"keyward/import/fingerprint/v1";

/// The wrapping algorithms a token can unwrap with: those whose RSA-OAEP hash it takes, and the
/// key-wrap ones only with `CKM_AES_KEY_WRAP_PAD`.
pub(crate) fn algorithms(oaep: &[EncryptionAlgorithm], mechanisms: &[MechanismType]) -> Vec<WrappingAlgorithm> {
    if !mechanisms.contains(&MechanismType::RSA_PKCS_KEY_PAIR_GEN) {
        return Vec::new();
    }
    let pad = mechanisms.contains(&MechanismType::AES_KEY_WRAP_PAD);
    WrappingAlgorithm::ALL.into_iter().filter(|a| oaep.contains(&a.oaep()) && (pad || !a.key_wrap())).collect()
}

/// The specs a token imports: AES, and HMAC and RSA where it holds them.
pub(crate) fn specs(held: &[KeySpec]) -> Vec<KeySpec> {
    held.iter()
        .copied()
        .filter(|s| *s == KeySpec::Aes256 || s.is_rsa() || s.usage() == KeyUsage::GenerateVerifyMac)
        .collect()
}

/// The label that binds a wrapping key to one import: its expiry and a hash of the binding.
fn label(binding: &[u8], expires_unix: i64) -> String {
    let hash = Sha256::digest(binding);
    format!("{LABEL_PREFIX}{expires_unix}:{}", hex::encode(&hash[..16]))
}

fn expiry_of(label: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(label).ok()?.strip_prefix(LABEL_PREFIX)?;
    s.split(':').next()?.parse().ok()
}

/// Generates the wrapping key pair in the token. Returns the state and the public modulus and
/// exponent. Expired wrapping keys of earlier imports are destroyed first.
pub(crate) fn prepare(
    lease: &Lease<'_>,
    spec: KeySpec,
    binding: &[u8],
    expires_unix: i64,
    now_unix: i64,
) -> OpResult<(Vec<u8>, Vec<u8>, Vec<u8>)> {
    sweep(&lease.session, now_unix);
    let mut id = vec![0u8; 16];
    lease.session.generate_random_slice(&mut id)?;
    let public = [
        Attribute::Class(ObjectClass::PUBLIC_KEY),
        Attribute::KeyType(KeyType::RSA),
        Attribute::Token(false),
        Attribute::ModulusBits((spec.bits() as u64).into()),
        Attribute::PublicExponent(vec![1, 0, 1]),
        Attribute::Encrypt(true),
        Attribute::Wrap(true),
    ];
    let private = [
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::KeyType(KeyType::RSA),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Unwrap(true),
        Attribute::Decrypt(false),
        Attribute::Sign(false),
        Attribute::Id(id.clone()),
        Attribute::Label(label(binding, expires_unix).into_bytes()),
    ];
    let (pk, _sk) = lease.session.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private)?;
    let attrs = lease.session.get_attributes(pk, &[AttributeType::Modulus, AttributeType::PublicExponent]);
    let _ = lease.session.destroy_object(pk);
    let (n, e) = match attrs?.as_slice() {
        [Attribute::Modulus(n), Attribute::PublicExponent(e)] => (n.clone(), e.clone()),
        _ => return Err(OpError::Backend(BackendError::Internal("the token gave no RSA public key".into()))),
    };
    let mut state = vec![STATE_FORMAT];
    state.extend_from_slice(&id);
    Ok((state, n, e))
}

/// Destroys wrapping keys whose imports have expired (best effort: the next call retries).
fn sweep(session: &Session, now_unix: i64) {
    let Ok(found) = session.find_objects(&[
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::Token(true),
        Attribute::Unwrap(true),
    ]) else {
        return;
    };
    for handle in found {
        let expired = session
            .get_attributes(handle, &[AttributeType::Label])
            .ok()
            .and_then(|a| match a.as_slice() {
                [Attribute::Label(l)] => expiry_of(l),
                _ => None,
            })
            .is_some_and(|expires| expires <= now_unix);
        if expired {
            let _ = session.destroy_object(handle);
        }
    }
}

fn state_id(state: &[u8]) -> Result<Vec<u8>, BackendError> {
    match state {
        [STATE_FORMAT, id @ ..] if id.len() == 16 => Ok(id.to_vec()),
        _ => Err(BackendError::InvalidRequest("the import token is not this backend's".into())),
    }
}

/// The wrapping private key of an import, if it is still in the token and bound to `binding`.
fn wrapping_key(session: &Session, state: &[u8], binding: &[u8], expires_unix: i64) -> OpResult<ObjectHandle> {
    let id = state_id(state)?;
    let found = session.find_objects(&[
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::Token(true),
        Attribute::Id(id),
        Attribute::Label(label(binding, expires_unix).into_bytes()),
    ])?;
    found.first().copied().ok_or_else(|| {
        OpError::Backend(BackendError::InvalidRequest(
            "the import token's wrapping key is not in the token (used, expired or never made here)".into(),
        ))
    })
}

/// Destroys an import's wrapping key.
pub(crate) fn discard(session: &Session, state: &[u8]) -> OpResult<()> {
    let id = state_id(state)?;
    for handle in session.find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY), Attribute::Id(id)])? {
        session.destroy_object(handle)?;
    }
    Ok(())
}

/// What one import unwraps into.
pub(crate) struct Target {
    pub(crate) spec: KeySpec,
    pub(crate) usage: KeyUsage,
    pub(crate) algorithm: WrappingAlgorithm,
    pub(crate) id: Vec<u8>,
    pub(crate) label: Vec<u8>,
}

/// The template of the unwrapped key: sensitive and never extractable, for its usage only.
fn template(t: &Target) -> Vec<Attribute> {
    let mut attrs = vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Id(t.id.clone()),
        Attribute::Label(t.label.clone()),
        Attribute::Unwrap(false),
    ];
    if !t.spec.is_rsa() {
        // A private key has no CKA_WRAP.
        attrs.push(Attribute::Wrap(false));
    }
    if t.spec == KeySpec::Aes256 {
        attrs.extend([
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
        ]);
    } else if t.spec.is_rsa() {
        let encrypts = t.usage == KeyUsage::EncryptDecrypt;
        attrs.extend([
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::KeyType(KeyType::RSA),
            Attribute::Sign(!encrypts),
            Attribute::Decrypt(encrypts),
        ]);
    } else {
        attrs.extend([
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::Sign(true),
            Attribute::Verify(true),
        ]);
    }
    attrs
}

fn unwrap_failed(e: cryptoki::error::Error) -> OpError {
    use cryptoki::error::{Error as CkError, RvError};
    match e {
        CkError::Pkcs11(
            RvError::WrappedKeyInvalid
            | RvError::WrappedKeyLenRange
            | RvError::EncryptedDataInvalid
            | RvError::EncryptedDataLenRange
            | RvError::GeneralError
            | RvError::FunctionFailed,
            _,
        ) => OpError::Backend(BackendError::DecryptFailed("the token could not unwrap the key material".into())),
        CkError::Pkcs11(RvError::TemplateInconsistent | RvError::AttributeValueInvalid, _) => {
            OpError::Backend(BackendError::InvalidRequest("the key material is not a key of the key's spec".into()))
        }
        other => OpError::Ck(other),
    }
}

/// Unwraps `encrypted` into the target key inside the token; returns the material's
/// fingerprint. Leftovers of an earlier import under the same id are destroyed first.
pub(crate) fn unwrap(
    lease: &Lease<'_>,
    t: &Target,
    state: &[u8],
    binding: &[u8],
    expires_unix: i64,
    encrypted: &[u8],
) -> OpResult<Vec<u8>> {
    let session = &lease.session;
    let wrapping = wrapping_key(session, state, binding, expires_unix)?;
    for leftover in session.find_objects(&[Attribute::Token(true), Attribute::Id(t.id.clone())])? {
        session.destroy_object(leftover)?;
    }
    lease.forget(&t.id);
    let oaep = signing::oaep(t.algorithm.oaep())?;
    let mut wrapped_len = None;
    let handle = if t.algorithm.key_wrap() {
        let modulus = match session.get_attributes(wrapping, &[AttributeType::Modulus])?.as_slice() {
            [Attribute::Modulus(n)] => n.len(),
            _ => return Err(OpError::Backend(BackendError::Internal("wrapping key modulus".into()))),
        };
        if encrypted.len() <= modulus {
            return Err(OpError::Backend(BackendError::DecryptFailed("too short for RSA-AES key wrap".into())));
        }
        let (rsa_part, wrapped) = encrypted.split_at(modulus);
        wrapped_len = Some(wrapped.len());
        let ephemeral = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(false),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Unwrap(true),
        ];
        let aes = session.unwrap_key(&oaep, wrapping, rsa_part, &ephemeral).map_err(unwrap_failed)?;
        let unwrapped = session.unwrap_key(&Mechanism::AesKeyWrapPad, aes, wrapped, &template(t));
        let _ = session.destroy_object(aes);
        unwrapped.map_err(unwrap_failed)?
    } else {
        session.unwrap_key(&oaep, wrapping, encrypted, &template(t)).map_err(unwrap_failed)?
    };
    match finish(session, handle, t, wrapped_len) {
        Ok(fingerprint) => Ok(fingerprint),
        Err(e) => {
            for object in session.find_objects(&[Attribute::Token(true), Attribute::Id(t.id.clone())])? {
                let _ = session.destroy_object(object);
            }
            Err(e)
        }
    }
}

/// Checks the unwrapped key fits the spec, adds an RSA key's public half, and computes the
/// fingerprint: GCM's tag over a fixed label with a fixed nonce (AES), an HMAC of the label
/// (HMAC), the SHA-256 of the public key (RSA).
fn finish(session: &Session, handle: ObjectHandle, t: &Target, wrapped_len: Option<usize>) -> OpResult<Vec<u8>> {
    let not_of_spec = |why: String| {
        OpError::Backend(BackendError::InvalidRequest(format!("the key material is not a {} key: {why}", t.spec)))
    };
    if t.spec == KeySpec::Aes256 {
        let len = secret_len(session, handle, wrapped_len, 32..=32)?;
        if !(len == 32 || len == KWP_32) {
            return Err(not_of_spec(format!("{len} bytes, not 32")));
        }
        return Ok(crate::backend::gcm(session, handle, &[0u8; 12], FINGERPRINT_LABEL, &[], false)?);
    }
    if t.spec.is_rsa() {
        let (n, e) = match session
            .get_attributes(handle, &[AttributeType::Modulus, AttributeType::PublicExponent])?
            .as_slice()
        {
            [Attribute::Modulus(n), Attribute::PublicExponent(e)] => (n.clone(), e.clone()),
            _ => return Err(not_of_spec("not an RSA private key".into())),
        };
        let bits = n.len() * 8 - n.first().map_or(8, |b| b.leading_zeros() as usize);
        if bits != t.spec.bits() {
            return Err(not_of_spec(format!("an RSA key of {bits} bits")));
        }
        let encrypts = t.usage == KeyUsage::EncryptDecrypt;
        session.create_object(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::KeyType(KeyType::RSA),
            Attribute::Token(true),
            Attribute::Modulus(n.clone()),
            Attribute::PublicExponent(e.clone()),
            Attribute::Verify(!encrypts),
            Attribute::Encrypt(encrypts),
            Attribute::Id(t.id.clone()),
            Attribute::Label(t.label.clone()),
        ])?;
        let spki = keyward_backend::signature::rsa_spki(&n, &e)?;
        return Ok(Sha256::digest(&spki).to_vec());
    }
    let algorithm = MacAlgorithm::for_spec(t.spec)
        .first()
        .copied()
        .ok_or_else(|| OpError::Backend(BackendError::Unsupported(format!("importing {} keys", t.spec))))?;
    let sizes = algorithm.key_sizes();
    let len = secret_len(session, handle, wrapped_len, sizes.clone())?;
    if !sizes.contains(&len) && len != KWP_IN_RANGE {
        return Err(not_of_spec(format!("{len} bytes")));
    }
    Ok(session.sign(&signing::hmac(algorithm), handle, FINGERPRINT_LABEL)?)
}

/// Stands for "the AES key wrap output is that of a 32-byte key" when the token cannot say.
const KWP_32: usize = usize::MAX;
/// Stands for "the AES key wrap output is that of a key of the allowed lengths".
const KWP_IN_RANGE: usize = usize::MAX - 1;

/// An unwrapped secret key's length. Tokens are to record `CKA_VALUE_LEN` on unwrap, but some
/// (SoftHSM2 2.6) record 0 and refuse it in the template; then the length is read from the AES
/// key wrap output (8 bytes more than the key rounded up to 8; AES keys are 16, 24 or 32
/// bytes, so 40 bytes means 32), and an RSA-OAEP-only import, whose length nothing shows, is
/// refused.
fn secret_len(
    session: &Session,
    handle: ObjectHandle,
    wrapped_len: Option<usize>,
    sizes: std::ops::RangeInclusive<usize>,
) -> OpResult<usize> {
    let recorded = match session.get_attributes(handle, &[AttributeType::ValueLen])?.as_slice() {
        [Attribute::ValueLen(l)] => usize::try_from(u64::from(*l)).unwrap_or(0),
        _ => 0,
    };
    if recorded != 0 {
        return Ok(recorded);
    }
    let Some(wrapped) = wrapped_len else {
        return Err(OpError::Backend(BackendError::InvalidRequest(
            "this token does not report an unwrapped key's length: wrap secret keys with RSA_AES_KEY_WRAP_SHA_1 \
             (or _SHA_256) so it can be checked"
                .into(),
        )));
    };
    let padded = |n: usize| 8 + n.div_ceil(8) * 8;
    if *sizes.start() == 32 && *sizes.end() == 32 {
        return Ok(if wrapped == padded(32) { KWP_32 } else { wrapped.saturating_sub(8) });
    }
    Ok(if (padded(*sizes.start())..=padded(*sizes.end())).contains(&wrapped) {
        KWP_IN_RANGE
    } else {
        wrapped.saturating_sub(8)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn a_label_carries_its_expiry_and_differs_per_binding() {
        let a = label(b"one", 1_900_000_000);
        assert_eq!(expiry_of(a.as_bytes()), Some(1_900_000_000));
        assert_ne!(a, label(b"two", 1_900_000_000));
        assert_eq!(expiry_of(b"keyward:some-key:v1"), None);
    }

    #[test]
    fn algorithms_follow_the_token() {
        let sha1 = [EncryptionAlgorithm::RsaesOaepSha1];
        let all = [MechanismType::RSA_PKCS_KEY_PAIR_GEN, MechanismType::AES_KEY_WRAP_PAD];
        assert_eq!(algorithms(&sha1, &all), [WrappingAlgorithm::RsaesOaepSha1, WrappingAlgorithm::RsaAesKeyWrapSha1]);
        assert_eq!(algorithms(&sha1, &all[..1]), [WrappingAlgorithm::RsaesOaepSha1]);
        assert!(algorithms(&sha1, &[]).is_empty());
        let both = [EncryptionAlgorithm::RsaesOaepSha1, EncryptionAlgorithm::RsaesOaepSha256];
        assert_eq!(algorithms(&both, &all).len(), 4);
    }
}
