//! The audit hash chain and its signed checkpoints.
//!
//! Each server's writer keeps one chain: record `n` stores `sequence = n`, the previous
//! record's hash, and `hash = SHA-256(prev_hash ‖ "\n" ‖ canonical encoding)`, where the
//! canonical encoding is a JSON array of the record's stored fields in a fixed order. A
//! checkpoint signs (Ed25519) the statement "chain C has head H at sequence N at time T";
//! checkpoints are written periodically even when idle, so deleting the newest records is
//! detected, and a forged checkpoint fails its signature.

use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::entity::{audit_checkpoint, audit_record};

/// The `prev_hash` of a chain's first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hash of a stored record given its predecessor's hash.
pub fn record_hash(prev_hash: &str, m: &audit_record::Model) -> String {
    let mut canonical = Vec::with_capacity(512);
    // Serializing strings, numbers and booleans into a vector cannot fail.
    let _ = serde_json::to_writer(&mut canonical, &Canonical(m));
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(b"\n");
    h.update(&canonical);
    hex::encode(h.finalize())
}

/// A record's canonical encoding: a compact JSON array of its stored fields in a fixed order,
/// written straight from the row (no intermediate JSON tree: the writer hashes every record).
struct Canonical<'a>(&'a audit_record::Model);

impl serde::Serialize for Canonical<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let m = self.0;
        // `interface` and `details` were added later: each is encoded only when it (or a
        // later one) is set, so every record stored before them keeps its hash.
        let len = match (&m.interface, &m.details) {
            (_, Some(_)) => 25,
            (Some(_), None) => 24,
            (None, None) => 23,
        };
        let mut t = s.serialize_tuple(len)?;
        t.serialize_element(&m.chain_id)?;
        t.serialize_element(&m.sequence)?;
        t.serialize_element(&m.time)?;
        t.serialize_element(&m.request_id)?;
        t.serialize_element(&m.trace_id)?;
        t.serialize_element(&m.principal)?;
        t.serialize_element(&m.principal_groups)?;
        t.serialize_element(&m.action)?;
        t.serialize_element(&m.resource)?;
        t.serialize_element(&m.key_id)?;
        t.serialize_element(&m.key_version)?;
        t.serialize_element(&m.decision)?;
        t.serialize_element(&m.determining_policies)?;
        t.serialize_element(&m.policy_version)?;
        t.serialize_element(&m.policy_errors)?;
        t.serialize_element(&m.outcome)?;
        t.serialize_element(&m.reason)?;
        t.serialize_element(&m.encryption_context)?;
        t.serialize_element(&m.source_ip)?;
        t.serialize_element(&m.user_agent)?;
        t.serialize_element(&m.justification)?;
        t.serialize_element(&m.dry_run)?;
        t.serialize_element(&m.duration_us)?;
        if len > 23 {
            t.serialize_element(&m.interface)?;
        }
        if let Some(details) = &m.details {
            t.serialize_element(details)?;
        }
        t.end()
    }
}

/// The statement a checkpoint signs.
pub fn checkpoint_statement(chain_id: &str, sequence: i64, head_hash: &str, time: i64) -> String {
    format!("keyward-audit-checkpoint/v1\n{chain_id}\n{sequence}\n{head_hash}\n{time}")
}

/// The statement a chain's genesis checkpoint signs: the chain exists from `time` and follows
/// `previous` (`chain:sequence:hash`, empty for a writer's first chain).
pub fn genesis_statement(chain_id: &str, time: i64, previous: &str) -> String {
    format!("keyward-audit-genesis/v1\n{chain_id}\n{time}\n{previous}")
}

/// The Ed25519 key that signs checkpoints (a 32-byte seed, stored as 64 hex characters).
pub struct SigningKey {
    pair: Ed25519KeyPair,
    key_id: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

impl SigningKey {
    /// From a 32-byte seed.
    pub fn from_seed(seed: &[u8]) -> Result<Self, String> {
        let pair = Ed25519KeyPair::from_seed_unchecked(seed).map_err(|_| "invalid Ed25519 seed".to_owned())?;
        let key_id = key_id(pair.public_key().as_ref());
        Ok(Self { pair, key_id })
    }

    /// From the hex text of a key file.
    pub fn from_hex(text: &str) -> Result<Self, String> {
        let seed = Zeroizing::new(hex::decode(text.trim()).map_err(|_| "the signing key is not hex".to_owned())?);
        if seed.len() != 32 {
            return Err("the signing key must be 32 bytes (64 hex characters)".into());
        }
        Self::from_seed(&seed)
    }

    /// A fresh key's hex text (for a generated key file).
    pub fn generate_hex() -> Result<Zeroizing<String>, String> {
        let mut seed = Zeroizing::new([0u8; 32]);
        aws_lc_rs::rand::fill(seed.as_mut_slice()).map_err(|_| "no randomness".to_owned())?;
        Ok(Zeroizing::new(hex::encode(seed.as_slice())))
    }

