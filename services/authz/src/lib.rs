//! Authorization with Cedar: loading and strictly validating policy sets, building
//! entities for a request, and deciding with fail-closed semantics.

mod authorizer;
mod bundle;
mod cache;
pub mod cases;
mod entities;
mod grants;
mod index;
pub mod proofs;

pub use authorizer::{CedarAuthorizer, ReloadProofs};
pub use bundle::{EMBEDDED, PolicyBundle, PolicyError, PolicySource, SCHEMA_FILE};

#[cfg(test)]
mod tests;
