//! Client-side envelope encryption of a stream, in constant memory: a header naming the data
//! key (its Keyward ciphertext blob) and the encryption context, then AES-256-GCM frames, each
//! authenticated with the header, its index and whether it is the last. The byte layout is
//! specified in `docs/envelope-format.md`; this module is its reference implementation.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// The first bytes of every envelope: `KWENV` and the format version.
pub const MAGIC: &[u8; 6] = b"KWENV\x01";
/// Plaintext bytes per frame unless chosen otherwise.
pub const DEFAULT_FRAME_SIZE: u32 = 64 * 1024;
/// Frame sizes a reader accepts (a hostile header cannot make it allocate more).
pub const FRAME_SIZES: std::ops::RangeInclusive<u32> = 1..=(4 << 20);
const SALT_LEN: usize = 32;
const COMMIT_LEN: usize = 32;
const TAG_LEN: usize = 16;
const MAX_BLOB: usize = 4096;
const MAX_CONTEXT: usize = 16 * 1024;
const KDF_INFO: &[u8] = b"keyward envelope v1: key and commitment";

/// Why an envelope could not be written or read. Every failure of a frame says which frame,
/// without telling apart the ways it can be wrong.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// Reading or writing failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// Not an envelope, another version, or a malformed header.
    #[error("not a Keyward envelope: {0}")]
    Header(String),
    /// The data key does not match the header's commitment.
    #[error("the data key does not match this envelope (wrong key, or the header was altered)")]
    Commitment,
    /// A frame failed authentication: altered, reordered, or taken from another file.
    #[error("frame {0} failed authentication (altered, reordered or taken from another file)")]
    Frame(u64),
    /// The stream ended before its final frame.
    #[error("the envelope is truncated: it ends before its final frame (after {0} frames)")]
    Truncated(u64),
    /// Bytes follow the final frame.
    #[error("data after the final frame")]
    TrailingData,
    /// Bad parameters from the caller.
    #[error("{0}")]
    Invalid(String),
}

/// An envelope's header, as read from its start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Plaintext bytes per frame.
    pub frame_size: u32,
    /// The data key's Keyward ciphertext blob (Decrypt gives the data key back).
    pub data_key_blob: Vec<u8>,
    /// The encryption context the data key is bound to (not secret).
    pub context: BTreeMap<String, String>,
    salt: [u8; SALT_LEN],
    commitment: [u8; COMMIT_LEN],
    /// SHA-256 of the header's bytes: every frame is bound to it.
    digest: [u8; 32],
}

/// The per-file key and the commitment to it, from the data key and the header's salt.
fn derive(data_key: &[u8], salt: &[u8]) -> Result<(Zeroizing<[u8; 32]>, [u8; COMMIT_LEN]), EnvelopeError> {
    if data_key.len() != 32 {
        return Err(EnvelopeError::Invalid(format!("a data key is 32 bytes, not {}", data_key.len())));
    }
    let mut okm = Zeroizing::new([0u8; 32 + COMMIT_LEN]);
    Hkdf::<Sha256>::new(Some(salt), data_key)
        .expand(KDF_INFO, okm.as_mut_slice())
        .map_err(|_| EnvelopeError::Invalid("key derivation failed".into()))?;
    let mut key = Zeroizing::new([0u8; 32]);
    key.copy_from_slice(&okm[..32]);
    let mut commitment = [0u8; COMMIT_LEN];
    commitment.copy_from_slice(&okm[32..]);
    Ok((key, commitment))
}

fn header_bytes(frame_size: u32, salt: &[u8], blob: &[u8], context: &[u8], commitment: &[u8]) -> Vec<u8> {
    let mut h = Vec::with_capacity(64 + blob.len() + context.len());
    h.extend_from_slice(MAGIC);
    h.extend_from_slice(&frame_size.to_be_bytes());
    h.extend_from_slice(salt);
    h.extend_from_slice(&(blob.len() as u16).to_be_bytes());
    h.extend_from_slice(blob);
    h.extend_from_slice(&(context.len() as u32).to_be_bytes());
    h.extend_from_slice(context);
    h.extend_from_slice(commitment);
    h
}

