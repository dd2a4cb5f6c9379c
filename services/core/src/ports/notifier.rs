//! The notifier port: events sent to operators outside the audit trail (a webhook). Sending
//! never blocks or fails a request: an implementation queues and delivers on its own time.

use chrono::{DateTime, Utc};

use crate::model::ids::KeyId;

/// An attempt to use a key pending deletion (the deletion canary).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanaryEvent {
    /// When the attempt was made.
    pub time: DateTime<Utc>,
    /// The key.
    pub key_id: KeyId,
    /// Its namespace.
    pub namespace: String,
    /// Who tried (the principal's uid).
    pub principal: String,
    /// What they tried (the operation's name).
    pub action: String,
    /// The attempt's request id (its audit record's).
    pub request_id: String,
    /// When the key is to be destroyed.
    pub deletion_date: Option<DateTime<Utc>>,
    /// Attempts counted so far, this one included.
    pub count: u64,
    /// Whether the canary cancelled the deletion (`on_use_while_pending = cancel`).
    pub deletion_cancelled: bool,
}

/// Where operator notifications go.
pub trait Notifier: Send + Sync + std::fmt::Debug {
    /// Queues a deletion canary for delivery; returns at once.
    fn deletion_canary(&self, event: CanaryEvent);
}
