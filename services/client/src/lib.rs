//! Keyward's Rust client: [`api::Client`], a typed client of the HTTP API, and
//! [`envelope`], client-side envelope encryption of files and streams under data keys from
//! GenerateDataKey (format: `docs/envelope-format.md`). Bulk data never reaches the server.

pub mod api;
pub mod envelope;
