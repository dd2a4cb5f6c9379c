//! Keyward's domain: the key model, the ciphertext format, the authorization gate, the
//! ports the outer crates implement, and the [`service::KeyService`] that ties them together.
//! Nothing here knows about HTTP or SQL.

pub mod blob;
pub mod error;
pub mod gate;
pub mod model;
pub mod operation;
pub mod ports;
pub mod service;

pub use error::{Detail, Error, ErrorCode, Result};

#[cfg(any(test, feature = "testing"))]
pub mod testing;
