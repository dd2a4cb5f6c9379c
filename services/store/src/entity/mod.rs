//! sea-orm entities, one file per table.

pub mod access_key;
pub mod alias;
pub mod approval;
pub mod audit_checkpoint;
pub mod audit_record;
pub mod grant;
pub mod idempotency_key;
pub mod key;
pub mod key_version;
