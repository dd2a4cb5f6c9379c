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
    let canonical = serde_json::json!([
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
    ]);
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(b"\n");
    h.update(canonical.to_string().as_bytes());
    hex::encode(h.finalize())
}

/// The statement a checkpoint signs.
pub fn checkpoint_statement(chain_id: &str, sequence: i64, head_hash: &str, time: i64) -> String {
    format!("keyward-audit-checkpoint/v1\n{chain_id}\n{sequence}\n{head_hash}\n{time}")
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
        let statement = checkpoint_statement(&c.chain_id, c.sequence, &c.head_hash, c.time);
        let Ok(signature) = hex::decode(&c.signature) else { return false };
        c.key_id == self.key_id()
            && UnparsedPublicKey::new(&ED25519, &self.0).verify(statement.as_bytes(), &signature).is_ok()
    }
}

fn key_id(public: &[u8]) -> String {
    hex::encode(&public[..8.min(public.len())])
}
