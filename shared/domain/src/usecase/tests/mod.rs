//! Unit tests of the use cases against the port fakes of [`crate::testing`]: the core's own
//! logic, fast and without servers.

mod connectors;
mod provision;
mod second_psa;
mod views;

use super::sync::SyncPolicy;

/// The type most tests connect (the second is in `second_psa`).
const G: crate::ConnectorType = crate::ConnectorType::Gradient;

fn policy() -> SyncPolicy {
    SyncPolicy::default()
}
