//! Schema migrations, one file each, applied at start.

mod m0001_initial;
mod m0002_grants;
mod m0003_audit_chain;
mod m0004_audit_time_brin;
mod m0005_audit_c_collation;
mod m0006_access_keys;
mod m0007_grant_retiring_principal;
mod m0008_audit_genesis;
mod m0009_key_usage_audit_details;
mod m0010_imported_keys;
mod m0011_rotate_after_encryptions;
mod m0012_deletion_canary;
mod m0013_approvals;

use sea_orm_migration::prelude::*;

/// Every migration in order.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_initial::Migration),
            Box::new(m0002_grants::Migration),
            Box::new(m0003_audit_chain::Migration),
            Box::new(m0004_audit_time_brin::Migration),
            Box::new(m0005_audit_c_collation::Migration),
            Box::new(m0006_access_keys::Migration),
            Box::new(m0007_grant_retiring_principal::Migration),
            Box::new(m0008_audit_genesis::Migration),
            Box::new(m0009_key_usage_audit_details::Migration),
            Box::new(m0010_imported_keys::Migration),
            Box::new(m0011_rotate_after_encryptions::Migration),
            Box::new(m0012_deletion_canary::Migration),
            Box::new(m0013_approvals::Migration),
        ]
    }
}
