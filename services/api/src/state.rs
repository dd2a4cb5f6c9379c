//! What every handler shares.

use std::sync::Arc;

use keyward_core::service::KeyService;

use crate::auth::Authenticator;

/// Renders the metrics in Prometheus text format.
pub type MetricsRenderer = Arc<dyn Fn() -> String + Send + Sync>;

/// Shared application state.
#[derive(Clone)]
pub struct AppState {
    /// The domain service.
    pub service: Arc<KeyService>,
    /// Token verification.
    pub auth: Arc<Authenticator>,
    /// The AWS KMS-compatible front door's settings and signing-key cache.
    pub aws: Arc<crate::aws::AwsApi>,
    /// `/metrics`, when a recorder is installed.
    pub metrics: Option<MetricsRenderer>,
    /// The in-flight limit.
    pub admission: crate::admission::Admission,
    /// The web console's settings.
    pub console: Arc<crate::console::Console>,
    /// The AWS KMS External Key Store proxy's stores.
    pub xks: Arc<crate::xks::Xks>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("service", &self.service).field("auth", &self.auth).finish_non_exhaustive()
    }
}
