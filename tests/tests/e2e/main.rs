//! End-to-end tests: one binary, one module per area (cargo links each file under `tests/`
//! as its own binary, so keep them here).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

mod aliases;
mod approvals;
mod audit_coverage;
mod audit_trail;
mod authz;
mod aws_api;
mod aws_kms;
mod canary;
mod change_atomicity;
mod cli;
mod console;
mod crypto;
mod default_keys;
mod docs;
mod durability;
mod envelope;
mod grant_sync;
mod grants;
mod hsm;
mod import;
mod jwt;
mod kubernetes;
mod lifecycle;
mod lifecycle_model;
mod maintenance;
mod openapi;
mod operations;
mod policies;
mod policy_proofs;
mod properties;
mod quotas;
mod replicas;
mod rotation_by_usage;
mod signing;
mod telemetry;
mod tls;
mod usage;
mod xks;
