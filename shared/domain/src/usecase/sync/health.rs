//! Health the MSP sees in the PSA (contract *Notifications*: Gradient's integration status). After
//! `error_after` runs in a row end `failed` or `partially_failed`, the PSA is told the integration
//! is failing (Gradient: status `error`); the first run that succeeds afterwards tells it healthy
//! again (`active`). One call per change, audited as `psa.status_set` with `from` and `to`;
//! nothing when the PSA already shows it. The streak itself is kept by
//! `Connector::finished_run`; held, cancelled and token-rejected runs neither count nor reset.

use super::SyncPolicy;
use crate::audit::{Actor, AuditAction, AuditEvent};
use crate::ports::{Health, StoreError};
use crate::secret::ApiToken;
use crate::sync::SyncRun;
use crate::usecase::WorkerCore;
use crate::usecase::{audit, update_connector};

/// What the PSA should show now, if it differs from what it shows.
fn change(streak: u32, failing: bool, error_after: u32) -> Option<Health> {
    match (streak >= error_after.max(1), streak == 0) {
        (true, _) if !failing => Some(Health::Failing),
        (_, true) if failing => Some(Health::Healthy),
        _ => None,
    }
}

/// After `run` finished: tells the PSA when the connector's health changed. A failure to tell it
/// is logged and tried again after the next run (the connector keeps what the PSA shows).
pub(super) async fn settle(
    core: &WorkerCore,
    policy: &SyncPolicy,
    run: &SyncRun,
    token: &ApiToken,
) -> Result<(), StoreError> {
    let (ws, kind) = (&run.workspace_id, run.connector_id);
    let Some(c) = core.connectors.get(ws, kind).await? else {
        return Ok(());
    };
    if !c.owns(&run.incarnation, run.token_version) {
        return Ok(());
    }
    let Some(health) = change(c.failed_streak, c.psa_failing, policy.error_after) else {
        return Ok(());
    };
    let psa = core.psa(kind);
    let told = tokio::time::timeout(policy.verify_deadline, psa.report_health(token, health));
    match told.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, ?health, "could not show the PSA the connector's health");
            return Ok(());
        }
        Err(_) => {
            tracing::warn!(?health, "the PSA did not answer the health change in time");
            return Ok(());
        }
    }
    let failing = health == Health::Failing;
    let (inc, version) = (run.incarnation.clone(), run.token_version);
    update_connector(core, ws, kind, |c| {
        c.owns(&inc, version) && c.psa_failing != failing && {
            c.psa_failing = failing;
            true
        }
    })
    .await?;
    let from = match health {
        Health::Failing => Health::Healthy,
        Health::Healthy => Health::Failing,
    };
    tracing::info!(
        from = psa.health_name(from),
        to = psa.health_name(health),
        streak = c.failed_streak,
        "the PSA shows the connector's health"
    );
    let event = AuditEvent::new(Actor::System, AuditAction::PsaStatusSet, kind)
        .run(&run.run_id)
        .with("from", psa.health_name(from))
        .with("to", psa.health_name(health));
    audit(core, ws, event).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_after_the_streak_healthy_after_a_success_nothing_in_between() {
        assert_eq!(change(2, false, 3), None);
        assert_eq!(change(3, false, 3), Some(Health::Failing));
        assert_eq!(change(4, true, 3), None, "already shown");
        assert_eq!(change(1, true, 3), None, "a failure after a success");
        assert_eq!(change(0, true, 3), Some(Health::Healthy));
        assert_eq!(change(0, false, 3), None);
        assert_eq!(
            change(1, false, 0),
            Some(Health::Failing),
            "at least one run"
        );
    }
}
