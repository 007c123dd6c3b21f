//! Connect and re-token: the token is verified before anything is written.

use super::setup::{set_up_within, settle_setup};
use super::*;
use crate::audit::AuditAction;
use crate::caller::Caller;
use crate::connector::{Connector, ConnectorSettings, ConnectorStatus, NotifySettings};
use crate::ids::{ConnectorType, WorkspaceId};
use crate::ports::{PsaError, PsaIntegration};
use crate::secret::ApiToken;
use crate::usecase::PsaCore;
use crate::usecase::sync::SyncPolicy;
use crate::usecase::{audit, now, status_changed, update_connector};
use std::time::Instant;

pub(super) fn verify_error(e: PsaError) -> ConnectorError {
    match e {
        PsaError::TokenRejected => ConnectorError::TokenRejected,
        PsaError::Store(e) => ConnectorError::Store(e),
        e @ PsaError::Unavailable { .. } => ConnectorError::PsaUnavailable(e),
        e => ConnectorError::PsaRefused(e),
    }
}

/// Checks a token with `GET organization`; nothing is written. Each check is a PSA call, so a
/// workspace has `verify_attempts` per `verify_window`; a PSA that does not answer within
/// `verify_deadline` is unavailable (503), before anything is written.
pub(super) async fn verify(
    core: &PsaCore,
    policy: &SyncPolicy,
    caller: &Caller,
    kind: ConnectorType,
    token: &ApiToken,
) -> Result<PsaIntegration, ConnectorError> {
    let (n, left) = core
        .attempts
        .attempt(&caller.workspace, "verify", policy.verify_window)
        .await?;
    if n > policy.verify_attempts {
        return Err(ConnectorError::TooManyAttempts(left));
    }
    match tokio::time::timeout(policy.verify_deadline, core.psa(kind).verify(token)).await {
        Ok(answer) => answer.map_err(verify_error),
        Err(_) => Err(ConnectorError::PsaUnavailable(PsaError::Unavailable {
            what: format!(
                "no answer to the token check within {:?}",
                policy.verify_deadline
            ),
            retry_after: None,
        })),
    }
}

/// Connects the caller's workspace to the PSA of type `kind` with `token`.
///
/// Order matters: the token is verified before anything is written; its organization is bound to
/// the workspace (a conditional write: an organization another workspace holds is refused); the
/// connector item is claimed with a conditional write (so of N racing connects exactly one goes
/// on); only the winner stores the secret; a failure to store it removes the claim and the
/// binding again; a delete that won a race against this connect removes the secret again.
#[tracing::instrument(skip(core, token), fields(workspace_id = %caller.workspace, connector_id = kind.as_str()))]
pub async fn connect(
    core: &PsaCore,
    policy: &SyncPolicy,
    caller: &Caller,
    kind: ConnectorType,
    token: ApiToken,
) -> Result<(Connector, SetupReport), ConnectorError> {
    let started = Instant::now();
    match core.connectors.get(&caller.workspace, kind).await? {
        Some(c) if c.is_deleting() => finish_delete(core, policy, &c).await?,
        Some(_) => return Err(ConnectorError::Exists),
        None => {}
    }
    let org = verify(core, policy, caller, kind, &token).await?;
    if !core.orgs.bind(kind, &org.id, &caller.workspace).await? {
        return Err(ConnectorError::OrganizationInUse);
    }
    let defaults = ConnectorSettings {
        guard_drop_percent: policy.guard_drop_percent,
        psa_alerts: false,
        notify: NotifySettings::for_creator(caller.email.as_deref()),
    };
    let mut connector = Connector::new(
        kind,
        caller.workspace.clone(),
        caller.user.clone(),
        token.hint(),
        defaults,
        now(),
    );
    connector.organization_id = Some(org.id.clone());
    if !core.connectors.insert(&connector).await? {
        // A racing connect won. Its organization keeps its binding; ours goes if it differs.
        let winner = core.connectors.get(&caller.workspace, kind).await?;
        if winner.and_then(|w| w.organization_id).as_deref() != Some(org.id.as_str()) {
            unbind_quietly(core, kind, &org.id, &caller.workspace).await;
        }
        return Err(ConnectorError::Exists);
    }
    if let Err(e) = core.vault.store(&caller.workspace, kind, &token).await {
        tracing::error!(error = %e, "storing the token failed; removing the connector claim");
        if let Err(undo) = core.connectors.delete(&caller.workspace, kind).await {
            tracing::error!(error = %undo, "could not remove the connector claim");
        }
        unbind_quietly(core, kind, &org.id, &caller.workspace).await;
        return Err(e.into());
    }
    // A delete that began between the claim and the store has removed the secret already (or
    // will): if it did, the token just stored must go too.
    if lost_to_delete(core, &connector).await? {
        tracing::warn!("a delete won the race against this connect; removing the token again");
        core.vault.delete(&caller.workspace, kind).await?;
        return Err(ConnectorError::NotFound);
    }
    audit(
        core,
        &caller.workspace,
        by(caller, AuditAction::ConnectorCreated, kind),
    )
    .await;
    status_changed(core, None, &connector).await;
    let report = set_up_within(core, policy, started, &connector, &token, &org).await;
    settle_setup(core, &mut connector, &report).await?;
    Ok((connector, report))
}

