//! Set-up, the first step of a job after its claim: the token's organization is checked while
//! the managed tree and the run's earlier readings are read beside it; then the PSA's services
//! and accounts are made sure of side by side. Nothing is written to the PSA before the check.

use super::finish::{self, end};
use super::job::{Job, Step};
use crate::ports::{AcceptedBy, PsaIntegration, StoreError};
use crate::secret::ApiToken;
use crate::sync::{RunReading, RunStatus, SyncRun};
use crate::usecase::provision::{
    AccountsReport, ProvisionError, ensure_accounts, ensure_services, managed_workspaces,
};
use crate::usecase::update_connector;
use crate::workspace::Workspace;
use std::collections::BTreeMap;
use std::time::Duration;

/// What set-up hands to planning.
pub(super) struct SetUp {
    /// Catalogue key → the PSA's service id.
    pub ids: BTreeMap<String, String>,
    /// The channel's managed workspaces.
    pub workspaces: Vec<Workspace>,
    pub accounts: AccountsReport,
    /// The run's readings recorded by earlier jobs.
    pub recorded: Vec<RunReading>,
}

impl Job<'_> {
    /// Sets the PSA up for the run (its counts of services and accounts made are added to
    /// `run`), or ends the job: the token refused, a PSA that did not answer in time (the next
    /// job goes on), an organization that is not the connector's.
    pub(super) async fn set_up(
        &self,
        run: &mut SyncRun,
        token: &ApiToken,
    ) -> Result<Step<SetUp>, StoreError> {
        let (core, cref) = (self.core, run.connector());
        let near = || self.deadline_near();
        // What needs nothing from the PSA (the tree, the readings of earlier jobs) is read
        // beside the token's check; the services and the accounts are then made sure of side by
        // side (neither needs the other). Nothing is written to the PSA before the check.
        let setup: Result<_, ProvisionError> = async {
            let check = async {
                let org = core.psa(cref.kind).verify(token).await?;
                self.check_organization(run, &org).await
            };
            let reads = async {
                let workspaces = managed_workspaces(core, &cref.workspace).await?;
                let recorded = core.readings.all_readings(&cref, &run.run_id).await?;
                Ok::<_, StoreError>((workspaces, recorded))
            };
            let (checked, read) = futures::join!(check, reads);
            checked?;
            let (workspaces, recorded) = read?;
            let by = AcceptedBy {
                connector: cref.clone(),
                token_version: run.token_version,
            };
            let accepted = async {
                if let Err(e) = core.key_health.accepted(cref.kind, &by).await {
                    tracing::warn!(error = %e, "could not record an accepted call");
                }
            };
            let (services, accounts, ()) = futures::join!(
                ensure_services(core, cref.kind, token, &cref.workspace),
                ensure_accounts(core, token, &workspaces, &cref, &near),
                accepted,
            );
            let (ids, services_created) = services?;
            let accounts = accounts?;
            Ok((ids, services_created, workspaces, accounts, recorded))
        }
        .await;
        let (ids, services_created, workspaces, accounts, recorded) = match setup {
            Ok(v) => v,
            // A PSA call cut by the job's bound is no answer of the PSA: the next job goes on.
            Err(ProvisionError::Psa(_)) if crate::deadline::remaining() == Some(Duration::ZERO) => {
                tracing::warn!("set-up ran into the job's time bound: continuing in a new job");
                return self
                    .continue_or_give_up(run, None, &[])
                    .await
                    .map(Step::End);
            }
            Err(ProvisionError::Psa(e)) => {
                return finish::rejected(core, self.policy, run, e)
                    .await
                    .map(Step::End);
            }
            Err(ProvisionError::Store(e)) => return Err(e),
            Err(ProvisionError::Deadline) => {
                return self
                    .continue_or_give_up(run, None, &[])
                    .await
                    .map(Step::End);
            }
            Err(e) => {
                return end(core, run, RunStatus::Failed, &e.to_string())
                    .await
                    .map(Step::End);
            }
        };
        run.counts.services_created += services_created;
        run.counts.accounts = accounts.accounts;
        run.counts.accounts_created += accounts.created;
        run.counts.accounts_renamed += accounts.renamed;

        Ok(Step::Next(SetUp {
            ids,
            workspaces,
            accounts,
            recorded,
        }))
    }

    /// The token's organization must be the connector's own; a connector created before
    /// organizations were bound binds its own now (or fails the run if another workspace holds
    /// it: it never posts into another workspace's organization).
    async fn check_organization(
        &self,
        run: &SyncRun,
        org: &PsaIntegration,
    ) -> Result<(), ProvisionError> {
        let (core, kind, ws) = (self.core, run.connector_id, &run.workspace_id);
        let psa = core.psa(kind).name();
        match self.organization.as_deref() {
            Some(own) if own == org.id => Ok(()),
            Some(_) => Err(ProvisionError::Organization(format!(
                "the token reaches another {psa} organization than the connector's; delete the \
                 connector and connect again"
            ))),
            None => {
                if !core.orgs.bind(kind, &org.id, ws).await? {
                    return Err(ProvisionError::Organization(format!(
                        "the {psa} organization is connected to another Coro workspace; nothing \
                         is sent to it"
                    )));
                }
                let (inc, version) = (run.incarnation.clone(), run.token_version);
                update_connector(core, ws, kind, |c| {
                    c.owns(&inc, version) && c.organization_id.is_none() && {
                        c.organization_id = Some(org.id.clone());
                        true
                    }
                })
                .await?;
                Ok(())
            }
        }
    }
}
