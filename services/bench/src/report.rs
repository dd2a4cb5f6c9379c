//! The report: one table on stdout, the same rows as JSON lines under `target/bench/`.

use std::io::Write;

use serde::Serialize;

/// One row.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Scenario id, e.g. `S3`.
    pub scenario: String,
    /// `max` (closed loop), `50%` or `80%` (open loop at that share of max).
    pub phase: String,
    /// Responses per second.
    pub rps: f64,
    /// Median latency.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Server CPU per request (closed loop only).
    pub cpu_us_per_req: Option<f64>,
    /// rps / B0's rps in the same run.
    pub ratio_to_b0: Option<f64>,
    /// Connections.
    pub concurrency: usize,
    /// Share of non-2xx answers.
    pub error_rate: f64,
    /// S9: throughput / (in-flight / injected latency).
    pub little: Option<f64>,
    /// S11: goodput against the maximum, refusals and their latency.
    pub overload: Option<String>,
    /// `ok`, `MISMATCH`, or absent when the scenario writes no durable audit.
    pub audit_check: Option<String>,
    /// The commit measured.
    pub git_sha: String,
    /// When.
    pub time: String,
    /// CPU cores of the machine.
    pub cores: usize,
}

/// Prints the table.
#[allow(clippy::print_stdout, reason = "the report is the output")]
pub fn print(rows: &[Row], header: &str) {
    println!("{header}");
    println!(
        "| scenario | phase | req/s | p50 ms | p99 ms | p99.9 ms | server CPU µs/req | ratio to B0 | errors | audit rows = answered | vs Little's law |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |");
    for r in rows {
        println!(
            "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {} | {:.2}% | {} | {} |",
            r.scenario,
            r.phase,
            r.rps,
            r.p50_ms,
            r.p99_ms,
            r.p999_ms,
            r.cpu_us_per_req.map_or("".into(), |c| format!("{c:.0}")),
            r.ratio_to_b0.map_or("".into(), |x| format!("{x:.2}")),
            r.error_rate * 100.0,
            r.audit_check.as_deref().unwrap_or("n/a"),
            r.little.map_or("".into(), |x| format!("{x:.2}")),
        );
    }
    for r in rows.iter().filter(|r| r.overload.is_some()) {
        println!("\n{} ({}): {}", r.scenario, r.phase, r.overload.as_deref().unwrap_or(""));
    }
}

/// Appends the rows to `target/bench/<time>.jsonl`; returns the path.
pub fn write_jsonl(rows: &[Row]) -> Result<std::path::PathBuf, String> {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let stamp = rows.first().map_or_else(String::new, |r| r.time.replace(':', ""));
    let path = dir.join(format!("{stamp}.jsonl"));
    let mut f = std::fs::File::create(&path).map_err(|e| e.to_string())?;
    for r in rows {
        let line = serde_json::to_string(r).map_err(|e| e.to_string())?;
        writeln!(f, "{line}").map_err(|e| e.to_string())?;
    }
    Ok(path)
}
