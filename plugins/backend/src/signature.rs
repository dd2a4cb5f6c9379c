//! Signature verification and public-key encoding shared by the backends: a version's public
//! key is a DER SubjectPublicKeyInfo, and verifying with it is the same arithmetic wherever
//! the private half lives (aws-lc-rs does it).

use aws_lc_rs::digest;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{self, ParsedPublicKey, VerificationAlgorithm};
use keyward_core::model::key::KeySpec;
use keyward_core::model::signing::{Hash, Message, SigningAlgorithm};
use keyward_core::ports::backend::BackendError;

/// The digest algorithm of a hash.
pub fn digest_algorithm(hash: Hash) -> &'static digest::Algorithm {
    match hash {
        Hash::Sha256 => &digest::SHA256,
        Hash::Sha384 => &digest::SHA384,
        Hash::Sha512 => &digest::SHA512,
    }
}

/// The message's digest under the algorithm's hash: computed for RAW, taken as given for DIGEST.
pub fn message_digest(algorithm: SigningAlgorithm, message: Message<'_>) -> Result<digest::Digest, BackendError> {
    let alg = digest_algorithm(algorithm.hash());
    match message {
        Message::Raw(m) => Ok(digest::digest(alg, m)),
        Message::Digest(d) => digest::Digest::import_less_safe(d, alg)
            .map_err(|_| BackendError::InvalidRequest(format!("a {algorithm} digest is {} bytes", alg.output_len()))),
    }
}

/// The verification algorithm for a spec and signing algorithm.
pub fn verification_algorithm(
    spec: KeySpec,
    algorithm: SigningAlgorithm,
) -> Result<&'static dyn VerificationAlgorithm, BackendError> {
    use SigningAlgorithm as A;
    Ok(match (spec, algorithm) {
        (s, A::RsassaPssSha256) if s.is_rsa() => &signature::RSA_PSS_2048_8192_SHA256,
        (s, A::RsassaPssSha384) if s.is_rsa() => &signature::RSA_PSS_2048_8192_SHA384,
        (s, A::RsassaPssSha512) if s.is_rsa() => &signature::RSA_PSS_2048_8192_SHA512,
        (s, A::RsassaPkcs1V15Sha256) if s.is_rsa() => &signature::RSA_PKCS1_2048_8192_SHA256,
        (s, A::RsassaPkcs1V15Sha384) if s.is_rsa() => &signature::RSA_PKCS1_2048_8192_SHA384,
        (s, A::RsassaPkcs1V15Sha512) if s.is_rsa() => &signature::RSA_PKCS1_2048_8192_SHA512,
        (KeySpec::EccNistP256, A::EcdsaSha256) => &signature::ECDSA_P256_SHA256_ASN1,
        (KeySpec::EccNistP384, A::EcdsaSha384) => &signature::ECDSA_P384_SHA384_ASN1,
        (KeySpec::EccNistP521, A::EcdsaSha512) => &signature::ECDSA_P521_SHA512_ASN1,
        (KeySpec::EccNistEdwards25519, A::Ed25519Sha512) => &signature::ED25519,
        (spec, algorithm) => {
            return Err(BackendError::InvalidRequest(format!("a {spec} key does not verify {algorithm}")));
        }
    })
}

/// A public key parsed for verification, from a DER SubjectPublicKeyInfo (or, for RSA, a
/// PKCS#1 RSAPublicKey; for EC, an uncompressed point; for Ed25519, the 32 raw bytes).
pub fn parse_public_key(
    spec: KeySpec,
    algorithm: SigningAlgorithm,
    public_key: &[u8],
) -> Result<ParsedPublicKey, BackendError> {
    ParsedPublicKey::new(verification_algorithm(spec, algorithm)?, public_key)
        .map_err(|e| BackendError::InvalidMaterial(format!("public key rejected: {e}")))
}

/// Verifies a signature with a public key; a wrong signature is `Ok(false)`.
pub fn verify(
    spec: KeySpec,
    algorithm: SigningAlgorithm,
    public_key: &[u8],
    message: Message<'_>,
    signature: &[u8],
) -> Result<bool, BackendError> {
    let key = parse_public_key(spec, algorithm, public_key)?;
    verify_parsed(&key, algorithm, message, signature)
}

