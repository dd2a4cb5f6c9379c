//! The encryption context: a non-secret string map bound to a ciphertext as associated data.

use std::collections::BTreeMap;

use super::ids::truncate;
use crate::error::Error;

/// At most this many pairs.
pub const MAX_CONTEXT_ENTRIES: usize = 64;
/// At most this many bytes over all names and values.
pub const MAX_CONTEXT_BYTES: usize = 8192;

/// A validated encryption context. Sorted, so its encoding is canonical.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EncryptionContext(BTreeMap<String, String>);

impl EncryptionContext {
    /// Validates a context: at most 64 pairs, non-empty names, at most 8 KiB in all.
    pub fn new(map: BTreeMap<String, String>) -> Result<Self, Error> {
        if map.len() > MAX_CONTEXT_ENTRIES {
            return Err(Error::invalid(format!("encryption context has more than {MAX_CONTEXT_ENTRIES} entries")));
        }
        let mut total = 0usize;
        for (k, v) in &map {
            if k.is_empty() {
                return Err(Error::invalid("encryption context names must not be empty"));
            }
            total += k.len() + v.len();
            if total > MAX_CONTEXT_BYTES {
                return Err(Error::invalid(format!(
                    "encryption context exceeds {MAX_CONTEXT_BYTES} bytes (at `{}`)",
                    truncate(k)
                )));
            }
        }
        Ok(Self(map))
    }

    /// The pairs, sorted by name.
    pub fn entries(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    /// Canonical encoding: count, then each pair sorted by name, every field a big-endian u32
    /// length followed by its UTF-8 bytes. Injective, so two contexts never encode alike.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        put_len(out, self.0.len());
        for (k, v) in &self.0 {
            put_len(out, k.len());
            out.extend_from_slice(k.as_bytes());
            put_len(out, v.len());
            out.extend_from_slice(v.as_bytes());
        }
    }
}

fn put_len(out: &mut Vec<u8>, n: usize) {
    // Lengths are bounded by MAX_CONTEXT_BYTES, far below u32::MAX.
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(pairs: &[(&str, &str)]) -> EncryptionContext {
        let map = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        EncryptionContext::new(map).unwrap_or_default()
    }

    fn enc(c: &EncryptionContext) -> Vec<u8> {
        let mut v = Vec::new();
        c.encode_into(&mut v);
        v
    }

    #[test]
    fn encoding_is_order_independent_and_injective() {
        assert_eq!(enc(&ctx(&[("a", "1"), ("b", "2")])), enc(&ctx(&[("b", "2"), ("a", "1")])));
        // Without length prefixes these two would collide.
        assert_ne!(enc(&ctx(&[("ab", "c")])), enc(&ctx(&[("a", "bc")])));
        assert_ne!(enc(&ctx(&[])), enc(&ctx(&[("a", "")])));
    }

    #[test]
    fn limits_are_enforced() {
        let many: BTreeMap<_, _> = (0..65).map(|i| (format!("k{i}"), String::new())).collect();
        assert!(EncryptionContext::new(many).is_err());
        let big = BTreeMap::from([("k".to_string(), "v".repeat(MAX_CONTEXT_BYTES))]);
        assert!(EncryptionContext::new(big).is_err());
        let empty_name = BTreeMap::from([(String::new(), "v".to_string())]);
        assert!(EncryptionContext::new(empty_name).is_err());
    }
}
