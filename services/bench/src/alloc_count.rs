//! Allocations per request. Built with the `count-allocations` feature, the bench binary's
//! allocator counts allocations (`stats_alloc`); with `--count-allocations` the server under
//! test publishes its count as the gauge `keyward_bench_allocations_total`, and the bench
//! reads it around the closed-loop phase. Without the feature nothing is counted, so the CPU
//! figures of ordinary runs carry no counting cost.

use std::time::Duration;

#[cfg(feature = "count-allocations")]
#[global_allocator]
static ALLOCATOR: &stats_alloc::StatsAlloc<std::alloc::System> = &stats_alloc::INSTRUMENTED_SYSTEM;

#[cfg(feature = "count-allocations")]
fn allocations() -> Option<usize> {
    let stats = ALLOCATOR.stats();
    Some(stats.allocations + stats.reallocations)
}

#[cfg(not(feature = "count-allocations"))]
fn allocations() -> Option<usize> {
    None
}

/// Publishes the count every 10 ms (the bench reads it before and after a phase of seconds,
/// so the lag is well under 1 %); an error when the binary was built without counting.
pub fn publish() -> Result<(), String> {
    if allocations().is_none() {
        return Err("--count-allocations needs keyward-bench built with `--features count-allocations`".into());
    }
    std::thread::spawn(|| {
        loop {
            #[allow(clippy::cast_precision_loss, reason = "a count far below 2^53")]
            metrics::gauge!("keyward_bench_allocations_total").set(allocations().unwrap_or(0) as f64);
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    Ok(())
}
