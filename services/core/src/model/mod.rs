//! The key model: identifiers, keys, versions, encryption context, principals.

pub mod access_key;
pub mod approval;
pub mod context;
pub mod grant;
pub mod ids;
pub mod import;
pub mod key;
pub mod principal;
pub mod signing;
pub mod version;