/// Verifies with an already parsed key.
pub fn verify_parsed(
    key: &ParsedPublicKey,
    algorithm: SigningAlgorithm,
    message: Message<'_>,
    signature: &[u8],
) -> Result<bool, BackendError> {
    Ok(match (algorithm, message) {
        // EdDSA hashes the message itself; there is no digest form.
        (SigningAlgorithm::Ed25519Sha512, Message::Raw(m)) => key.verify_sig(m, signature).is_ok(),
        (SigningAlgorithm::Ed25519Sha512, Message::Digest(_)) => {
            return Err(BackendError::InvalidRequest("ED25519_SHA_512 verifies RAW messages only".into()));
        }
        (_, message) => key.verify_digest_sig(&message_digest(algorithm, message)?, signature).is_ok(),
    })
}

/// The DER SubjectPublicKeyInfo of a parsed key.
pub fn spki(key: &ParsedPublicKey) -> Result<Vec<u8>, BackendError> {
    key.as_der().map(|d| d.as_ref().to_vec()).map_err(|_| BackendError::Internal("public key not encodable".into()))
}

/// The DER SubjectPublicKeyInfo of a spec's public key given in another form (PKCS#1 for RSA,
/// the uncompressed point for EC, the raw 32 bytes for Ed25519), as tokens hand them out.
pub fn spki_of(spec: KeySpec, public_key: &[u8]) -> Result<Vec<u8>, BackendError> {
    let any = *SigningAlgorithm::for_spec(spec)
        .first()
        .ok_or_else(|| BackendError::InvalidRequest(format!("a {spec} key has no public key")))?;
    spki(&parse_public_key(spec, any, public_key)?)
}

/// The DER SubjectPublicKeyInfo of an RSA key from its modulus and exponent (big-endian).
pub fn rsa_spki(modulus: &[u8], exponent: &[u8]) -> Result<Vec<u8>, BackendError> {
    let components = signature::RsaPublicKeyComponents { n: modulus, e: exponent };
    components.as_der().map(|d| d.as_ref().to_vec()).map_err(|_| BackendError::InvalidMaterial("RSA public key".into()))
}

/// The modulus and public exponent (big-endian, no leading zero) of an RSA public key given as
/// a DER SubjectPublicKeyInfo or PKCS#1 RSAPublicKey, as tokens take them.
pub fn rsa_components(public_key: &[u8]) -> Result<(Vec<u8>, Vec<u8>), BackendError> {
    // Any RSA verification algorithm parses any RSA key of 2048-8192 bits.
    let key = parse_public_key(KeySpec::Rsa2048, SigningAlgorithm::RsassaPkcs1V15Sha256, public_key)?;
    let spki = spki(&key)?;
    let bad = || BackendError::InvalidRequest("RSA public key is not DER".into());
    // SubjectPublicKeyInfo { AlgorithmIdentifier, BIT STRING { 0, RSAPublicKey } }
    let (body, _) = der_take(&spki, 0x30).ok_or_else(bad)?;
    let (_, rest) = der_take(body, 0x30).ok_or_else(bad)?;
    let (bits, _) = der_take(rest, 0x03).ok_or_else(bad)?;
    let (rsa, _) = der_take(bits.get(1..).ok_or_else(bad)?, 0x30).ok_or_else(bad)?;
    let (n, rest) = der_take(rsa, 0x02).ok_or_else(bad)?;
    let (e, _) = der_take(rest, 0x02).ok_or_else(bad)?;
    let strip = |v: &[u8]| v.iter().position(|&b| b != 0).map_or_else(|| vec![0], |i| v[i..].to_vec());
    Ok((strip(n), strip(e)))
}