    /// The public half.
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey(self.pair.public_key().as_ref().to_vec())
    }

    /// The key's id.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Signs a statement (hex signature).
    pub fn sign(&self, statement: &str) -> String {
        hex::encode(self.pair.sign(statement.as_bytes()).as_ref())
    }
}

/// An Ed25519 public key that checks checkpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyingKey(Vec<u8>);

impl VerifyingKey {
    /// The key's id.
    pub fn key_id(&self) -> String {
        key_id(&self.0)
    }

    /// Whether a checkpoint row carries a valid signature by this key.
    pub fn verifies(&self, c: &audit_checkpoint::Model) -> bool {
        let statement = match &c.previous {
            Some(previous) => genesis_statement(&c.chain_id, c.time, previous),
            None => checkpoint_statement(&c.chain_id, c.sequence, &c.head_hash, c.time),
        };
        let Ok(signature) = hex::decode(&c.signature) else { return false };
        c.key_id == self.key_id()
            && UnparsedPublicKey::new(&ED25519, &self.0).verify(statement.as_bytes(), &signature).is_ok()
    }
}

fn key_id(public: &[u8]) -> String {
    hex::encode(&public[..8.min(public.len())])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(resource: Option<&str>, context: &str) -> audit_record::Model {
        audit_record::Model {
            id: 7,
            time: 1_764_288_000_123_456,
            request_id: "0193b5a0-6c1e-7f1a-9d2e-3c4b5a6d7e8f".into(),
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            principal: "svc \"billing\" \\ ü".into(),
            action: "Encrypt".into(),
            resource: resource.map(str::to_owned),
            key_id: Some("0193b5a0-6c1e-7f1a-9d2e-3c4b5a6d7e8f".into()),
            key_version: Some(3),
            decision: Some("Allow".into()),
            determining_policies: r#"["ops-\u2028-allow"]"#.into(),
            policy_version: None,
            outcome: "Success".into(),
            reason: Some("line\nbreak\ttab\u{1}".into()),
            encryption_context: context.into(),
            source_ip: Some("127.0.0.1".into()),
            user_agent: None,
            dry_run: false,
            duration_us: -1,
            principal_groups: "[]".into(),
            policy_errors: "[]".into(),
            justification: Some("€ 😀".into()),
            chain_id: Some("chain".into()),
            sequence: Some(i64::MAX),
            prev_hash: Some(GENESIS.into()),
            hash: None,
            interface: None,
            details: None,
        }
    }

    /// The encoding every stored chain was hashed with: a JSON tree of the same fields.
    fn tree_encoding(m: &audit_record::Model) -> String {
        serde_json::json!([
            m.chain_id,
            m.sequence,
            m.time,
            m.request_id,
            m.trace_id,
            m.principal,
            m.principal_groups,
            m.action,
            m.resource,
            m.key_id,
            m.key_version,
            m.decision,
            m.determining_policies,
            m.policy_version,
            m.policy_errors,
            m.outcome,
            m.reason,
            m.encryption_context,
            m.source_ip,
            m.user_agent,
            m.justification,
            m.dry_run,
            m.duration_us,
        ])
        .to_string()
    }

    #[test]
    fn the_canonical_encoding_is_byte_for_byte_the_one_stored_chains_were_hashed_with() {
        for m in [record(Some("key/a"), r#"{"app":"x"}"#), record(None, "{}")] {
            let direct = serde_json::to_string(&Canonical(&m)).unwrap_or_else(|e| unreachable!("{e}"));
            assert_eq!(direct, tree_encoding(&m));
            let mut h = Sha256::new();
            h.update(GENESIS.as_bytes());
            h.update(b"\n");
            h.update(tree_encoding(&m).as_bytes());
            assert_eq!(record_hash(GENESIS, &m), hex::encode(h.finalize()));
        }
    }

    #[test]
    fn every_field_and_the_predecessor_change_the_hash() {
        let base = record(Some("key/a"), "{}");
        let hash = record_hash(GENESIS, &base);
        assert_ne!(record_hash(&"1".repeat(64), &base), hash);
        let edits: Vec<fn(&mut audit_record::Model)> = vec![
            |m| m.time += 1,
            |m| m.principal.push('x'),
            |m| m.resource = None,
            |m| m.key_version = Some(4),
            |m| m.decision = Some("Deny".into()),
            |m| m.encryption_context = r#"{"app":"y"}"#.into(),
            |m| m.dry_run = true,
            |m| m.duration_us = 0,
            |m| m.sequence = Some(1),
            |m| m.chain_id = Some("other".into()),
        ];
        for edit in edits {
            let mut m = base.clone();
            edit(&mut m);
            assert_ne!(record_hash(GENESIS, &m), hash);
        }
    }
}
