//! Every key of the project's table, built in one place: partition keys (`pk`), sort keys (`sk`)
//! and their prefixes, and the keys of the two indexes (`byStatus`: `gsi1pk`/`gsi1sk`,
//! `byOutcome`: `gsi2pk`/`gsi2sk`). The table of items is in the crate's documentation.
//!
//! Per-connector keys carry `<type>#<incarnation>` ([`ConnectorRef::key`]), so a connector deleted
//! and created again never sees what an older incarnation wrote. `#` never occurs in ids and sorts
//! before every id character, so a prefix ending in `#` lists exactly its own items, in order.

use psa_domain::{ConnectorRef, ConnectorStatus, ConnectorType, Outcome, RunId, WorkspaceId};
use time::OffsetDateTime;

/// The index of connectors by status and of runs by connector (`gsi1pk`/`gsi1sk`).
pub(crate) const BY_STATUS: &str = "byStatus";
/// The index of a run's readings by outcome (`gsi2pk`/`gsi2sk`).
pub(crate) const BY_OUTCOME: &str = "byOutcome";

/// `WS#<ws>`: the partition of everything of one workspace.
pub(crate) fn workspace_pk(ws: &WorkspaceId) -> String {
    format!("WS#{ws}")
}

// ---- connectors -------------------------------------------------------------------------------

/// Sort-key prefix of a workspace's connectors.
pub(crate) const CONNECTORS_PREFIX: &str = "CONNECTOR#";

/// `CONNECTOR#<type>`: the one connector of a type in a workspace.
pub(crate) fn connector_sk(kind: ConnectorType) -> String {
    format!("{CONNECTORS_PREFIX}{}", kind.as_str())
}

/// `CONNECTORS#<status>` (`gsi1pk`): the scheduler queries `CONNECTORS#connected`, never scans.
pub(crate) fn connectors_by_status_pk(status: ConnectorStatus) -> String {
    format!("CONNECTORS#{}", status.as_str())
}

/// `gsi1sk` of a connector: its workspace's partition key.
pub(crate) fn connectors_by_status_sk(ws: &WorkspaceId) -> String {
    workspace_pk(ws)
}

/// `ORG#<type>#<organization>`: the binding of a PSA organization to one workspace.
pub(crate) fn organization_pk(kind: ConnectorType, organization: &str) -> String {
    format!("ORG#{}#{organization}", kind.as_str())
}

pub(crate) const BINDING_SK: &str = "BINDING";

// ---- a PSA's deployment-wide records ------------------------------------------------------------

/// `VENDOR#<psa>`: the partition of one PSA's deployment-wide records.
pub(crate) fn vendor_pk(psa: &str) -> String {
    format!("VENDOR#{psa}")
}

/// `SERVICE#<catalogue key>`: a catalogue service's id in the PSA (vendor-wide service registry).
pub(crate) const SERVICE_PREFIX: &str = "SERVICE#";
/// The vendor-wide lock that serialises creating services.
pub(crate) const SERVICES_LOCK_SK: &str = "LOCK#services";

/// The record of PSA rejections (vendor-key faults).
pub(crate) const KEY_HEALTH_SK: &str = "KEYHEALTH";
/// The lease record of the deployment's request budget.
pub(crate) const BUDGET_SK: &str = "BUDGET";

// ---- run slot, cool-down, attempt counters ------------------------------------------------------

/// `SLOT#<type>#<inc>`: one slot (and worker lease) per connector incarnation.
pub(crate) fn slot_sk(c: &ConnectorRef) -> String {
    format!("SLOT#{}", c.key())
}

/// `SLOT#<type>#`: the slots of every incarnation of the workspace's connector of that type.
pub(crate) fn slots_prefix(kind: ConnectorType) -> String {
    format!("SLOT#{}#", kind.as_str())
}

/// `COOLDOWN#<type>`: the on-demand cool-down of the workspace's connector of that type.
pub(crate) fn cooldown_sk(c: &ConnectorRef) -> String {
    format!("COOLDOWN#{}", c.kind.as_str())
}

/// `LIMIT#<ws>`: attempt counters, apart from the workspace's connector data.
pub(crate) fn attempts_pk(ws: &WorkspaceId) -> String {
    format!("LIMIT#{ws}")
}

/// `ATTEMPTS#<what>#<window start ms>`.
pub(crate) fn attempts_sk(what: &str, window_start_ms: u64) -> String {
    format!("ATTEMPTS#{what}#{window_start_ms}")
}

// ---- runs ----------------------------------------------------------------------------------------

/// `RUN#<type>#<inc>#`: the runs of a connector incarnation.
pub(crate) fn runs_prefix(c: &ConnectorRef) -> String {
    format!("RUN#{}#", c.key())
}

/// `RUN#<type>#<inc>#<runId>`.
pub(crate) fn run_sk(c: &ConnectorRef, run: &RunId) -> String {
    format!("{}{run}", runs_prefix(c))
}

/// `RUNS#<ws>#<type>#<inc>` (`gsi1pk`): a connector incarnation's runs on `byStatus`.
pub(crate) fn runs_index_pk(c: &ConnectorRef) -> String {
    format!("RUNS#{}#{}", c.workspace, c.key())
}

/// `<queuedAt ms, 15 digits>#<runId>` (`gsi1sk`): runs list by the time they were queued.
pub(crate) fn runs_index_sk(queued_at: OffsetDateTime, run: &RunId) -> String {
    let queued_ms = queued_at.unix_timestamp_nanos() / 1_000_000;
    format!("{queued_ms:015}#{run}")
}