fn nonce(index: u64) -> Nonce<aes_gcm::aes::cipher::consts::U12> {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&index.to_be_bytes());
    Nonce::from(n)
}

fn frame_aad(digest: &[u8; 32], index: u64, last: bool, len: u32) -> [u8; 45] {
    let mut aad = [0u8; 45];
    aad[..32].copy_from_slice(digest);
    aad[32..40].copy_from_slice(&index.to_be_bytes());
    aad[40] = u8::from(last);
    aad[41..].copy_from_slice(&len.to_be_bytes());
    aad
}

/// Reads until `buf` is full or the stream ends; returns how many bytes were read.
fn fill(input: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Encrypts `input` to `output` under `data_key` (32 bytes, whose Keyward ciphertext blob is
/// `data_key_blob`, bound to `context`). Memory use is two frames, whatever the input's size.
/// Returns the plaintext bytes written.
pub fn seal(
    data_key: &[u8],
    data_key_blob: &[u8],
    context: &BTreeMap<String, String>,
    frame_size: u32,
    mut input: impl Read,
    mut output: impl Write,
) -> Result<u64, EnvelopeError> {
    if !FRAME_SIZES.contains(&frame_size) {
        return Err(EnvelopeError::Invalid(format!("frame size must be 1 byte to 4 MiB, not {frame_size}")));
    }
    if data_key_blob.is_empty() || data_key_blob.len() > MAX_BLOB {
        return Err(EnvelopeError::Invalid("the data key blob must be 1-4096 bytes".into()));
    }
    let context_json = serde_json::to_vec(context).map_err(|e| EnvelopeError::Invalid(e.to_string()))?;
    if context_json.len() > MAX_CONTEXT {
        return Err(EnvelopeError::Invalid("the encryption context exceeds 16 KiB".into()));
    }
    let mut salt = [0u8; SALT_LEN];
    getrandom::fill(&mut salt).map_err(|e| EnvelopeError::Invalid(format!("no randomness: {e}")))?;
    let (key, commitment) = derive(data_key, &salt)?;
    let header = header_bytes(frame_size, &salt, data_key_blob, &context_json, &commitment);
    let digest: [u8; 32] = Sha256::digest(&header).into();
    output.write_all(&header)?;

    let cipher = Aes256Gcm::new((&*key).into());
    let size = frame_size as usize;
    // Read one frame ahead: a frame is the last when nothing follows it.
    let mut current = Zeroizing::new(vec![0u8; size]);
    let mut next = Zeroizing::new(vec![0u8; size]);
    let mut len = fill(&mut input, &mut current)?;
    let (mut index, mut total) = (0u64, 0u64);
    loop {
        let next_len = if len == size { fill(&mut input, &mut next)? } else { 0 };
        let last = next_len == 0;
        let frame_len = len as u32;
        let aad = frame_aad(&digest, index, last, frame_len);
        let buf = &mut current[..len];
        let tag: Tag = cipher
            .encrypt_inout_detached(&nonce(index), &aad, buf.into())
            .map_err(|_| EnvelopeError::Invalid("encryption failed".into()))?;
        output.write_all(&[u8::from(last)])?;
        output.write_all(&frame_len.to_be_bytes())?;
        output.write_all(buf)?;
        output.write_all(&tag)?;
        total += len as u64;
        if last {
            break;
        }
        index = index.checked_add(1).ok_or_else(|| EnvelopeError::Invalid("too many frames".into()))?;
        std::mem::swap(&mut current, &mut next);
        len = next_len;
    }
    output.flush()?;
    Ok(total)
}

/// Reads and checks the header at the start of `input` (it does not need the data key).
pub fn read_header(input: &mut impl Read) -> Result<Header, EnvelopeError> {
    let truncated = || EnvelopeError::Header("the header is cut short".into());
    let mut raw = Vec::new();
    let mut take = |n: usize, raw: &mut Vec<u8>| -> Result<Vec<u8>, EnvelopeError> {
        let mut b = vec![0u8; n];
        if fill(input, &mut b)? != n {
            return Err(truncated());
        }
        raw.extend_from_slice(&b);
        Ok(b)
    };
    if take(MAGIC.len(), &mut raw)? != MAGIC {
        return Err(EnvelopeError::Header("it does not start with KWENV version 1".into()));
    }
    let frame_size = u32::from_be_bytes(take(4, &mut raw)?.try_into().map_err(|_| truncated())?);
    if !FRAME_SIZES.contains(&frame_size) {
        return Err(EnvelopeError::Header(format!("impossible frame size {frame_size}")));
    }
    let salt: [u8; SALT_LEN] = take(SALT_LEN, &mut raw)?.try_into().map_err(|_| truncated())?;
    let blob_len = usize::from(u16::from_be_bytes(take(2, &mut raw)?.try_into().map_err(|_| truncated())?));
    if blob_len == 0 || blob_len > MAX_BLOB {
        return Err(EnvelopeError::Header(format!("impossible data key blob length {blob_len}")));
    }
    let data_key_blob = take(blob_len, &mut raw)?;
    let context_len = u32::from_be_bytes(take(4, &mut raw)?.try_into().map_err(|_| truncated())?) as usize;
    if context_len > MAX_CONTEXT {
        return Err(EnvelopeError::Header(format!("impossible context length {context_len}")));
    }
    let context_json = take(context_len, &mut raw)?;
    let context: BTreeMap<String, String> = serde_json::from_slice(&context_json)
        .map_err(|_| EnvelopeError::Header("the encryption context is not a JSON map of strings".into()))?;
    if serde_json::to_vec(&context).ok().as_deref() != Some(context_json.as_slice()) {
        return Err(EnvelopeError::Header("the encryption context is not in canonical form".into()));
    }
    let commitment: [u8; COMMIT_LEN] = take(COMMIT_LEN, &mut raw)?.try_into().map_err(|_| truncated())?;
    let digest: [u8; 32] = Sha256::digest(&raw).into();
    Ok(Header { frame_size, data_key_blob, context, salt, commitment, digest })
}

/// Decrypts the frames after `header` from `input` to `output` with the data key Decrypt
/// returned for `header.data_key_blob`. Each frame is written only once it authenticated, but a
/// failure can come after earlier frames were written: write to a temporary file and keep it
/// only on success. Returns the plaintext bytes written.
pub fn open(
    header: &Header,
    data_key: &[u8],
    mut input: impl Read,
    mut output: impl Write,
) -> Result<u64, EnvelopeError> {
    let (key, commitment) = derive(data_key, &header.salt)?;
    if !bool::from(commitment.ct_eq(&header.commitment)) {
        return Err(EnvelopeError::Commitment);
    }
    let cipher = Aes256Gcm::new((&*key).into());
    let size = header.frame_size as usize;
    let mut buf = Zeroizing::new(vec![0u8; size]);
    let (mut index, mut total) = (0u64, 0u64);
    loop {
        let mut prefix = [0u8; 5];
        if fill(&mut input, &mut prefix)? != prefix.len() {
            return Err(EnvelopeError::Truncated(index));
        }
        let last = match prefix[0] {
            0 => false,
            1 => true,
            _ => return Err(EnvelopeError::Frame(index)),
        };
        let frame_len = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]);
        let len = frame_len as usize;
        // Only the last frame may be short; none may be longer than the frame size.
        if len > size || (!last && len != size) {
            return Err(EnvelopeError::Frame(index));
        }
        let body = &mut buf[..len];
        let mut tag = [0u8; TAG_LEN];
        if fill(&mut input, body)? != len || fill(&mut input, &mut tag)? != TAG_LEN {
            return Err(EnvelopeError::Truncated(index));
        }
        let aad = frame_aad(&header.digest, index, last, frame_len);
        cipher
            .decrypt_inout_detached(&nonce(index), &aad, body.into(), &Tag::from(tag))
            .map_err(|_| EnvelopeError::Frame(index))?;
        output.write_all(body)?;
        total += len as u64;
        if last {
            break;
        }
        index = index.checked_add(1).ok_or(EnvelopeError::Frame(index))?;
    }
    let mut extra = [0u8; 1];
    if fill(&mut input, &mut extra)? != 0 {
        return Err(EnvelopeError::TrailingData);
    }
    output.flush()?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seal_bytes(key: &[u8; 32], plaintext: &[u8], frame: u32) -> Vec<u8> {
        let ctx = BTreeMap::from([("tenant".to_owned(), "a".to_owned())]);
        let mut out = Vec::new();
        seal(key, b"blob", &ctx, frame, plaintext, &mut out).unwrap_or_else(|e| unreachable!("{e}"));
        out
    }

    fn open_bytes(key: &[u8; 32], sealed: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
        let mut input = sealed;
        let header = read_header(&mut input)?;
        let mut out = Vec::new();
        open(&header, key, input, &mut out)?;
        Ok(out)
    }

    /// Where frame `i` starts, for a header of `h` bytes and full frames of `f` bytes.
    fn frame_at(h: usize, i: usize, f: usize) -> usize {
        h + i * (5 + f + TAG_LEN)
    }

    #[test]
    fn round_trips_every_shape() {
        let key = [7u8; 32];
        for (len, frame) in [(0usize, 16u32), (1, 16), (16, 16), (17, 16), (48, 16), (1000, 64), (5, 4 << 20)] {
            let plaintext: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let sealed = seal_bytes(&key, &plaintext, frame);
            assert_eq!(open_bytes(&key, &sealed).unwrap_or_else(|e| unreachable!("{len}: {e}")), plaintext);
        }
    }

    #[test]
    fn refuses_tampering_reordering_truncation_and_foreign_frames() {
        let key = [9u8; 32];
        let plaintext = vec![0x11u8; 48];
        let sealed = seal_bytes(&key, &plaintext, 16);
        // Three full frames; the third is the final one (nothing follows it).
        let h = sealed.len() - 3 * (5 + 16 + 16);
        assert_eq!(sealed[frame_at(h, 2, 16)], 1, "the third frame is marked final");
        // Every single bit flip anywhere is refused.
        for bit in 0..sealed.len() * 8 {
            let mut t = sealed.clone();
            t[bit / 8] ^= 1 << (bit % 8);
            assert!(open_bytes(&key, &t).is_err(), "bit {bit} flipped and still opened");
        }
        // Swapped frames.
        let (a, b) = (frame_at(h, 0, 16), frame_at(h, 1, 16));
        let mut swapped = sealed.clone();
        let first = sealed[a..b].to_vec();
        swapped[a..b].copy_from_slice(&sealed[b..b + (b - a)]);
        swapped[b..b + (b - a)].copy_from_slice(&first);
        assert!(matches!(open_bytes(&key, &swapped), Err(EnvelopeError::Frame(0))));
        // Cut after a full frame, or mid-frame: truncated, never a short success.
        for cut in [h, frame_at(h, 1, 16), frame_at(h, 2, 16), sealed.len() - 1] {
            assert!(open_bytes(&key, &sealed[..cut]).is_err(), "cut at {cut} opened");
        }
        assert!(matches!(open_bytes(&key, &sealed[..frame_at(h, 2, 16)]), Err(EnvelopeError::Truncated(2))));
        // Trailing bytes.
        let mut longer = sealed.clone();
        longer.push(0);
        assert!(matches!(open_bytes(&key, &longer), Err(EnvelopeError::TrailingData)));
        // A frame from another file under the same data key and context.
        let other = seal_bytes(&key, &plaintext, 16);
        let mut mixed = sealed.clone();
        mixed[a..b].copy_from_slice(&other[a..b]);
        assert!(matches!(open_bytes(&key, &mixed), Err(EnvelopeError::Frame(0))));
        // Another data key: refused by the commitment before any frame.
        assert!(matches!(open_bytes(&[1u8; 32], &sealed), Err(EnvelopeError::Commitment)));
    }

    proptest::proptest! {
        #[test]
        fn any_plaintext_and_frame_size_round_trips(
            plaintext in proptest::collection::vec(proptest::num::u8::ANY, 0..600),
            frame in 1u32..200,
        ) {
            let key = [3u8; 32];
            let sealed = seal_bytes(&key, &plaintext, frame);
            proptest::prop_assert_eq!(open_bytes(&key, &sealed).map_err(|e| e.to_string()), Ok(plaintext));
        }
    }
}
