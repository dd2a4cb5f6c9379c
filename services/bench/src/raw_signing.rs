//! H1 for S14: raw aws-lc-rs ECDSA P-256 signatures and HMAC-SHA-256 MACs of a 64-byte message,
//! one thread each, the ceiling the software backend's Sign and GenerateMac work under.

use std::time::{Duration, Instant};

use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};

/// Runs `op` on `threads` threads for `duration`; operations per second.
fn rate(threads: usize, duration: Duration, op: impl Fn() -> Result<(), String> + Sync) -> Result<f64, String> {
    let counts: Vec<Result<u64, String>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let op = &op;
                scope.spawn(move || {
                    let started = Instant::now();
                    let mut n: u64 = 0;
                    while started.elapsed() < duration {
                        op()?;
                        n += 1;
                    }
                    Ok(n)
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap_or_else(|_| Err("worker panicked".into()))).collect()
    });
    let total: u64 = counts.into_iter().sum::<Result<u64, String>>()?;
    #[allow(clippy::cast_precision_loss, reason = "a count of operations")]
    Ok(total as f64 / duration.as_secs_f64())
}

/// ECDSA P-256 signatures per second.
pub fn ecdsa_rate(threads: usize, duration: Duration) -> Result<f64, String> {
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).map_err(|e| e.to_string())?;
    let rng = SystemRandom::new();
    let message = [0x5Au8; 64];
    rate(threads, duration, || pair.sign(&rng, &message).map(|_| ()).map_err(|e| e.to_string()))
}

/// HMAC-SHA-256 MACs per second.
pub fn hmac_rate(threads: usize, duration: Duration) -> Result<f64, String> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, &[0x42u8; 32]);
    let message = [0x5Au8; 64];
    rate(threads, duration, || {
        std::hint::black_box(hmac::sign(&key, &message));
        Ok(())
    })
}
