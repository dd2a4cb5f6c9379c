//! Operator notifications by webhook (`[notifications] webhook_url`). Each event is a JSON
//! POST signed with HMAC-SHA256 over `<timestamp>.<body>` (header
//! `X-Keyward-Signature: t=<unix seconds>,v1=<hex>`), so a receiver can check its origin and
//! refuse replays by their age; `X-Keyward-Delivery` stays the same across retries, so it can
//! drop duplicates. Deliveries run on their own tasks, retried with backoff; a request never
//! waits for one, and when too many are pending new events are dropped (counted).

use std::sync::Arc;
use std::time::Duration;

use keyward_core::ports::notifier::{CanaryEvent, Notifier};
use serde_json::json;
use zeroize::Zeroizing;

/// Deliveries in flight at once; past this, events are dropped and counted.
const MAX_PENDING: usize = 256;

/// Where and how to deliver.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// The receiver (`https://`, or `http://` to a loopback address).
    pub url: reqwest::Url,
    /// The HMAC key.
    pub secret: Arc<Zeroizing<Vec<u8>>>,
    /// Attempts per event (the first included).
    pub max_attempts: u32,
    /// The wait before the first retry; doubled after each.
    pub retry_base: Duration,
    /// One attempt's time limit.
    pub timeout: Duration,
}

/// Queues events for delivery to the webhook.
#[derive(Debug, Clone)]
pub struct Webhook {
    settings: Arc<WebhookSettings>,
    client: reqwest::Client,
    pending: Arc<tokio::sync::Semaphore>,
    runtime: tokio::runtime::Handle,
}

impl Webhook {
    /// A webhook delivering on the current runtime.
    pub fn new(settings: WebhookSettings) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("webhook client: {e}"))?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| format!("webhook: {e}"))?;
        Ok(Self {
            settings: Arc::new(settings),
            client,
            pending: Arc::new(tokio::sync::Semaphore::new(MAX_PENDING)),
            runtime,
        })
    }

    fn send(&self, event: &'static str, body: serde_json::Value) {
        let Ok(permit) = self.pending.clone().try_acquire_owned() else {
            metrics::counter!("keyward_notifications_total", "event" => event, "outcome" => "dropped").increment(1);
            tracing::warn!(event, "webhook backlog full; notification dropped");
            return;
        };
        let (client, settings) = (self.client.clone(), self.settings.clone());
        self.runtime.spawn(async move {
            let delivered = deliver(&client, &settings, event, &body).await;
            let outcome = if delivered { "delivered" } else { "failed" };
            metrics::counter!("keyward_notifications_total", "event" => event, "outcome" => outcome).increment(1);
            drop(permit);
        });
    }
}

impl Notifier for Webhook {
    fn deletion_canary(&self, e: CanaryEvent) {
        let rfc3339 = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let body = json!({
            "event": "deletion_canary",
            "time": rfc3339(e.time),
            "key_id": e.key_id.to_string(),
            "namespace": e.namespace,
            "principal": e.principal,
            "action": e.action,
            "request_id": e.request_id,
            "deletion_date": e.deletion_date.map(rfc3339),
            "deletion_canary_count": e.count,
            "deletion_cancelled": e.deletion_cancelled,
        });
        self.send("deletion_canary", body);
    }
}

/// Posts one event until it is accepted (2xx) or the attempts run out.
async fn deliver(client: &reqwest::Client, s: &WebhookSettings, event: &str, body: &serde_json::Value) -> bool {
    let delivery = uuid::Uuid::new_v4().to_string();
    let body = body.to_string();
    let mut wait = s.retry_base;
    for attempt in 1..=s.max_attempts {
        let timestamp = chrono::Utc::now().timestamp().to_string();
        let request = client
            .post(s.url.clone())
            .header("content-type", "application/json")
            .header("x-keyward-event", event)
            .header("x-keyward-delivery", &delivery)
            .header("x-keyward-signature", format!("t={timestamp},v1={}", signature(&s.secret, &timestamp, &body)))
            .body(body.clone());
        match request.send().await {
            Ok(r) if r.status().is_success() => return true,
            Ok(r) => tracing::warn!(event, attempt, status = r.status().as_u16(), "webhook refused a notification"),
            Err(e) => tracing::warn!(event, attempt, error = %e, "webhook unreachable"),
        }
        if attempt < s.max_attempts {
            tokio::time::sleep(wait).await;
            wait = wait.saturating_mul(2);
        }
    }
    tracing::error!(event, delivery, "notification not delivered; giving up");
    false
}

/// Hex HMAC-SHA256 of `<timestamp>.<body>`.
pub fn signature(secret: &[u8], timestamp: &str, body: &str) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let mut ctx = aws_lc_rs::hmac::Context::with_key(&key);
    ctx.update(timestamp.as_bytes());
    ctx.update(b".");
    ctx.update(body.as_bytes());
    hex::encode(ctx.sign().as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_the_timestamp_a_dot_and_the_body() {
        // Computed independently (Python's hmac) over `1700000000.{"a":1}` with key `Jefe`.
        let want = "fa5f6481efc59da48b19c9dc10196c9953e5651f8304b3a318b6b87d70272e0a";
        assert_eq!(signature(b"Jefe", "1700000000", r#"{"a":1}"#), want);
        assert_ne!(signature(b"Jefe", "1700000001", r#"{"a":1}"#), want, "the timestamp is signed");
        assert_ne!(signature(b"Jeff", "1700000000", r#"{"a":1}"#), want, "the key matters");
    }
}