// ---- a run's readings ----------------------------------------------------------------------------

/// `<accountId>#<serviceKey>`: a reading's place in its run (the order of every listing), the
/// last part of its sort key and its `gsi2sk`.
pub(crate) fn reading_key(account_id: &str, service: &str) -> String {
    format!("{account_id}#{service}")
}

/// `READING#<type>#<inc>#<runId>#`: a run's readings of any outcome but `unchanged` and `posted`
/// (and of every outcome in runs recorded before the other two kinds).
pub(crate) fn readings_prefix(c: &ConnectorRef, run: &RunId) -> String {
    format!("READING#{}#{run}#", c.key())
}

/// `RPOSTED#<type>#<inc>#<runId>#`: a run's `posted` readings.
pub(crate) fn posted_prefix(c: &ConnectorRef, run: &RunId) -> String {
    format!("RPOSTED#{}#{run}#", c.key())
}

/// `RCHUNK#<type>#<inc>#<runId>#`: a run's packed `unchanged` readings.
pub(crate) fn chunks_prefix(c: &ConnectorRef, run: &RunId) -> String {
    format!("RCHUNK#{}#{run}#", c.key())
}

/// Just past the last chunk of the run: its prefix with the final `#` raised to `$`.
pub(crate) fn chunks_end(c: &ConnectorRef, run: &RunId) -> String {
    format!("RCHUNK#{}#{run}$", c.key())
}

/// The sort key of the item of `prefix` (one of the three above) whose reading key is `key`.
pub(crate) fn in_run(prefix: &str, key: &str) -> String {
    format!("{prefix}{key}")
}

/// The smallest sort key of `prefix` after every item whose reading key is `key`.
pub(crate) fn in_run_after(prefix: &str, key: &str) -> String {
    format!("{prefix}{key}\u{1}")
}

/// `READINGS#<ws>#<type>#<inc>#<runId>#<outcome>` (`gsi2pk`): a run's readings with one outcome
/// on `byOutcome`; its sort key is the reading key, so a filtered page is ordered as the
/// unfiltered one.
pub(crate) fn outcome_index_pk(c: &ConnectorRef, run: &RunId, outcome: Outcome) -> String {
    format!(
        "READINGS#{}#{}#{run}#{}",
        c.workspace,
        c.key(),
        outcome.as_str()
    )
}

// ---- pair states, alerts, tickets ----------------------------------------------------------------

/// `PAIR#<type>#<inc>#`: the pair states of a connector incarnation.
pub(crate) fn pairs_prefix(c: &ConnectorRef) -> String {
    format!("PAIR#{}#", c.key())
}

/// `PAIR#<type>#<inc>#<accountId>#<serviceKey>`.
pub(crate) fn pair_sk(c: &ConnectorRef, account_id: &str, service_key: &str) -> String {
    format!("{}{account_id}#{service_key}", pairs_prefix(c))
}

/// `ALERT#<type>#<inc>#<accountId>#<kind>`: the last PSA alert per account and kind.
pub(crate) fn alert_sk(c: &ConnectorRef, account_id: &str, kind: &str) -> String {
    format!("ALERT#{}#{account_id}#{kind}", c.key())
}

/// `TICKET#<type>#<inc>#`: the alerts whose PSA ticket is still pending.
pub(crate) fn tickets_prefix(c: &ConnectorRef) -> String {
    format!("TICKET#{}#", c.key())
}

/// `TICKET#<type>#<inc>#<messageId>`.
pub(crate) fn ticket_sk(c: &ConnectorRef, message_id: &str) -> String {
    format!("{}{message_id}", tickets_prefix(c))
}

// ---- audit trail, emails ------------------------------------------------------------------------

/// Sort-key prefix of a workspace's audit trail.
pub(crate) const AUDIT_PREFIX: &str = "AUDIT#";

/// `AUDIT#<at ms, 15 digits>#<suffix>` (a random suffix keeps two events of one millisecond
/// apart).
pub(crate) fn audit_sk(at: OffsetDateTime, suffix: &str) -> String {
    let at_ms = at.unix_timestamp_nanos() / 1_000_000;
    format!("{AUDIT_PREFIX}{at_ms:015}#{suffix}")
}

/// `NOTICE#<type>#<inc>#<runId>`: whether a run was emailed.
pub(crate) fn notice_sk(c: &ConnectorRef, run: &RunId) -> String {
    format!("NOTICE#{}#{run}", c.key())
}

// ---- the daily schedule ---------------------------------------------------------------------------

/// The partition of the daily schedule's firings.
pub(crate) const SCHEDULE_PK: &str = "SCHEDULE#gradient";
/// The newest firing.
pub(crate) const LATEST_FIRING_SK: &str = "LATEST";

/// `FIRING#<runId>`: one firing's progress and lease.
pub(crate) fn firing_sk(run: &RunId) -> String {
    format!("FIRING#{run}")
}

/// `QUEUED#<type>#<inc>#<runId>`: a scheduled run's job is on the queue.
pub(crate) fn queued_sk(c: &ConnectorRef, run: &RunId) -> String {
    format!("QUEUED#{}#{run}", c.key())
}

#[cfg(test)]
#[path = "keys_tests.rs"]
mod tests;
