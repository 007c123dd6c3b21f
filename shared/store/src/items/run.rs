//! A sync run's item (`RUN#<type>#<inc>#<runId>`, on `byStatus` under its connector incarnation,
//! newest `queuedAt` first), kept 90 days after it finished (or was queued).

use crate::attrs::DAY_S;
use crate::keys::{run_sk, runs_index_pk, runs_index_sk, workspace_pk};
use psa_domain::SyncRun;
use serde::{Deserialize, Serialize};

/// A run record expires 90 days after it finished (or was queued).
const RUN_RETENTION_S: i64 = 90 * DAY_S;

#[derive(Serialize, Deserialize)]
pub(crate) struct RunItem {
    pk: String,
    sk: String,
    gsi1pk: String,
    gsi1sk: String,
    #[serde(rename = "expiresAt")]
    expires_at: i64,
    #[serde(flatten)]
    pub(crate) run: SyncRun,
}

impl RunItem {
    pub(crate) fn new(run: &SyncRun) -> Self {
        let c = run.connector();
        let at = run.finished_at.unwrap_or(run.queued_at);
        Self {
            pk: workspace_pk(&run.workspace_id),
            sk: run_sk(&c, &run.run_id),
            gsi1pk: runs_index_pk(&c),
            gsi1sk: runs_index_sk(run.queued_at, &run.run_id),
            expires_at: at.unix_timestamp() + RUN_RETENTION_S,
            run: run.clone(),
        }
    }
}
