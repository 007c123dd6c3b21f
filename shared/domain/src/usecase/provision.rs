//! Making the PSA hold what the connector reports: the catalogue's services and one account per
//! managed workspace.

use super::Core;
use crate::connector::ConnectorRef;
use crate::ids::{ConnectorType, WorkspaceId};
use crate::ports::{AccountWrite, PsaAccount, PsaError, StoreError};
use crate::secret::ApiToken;
use crate::usecase::PsaCore;
use crate::workspace::{TreeStep, Workspace, tree_step};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error(transparent)]
    Psa(PsaError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the PSA answered no id for the catalogue service `{0}`")]
    ServiceMissing(String),
    #[error("the time left ran out during set-up")]
    Deadline,
    /// The token's organization cannot be this connector's (bound elsewhere, or another one).
    #[error("{0}")]
    Organization(String),
}

impl From<PsaError> for ProvisionError {
    /// A failure of the adapter's own records is a store failure (the job comes back), not the PSA's.
    fn from(e: PsaError) -> Self {
        match e {
            PsaError::Store(e) => Self::Store(e),
            e => Self::Psa(e),
        }
    }
}

/// The managed workspaces of a channel: its child workspaces, also those under subchannels,
/// except subtrees of subchannels that have their own connector, of any type: that connector
/// reports them (see [`tree_step`]).
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
                crate::WorkspaceType::Channel => !core.connectors.list(&child.id).await?.is_empty(),
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

/// Makes sure every catalogue service is published in the PSA and returns catalogue key → the
/// PSA's service id, plus how many services this call created. How a PSA keeps services (Gradient:
/// vendor-wide, shared by every MSP, created under a lock) is its adapter's business; the core only
/// checks that every catalogue service got an id.
#[tracing::instrument(skip_all, fields(workspace_id = %by))]
pub async fn ensure_services(
    core: &PsaCore,
    kind: ConnectorType,
    token: &ApiToken,
    by: &WorkspaceId,
) -> Result<(BTreeMap<String, String>, u64), ProvisionError> {
    let published = core
        .psa(kind)
        .publish_services(token, &core.catalogue, by)
        .await?;
    if let Some(s) = core
        .catalogue
        .iter()
        .find(|s| !published.ids.contains_key(&s.key))
    {
        return Err(ProvisionError::ServiceMissing(s.key.clone()));
    }
    Ok((published.ids, published.created))
}

/// What [`ensure_accounts`] changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AccountsReport {
    pub accounts: u64,
    pub created: u64,
    pub renamed: u64,
    /// Accounts the PSA refused to create or update (a 400), with the reason their readings fail
    /// with.
    pub refused: BTreeMap<String, String>,
}

/// The PSA account a workspace is reported as (name and description normalised).
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

/// The reason a refused account's readings fail with.
fn refusal(psa: &dyn crate::ports::Psa, why: &str) -> String {
    format!("{} refused the account: {why}", psa.name())
}

/// How [`ensure_accounts`] may be cut short: it stops between two PSA calls when this says so.
pub type StopCheck<'a> = &'a (dyn Fn() -> bool + Send + Sync);

/// Largest batch of accounts created with one call (the adapter may chunk further); the stop
/// check runs between batches.
const CREATE_BATCH: usize = 100;

/// Makes the PSA hold one account per reported managed workspace: creates the missing ones in
/// batches (a PSA may lose all of them, e.g. Gradient when the MSP disconnects on its side) and
/// renames changed ones. An account the PSA refuses is reported in `refused`; the others go on.
///
/// The pair states of `connector` for every account about to be created are forgotten first: a
/// value accepted for an account the PSA has lost says nothing about the new one, so its readings
/// are sent in this run.
#[tracing::instrument(skip_all, fields(workspaces = workspaces.len()))]
pub async fn ensure_accounts(
    core: &PsaCore,
    token: &ApiToken,
    workspaces: &[Workspace],
    connector: &ConnectorRef,
    stop: StopCheck<'_>,
) -> Result<AccountsReport, ProvisionError> {
    let psa = core.psa(connector.kind);
    let wanted: Vec<PsaAccount> = workspaces
        .iter()
        .filter(|w| w.status.is_reported())
        .map(account_for)
        .collect();
    let mut report = AccountsReport {
        accounts: wanted.len() as u64,
        ..Default::default()
    };
    let existing: HashMap<String, PsaAccount> = psa
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
        let lost: BTreeSet<&str> = missing.iter().map(|a| a.id.as_str()).collect();
        let stale: Vec<(String, String)> = core
            .pairs
            .pairs(connector)
            .await?
            .into_keys()
            .filter(|(account, _)| lost.contains(account.as_str()))
            .collect();
        if !stale.is_empty() {
            tracing::info!(
                pairs = stale.len(),
                "accounts missing in the PSA: their accepted values are forgotten"
            );
            core.pairs.delete_pairs(connector, &stale).await?;
        }
        for batch in missing.chunks(CREATE_BATCH) {
            if stop() {
                return Err(ProvisionError::Deadline);
            }
            let done = psa.create_accounts(token, batch).await?;
            report.created += done.created;
            report.refused.extend(
                done.refused
                    .into_iter()
                    .map(|(id, why)| (id, refusal(psa, &why))),
            );
        }
    }
    for account in &wanted {
        if let Some(have) = existing.get(&account.id)
            && differs(have, account)
        {
            if stop() {
                return Err(ProvisionError::Deadline);
            }
            match psa.update_account(token, account).await? {
                AccountWrite::Written => report.renamed += 1,
                AccountWrite::Refused(why) => {
                    tracing::warn!(account_id = %account.id, %why, "the PSA refused an account update");
                    report
                        .refused
                        .insert(account.id.clone(), refusal(psa, &why));
                }
            }
        }
    }
    Ok(report)
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
