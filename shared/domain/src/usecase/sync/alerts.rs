//! PSA alerts: a ticket in the MSP's PSA for each account that is billed through the PSA (it has
//! at least one accepted count, so it is mapped to a company) but has services answered 404 in
//! this run — revenue nobody sees otherwise. At most one per account and kind per interval; an
//! alert that fails never changes the run.

use super::SyncPolicy;
use crate::audit::{Actor, AuditAction, AuditEvent};
use crate::ports::{AlertService, PsaAlert, StoreError};
use crate::secret::ApiToken;
use crate::sync::{Outcome, RunReading, SyncRun};
use crate::usecase::{Core, audit};
use std::collections::{BTreeMap, BTreeSet};

/// The kind of the alert about unmapped services (one per account and interval).
pub const UNMAPPED_SERVICES: &str = "unmapped_services";

/// Raises the run's alerts; answers how many the PSA accepted.
pub(super) async fn raise(
    core: &Core,
    policy: &SyncPolicy,
    run: &SyncRun,
    token: &ApiToken,
    service_ids: &BTreeMap<String, String>,
) -> Result<u64, StoreError> {
    let cref = run.connector();
    let readings = core.readings.all_readings(&cref, &run.run_id).await?;
    let mut unmapped: BTreeMap<&str, Vec<&RunReading>> = BTreeMap::new();
    for r in readings.iter().filter(|r| r.outcome == Outcome::Unmapped) {
        unmapped.entry(r.account_id.as_str()).or_default().push(r);
    }
    if unmapped.is_empty() {
        return Ok(0);
    }
    let pairs = core.pairs.pairs(&cref).await?;
    let billed: BTreeSet<&str> = pairs
        .values()
        .filter(|p| p.accepted.is_some())
        .map(|p| p.account_id.as_str())
        .collect();
    let mut sent = 0;
    for (account, services) in unmapped {
        if !billed.contains(account) {
            continue; // nothing mapped: the ticket would have no company to land on
        }
        if let Some(at) = core
            .alerts
            .last_alert(&cref, account, UNMAPPED_SERVICES)
            .await?
            && time::OffsetDateTime::now_utc() - at < policy.alert_interval
        {
            continue;
        }
        let alert = unmapped_alert(core, &services, service_ids);
        match core.psa(cref.kind).raise_alert(token, &alert).await {
            Ok(()) => {
                sent += 1;
                core.alerts
                    .record_alert(&cref, account, UNMAPPED_SERVICES, policy.alert_interval)
                    .await?;
                let event =
                    AuditEvent::new(Actor::System, AuditAction::PsaAlertSent, run.connector_id)
                        .run(&run.run_id)
                        .with("accountId", account)
                        .with("kind", UNMAPPED_SERVICES);
                audit(core, &run.workspace_id, event).await;
            }
            Err(e) => tracing::warn!(
                event = "psa_alert_failed",
                account_id = %account,
                error = %e,
                "the PSA alert could not be raised; the run goes on"
            ),
        }
    }
    Ok(sent)
}

/// The unmapped-services alert of one account: each service with the count Coro reports, and the
/// PSA's service id when the alert is about one service only (the adapter words it).
fn unmapped_alert(
    core: &Core,
    services: &[&RunReading],
    service_ids: &BTreeMap<String, String>,
) -> PsaAlert {
    let account = services[0];
    PsaAlert::UnmappedServices {
        account_id: account.account_id.clone(),
        account_name: account.account_name.clone(),
        services: services
            .iter()
            .map(|r| AlertService {
                key: r.service.clone(),
                service: core.catalogue.get(&r.service).cloned(),
                value: r.value,
            })
            .collect(),
        service_id: (services.len() == 1)
            .then(|| service_ids.get(&account.service).cloned())
            .flatten(),
    }
}
