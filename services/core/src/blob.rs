//! Ciphertext blob v1: a self-describing header, authenticated as associated data, then the
//! backend's ciphertext. The format is specified in `docs/ciphertext-format.md`.
//!
//! ```text
//! magic "KW"  | format u8 = 1 | key id 16 | key version u32 BE | algorithm u8 |
//! params length u16 BE | params | ciphertext (rest, non-empty)
//! ```
//!
//! The associated data given to the backend is the whole header followed by the canonical
//! encoding of the encryption context, so a blob cannot move to another key, version,
//! algorithm or context.

use uuid::Uuid;

use crate::model::context::EncryptionContext;
use crate::model::ids::KeyId;

const MAGIC: &[u8; 2] = b"KW";
/// The format version this code writes.
pub const FORMAT_V1: u8 = 1;
const FIXED_LEN: usize = 2 + 1 + 16 + 4 + 1 + 2;
/// Largest params section a blob may carry.
pub const MAX_PARAMS: usize = 1024;
/// Largest ciphertext section: an external KMS's own ciphertext of the largest plaintext
/// (AWS KMS caps a ciphertext blob at 6144 bytes); AES-GCM output is at most 4096 + 16.
pub const MAX_CIPHERTEXT: usize = 6144;
/// Largest blob any backend writes. Longer input is refused before any key is looked up.
pub const MAX_BLOB: usize = FIXED_LEN + MAX_PARAMS + MAX_CIPHERTEXT;

/// Why a byte string is not a blob. Kept for the audit record; callers see one error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlobError {
    /// Fewer bytes than a header.
    #[error("blob shorter than its header")]
    Truncated,
    /// Does not start with the magic bytes.
    #[error("not a Keyward ciphertext blob")]
    BadMagic,
    /// A format version this build does not read.
    #[error("unsupported blob format version {0}")]
    UnsupportedFormat(u8),
    /// The params length is out of range or runs past the end.
    #[error("bad params length")]
    BadParams,
    /// Nothing after the header.
    #[error("empty ciphertext")]
    EmptyCiphertext,
    /// Version 0 does not exist.
    #[error("key version 0")]
    BadVersion,
    /// Longer than any blob a backend writes.
    #[error("blob of {0} bytes is longer than any blob ({MAX_BLOB} bytes at most)")]
    TooLarge(usize),
}

/// The clear header of a blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The key that encrypted.
    pub key_id: KeyId,
    /// The key version that encrypted.
    pub key_version: u32,
    /// The backend's algorithm id.
    pub algorithm: u8,
    /// Backend parameters (salt, nonce, commitment...).
    pub params: Vec<u8>,
}

impl Header {
    /// The header's bytes as they stand in the blob.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FIXED_LEN + self.params.len());
        self.encode_into(&mut out);
        out
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(MAGIC);
        out.push(FORMAT_V1);
        out.extend_from_slice(self.key_id.0.as_bytes());
        out.extend_from_slice(&self.key_version.to_be_bytes());
        out.push(self.algorithm);
        // Params are bounded by MAX_PARAMS when produced by a backend.
        let len = u16::try_from(self.params.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&self.params);
    }

    /// Associated data for this header under a context: header bytes, then the context.
    pub fn associated_data(&self, context: &EncryptionContext) -> Vec<u8> {
        let mut out = self.encode();
        context.encode_into(&mut out);
        out
    }
}

/// A parsed blob: its header and the backend ciphertext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// The clear, authenticated header.
    pub header: Header,
    /// The backend's ciphertext (with its tag).
    pub ciphertext: Vec<u8>,
}

impl Blob {
    /// Serialises the blob.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FIXED_LEN + self.header.params.len() + self.ciphertext.len());
        self.header.encode_into(&mut out);
        out.extend_from_slice(&self.ciphertext);
        out
    }

    /// Parses any byte string into a blob or an error; never panics.
    pub fn parse(bytes: &[u8]) -> Result<Self, BlobError> {
        if bytes.len() > MAX_BLOB {
            return Err(BlobError::TooLarge(bytes.len()));
        }
        let (magic, rest) = bytes.split_first_chunk::<2>().ok_or(BlobError::Truncated)?;
        if magic != MAGIC {
            return Err(BlobError::BadMagic);
        }
        let (&format, rest) = rest.split_first().ok_or(BlobError::Truncated)?;
        if format != FORMAT_V1 {
            return Err(BlobError::UnsupportedFormat(format));
        }
        let (id, rest) = rest.split_first_chunk::<16>().ok_or(BlobError::Truncated)?;
        let (version, rest) = rest.split_first_chunk::<4>().ok_or(BlobError::Truncated)?;
        let (&algorithm, rest) = rest.split_first().ok_or(BlobError::Truncated)?;
        let (plen, rest) = rest.split_first_chunk::<2>().ok_or(BlobError::Truncated)?;
        let plen = usize::from(u16::from_be_bytes(*plen));
        if plen > MAX_PARAMS || plen > rest.len() {
            return Err(BlobError::BadParams);
        }
        let (params, ciphertext) = rest.split_at(plen);
        if ciphertext.is_empty() {
            return Err(BlobError::EmptyCiphertext);
        }
        let key_version = u32::from_be_bytes(*version);
        if key_version == 0 {
            return Err(BlobError::BadVersion);
        }
        Ok(Self {
            header: Header { key_id: KeyId(Uuid::from_bytes(*id)), key_version, algorithm, params: params.to_vec() },
            ciphertext: ciphertext.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Blob {
        Blob {
            header: Header {
                key_id: KeyId(Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef)),
                key_version: 7,
                algorithm: 1,
                params: vec![9; 40],
            },
            ciphertext: vec![1, 2, 3, 4, 5],
        }
    }

    #[test]
    fn round_trips() {
        let b = sample();
        assert_eq!(Blob::parse(&b.encode()), Ok(b));
    }

    #[test]
    fn rejects_malformed_input() {
        let bytes = sample().encode();
        assert_eq!(Blob::parse(&[]), Err(BlobError::Truncated));
        assert_eq!(Blob::parse(b"XX"), Err(BlobError::BadMagic));
        let mut v = bytes.clone();
        v[2] = 2;
        assert_eq!(Blob::parse(&v), Err(BlobError::UnsupportedFormat(2)));
        // Header and params but no ciphertext.
        assert_eq!(Blob::parse(&bytes[..FIXED_LEN + 40]), Err(BlobError::EmptyCiphertext));
        assert_eq!(Blob::parse(&bytes[..FIXED_LEN + 3]), Err(BlobError::BadParams));
        for n in 0..FIXED_LEN {
            assert!(Blob::parse(&bytes[..n]).is_err());
        }
        let mut huge = sample();
        huge.ciphertext = vec![0; MAX_CIPHERTEXT + 1];
        huge.header.params = vec![0; MAX_PARAMS];
        assert_eq!(Blob::parse(&huge.encode()), Err(BlobError::TooLarge(MAX_BLOB + 1)));
        huge.ciphertext.pop();
        assert!(Blob::parse(&huge.encode()).is_ok(), "the largest blob parses");
    }

    #[test]
    fn associated_data_binds_header_and_context() {
        let b = sample();
        let ctx = EncryptionContext::default();
        let mut other = b.header.clone();
        other.key_version = 8;
        assert_ne!(b.header.associated_data(&ctx), other.associated_data(&ctx));
    }
}
