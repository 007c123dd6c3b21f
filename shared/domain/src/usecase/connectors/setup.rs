//! Setting up the PSA after a connect or re-token, within what the request has left.

use super::*;
use crate::connector::{Connector, ConnectorStatus, reason};
use crate::ports::{PsaError, PsaIntegration};
use crate::secret::ApiToken;
use crate::usecase::PsaCore;
use crate::usecase::provision::{
    ProvisionError, ensure_accounts, ensure_services, managed_workspaces,
};
use crate::usecase::sync::SyncPolicy;
use crate::usecase::{now, update_connector};
use std::time::Instant;

/// [`set_up`] within what is left of the request's `api_deadline`; what does not finish in time is
/// left to the next sync (`setup_incomplete`), so the request still answers in time.
pub(super) async fn set_up_within(
    core: &PsaCore,
    policy: &SyncPolicy,
    started: Instant,
    connector: &Connector,
    token: &ApiToken,
    org: &PsaIntegration,
) -> SetupReport {
    let left = policy.api_deadline.saturating_sub(started.elapsed());
    match tokio::time::timeout(left, set_up(core, connector, token, org)).await {
        Ok(report) => report,
        Err(_) => {
            tracing::warn!("PSA set-up ran out of the request's time; the next sync repeats it");
            SetupReport {
                error: Some("set-up did not finish in time".into()),
                ..Default::default()
            }
        }
    }
}

/// Tells the PSA set-up begins (Gradient: status `pending` unless already `active`), services,
/// accounts.
/// Never fails the caller: what went wrong is reported and repeated by the next sync.
pub(super) async fn set_up(
    core: &PsaCore,
    connector: &Connector,
    token: &ApiToken,
    org: &PsaIntegration,
) -> SetupReport {
    let workspace = &connector.workspace_id;
    let mut report = SetupReport::default();
    let result: Result<(), ProvisionError> = async {
        core.psa(connector.kind).begin_setup(token, org).await?;
        let (_, created) = ensure_services(core, connector.kind, token, workspace).await?;
        report.services_created = created;
        let workspaces = managed_workspaces(core, workspace).await?;
        let cref = connector.reference();
        let accounts = ensure_accounts(core, token, &workspaces, &cref, &|| false).await?;
        report.accounts = accounts.accounts;
        report.accounts_created = accounts.created;
        report.accounts_renamed = accounts.renamed;
        Ok(())
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "PSA set-up incomplete; the next sync repeats it");
        report.error = Some(match e {
            ProvisionError::Psa(PsaError::TokenRejected) => reason::TOKEN_REJECTED.to_owned(),
            other => other.to_string(),
        });
    }
    report
}

/// Records the outcome of [`set_up`] on the connector (only when it changes something).
pub(super) async fn settle_setup(
    core: &PsaCore,
    connector: &mut Connector,
    report: &SetupReport,
) -> Result<(), ConnectorError> {
    let (status, why) = match report.error.as_deref() {
        None => (ConnectorStatus::Connected, None),
        Some(reason::TOKEN_REJECTED) => {
            (ConnectorStatus::Disconnected, Some(reason::TOKEN_REJECTED))
        }
        Some(_) => (ConnectorStatus::Connected, Some(reason::SETUP_INCOMPLETE)),
    };
    if connector.status == status && connector.status_reason.as_deref() == why {
        return Ok(());
    }
    let (incarnation, version) = (connector.incarnation.clone(), connector.token_version);
    let mut newer = None;
    let updated = update_connector(core, &connector.workspace_id, connector.kind, |c| {
        if !c.owns(&incarnation, version) {
            newer = Some(c.clone()); // a newer token arrived meanwhile: its outcome wins
            return false;
        }
        c.set_status(status, why, now());
        true
    })
    .await?;
    match updated.or(newer) {
        Some(c) => {
            *connector = c;
            Ok(())
        }
        None => Err(ConnectorError::NotFound),
    }
}
