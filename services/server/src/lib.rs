//! The `keyward` server: CLI, configuration, wiring and the HTTP server, as a library so
//! tools (the benchmark harness) run exactly the same server.

pub mod access_key_cmd;
pub mod approval_cmd;
pub mod audit_cmd;
pub mod cli;
pub mod config;
pub mod console_oidc;
pub mod data_dir;
pub mod dev;
pub mod envelope_cmd;
pub mod key_cmd;
mod key_import;
pub mod policy_cmd;
pub mod profile;
pub mod remote_cmd;
pub mod serve;
pub mod telemetry;
pub mod tls;
pub mod webhook;
pub mod wiring;
