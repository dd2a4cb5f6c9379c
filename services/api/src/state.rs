//! What every handler shares.

use std::sync::Arc;

use keyward_core::service::KeyService;

use crate::auth::Authenticator;

/// Shared application state.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The domain service.
    pub service: Arc<KeyService>,
    /// Token verification.
    pub auth: Arc<Authenticator>,
}
