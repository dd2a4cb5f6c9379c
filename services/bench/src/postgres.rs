//! A throwaway PostgreSQL with default durability, started by the repository's script.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts").join(name)
}

/// A running cluster; stopped on drop.
#[derive(Debug)]
pub struct Postgres {
    vars: BTreeMap<String, String>,
}

impl Postgres {
    /// Starts a cluster.
    pub fn start() -> Result<Self, String> {
        let out = Command::new(script("start-postgres.sh")).output().map_err(|e| format!("start-postgres.sh: {e}"))?;
        if !out.status.success() {
            return Err(format!("start-postgres.sh failed: {}", String::from_utf8_lossy(&out.stderr)));
        }
        let vars = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Ok(Self { vars })
    }

    /// The database URL.
    pub fn url(&self) -> &str {
        self.vars.get("KEYWARD_TEST_DATABASE_URL").map_or("", String::as_str)
    }

    /// `pg_test_fsync`'s one-8kB-write fdatasync rate (ops/s) on the cluster's disk.
    pub fn fdatasync_ops(&self) -> Option<f64> {
        let bin = self.vars.get("KEYWARD_PG_BIN")?;
        let dir = self.vars.get("KEYWARD_PG_DIR")?;
        let out = Command::new(format!("{bin}/pg_test_fsync"))
            .args(["-s", "1", "-f", &format!("{dir}/fsync.test")])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().find(|l| l.trim_start().starts_with("fdatasync"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(dir) = self.vars.get("KEYWARD_PG_DIR") {
            let _ = Command::new(script("stop-postgres.sh")).arg(dir).status();
        }
    }
}
