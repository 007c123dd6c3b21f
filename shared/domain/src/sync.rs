//! Sync runs: what one run of one connector did, reading by reading.

use crate::catalogue::Unit;
use crate::ids::{ConnectorType, RunId, UserId, WorkspaceId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Scheduled,
    OnDemand,
    /// An admin released a held run: posts once without the billing guard.
    Release,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Queued,
    Running,
    Succeeded,
    PartiallyFailed,
    Failed,
    TokenRejected,
    /// The connector was deleted or re-tokened while the run was going.
    Cancelled,
    /// The billing guard held the run: nothing was posted.
    Held,
}

impl RunStatus {
    pub fn is_active(self) -> bool {
        matches!(self, Self::Queued | Self::Running)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::PartiallyFailed => "partially_failed",
            Self::Failed => "failed",
            Self::TokenRejected => "token_rejected",
            Self::Cancelled => "cancelled",
            Self::Held => "held",
        }
    }
}

/// Every reading of a run ends in exactly one of `posted`, `unchanged`, `unmapped`,
/// `skipped_disabled`, `failed` or `held`: `readings` is their sum.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RunCounts {
    pub accounts: u64,
    pub accounts_created: u64,
    pub accounts_renamed: u64,
    pub services_created: u64,
    pub readings: u64,
    pub posted: u64,
    pub unchanged: u64,
    pub unmapped: u64,
    pub skipped_disabled: u64,
    pub failed: u64,
    pub held: u64,
}

impl RunCounts {
    /// Sets the reading tallies from the run's recorded readings (the one source of truth).
    pub fn tally<'a>(&mut self, outcomes: impl IntoIterator<Item = &'a Outcome>) {
        (self.posted, self.unchanged, self.unmapped) = (0, 0, 0);
        (self.skipped_disabled, self.failed, self.readings, self.held) = (0, 0, 0, 0);
        for o in outcomes {
            self.readings += 1;
            *match o {
                Outcome::Posted => &mut self.posted,
                Outcome::Unchanged => &mut self.unchanged,
                Outcome::Unmapped => &mut self.unmapped,
                Outcome::SkippedDisabled => &mut self.skipped_disabled,
                Outcome::Failed => &mut self.failed,
                Outcome::Held => &mut self.held,
            } += 1;
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    pub account_id: String,
    pub service: String,
    pub reason: String,
}

/// Most failures a run record keeps (the whole list is the run's readings with outcome `failed`).
pub const MAX_RECORDED_FAILURES: usize = 50;

/// Longest reason kept anywhere (run, reading, audit).
pub const MAX_REASON_CHARS: usize = 200;

/// `text` cut to [`MAX_REASON_CHARS`] characters (with `…` when cut).
pub fn bounded_reason(text: &str) -> String {
    let text = text.trim();
    if text.chars().count() <= MAX_REASON_CHARS {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(MAX_REASON_CHARS - 1).collect();
    out.push('…');
    out
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncRun {
    pub run_id: RunId,
    pub connector_id: ConnectorType,
    pub workspace_id: WorkspaceId,
    /// The connector incarnation the run belongs to (see [`crate::ConnectorRef`]).
    pub incarnation: String,
    pub trigger: Trigger,
    pub status: RunStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<UserId>,
    #[serde(with = "time::serde::rfc3339")]
    pub queued_at: OffsetDateTime,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub started_at: Option<OffsetDateTime>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub finished_at: Option<OffsetDateTime>,
    pub counts: RunCounts,
    pub failures: Vec<Failure>,
    /// Why the run failed or was cancelled (≤ 200 chars).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The connector's token version when the run started: a re-token cancels the run.
    #[serde(default)]
    pub token_version: u64,
    /// Follow-up jobs this run has enqueued (bounded by the policy).
    #[serde(default)]
    pub continuations: u32,
    /// The run carries a full resend (every enabled reading is sent).
    #[serde(default)]
    pub full: bool,
    /// The billing guard's figures, on every run that got to planning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guard: Option<GuardFigures>,
    /// The held run a `release` run releases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_of: Option<RunId>,
    /// PSA calls of the run so far (its earlier jobs; the whole run once finished), for the
    /// run's metrics. Not part of the API.
    #[serde(default, skip_serializing_if = "crate::calls::Calls::is_zero")]
    pub calls: crate::calls::Calls,
    /// What became of the PSA tickets this run raised or confirmed (at most
    /// [`MAX_RECORDED_TICKETS`]), for the run's email. Not part of the API.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tickets: Vec<RunTicket>,
}

/// Most ticket outcomes a run record keeps.
pub const MAX_RECORDED_TICKETS: usize = 50;

/// A PSA ticket's outcome as the run knows it: an alert this run raised, or one of an earlier
/// run that this run found settled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunTicket {
    pub account_id: String,
    /// The account's name, when this run raised the alert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_name: Option<String>,
    pub state: TicketState,
    /// The PSA's ticket id (`created`) or its first error (`failed`, ≤ 200 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Raised by an earlier run, settled by this one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub earlier: bool,
}

/// `created`, `pending` or `failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketState {
    Created,
    Pending,
    Failed,
}

/// The billing guard's comparison: over the pairs a run would report whose last accepted value
/// is above 0, the sum of those values (`before`) and of what the run would report (`after`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardFigures {
    pub before: u64,
    pub after: u64,
}

