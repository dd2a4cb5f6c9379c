//! Refuses a signed request seen before. SigV4 alone accepts a captured request again for as
//! long as its date is within the allowed skew; AWS KMS signs every attempt anew, so a repeated
//! signature is never a retry, only a replay.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Signatures remembered: the skew window on both sides of now.
const WINDOW: Duration = Duration::from_secs(10 * 60);

/// Most signatures remembered; past it the oldest are forgotten first (a replay then needs
/// this many fresh requests within the window to get through, which the rate limit prevents).
const CAPACITY: usize = 200_000;

/// Seen signatures and when each may be forgotten.
#[derive(Debug, Default)]
pub struct ReplayGuard {
    seen: Mutex<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    by_signature: HashMap<String, Instant>,
    order: VecDeque<(Instant, String)>,
}

impl ReplayGuard {
    /// Records `signature`; false when it was seen within the window.
    pub fn first_use(&self, signature: &str) -> bool {
        self.first_use_at(signature, Instant::now())
    }

    fn first_use_at(&self, signature: &str, now: Instant) -> bool {
        let Ok(mut seen) = self.seen.lock() else { return false };
        while let Some((expires, _)) = seen.order.front() {
            if *expires > now && seen.order.len() < CAPACITY {
                break;
            }
            if let Some((_, old)) = seen.order.pop_front() {
                seen.by_signature.remove(&old);
            }
        }
        if seen.by_signature.contains_key(signature) {
            return false;
        }
        let expires = now + WINDOW;
        seen.by_signature.insert(signature.to_owned(), expires);
        seen.order.push_back((expires, signature.to_owned()));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_counts_once_within_the_window() {
        let g = ReplayGuard::default();
        let t = Instant::now();
        assert!(g.first_use_at("a", t));
        assert!(!g.first_use_at("a", t + Duration::from_secs(1)));
        assert!(g.first_use_at("b", t));
        // Past the window the signature is forgotten (SigV4's date check refuses it by then).
        assert!(g.first_use_at("a", t + WINDOW + Duration::from_secs(1)));
    }
}
