//! The email when a sync is complete: an EventBridge rule delivers each `PSA Sync Finished`
//! event of this project (`Source` `coro.psa`); this handler reads which run it is about and asks
//! the core to email it ([`psa_domain::usecase::notice::notify`]) — once per run, whatever the
//! deliveries. A failure to send is an error of the invocation, so Lambda's asynchronous retries
//! try again; a malformed or foreign event is logged and dropped (retrying cannot mend it).

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use psa_domain::telemetry::EVENT_SOURCE;
use psa_domain::usecase::notice::{FinishedRun, Notice, NoticeError, Notifier, notify};
use psa_domain::{ConnectorType, RunId, WorkspaceId};
use serde::Deserialize;
use serde_json::Value;

pub type FinishedEvent = EventBridgeEvent<Value>;

/// `DetailType` of the events this function handles.
pub const SYNC_FINISHED: &str = "PSA Sync Finished";

/// The part of the event's detail the notifier needs (the rest is ignored).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Detail {
    workspace_id: String,
    connector_id: String,
    run_id: String,
}

/// What the handler answers (Lambda logs it; nobody waits for it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(untagged)]
pub enum Handled {
    Notice(Notice),
    /// Not an event of ours, or its detail is not one this build reads.
    Ignored {
        ignored: String,
    },
}

/// The run a `PSA Sync Finished` event of this project is about; why not, otherwise.
pub fn finished_run(event: &FinishedEvent) -> Result<FinishedRun, String> {
    if event.source != EVENT_SOURCE || event.detail_type != SYNC_FINISHED {
        return Err(format!("not a `{SYNC_FINISHED}` event of `{EVENT_SOURCE}`"));
    }
    let d = Detail::deserialize(&event.detail).map_err(|e| format!("unreadable detail: {e}"))?;
    Ok(FinishedRun {
        workspace: WorkspaceId::parse(&d.workspace_id).map_err(|e| e.to_string())?,
        kind: ConnectorType::parse(&d.connector_id)
            .ok_or_else(|| format!("unknown connector type `{}`", d.connector_id))?,
        run: RunId::parse(&d.run_id).map_err(|e| e.to_string())?,
    })
}

/// Handles one delivery; `owner` is the Lambda request id (the claim's owner).
pub async fn handle(
    notifier: &Notifier,
    event: FinishedEvent,
    owner: &str,
) -> Result<Handled, NoticeError> {
    let finished = match finished_run(&event) {
        Ok(f) => f,
        Err(why) => {
            tracing::error!(event = "notice_ignored", %why, "event dropped");
            return Ok(Handled::Ignored { ignored: why });
        }
    };
    match notify(notifier, &finished, owner).await {
        Ok(notice) => {
            tracing::info!(
                event = "notice",
                workspace_id = %finished.workspace,
                run_id = %finished.run,
                notice = ?notice,
                "run notified"
            );
            Ok(Handled::Notice(notice))
        }
        Err(e @ NoticeError::BeingSent) => {
            tracing::warn!(
                event = "notice_busy",
                workspace_id = %finished.workspace,
                run_id = %finished.run,
                "another delivery holds the run's email; this one is retried"
            );
            Err(e)
        }
        Err(e) => {
            tracing::error!(
                event = "notice_failed",
                workspace_id = %finished.workspace,
                run_id = %finished.run,
                error = %e,
                "the run's email was not sent; the event is retried"
            );
            Err(e)
        }
    }
}
