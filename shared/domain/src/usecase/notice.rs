//! The email when a sync is complete (contract *Notifications*): on each `PSA Sync Finished`
//! event, read the run and the connector, decide whether the MSP wants this run emailed
//! ([`crate::notify::should_send`]), and send it once.
//!
//! Once per run: the run's email is claimed in the [`NoticeLog`] before sending (a lease, so a
//! notifier that dies mid-send does not block the email forever), marked sent afterwards, and
//! released when the mail service fails — the error goes back to the event's retry policy. A
//! re-delivered event finds the run sent and does nothing. Nothing here changes the run.
//!
//! The notifier takes exactly the ports it uses ([`Notifier`]): it never reads a token, calls no
//! PSA and writes nothing but its own claim.

use crate::catalogue::Catalogue;
use crate::ids::{ConnectorType, RunId, WorkspaceId};
use crate::notify::{EmailInput, MAX_NAMED, Unmapped, compose, should_send};
use crate::ports::{
    ConnectorRepo, MailError, Mailer, NoticeClaim, NoticeLog, PageError, RunReadings, StoreError,
    SyncRuns, WorkspaceDirectory,
};
use crate::sync::Outcome;
use std::sync::Arc;
use std::time::Duration;

/// How long a claim on a run's email holds before another delivery may take it over: well
/// beyond one send (SES answers in well under a second) and the notifier's time limit (30 s),
/// and shorter than Lambda's wait before its second retry (~2 minutes), so a notifier killed
/// mid-send leaves an email that a retry still sends.
pub const NOTICE_LEASE: Duration = Duration::from_secs(60);

/// The ports and settings of the notifier, and nothing else.
#[derive(Clone)]
pub struct Notifier {
    pub connectors: Arc<dyn ConnectorRepo>,
    pub directory: Arc<dyn WorkspaceDirectory>,
    pub runs: Arc<dyn SyncRuns>,
    pub readings: Arc<dyn RunReadings>,
    pub catalogue: Arc<Catalogue>,
    pub notices: Arc<dyn NoticeLog>,
    pub mailer: Arc<dyn Mailer>,
    /// `CONSOLE_URL`: the console's PSA tab, linked from every email.
    pub console_url: String,
    /// See [`NOTICE_LEASE`].
    pub lease: Duration,
}

/// The run a `PSA Sync Finished` event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedRun {
    pub workspace: WorkspaceId,
    pub kind: ConnectorType,
    pub run: RunId,
}

/// What the notifier did with a finished run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "notice")]
pub enum Notice {
    /// Emailed to this many addresses.
    Sent { recipients: usize },
    /// `notify.on` does not ask for this run.
    NotWanted,
    /// The connector has no addresses to email.
    NoRecipients,
    /// An earlier delivery of the event sent it.
    AlreadySent,
    /// The connector is gone (or being deleted): nobody to tell.
    NoConnector,
    /// The connector has no such finished run (an older incarnation's, or not finished).
    NoRun,
}

#[derive(Debug, thiserror::Error)]
pub enum NoticeError {
    /// Another delivery holds the claim and has not said it sent the email: this delivery fails,
    /// so the event is retried and finds the email sent — or the claim free, if that delivery
    /// died.
    #[error("another delivery is sending the run's email")]
    BeingSent,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Mail(#[from] MailError),
}

impl From<PageError> for NoticeError {
    fn from(e: PageError) -> Self {
        match e {
            PageError::Store(e) => Self::Store(e),
            PageError::InvalidCursor => Self::Store(StoreError("no cursor was given".into())),
        }
    }
}

/// Emails the MSP about `finished` if its settings ask for it, at most once per run. `owner`
/// names this delivery (the Lambda request id) in the claim.
pub async fn notify(
    n: &Notifier,
    finished: &FinishedRun,
    owner: &str,
) -> Result<Notice, NoticeError> {
    let connector = n.connectors.get(&finished.workspace, finished.kind).await?;
    let Some(connector) = connector.filter(|c| !c.is_deleting()) else {
        return Ok(Notice::NoConnector);
    };
    let cref = connector.reference();
    let run = n.runs.get_run(&cref, &finished.run).await?;
    let Some(run) = run.filter(|r| r.finished_at.is_some()) else {
        return Ok(Notice::NoRun);
    };
    let settings = &connector.settings.notify;
    if !should_send(settings.on, &run, connector.status) {
        return Ok(Notice::NotWanted);
    }
    if settings.emails.is_empty() {
        return Ok(Notice::NoRecipients);
    }
    match n
        .notices
        .claim_notice(&cref, &run.run_id, owner, n.lease)
        .await?
    {
        NoticeClaim::Claimed => {}
        NoticeClaim::Sent => return Ok(Notice::AlreadySent),
        NoticeClaim::Sending => return Err(NoticeError::BeingSent),
    }
    let sent = async {
        let name = n
            .directory
            .workspace(&run.workspace_id)
            .await?
            .map_or_else(|| run.workspace_id.to_string(), |w| w.name);
        let unmapped = if run.counts.unmapped > 0 {
            let page = n
                .readings
                .readings_page(
                    &cref,
                    &run.run_id,
                    Some(Outcome::Unmapped),
                    MAX_NAMED as u32,
                    None,
                )
                .await?;
            page.items
                .into_iter()
                .map(|r| Unmapped {
                    service: n
                        .catalogue
                        .get(&r.service)
                        .map_or(r.service.clone(), |s| s.name.clone()),
                    account: r.account_name,
                })
                .collect()
        } else {
            Vec::new()
        };
        let email = compose(&EmailInput {
            workspace_name: &name,
            psa: finished.kind.display_name(),
            run: &run,
            connector: connector.status,
            unmapped: &unmapped,
            console_url: &n.console_url,
        });
        n.mailer.send(&settings.emails, &email).await?;
        Ok::<_, NoticeError>(())
    }
    .await;
    match sent {
        Ok(()) => {
            // The email is out: a failure to mark it must not make the event retry (a second
            // email); the claim then stays until its lease ends.
            if let Err(e) = n.notices.notice_sent(&cref, &run.run_id, owner).await {
                tracing::error!(error = %e, "the run's email was sent but could not be marked sent");
            }
            Ok(Notice::Sent {
                recipients: settings.emails.len(),
            })
        }
        Err(e) => {
            if let Err(release) = n.notices.release_notice(&cref, &run.run_id, owner).await {
                // The claim expires after its lease; the retry waits that long.
                tracing::warn!(error = %release, "could not release the claim on the run's email");
            }
            Err(e)
        }
    }
}
