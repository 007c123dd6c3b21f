//! Deleting a connector: mark first, then the PSA, the secret, the binding, the item.

use super::*;
use crate::audit::AuditAction;
use crate::caller::Caller;
use crate::connector::Connector;
use crate::ids::ConnectorType;
use crate::ports::VaultError;
use crate::usecase::PsaCore;
use crate::usecase::sync::SyncPolicy;
use crate::usecase::{audit, now, update_connector};

/// Deletes the connector. First the item is marked (`deleting_since`, a conditional write): from
/// then on the connector is gone for every caller and every run. Then [`finish_delete`]: the PSA
/// is told (best effort, logged; Gradient: status `inactive`), the secret, the organization's
/// binding, the item, and the incarnation's slot and pair states (its runs and readings expire
/// with their TTL and are never seen by a connector created again). A failure half-way answers an
/// error and leaves the mark: a retried DELETE, a new connect of the type, or the worker on the
/// next scheduled firing (the mark keeps the connector in the scheduler's index) finishes it.
#[tracing::instrument(skip(core), fields(workspace_id = %caller.workspace, connector_id = kind.as_str()))]
pub async fn delete(
    core: &PsaCore,
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
    core: &PsaCore,
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
