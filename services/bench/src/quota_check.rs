//! Q1: the cost of one quota check (a principal, a key and a namespace bucket, as a request
//! with every limit configured pays), on one thread, over 1,000 principals and 100 keys.

use std::time::{Duration, Instant};

use chrono::Utc;
use keyward_core::model::ids::{KeyId, Namespace};
use keyward_core::model::key::{KeyRecord, KeySpec};
use keyward_core::service::{Charge, Limit, QuotaConfig, Quotas};

/// Checks per second, and nanoseconds per check.
pub fn rate(duration: Duration) -> Result<(f64, f64), String> {
    // Limits no check reaches: the cost measured is the bookkeeping, not a refusal.
    let limit = Some(Limit::new(1e12, 1e12)?);
    let quotas = Quotas::new(QuotaConfig { per_principal: limit, per_key: limit, per_namespace: limit, replicas: 1 });
    let ns = Namespace::parse("bench").map_err(|e| e.to_string())?;
    let keys: Vec<KeyRecord> = (0..100)
        .map(|_| {
            KeyRecord::new(
                KeyId(uuid::Uuid::new_v4()),
                ns.clone(),
                "o".into(),
                "software".into(),
                KeySpec::Aes256,
                Utc::now(),
            )
        })
        .collect();
    let principals: Vec<String> = (0..1000).map(|i| format!("Keyward::User::\"user-{i}\"")).collect();
    let started = Instant::now();
    let mut n: u64 = 0;
    while started.elapsed() < duration {
        for _ in 0..1000 {
            let i = n as usize;
            let charge = Charge {
                principal: Some(&principals[i % principals.len()]),
                key: Some(&keys[i % keys.len()]),
                namespace: Some(ns.as_str()),
            };
            quotas.charge(charge, Utc::now()).map_err(|e| e.to_string())?;
            n += 1;
        }
    }
    #[allow(clippy::cast_precision_loss, reason = "a count of checks")]
    let per_second = n as f64 / started.elapsed().as_secs_f64();
    Ok((per_second, 1e9 / per_second))
}