impl GuardFigures {
    /// `100 × (before − after) / before` (negative for a rise, 0 with nothing before), 2 decimals.
    pub fn drop_percent(&self) -> f64 {
        if self.before == 0 {
            return 0.0;
        }
        let p = 100.0 * (self.before as f64 - self.after as f64) / self.before as f64;
        (p * 100.0).round() / 100.0
    }

    /// Whether a run with these figures is held: a threshold is set, `before` reaches
    /// `min_units`, and `after < before × (1 − threshold / 100)` (exact, in integers).
    pub fn holds(&self, threshold: Option<u8>, min_units: u64) -> bool {
        threshold.is_some_and(|g| {
            self.before >= min_units
                && u128::from(self.after) * 100
                    < u128::from(self.before) * u128::from(100 - g.min(100))
        })
    }
}

impl SyncRun {
    pub fn connector(&self) -> crate::ConnectorRef {
        crate::ConnectorRef {
            workspace: self.workspace_id.clone(),
            kind: self.connector_id,
            incarnation: self.incarnation.clone(),
        }
    }
}

/// How one reading of a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Posted,
    Unchanged,
    Unmapped,
    SkippedDisabled,
    Failed,
    /// The billing guard held the run: this reading would have been posted.
    Held,
}

impl Outcome {
    pub const ALL: [Outcome; 6] = [
        Self::Posted,
        Self::Unchanged,
        Self::Unmapped,
        Self::SkippedDisabled,
        Self::Failed,
        Self::Held,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Posted => "posted",
            Self::Unchanged => "unchanged",
            Self::Unmapped => "unmapped",
            Self::SkippedDisabled => "skipped_disabled",
            Self::Failed => "failed",
            Self::Held => "held",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == raw)
    }
}

/// One reading of a run and how it ended (contract `RunReading`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReading {
    pub account_id: String,
    pub account_name: String,
    pub service: String,
    pub unit: Unit,
    pub value: u64,
    /// The last value the PSA had accepted for the pair before this run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<u64>,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The last value the PSA accepted for a pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Accepted {
    pub value: u64,
    /// The PSA's id of the service the value was sent to: a value is valid only for it.
    pub service_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub run_id: RunId,
}

/// The latest attempt to report a pair, when it did not end accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    Posted,
    Unmapped,
    Failed,
}

/// What the project knows about one (account, service) pair of a connector incarnation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PairState {
    pub account_id: String,
    pub service_key: String,
    pub account_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted: Option<Accepted>,
    pub last_attempt: AttemptOutcome,
    #[serde(with = "time::serde::rfc3339")]
    pub last_attempt_at: OffsetDateTime,
}

impl PairState {
    pub fn key(&self) -> (String, String) {
        (self.account_id.clone(), self.service_key.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tallies_add_up() {
        let mut c = RunCounts::default();
        c.tally(&[
            Outcome::Posted,
            Outcome::Posted,
            Outcome::Failed,
            Outcome::Unmapped,
        ]);
        assert_eq!(
            (c.readings, c.posted, c.failed, c.unmapped, c.unchanged),
            (4, 2, 1, 1, 0)
        );
        for o in Outcome::ALL {
            assert_eq!(Outcome::parse(o.as_str()), Some(o));
        }
        assert_eq!(Outcome::parse("held_back"), None);
    }

    #[test]
    fn the_guard_holds_exactly_past_its_threshold() {
        let g = |before, after| GuardFigures { before, after };
        assert!(g(100, 49).holds(Some(50), 20));
        assert!(
            !g(100, 50).holds(Some(50), 20),
            "a drop of exactly 50 % is not past 50 %"
        );
        assert!(!g(100, 49).holds(None, 20), "guard off");
        assert!(!g(19, 0).holds(Some(50), 20), "too little to judge");
        assert!(
            !g(20, 0).holds(Some(100), 20),
            "100 % would need a drop below 0"
        );
        assert!(g(20, 0).holds(Some(1), 20));
        assert_eq!(g(200, 50).drop_percent(), 75.0);
        assert_eq!(g(3, 2).drop_percent(), 33.33);
        assert_eq!(g(100, 150).drop_percent(), -50.0);
        assert_eq!(g(0, 10).drop_percent(), 0.0);
    }

    #[test]
    fn reasons_are_bounded() {
        assert_eq!(bounded_reason("  short "), "short");
        let long = "é".repeat(500);
        let b = bounded_reason(&long);
        assert_eq!(b.chars().count(), MAX_REASON_CHARS);
        assert!(b.ends_with('…'));
    }
}
