//! PSA alerts: a ticket in the MSP's PSA for each account that is billed through the PSA (it has
//! at least one accepted count, so it is mapped to a company) but has services answered 404 in
//! this run — revenue nobody sees otherwise. At most one per account and kind per interval; an
//! alert that fails never changes the run.
//!
//! Confirmed tickets (contract *Notifications*): an accepted alert is asked at once whether it
//! became a ticket (Gradient #11), and on later runs while it is pending. The outcome goes into
//! the alert's `psa.alert_sent` audit entry (`ticket`: `created` with `ticketId`, `pending`, or
//! `failed` with `ticketError`); a failed ticket is raised again on the next run, whatever the
//! interval says. Each outcome is also kept on the run ([`SyncRun::tickets`]) for its email.

use super::SyncPolicy;
use crate::audit::{Actor, AuditAction, AuditEvent};
use crate::connector::ConnectorRef;
use crate::ports::{AlertRef, AlertService, PendingTicket, PsaAlert, StoreError, Ticket};
use crate::secret::ApiToken;
use crate::sync::{MAX_RECORDED_TICKETS, Outcome, RunReading, RunTicket, SyncRun, TicketState};
use crate::usecase::WorkerCore;
use crate::usecase::{Core, audit_keyed};
use std::collections::{BTreeMap, BTreeSet};

/// The kind of the alert about unmapped services (one per account and interval).
pub const UNMAPPED_SERVICES: &str = "unmapped_services";

/// Raises the run's alerts from its recorded `readings`; answers how many the PSA accepted.
pub(super) async fn raise(
    core: &WorkerCore,
    policy: &SyncPolicy,
    run: &mut SyncRun,
    token: &ApiToken,
    service_ids: &BTreeMap<String, String>,
    readings: &[RunReading],
) -> Result<u64, StoreError> {
    let cref = run.connector();
    confirm_pending(core, run, token).await?;
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
            Ok(handle) => {
                sent += 1;
                core.alerts
                    .record_alert(&cref, account, UNMAPPED_SERVICES, policy.alert_interval)
                    .await?;
                let ticket = ask(core, &cref, token, &handle).await;
                let mut event =
                    AuditEvent::new(Actor::System, AuditAction::PsaAlertSent, run.connector_id)
                        .run(&run.run_id)
                        .with("accountId", account)
                        .with("kind", UNMAPPED_SERVICES);
                for (k, v) in ticket_detail(&ticket) {
                    event = event.with(k, v);
                }
                let key = audit_keyed(core, &run.workspace_id, event).await;
                let name = services[0].account_name.clone();
                keep(run, run_ticket(account, Some(name), &ticket, false));
                settled(core, &cref, account, UNMAPPED_SERVICES, &ticket).await?;
                if let (Ticket::Pending, Some(audit_key)) = (&ticket, key) {
                    let pending = PendingTicket {
                        account_id: account.to_owned(),
                        kind: UNMAPPED_SERVICES.to_owned(),
                        alert: handle,
                        audit_key,
                    };
                    core.alerts.remember_ticket(&cref, &pending).await?;
                }
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

/// Whether the alert became a ticket; a PSA that cannot say now leaves it pending.
async fn ask(core: &WorkerCore, cref: &ConnectorRef, token: &ApiToken, alert: &AlertRef) -> Ticket {
    match core.psa(cref.kind).ticket(token, alert).await {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "could not ask whether the alert became a ticket");
            Ticket::Pending
        }
    }
}

/// The audit detail of a ticket's outcome.
fn ticket_detail(ticket: &Ticket) -> Vec<(&'static str, String)> {
    match ticket {
        Ticket::Created { id } => vec![("ticket", "created".into()), ("ticketId", id.clone())],
        Ticket::Pending => vec![("ticket", "pending".into())],
        Ticket::Failed { error } => vec![
            ("ticket", "failed".into()),
            ("ticketError", crate::sync::bounded_reason(error)),
        ],
    }
}

/// The run's record of a ticket's outcome.
fn run_ticket(account: &str, name: Option<String>, ticket: &Ticket, earlier: bool) -> RunTicket {
    let (state, detail) = match ticket {
        Ticket::Created { id } => (TicketState::Created, Some(id.clone())),
        Ticket::Pending => (TicketState::Pending, None),
        Ticket::Failed { error } => (
            TicketState::Failed,
            Some(crate::sync::bounded_reason(error)),
        ),
    };
    RunTicket {
        account_id: account.to_owned(),
        account_name: name,
        state,
        detail,
        earlier,
    }
}

/// Keeps `ticket` on the run, up to [`MAX_RECORDED_TICKETS`].
fn keep(run: &mut SyncRun, ticket: RunTicket) {
    if run.tickets.len() < MAX_RECORDED_TICKETS {
        run.tickets.push(ticket);
    }
}

/// A failed ticket: the alert memory forgets the account, so the next run raises it again.
async fn settled(
    core: &Core,
    cref: &ConnectorRef,
    account: &str,
    kind: &str,
    ticket: &Ticket,
) -> Result<(), StoreError> {
    if matches!(ticket, Ticket::Failed { .. }) {
        tracing::warn!(account_id = %account, "the PSA alert did not become a ticket; raised again next run");
        core.alerts.forget_alert(cref, account, kind).await?;
    }
    Ok(())
}

/// Asks again about the tickets still pending from earlier runs; each outcome goes into its
/// alert's audit entry.
async fn confirm_pending(
    core: &WorkerCore,
    run: &mut SyncRun,
    token: &ApiToken,
) -> Result<(), StoreError> {
    let cref = run.connector();
    for p in core.alerts.pending_tickets(&cref).await? {
        let ticket = ask(core, &cref, token, &p.alert).await;
        if ticket == Ticket::Pending {
            continue;
        }
        keep(run, run_ticket(&p.account_id, None, &ticket, true));
        let detail = ticket_detail(&ticket);
        if let Err(e) = core
            .audit
            .annotate(&run.workspace_id, &p.audit_key, &detail)
            .await
        {
            tracing::error!(error = %e, "could not record the ticket's outcome in the audit trail");
        }
        settled(core, &cref, &p.account_id, &p.kind, &ticket).await?;
        core.alerts.forget_ticket(&cref, &p.alert).await?;
    }
    Ok(())
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
