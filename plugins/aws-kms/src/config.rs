//! The aws-kms backend's settings (DESIGN §9 names).

use std::time::Duration;

/// Settings of one `kind = "aws-kms"` instance. Credentials come from the standard AWS
/// environment variables, then the shared profile files; never from this table.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsKmsConfig {
    /// The region, e.g. `us-east-1`.
    pub region: String,
    /// Another endpoint than AWS's (a compatible server, a VPC endpoint).
    pub endpoint: Option<String>,
    /// A named profile in the shared AWS files.
    pub profile: Option<String>,
    /// Deadline of one call, retries included (default 1000 ms; keep it under the server's
    /// `backend_timeout_ms`).
    pub timeout_ms: Option<u64>,
    /// Attempts per call; throttling and transient failures are retried with jittered
    /// exponential backoff (default 3).
    pub max_attempts: Option<u32>,
    /// Waiting period the external KMS applies when a created key is deleted (7-30 days,
    /// default 7: Keyward's own waiting period has already passed).
    pub external_pending_window_days: Option<i32>,
    /// Whether the external KMS takes `MessageType = DIGEST` on Sign and Verify (default
    /// true, as AWS KMS does; `false` for compatible servers that hash every message again,
    /// such as moto: DIGEST requests then answer 422).
    pub digest_messages: Option<bool>,
    /// Whether RSA ENCRYPT_DECRYPT keys are offered (default true; `false` for compatible
    /// servers that do not encrypt with RSAES-OAEP, such as moto).
    pub rsa_encryption: Option<bool>,
}

impl AwsKmsConfig {
    /// Checks the values that have ranges.
    pub fn validate(&self) -> Result<(), String> {
        if self.region.trim().is_empty() {
            return Err("`region` must not be empty".into());
        }
        if let Some(endpoint) = &self.endpoint
            && !(endpoint.starts_with("https://") || endpoint.starts_with("http://"))
        {
            return Err(format!("`endpoint` must be an http(s) URL, not `{endpoint}`"));
        }
        if !(10..=60_000).contains(&self.timeout().as_millis()) {
            return Err("`timeout_ms` must be 10-60000".into());
        }
        if !(1..=10).contains(&self.attempts()) {
            return Err("`max_attempts` must be 1-10".into());
        }
        if !(7..=30).contains(&self.pending_window_days()) {
            return Err("`external_pending_window_days` must be 7-30".into());
        }
        Ok(())
    }

    /// Deadline of one call.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.unwrap_or(1000))
    }

    /// Attempts per call.
    pub fn attempts(&self) -> u32 {
        self.max_attempts.unwrap_or(3)
    }

    /// External deletion waiting period.
    pub fn pending_window_days(&self) -> i32 {
        self.external_pending_window_days.unwrap_or(7)
    }
}
