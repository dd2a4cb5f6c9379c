//! The aws-kms backend: keys held by an external KMS speaking the AWS KMS API (AWS itself or a
//! compatible server), used under Keyward's policies and audit trail.

mod backend;
mod config;
mod failure;

pub use backend::{AAD_ENTRY, ALG_EXTERNAL_KMS, AwsKmsBackend};
pub use config::AwsKmsConfig;

use std::sync::Arc;

use keyward_backend::{BuildContext, Built, ConfigError, Registry};

/// The kind name in configuration.
pub const KIND: &str = "aws-kms";

/// The external key ARN a version's stored reference names (for operators and tests).
pub fn external_arn(material: &[u8]) -> Option<&str> {
    material
        .split_first()
        .filter(|(origin, _)| matches!(origin, 1 | 2))
        .and_then(|(_, arn)| std::str::from_utf8(arn).ok())
}

/// Registers the aws-kms kind.
pub fn register(registry: &mut Registry) {
    registry.register(KIND, build);
}

fn build(name: &str, settings: &toml::Table, _ctx: &BuildContext) -> Result<Built, ConfigError> {
    let invalid = ConfigError::invalid_for(name);
    let config: AwsKmsConfig = keyward_backend::instance_settings(settings).map_err(invalid)?;
    let backend = AwsKmsBackend::connect(&config).map_err(invalid)?;
    tracing::info!(
        backend = name,
        region = %config.region,
        endpoint = config.endpoint.as_deref().unwrap_or("AWS"),
        "aws-kms backend ready"
    );
    Ok(Built::plain(Arc::new(backend)))
}
