//! Unit tests of the use cases against the port fakes of [`crate::testing`]: the core's own
//! logic, fast and without servers.

mod connectors;
mod job;
mod job_claim;
mod job_fence;
mod job_post;
mod job_setup;
mod provision;
mod second_psa;
mod views;

use super::sync::SyncPolicy;

/// The type most tests connect (the second is in `second_psa`).
const G: crate::ConnectorType = crate::ConnectorType::Gradient;

/// Connects `kind` for an admin of `msp` with the default policy; the connect must succeed.
async fn connected(
    w: &crate::testing::World,
    kind: crate::ConnectorType,
    raw_token: &str,
) -> (crate::Connector, super::connectors::SetupReport) {
    super::connectors::connect(
        &w.core,
        &policy(),
        &crate::testing::admin("msp"),
        kind,
        crate::testing::token(raw_token),
    )
    .await
    .unwrap()
}

fn policy() -> SyncPolicy {
    SyncPolicy::default()
}
