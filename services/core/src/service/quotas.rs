//! Token-bucket quotas per principal, per key and per namespace. A request over any of its
//! limits is refused (`RateLimited`, with the seconds until it would pass) after its decision
//! and before it runs; it is audited like any refusal. Each replica keeps its own buckets:
//! `replicas` gives each its share of the configured rate and burst.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use crate::error::{Detail, Error, Result};
use crate::model::key::KeyRecord;

/// The key tags that override `per_key` for one key: requests per second, and the burst
/// (the rate when absent). A tag that is not a positive number is ignored.
pub const RATE_TAG: &str = "quota-rate";
/// See [`RATE_TAG`].
pub const BURST_TAG: &str = "quota-burst";

/// Most buckets of each kind before idle (full) ones are dropped.
const CAPACITY: usize = 65_536;

/// A sustained rate (requests per second) and a burst (the bucket's size).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    rate: f64,
    burst: f64,
}

impl Limit {
    /// A limit; the rate must be positive and the burst at least one request.
    pub fn new(rate: f64, burst: f64) -> std::result::Result<Self, String> {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(format!("rate must be a positive number of requests per second, not {rate}"));
        }
        if !(burst.is_finite() && burst >= 1.0) {
            return Err(format!("burst must be at least 1 request, not {burst}"));
        }
        Ok(Self { rate, burst })
    }

    /// This replica's share when `replicas` replicas enforce the limit together.
    #[must_use]
    pub fn share(self, replicas: u32) -> Self {
        let n = f64::from(replicas.max(1));
        Self { rate: self.rate / n, burst: (self.burst / n).max(1.0) }
    }

    /// The limit a key's tags set, if they set a valid one.
    fn from_tags(key: &KeyRecord) -> Option<Self> {
        let rate = key.tags.get(RATE_TAG)?.parse::<f64>().ok()?;
        let burst = key.tags.get(BURST_TAG).and_then(|b| b.parse::<f64>().ok()).unwrap_or(rate);
        Self::new(rate, burst.max(1.0)).ok()
    }
}

/// The configured limits (none: unlimited).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct QuotaConfig {
    /// Per authenticated principal, over every operation it makes.
    pub per_principal: Option<Limit>,
    /// Per key, over every operation on it (a key's tags may set its own).
    pub per_key: Option<Limit>,
    /// Per namespace, over every operation on its keys and on the namespace.
    pub per_namespace: Option<Limit>,
    /// Replicas sharing the limits: each enforces `1/replicas` of every rate and burst.
    pub replicas: u32,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    /// Microseconds since the epoch at the last refill.
    at: i64,
}

/// One kind's buckets, by id.
#[derive(Debug, Default)]
struct Buckets(Mutex<HashMap<String, Bucket>>);

impl Buckets {
    /// Takes a token; `Err(seconds)` until one would be there.
    fn take(&self, id: &str, limit: Limit, now: i64) -> std::result::Result<(), f64> {
        let mut map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= CAPACITY && !map.contains_key(id) {
            // A full bucket is the same as no bucket: drop those, or everything if none is.
            map.retain(|_, b| refilled(*b, limit, now) < limit.burst);
            if map.len() >= CAPACITY {
                map.clear();
            }
        }
        let bucket = match map.get_mut(id) {
            Some(b) => b,
            None => map.entry(id.to_owned()).or_insert(Bucket { tokens: limit.burst, at: now }),
        };
        bucket.tokens = refilled(*bucket, limit, now);
        bucket.at = now.max(bucket.at);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err((1.0 - bucket.tokens) / limit.rate)
        }
    }

    /// Gives back a token taken for a request another limit refused.
    fn refund(&self, id: &str, limit: Limit) {
        let mut map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(b) = map.get_mut(id) {
            b.tokens = (b.tokens + 1.0).min(limit.burst);
        }
    }
}

fn refilled(b: Bucket, limit: Limit, now: i64) -> f64 {
    #[allow(clippy::cast_precision_loss, reason = "microseconds between two refills")]
    let elapsed = (now - b.at).max(0) as f64 / 1e6;
    (b.tokens + elapsed * limit.rate).min(limit.burst)
}

