//! Ports: the traits the outer crates implement for the domain.

pub mod audit;
pub mod authorizer;
pub mod backend;
pub mod clock;
pub mod key_pairs;
pub mod notifier;
pub mod store;
