//! The audit verifier's row reader: any stored row (any text in any column) hashes, renders
//! as JSON and has its checkpoint checked without a panic; the hash depends on every field,
//! and a checkpoint with any signature text verifies only if it is the key's.
#![no_main]

use keyward_store::chain::{GENESIS, SigningKey, checkpoint_statement, record_hash};
use keyward_store::entity::{audit_checkpoint, audit_record};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let f: Vec<&str> = text.split('\u{1f}').collect();
    let s = |i: usize| f.get(i).copied().unwrap_or("").to_owned();
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<i64>().ok());
    let row = audit_record::Model {
        id: n(0).unwrap_or(1),
        time: n(1).unwrap_or(i64::MIN),
        request_id: s(2),
        trace_id: s(3),
        principal: s(4),
        action: s(5),
        resource: Some(s(6)),
        key_id: Some(s(7)),
        key_version: n(8),
        decision: Some(s(9)),
        determining_policies: s(10),
        policy_version: Some(s(11)),
        outcome: s(12),
        reason: Some(s(13)),
        encryption_context: s(14),
        source_ip: Some(s(15)),
        user_agent: Some(s(16)),
        dry_run: data.first().is_some_and(|b| b & 1 == 1),
        duration_us: n(17).unwrap_or(-1),
        principal_groups: s(18),
        policy_errors: s(19),
        justification: Some(s(20)),
        chain_id: Some(s(21)),
        sequence: n(22),
        prev_hash: Some(s(23)),
        hash: Some(s(24)),
        interface: f.get(25).map(|v| (*v).to_owned()),
        details: f.get(27).map(|v| (*v).to_owned()),
    };
    let hash = record_hash(GENESIS, &row);
    let _ = keyward_store::audit_json(&row);
    let mut changed = row.clone();
    changed.outcome.push('x');
    assert_ne!(record_hash(GENESIS, &changed), hash, "the hash ignores the outcome");
    let mut detailed = row.clone();
    detailed.details = Some(format!("{}x", row.details.as_deref().unwrap_or("")));
    assert_ne!(record_hash(GENESIS, &detailed), hash, "the hash ignores the details");
    // A checkpoint with whatever signature text the row claims.
    let key = SigningKey::from_seed(&[9; 32]).unwrap_or_else(|e| panic!("{e}"));
    let verifying = key.verifying_key();
    let sequence = n(22).unwrap_or(1);
    let mut checkpoint = audit_checkpoint::Model {
        id: 1,
        chain_id: s(21),
        sequence,
        head_hash: hash.clone(),
        time: n(1).unwrap_or(0),
        key_id: verifying.key_id(),
        signature: s(26),
        previous: f.get(27).map(|v| (*v).to_owned()),
    };
    let genuine = checkpoint.previous.is_none()
        && checkpoint.signature == key.sign(&checkpoint_statement(&checkpoint.chain_id, sequence, &hash, checkpoint.time));
    assert_eq!(verifying.verifies(&checkpoint), genuine, "a signature verified that the key did not make");
    checkpoint.previous = None;
    checkpoint.signature = key.sign(&checkpoint_statement(&checkpoint.chain_id, sequence, &hash, checkpoint.time));
    assert!(verifying.verifies(&checkpoint), "a genuine checkpoint refused");
});