/// The buckets of one server.
#[derive(Debug, Default)]
pub struct Quotas {
    config: QuotaConfig,
    principals: Buckets,
    keys: Buckets,
    namespaces: Buckets,
}

/// What one request is charged to.
#[derive(Debug, Clone, Copy)]
pub struct Charge<'a> {
    /// The principal, when the request has not been charged to it yet.
    pub principal: Option<&'a str>,
    /// The key it acts on.
    pub key: Option<&'a KeyRecord>,
    /// The namespace it acts in.
    pub namespace: Option<&'a str>,
}

impl Quotas {
    /// Buckets for these limits, each this replica's share.
    pub fn new(config: QuotaConfig) -> Self {
        let share = |l: Option<Limit>| l.map(|l| l.share(config.replicas));
        let config = QuotaConfig {
            per_principal: share(config.per_principal),
            per_key: share(config.per_key),
            per_namespace: share(config.per_namespace),
            replicas: config.replicas,
        };
        Self { config, ..Self::default() }
    }

    /// Charges a request to each of its limits; refused (and nothing charged) when any is
    /// exhausted. The error carries the seconds until it would pass, rounded up.
    pub fn charge(&self, charge: Charge<'_>, now: DateTime<Utc>) -> Result<()> {
        let now = now.timestamp_micros();
        let key_limit = charge.key.and_then(|k| Limit::from_tags(k).map(|l| l.share(self.config.replicas)));
        let key_limit = key_limit.or(self.config.per_key);
        let key_id = charge.key.map(|k| k.id.to_string());
        let checks = [
            ("principal", &self.principals, charge.principal, self.config.per_principal),
            ("key", &self.keys, key_id.as_deref(), key_limit),
            ("namespace", &self.namespaces, charge.namespace, self.config.per_namespace),
        ];
        let mut taken = Vec::with_capacity(3);
        for (scope, buckets, id, limit) in checks {
            let (Some(id), Some(limit)) = (id, limit) else { continue };
            match buckets.take(id, limit, now) {
                Ok(()) => taken.push((buckets, id, limit)),
                Err(wait) => {
                    for (buckets, id, limit) in taken {
                        buckets.refund(id, limit);
                    }
                    metrics::counter!("keyward_quota_refusals_total", "scope" => scope).increment(1);
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "a few seconds")]
                    let seconds = (wait.ceil() as u32).max(1);
                    return Err(Error::rate_limited(format!("{scope} quota exhausted"))
                        .with_detail(Detail::RetryAfter(seconds)));
                }
            }
        }
        Ok(())
    }

    /// Whether no limit is configured.
    pub fn is_unlimited(&self) -> bool {
        self.config.per_principal.is_none() && self.config.per_key.is_none() && self.config.per_namespace.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(rate: f64, burst: f64) -> Limit {
        Limit::new(rate, burst).unwrap_or_else(|e| unreachable!("{e}"))
    }

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let b = Buckets::default();
        let l = limit(10.0, 3.0);
        let t0 = 1_000_000_000;
        assert!((0..3).all(|_| b.take("p", l, t0).is_ok()));
        let wait = b.take("p", l, t0).err();
        assert!(wait.is_some_and(|w| (w - 0.1).abs() < 1e-9), "{wait:?}");
        // 100 ms later one more token.
        assert!(b.take("p", l, t0 + 100_000).is_ok());
        assert!(b.take("p", l, t0 + 100_000).is_err());
        // Another id has its own bucket.
        assert!(b.take("q", l, t0).is_ok());
        // A long pause refills to the burst, no further.
        let later = t0 + 60_000_000;
        assert!((0..3).all(|_| b.take("p", l, later).is_ok()));
        assert!(b.take("p", l, later).is_err());
    }

    #[test]
    fn limits_are_validated_and_shared_between_replicas() {
        assert!(Limit::new(0.0, 1.0).is_err());
        assert!(Limit::new(f64::NAN, 1.0).is_err());
        assert!(Limit::new(1.0, 0.5).is_err());
        assert_eq!(limit(90.0, 30.0).share(3), limit(30.0, 10.0));
        assert_eq!(limit(3.0, 2.0).share(4).burst, 1.0, "a share keeps a burst of one request");
    }
}
