//! The harness runs and reports (how fast is not asserted here: timing belongs in reports).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

use std::process::Command;

#[test]
fn quick_run_reports_every_scenario() {
    // With services required (the full suite) every scenario runs, Postgres and SoftHSM2 ones
    // included.
    let full = std::env::var("KEYWARD_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
    let scenarios: &[&str] = if full { &["all"] } else { &["B0", "S1", "S3"] };
    let out = Command::new(env!("CARGO_BIN_EXE_keyward-bench"))
        .args(scenarios)
        .args(["--quick", "--concurrency", "8"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output()
        .expect("run keyward-bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "keyward-bench failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let expected: &[&str] = if full {
        &[
            "| B0 | max |",
            "| S1 HS256 | max |",
            "| S3 encrypt 1KB | max |",
            "| S4 ",
            "| S6 ",
            "| S7 encrypt 4096B | max |",
            "| S8 encrypt 1KB, pkcs11 (SoftHSM2) | max |",
            "| H0 raw C_Encrypt 1KB, 1 session(s) | max |",
            "| S9 encrypt 1KB, aws-kms stub 1 ms, 2 in flight | max |",
            "| S9 encrypt 1KB, aws-kms stub 25 ms, 50 in flight | max |",
            "| K0 straight to the stub 25 ms, 50 in flight | max |",
            "| Q1 quota check, 1 thread | max |",
        ]
    } else {
        &["| B0 | max |", "| S1 HS256 | max |", "| S3 encrypt 1KB | max |"]
    };
    for row in expected {
        assert!(stdout.contains(row), "missing row {row:?} in:\n{stdout}");
    }
    assert!(stdout.contains("| B0 | max |") && stdout.contains("| 1.00 |"), "B0's ratio to itself is 1.00");
    if full {
        assert!(
            stdout.lines().filter(|l| l.starts_with("| S4 ") || l.starts_with("| S6 ")).all(|l| l.contains("| ok (")),
            "{stdout}"
        );
        // S9 runs without errors (a stub answer the SDK cannot read would show here).
        assert!(
            stdout
                .lines()
                .filter(|l| l.starts_with("| S9 ") || l.starts_with("| K0 "))
                .all(|l| l.contains("| 0.00% |")),
            "{stdout}"
        );
    }
    let jsonl = stdout.lines().find_map(|l| l.strip_prefix("rows written to ")).expect("jsonl path");
    let text = std::fs::read_to_string(jsonl.trim()).expect("jsonl");
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    s3_cpu_has_not_regressed(&text);
    for field in [
        "scenario",
        "rps",
        "p50_ms",
        "p99_ms",
        "p999_ms",
        "cpu_us_per_req",
        "ratio_to_b0",
        "concurrency",
        "git_sha",
        "time",
        "cores",
    ] {
        assert!(first.get(field).is_some(), "jsonl lacks {field}: {first}");
    }
}

/// S3's server CPU per request as a multiple of B0's in this smoke run (a debug build, 8
/// connections, about a second per phase), as committed after the per-worker audit lanes: 7.7 on the
/// development machine (docs/benchmarks.md). The suite fails past 1.5 times that, a ratio only.
const COMMITTED_S3_OVER_B0_CPU: f64 = 7.7;

fn s3_cpu_has_not_regressed(jsonl: &str) {
    let cpu = |scenario: &str| {
        jsonl
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|r| r["scenario"] == scenario && r["phase"] == "max")
            .and_then(|r| r["cpu_us_per_req"].as_f64())
            .unwrap_or_else(|| panic!("no CPU figure for {scenario} in {jsonl}"))
    };
    let ratio = cpu("S3 encrypt 1KB") / cpu("B0");
    assert!(
        ratio <= 1.5 * COMMITTED_S3_OVER_B0_CPU,
        "S3 costs {ratio:.1}x B0's server CPU per request, past 1.5x the committed {COMMITTED_S3_OVER_B0_CPU}x"
    );
}

#[test]
fn policy_scale_quick_run_reports_and_agrees_with_the_whole_set() {
    // The harness itself fails when an indexed decision differs from Cedar over the whole set.
    let out = Command::new(env!("CARGO_BIN_EXE_keyward-bench"))
        .args(["policy-scale", "--quick"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output()
        .expect("run keyward-bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "policy-scale failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("| 10 | ") && stdout.contains("| 1000 | "), "{stdout}");
}