/// An ECDSA signature as the DER `Ecdsa-Sig-Value` from the fixed `r || s` a token returns.
pub fn ecdsa_der_from_fixed(spec: KeySpec, fixed: &[u8]) -> Result<Vec<u8>, BackendError> {
    let n = match spec {
        KeySpec::EccNistP256 => 32,
        KeySpec::EccNistP384 => 48,
        KeySpec::EccNistP521 => 66,
        other => return Err(BackendError::Internal(format!("{other} is not an ECDSA key"))),
    };
    if fixed.len() != 2 * n {
        return Err(BackendError::Internal(format!("an ECDSA signature of {} bytes, not {}", fixed.len(), 2 * n)));
    }
    let (r, s) = fixed.split_at(n);
    let (r, s) = (der_integer(r), der_integer(s));
    let mut out = Vec::with_capacity(r.len() + s.len() + 4);
    out.push(0x30);
    der_length(&mut out, r.len() + s.len());
    out.extend_from_slice(&r);
    out.extend_from_slice(&s);
    Ok(out)
}

/// The fixed `r || s` a token verifies from a DER `Ecdsa-Sig-Value`; `None` when the DER is
/// malformed (which makes the signature invalid, not the request).
pub fn ecdsa_fixed_from_der(spec: KeySpec, der: &[u8]) -> Option<Vec<u8>> {
    let n = match spec {
        KeySpec::EccNistP256 => 32,
        KeySpec::EccNistP384 => 48,
        KeySpec::EccNistP521 => 66,
        _ => return None,
    };
    let (body, rest) = der_take(der, 0x30)?;
    if !rest.is_empty() {
        return None;
    }
    let (r, rest) = der_take(body, 0x02)?;
    let (s, rest) = der_take(rest, 0x02)?;
    if !rest.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(2 * n);
    for int in [r, s] {
        // Minimal encoding only: a leading zero only before a high bit, never negative.
        if int.is_empty() || int[0] & 0x80 != 0 || (int.len() > 1 && int[0] == 0 && int[1] & 0x80 == 0) {
            return None;
        }
        let int = if int[0] == 0 { &int[1..] } else { int };
        if int.len() > n {
            return None;
        }
        out.extend(std::iter::repeat_n(0, n - int.len()));
        out.extend_from_slice(int);
    }
    Some(out)
}

fn der_integer(be: &[u8]) -> Vec<u8> {
    let trimmed = match be.iter().position(|&b| b != 0) {
        Some(i) => &be[i..],
        None => &[0u8][..],
    };
    let mut v = Vec::with_capacity(trimmed.len() + 3);
    v.push(0x02);
    let pad = trimmed[0] & 0x80 != 0;
    der_length(&mut v, trimmed.len() + usize::from(pad));
    if pad {
        v.push(0);
    }
    v.extend_from_slice(trimmed);
    v
}

fn der_length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend_from_slice(&[0x81, len as u8]);
    } else {
        out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
    }
}

/// One DER element with `tag`: its contents and what follows. Definite, minimal lengths only.
fn der_take(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&t, rest) = input.split_first()?;
    if t != tag {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match first {
        l if l < 0x80 => (usize::from(l), rest),
        0x81 => {
            let (&l, rest) = rest.split_first()?;
            if l < 0x80 {
                return None;
            }
            (usize::from(l), rest)
        }
        0x82 => {
            let (l, rest) = (rest.get(..2)?, rest.get(2..)?);
            let l = usize::from(l[0]) << 8 | usize::from(l[1]);
            if l < 0x100 {
                return None;
            }
            (l, rest)
        }
        _ => return None,
    };
    if rest.len() < len {
        return None;
    }
    Some(rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecdsa_der_and_fixed_round_trip_including_high_bits_and_leading_zeros() {
        for (r0, s0) in [(0x80u8, 0x01u8), (0x00, 0x7f), (0xff, 0x00)] {
            let mut fixed = vec![0x11u8; 64];
            fixed[0] = r0;
            fixed[32] = s0;
            let der = ecdsa_der_from_fixed(KeySpec::EccNistP256, &fixed).unwrap_or_default();
            assert_eq!(ecdsa_fixed_from_der(KeySpec::EccNistP256, &der), Some(fixed));
        }
        assert_eq!(ecdsa_fixed_from_der(KeySpec::EccNistP256, &[0x30, 0x00]), None);
        assert_eq!(ecdsa_fixed_from_der(KeySpec::EccNistP256, &[]), None);
    }
}