/// Whether `connector`'s incarnation was deleted (or began to be) since it was read. A different
/// incarnation means a delete and a new connect both happened: the secret's name is the new
/// connector's now, and it is left alone.
pub(super) async fn lost_to_delete(
    core: &PsaCore,
    connector: &Connector,
) -> Result<bool, ConnectorError> {
    Ok(
        match core
            .connectors
            .get(&connector.workspace_id, connector.kind)
            .await?
        {
            None => true,
            Some(c) => c.incarnation == connector.incarnation && c.is_deleting(),
        },
    )
}

pub(super) async fn unbind_quietly(
    core: &PsaCore,
    kind: ConnectorType,
    org: &str,
    workspace: &WorkspaceId,
) {
    if let Err(e) = core.orgs.unbind(kind, org, workspace).await {
        tracing::warn!(error = %e, "could not free the organization's binding");
    }
}

/// Replaces the connector's token with a verified new one and reconnects it.
///
/// The new token must reach the connector's own organization (else `OrganizationMismatch`; a
/// connector bound before bindings existed binds now, `OrganizationInUse` if another workspace
/// holds it); nothing is written before that. The token of a connected connector given again
/// (and still accepted) changes nothing. A delete that wins a race against this re-token removes
/// the stored token.
#[tracing::instrument(skip(core, token), fields(workspace_id = %caller.workspace, connector_id = kind.as_str()))]
pub async fn retoken(
    core: &PsaCore,
    policy: &SyncPolicy,
    caller: &Caller,
    kind: ConnectorType,
    token: ApiToken,
) -> Result<(Connector, SetupReport), ConnectorError> {
    let started = Instant::now();
    let current = get(core, caller, kind).await?;
    let org = verify(core, policy, caller, kind, &token).await?;
    match current.organization_id.as_deref() {
        Some(own) if own != org.id => return Err(ConnectorError::OrganizationMismatch),
        Some(_) => {}
        None => {
            if !core.orgs.bind(kind, &org.id, &caller.workspace).await? {
                return Err(ConnectorError::OrganizationInUse);
            }
        }
    }
    // The connector's own token, still accepted, on a connector that is fine: nothing to do (a
    // re-token is no way to force a full resend).
    if current.status == ConnectorStatus::Connected
        && current.status_reason.is_none()
        && current.organization_id.is_some()
    {
        let same = core
            .vault
            .load(&current.reference(), current.token_version)
            .await
            .is_ok_and(|stored| stored.expose_secret() == token.expose_secret());
        if same {
            tracing::info!("the token given is the connector's own: nothing changed");
            return Ok((current, SetupReport::default()));
        }
    }
    core.vault.store(&caller.workspace, kind, &token).await?;
    let hint = token.hint();
    let incarnation = current.incarnation.clone();
    let updated = update_connector(core, &caller.workspace, kind, |c| {
        if c.incarnation != incarnation || c.is_deleting() {
            return false;
        }
        c.retokened(hint.clone(), now());
        c.organization_id = Some(org.id.clone());
        true
    })
    .await?;
    let Some(mut connector) = updated else {
        // Deleted (or being deleted) meanwhile: the delete may already have removed the secret,
        // so the token stored above must go. (Deleted and connected again: that connector's.)
        let now_there = core.connectors.get(&caller.workspace, kind).await?;
        if now_there.is_none_or(|c| c.incarnation == incarnation) {
            tracing::warn!("a delete won the race against this re-token; removing the token");
            core.vault.delete(&caller.workspace, kind).await?;
        }
        return Err(ConnectorError::NotFound);
    };
    audit(
        core,
        &caller.workspace,
        by(caller, AuditAction::TokenReplaced, kind),
    )
    .await;
    let report = set_up_within(core, policy, started, &connector, &token, &org).await;
    settle_setup(core, &mut connector, &report).await?;
    Ok((connector, report))
}
