//! Unit tests of the use cases against the port fakes of [`crate::testing`]: the core's own
//! logic, fast and without servers.

mod connectors;
mod provision;
mod views;

use super::sync::SyncPolicy;

fn policy() -> SyncPolicy {
    SyncPolicy::default()
}
