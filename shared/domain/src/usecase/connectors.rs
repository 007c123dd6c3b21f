//! Connector lifecycle: connect, re-token, delete, read.

use super::provision::{ProvisionError, ensure_accounts, ensure_services, managed_workspaces};
use super::sync::SyncPolicy;
use super::{Core, audit, now, status_changed, update_connector};
use crate::audit::{Actor, AuditAction, AuditEvent};
use crate::caller::Caller;
use crate::connector::{
    Connector, ConnectorSettings, ConnectorStatus, NotifySettings, SettingsPatch, reason,
};
use crate::ids::{ConnectorType, WorkspaceId};
use crate::ports::{PsaError, PsaIntegration, StoreError, VaultError};
use crate::secret::ApiToken;
use std::time::Instant;

/// Why a connector operation failed. The HTTP layer maps each variant to one status and code.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error("the workspace has no such connector")]
    NotFound,
    #[error("the workspace already has a connector of this type")]
    Exists,
    #[error("the PSA rejected the API token")]
    TokenRejected,
    /// The PSA answered the token check with a refusal other than a rejected token.
    #[error("the PSA refused the token check")]
    PsaRefused(#[source] PsaError),
    /// The PSA did not answer the token check (in time).
    #[error("the PSA is unavailable")]
    PsaUnavailable(#[source] PsaError),
    #[error("too many token checks; try again in {0:?}")]
    TooManyAttempts(std::time::Duration),
    #[error("too many settings changes; try again in {0:?}")]
    TooManyChanges(std::time::Duration),
    /// The token reaches a PSA organization bound to another workspace's connector.
    #[error("the PSA organization is connected to another workspace")]
    OrganizationInUse,
    /// A re-token whose token reaches another organization than the connector's own.
    #[error("the token reaches another PSA organization than the connector's")]
    OrganizationMismatch,
    #[error("the connector store failed")]
    Store(#[from] StoreError),
    #[error("the token vault failed")]
    Vault(#[from] VaultError),
}

/// What setting up the PSA after a connect or re-token did; failures leave the connector
/// connected with reason `setup_incomplete` (every sync repeats the setup).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SetupReport {
    pub services_created: u64,
    pub accounts: u64,
    pub accounts_created: u64,
    pub accounts_renamed: u64,
    pub error: Option<String>,
}

fn verify_error(e: PsaError) -> ConnectorError {
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
async fn verify(
    core: &Core,
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

/// [`set_up`] within what is left of the request's `api_deadline`; what does not finish in time is
/// left to the next sync (`setup_incomplete`), so the request still answers in time.
async fn set_up_within(
    core: &Core,
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

/// The caller's connector of type `kind` (one being deleted is gone).
pub async fn get(
    core: &Core,
    caller: &Caller,
    kind: ConnectorType,
) -> Result<Connector, ConnectorError> {
    core.connectors
        .get(&caller.workspace, kind)
        .await?
        .filter(|c| !c.is_deleting())
        .ok_or(ConnectorError::NotFound)
}

/// The caller's connectors, one per type it connected.
pub async fn list(core: &Core, caller: &Caller) -> Result<Vec<Connector>, ConnectorError> {
    let mut all = core.connectors.list(&caller.workspace).await?;
    all.retain(|c| !c.is_deleting());
    Ok(all)
}

fn by(caller: &Caller, action: AuditAction, kind: ConnectorType) -> AuditEvent {
    AuditEvent::new(Actor::User(caller.user.clone()), action, kind)
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
    core: &Core,
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
async fn lost_to_delete(core: &Core, connector: &Connector) -> Result<bool, ConnectorError> {
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

async fn unbind_quietly(core: &Core, kind: ConnectorType, org: &str, workspace: &WorkspaceId) {
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
    core: &Core,
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

/// Changes the connector's settings (only those `patch` names); every change is audited. A
/// workspace has `settings_changes` per `settings_window` (each one is an audit entry kept 401
/// days).
#[tracing::instrument(skip(core, policy), fields(workspace_id = %caller.workspace, connector_id = kind.as_str()))]
pub async fn update_settings(
    core: &Core,
    policy: &SyncPolicy,
    caller: &Caller,
    kind: ConnectorType,
    patch: SettingsPatch,
) -> Result<Connector, ConnectorError> {
    let current = get(core, caller, kind).await?;
    let mut probe = current.settings.clone();
    if probe.apply(&patch).is_empty() {
        return Ok(current); // nothing to change: nothing counted, nothing written
    }
    let (n, left) = core
        .attempts
        .attempt(&caller.workspace, "settings", policy.settings_window)
        .await?;
    if n > policy.settings_changes {
        return Err(ConnectorError::TooManyChanges(left));
    }
    let mut changed = Vec::new();
    let updated = update_connector(core, &caller.workspace, kind, |c| {
        if c.is_deleting() {
            return false;
        }
        changed = c.settings.apply(&patch);
        if !changed.is_empty() {
            c.updated_at = now();
        }
        !changed.is_empty()
    })
    .await?;
    let connector = match updated {
        Some(c) => c,
        None => get(core, caller, kind).await?, // nothing to change (or gone: then 404)
    };
    if !changed.is_empty() {
        let mut event = by(caller, AuditAction::SettingsChanged, kind);
        for (setting, value) in changed {
            event = event.with(setting, value);
        }
        audit(core, &caller.workspace, event).await;
    }
    Ok(connector)
}

/// Deletes the connector. First the item is marked (`deleting_since`, a conditional write): from
/// then on the connector is gone for every caller and every run. Then [`finish_delete`]: the PSA
/// is told (best effort, logged; Gradient: status `inactive`), the secret, the organization's
/// binding, the item, and the incarnation's slot and pair states (its runs and readings expire
/// with their TTL and are never seen by a connector created again). A failure half-way answers an
/// error and leaves the mark: a retried DELETE, a new connect of the type, or the worker on the
/// next scheduled firing (the mark keeps the connector in the scheduler's index) finishes it.
#[tracing::instrument(skip(core), fields(workspace_id = %caller.workspace, connector_id = kind.as_str()))]
pub async fn delete(
    core: &Core,
    policy: &SyncPolicy,
    caller: &Caller,
    kind: ConnectorType,
) -> Result<(), ConnectorError> {
    let Some(found) = core.connectors.get(&caller.workspace, kind).await? else {
        return Err(ConnectorError::NotFound);
    };
    let connector = if found.is_deleting() {
        found // a delete that failed half-way: finish it
    } else {
        let incarnation = found.incarnation.clone();
        let marked = update_connector(core, &caller.workspace, kind, |c| {
            if c.incarnation != incarnation || c.is_deleting() {
                return false;
            }
            c.deleting_since = Some(now());
            true
        })
        .await?;
        match marked {
            Some(c) => {
                audit(
                    core,
                    &caller.workspace,
                    by(caller, AuditAction::ConnectorDeleted, kind),
                )
                .await;
                c
            }
            // Deleted or marked by a racing delete meanwhile: finish whatever is there.
            None => match core.connectors.get(&caller.workspace, kind).await? {
                Some(c) if c.is_deleting() => c,
                _ => return Err(ConnectorError::NotFound),
            },
        }
    };
    finish_delete(core, policy, &connector).await
}

/// The rest of a delete whose mark is on `connector` (see [`delete`]); safe to repeat.
pub async fn finish_delete(
    core: &Core,
    policy: &SyncPolicy,
    connector: &Connector,
) -> Result<(), ConnectorError> {
    let (workspace, kind) = (&connector.workspace_id, connector.kind);
    let cref = connector.reference();
    let inactive = match core.vault.load(&cref, connector.token_version).await {
        Ok(token) => {
            let told = core.psa(kind).disconnect(&token);
            match tokio::time::timeout(policy.verify_deadline, told).await {
                Ok(r) => r.map_err(|e| e.to_string()),
                Err(_) => Err("the PSA did not answer in time".to_owned()),
            }
        }
        Err(VaultError::NotFound) => Err("no token left to tell it with".to_owned()),
        Err(e) => Err(e.to_string()),
    };
    match inactive {
        Ok(()) => tracing::info!("connector deleting; the PSA was told"),
        Err(error) => {
            tracing::warn!(%error, "connector deleting; the PSA could not be told")
        }
    }
    core.vault.delete(workspace, kind).await?;
    if let Some(org) = &connector.organization_id {
        core.orgs.unbind(kind, org, workspace).await?;
    }
    core.connectors.delete(workspace, kind).await?;
    tracing::info!("connector deleted: token, binding and item removed");
    // What is left belongs to a dead incarnation: nothing can reach it any more, so a failure
    // here costs storage until the TTL, never correctness.
    let cleanup = async {
        core.slots.clear(&cref).await?;
        let keys: Vec<_> = core.pairs.pairs(&cref).await?.into_keys().collect();
        core.pairs.delete_pairs(&cref, &keys).await
    };
    if let Err(e) = cleanup.await {
        tracing::warn!(error = %e, "could not clean up the deleted connector's sync state");
    }
    Ok(())
}

/// Tells the PSA set-up begins (Gradient: status `pending` unless already `active`), services,
/// accounts.
/// Never fails the caller: what went wrong is reported and repeated by the next sync.
async fn set_up(
    core: &Core,
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
async fn settle_setup(
    core: &Core,
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
