//! The backend plugin contract: the [`Backend`] trait and its capabilities (defined as a
//! port in `keyward-core` and re-exported here), the registry that builds configured
//! instances by kind, and the conformance suite every backend kind must pass.

pub mod conformance;
mod registry;
pub mod signature;

pub use keyward_core::ports::backend::{
    AadFn, Backend, BackendError, BoxFuture, Capabilities, DataKey, DynBackend, GcmVector, ImportRequest,
    ImportWrapping, Imported, RAW_NONCE_LEN, RAW_TAG_LEN, RawGcm, RsaTestKey, Sealed, VersionHandle,
};
pub use registry::{BuildContext, BuildFn, Built, ConfigError, Registry, RootSource, RootWrapper, instance_settings};
