//! Making Gradient hold what the connector reports: services (vendor-wide) and accounts (per MSP).

use super::Core;
use crate::connector::ConnectorRef;
use crate::ids::WorkspaceId;
use crate::ports::{PsaAccount, PsaError, StoreError};
use crate::secret::ApiToken;
use crate::workspace::{TreeStep, Workspace, tree_step};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error(transparent)]
    Psa(#[from] PsaError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("another process held the service-creation lock for too long")]
    LockTimeout,
    #[error("Gradient did not list the service `{0}` it just created")]
    ServiceMissing(String),
    #[error("the time left ran out during set-up")]
    Deadline,
}

/// How long the vendor-wide service lock is held at most, and how long a waiter waits for it.
const SERVICE_LOCK_TTL: Duration = Duration::from_secs(30);
const SERVICE_LOCK_WAIT: Duration = Duration::from_secs(20);

/// The managed workspaces of a channel: its child workspaces, also those under subchannels,
/// except subtrees of subchannels that have their own connector (see [`tree_step`]).
#[tracing::instrument(skip(core), fields(workspace_id = %channel))]
pub async fn managed_workspaces(
    core: &Core,
    channel: &WorkspaceId,
) -> Result<Vec<Workspace>, StoreError> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::from([channel.clone()]);
    let mut queue = VecDeque::from([channel.clone()]);
    while let Some(parent) = queue.pop_front() {
        for child in core.directory.children(&parent).await? {
            if !seen.insert(child.id.clone()) {
                continue; // a cycle or a duplicate in the read model: visit each node once
            }
            let has_own = match child.kind {
                crate::WorkspaceType::Channel => core.connectors.get(&child.id).await?.is_some(),
                _ => false,
            };
            match tree_step(&child, has_own) {
                TreeStep::Account => out.push(child),
                TreeStep::Descend => queue.push_back(child.id.clone()),
                TreeStep::Skip => {}
            }
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// Makes sure every catalogue service exists in Gradient and returns catalogue key → service id,
/// plus how many services this call created.
///
/// Services are vendor-wide and shared by every MSP, so creation is serialised by a vendor-wide
/// lock and matched by the stable catalogue key kept in our registry. A service that exists in
/// Gradient under its catalogue name but is missing from the registry (a crash between creating and
/// recording) is adopted rather than created twice.
#[tracing::instrument(skip_all)]
pub async fn ensure_services(
    core: &Core,
    token: &ApiToken,
    owner: &str,
) -> Result<(BTreeMap<String, String>, u64), ProvisionError> {
    let known = core.registry.known().await?;
    if core.catalogue.iter().all(|s| known.contains_key(&s.key)) {
        return Ok((known, 0));
    }
    let started = std::time::Instant::now();
    loop {
        if core.registry.try_lock(owner, SERVICE_LOCK_TTL).await? {
            break;
        }
        if started.elapsed() > SERVICE_LOCK_WAIT {
            return Err(ProvisionError::LockTimeout);
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let result = create_missing_services(core, token).await;
    if let Err(e) = core.registry.unlock(owner).await {
        tracing::warn!(error = %e, "could not release the service lock; it expires by itself");
    }
    result
}

async fn create_missing_services(
    core: &Core,
    token: &ApiToken,
) -> Result<(BTreeMap<String, String>, u64), ProvisionError> {
    let mut known = core.registry.known().await?;
    let missing: Vec<_> = core
        .catalogue
        .iter()
        .filter(|s| !known.contains_key(&s.key))
        .collect();
    if missing.is_empty() {
        return Ok((known, 0));
    }
    let mut in_gradient: HashMap<String, String> = core
        .psa
        .services(token)
        .await?
        .into_iter()
        .map(|s| (s.name, s.id))
        .collect();
    let mut created = 0;
    for service in missing {
        let name = service.gradient_name();
        let id = match in_gradient.get(&name) {
            Some(id) if !known.values().any(|k| k == id) => id.clone(),
            _ => {
                let after = core.psa.create_service(token, service).await?;
                created += 1;
                let taken: BTreeSet<&String> = known.values().collect();
                let id = after
                    .iter()
                    .filter(|s| s.name == name && !taken.contains(&s.id))
                    .map(|s| s.id.clone())
                    .next_back()
                    .ok_or_else(|| ProvisionError::ServiceMissing(service.key.clone()))?;
                in_gradient = after.into_iter().map(|s| (s.name, s.id)).collect();
                id
            }
        };
        core.registry.record(&service.key, &id).await?;
        known.insert(service.key.clone(), id);
    }
    // Another writer may have recorded first: the registry is the truth.
    Ok((core.registry.known().await?, created))
}

/// What [`ensure_accounts`] changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AccountsReport {
    pub accounts: u64,
    pub created: u64,
    pub renamed: u64,
    /// Accounts the PSA refused to create or update (a 400), with its reason: their readings fail.
    pub refused: BTreeMap<String, String>,
}

/// The Gradient account a workspace is reported as (name and description normalised).
pub fn account_for(ws: &Workspace) -> PsaAccount {
    PsaAccount {
        id: ws.id.as_str().to_owned(),
        name: ws.name.trim().to_owned(),
        description: normalised(ws.domain.as_deref()),
    }
}

/// Empty (or blank) is the same as absent; surrounding spaces do not count.
fn normalised(text: Option<&str>) -> Option<String> {
    text.map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

/// Whether the PSA's account differs from what we report, after normalising both.
fn differs(have: &PsaAccount, want: &PsaAccount) -> bool {
    have.name.trim() != want.name || normalised(have.description.as_deref()) != want.description
}

/// How [`ensure_accounts`] may be cut short: it stops between two PSA calls when this says so.
pub type StopCheck<'a> = &'a (dyn Fn() -> bool + Send + Sync);

/// Largest batch of accounts created with one call (the adapter may chunk further).
const CREATE_BATCH: usize = 100;

/// Makes the PSA hold one account per reported managed workspace: creates the missing ones in
/// bulk (Gradient deletes all of them when the MSP disconnects on its side) and renames changed
/// ones. An account the PSA refuses (400) is isolated — a failed batch is split until the refused
/// account stands alone — and reported in `refused`; the others go on.
///
/// With `connector`, the pair states of every account about to be created are forgotten first: a
/// value accepted for an account the PSA has lost says nothing about the new one, so its readings
/// are sent in this run.
#[tracing::instrument(skip_all, fields(workspaces = workspaces.len()))]
pub async fn ensure_accounts(
    core: &Core,
    token: &ApiToken,
    workspaces: &[Workspace],
    connector: Option<&ConnectorRef>,
    stop: StopCheck<'_>,
) -> Result<AccountsReport, ProvisionError> {
    let wanted: Vec<PsaAccount> = workspaces
        .iter()
        .filter(|w| w.status.is_reported())
        .map(account_for)
        .collect();
    let mut report = AccountsReport {
        accounts: wanted.len() as u64,
        ..Default::default()
    };
    let existing: HashMap<String, PsaAccount> = core
        .psa
        .accounts(token)
        .await?
        .into_iter()
        .map(|a| (a.id.clone(), a))
        .collect();
    let missing: Vec<PsaAccount> = wanted
        .iter()
        .filter(|a| !existing.contains_key(&a.id))
        .cloned()
        .collect();
    if !missing.is_empty() {
        if let Some(c) = connector {
            let lost: BTreeSet<&str> = missing.iter().map(|a| a.id.as_str()).collect();
            let stale: Vec<(String, String)> = core
                .pairs
                .pairs(c)
                .await?
                .into_keys()
                .filter(|(account, _)| lost.contains(account.as_str()))
                .collect();
            if !stale.is_empty() {
                tracing::info!(
                    pairs = stale.len(),
                    "accounts missing in the PSA: their accepted values are forgotten"
                );
                core.pairs.delete_pairs(c, &stale).await?;
            }
        }
        for batch in missing.chunks(CREATE_BATCH) {
            if stop() {
                return Err(ProvisionError::Deadline);
            }
            report.created += create_isolating(core, token, batch, &mut report.refused).await?;
        }
    }
    for account in &wanted {
        if let Some(have) = existing.get(&account.id)
            && differs(have, account)
        {
            if stop() {
                return Err(ProvisionError::Deadline);
            }
            match core.psa.update_account(token, account).await {
                Ok(()) => report.renamed += 1,
                Err(PsaError::Unexpected(why)) => {
                    tracing::warn!(account_id = %account.id, %why, "the PSA refused an account update");
                    report.refused.insert(account.id.clone(), why);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(report)
}

/// Creates `batch`; a 400 splits it in halves until each refused account stands alone (a few
/// extra calls per refused account, none when nothing is refused). A 409 (a concurrent run created
/// some) re-reads the accounts and creates only what is still missing. Answers how many it created.
async fn create_isolating(
    core: &Core,
    token: &ApiToken,
    batch: &[PsaAccount],
    refused: &mut BTreeMap<String, String>,
) -> Result<u64, ProvisionError> {
    let mut created = 0;
    let mut todo: Vec<&[PsaAccount]> = vec![batch];
    while let Some(part) = todo.pop() {
        match core.psa.create_accounts(token, part).await {
            Ok(()) => created += part.len() as u64,
            Err(PsaError::Unexpected(why)) if part.len() == 1 => {
                tracing::warn!(account_id = %part[0].id, %why, "the PSA refused an account");
                refused.insert(part[0].id.clone(), why);
            }
            Err(PsaError::Unexpected(_)) => {
                let (a, b) = part.split_at(part.len() / 2);
                todo.push(b);
                todo.push(a);
            }
            Err(PsaError::Conflict(_)) => {
                let now: BTreeSet<String> = core
                    .psa
                    .accounts(token)
                    .await?
                    .into_iter()
                    .map(|a| a.id)
                    .collect();
                let rest: Vec<PsaAccount> = part
                    .iter()
                    .filter(|a| !now.contains(&a.id))
                    .cloned()
                    .collect();
                if !rest.is_empty() {
                    core.psa.create_accounts(token, &rest).await?;
                    created += rest.len() as u64;
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acc(name: &str, description: Option<&str>) -> PsaAccount {
        PsaAccount {
            id: "a".into(),
            name: name.into(),
            description: description.map(str::to_owned),
        }
    }

    #[test]
    fn only_real_differences_are_renames() {
        let want = acc("Acme", None);
        assert!(!differs(&acc("Acme", Some("")), &want));
        assert!(!differs(&acc(" Acme ", Some("   ")), &want));
        assert!(differs(&acc("Acme", Some("acme.com")), &want));
        assert!(differs(&acc("Acme Inc", None), &want));
        let want = acc("Acme", Some("acme.com"));
        assert!(!differs(&acc("Acme", Some(" acme.com")), &want));
        assert!(differs(&acc("Acme", Some("")), &want));
    }
}
