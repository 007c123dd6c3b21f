//! Capacity (pure): on which day of the period each connector's full resend falls, and what a
//! day of scheduled runs costs against the deployment's Gradient budget — so a day over budget
//! defers full-resend work, never changed readings. The model and its numbers: `docs/capacity.md`.
//!
//! * **Staggered full resend.** A connector's day in the period is a stable hash of the connector
//!   (workspace + incarnation) modulo the period (`SYNC_FULL_RESEND_DAYS`): connectors connected
//!   on the same day spread evenly over the period instead of all resending on day 7.
//! * Guarantees kept: the first run after a connect or a re-token is full ([`FullNeed::Required`],
//!   never deferred); a full resend is done only when its run succeeded, so a failed one is due
//!   again the next run ([`FullNeed::Overdue`]); no connector goes longer than the period plus a
//!   day without one unless the budget defers it.
//! * **Graceful degradation.** The scheduler estimates each run's calls from the connector's
//!   last run ([`estimate`]); set-up, changed readings and required full resends always go. The
//!   rest of the day's budget admits the deferrable full resends, most overdue first
//!   ([`plan_day`]); the others are deferred by one day ([`defer`]), so tomorrow they are overdue
//!   and first in line — a week later never.

use crate::connector::Connector;
use crate::policy::SyncPolicy;
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use time::{Duration, OffsetDateTime};

const DAY_SECS: i64 = 86_400;

/// A connector's full resend on its day needs at least this much since the last one, so a run
/// just after midnight UTC does not resend again what a run just before it sent.
const MIN_GAP: Duration = Duration::hours(12);

/// Calls of a run's set-up in the steady state: `GET organization` and `GET accounts` (services
/// come from the registry; creates and renames are counted from the last run).
pub const SETUP_CALLS: u64 = 2;

/// Readings assumed for a connector that has never finished a run (its first run is a full
/// resend of an unknown size): a 300-account MSP with 14 services.
pub const NEW_CONNECTOR_READINGS: u64 = 300 * 14;

/// Share of readings assumed to change from one day to the next when the last run was a full
/// resend (so its counts say nothing about the delta), in per mille.
pub const ASSUMED_CHANGE_PER_MILLE: u64 = 20;

/// The share of `GRADIENT_MAX_RPS` × 86,400 the daily schedule plans with, in per cent; the rest
/// is headroom for on-demand runs, the API's calls, retries and alerts.
pub const SCHEDULE_SHARE_PERCENT: u64 = 90;

/// Calls per day the daily schedule may plan with, for a deployment budget of `max_rps`.
pub fn daily_budget(max_rps: u32) -> u64 {
    u64::from(max_rps) * DAY_SECS as u64 * SCHEDULE_SHARE_PERCENT / 100
}

/// The full-resend period in whole days (at least 1).
pub fn period_days(policy: &SyncPolicy) -> i64 {
    (policy.full_resend_every.as_secs() as i64 / DAY_SECS).max(1)
}

/// The UTC day number of `at` (days since 1970-01-01).
pub fn day_number(at: OffsetDateTime) -> i64 {
    at.unix_timestamp().div_euclid(DAY_SECS)
}

/// A stable hash of the connector incarnation (FNV-1a, 64 bits; the same on every build and
/// process, unlike the standard library's hasher).
pub fn stagger_hash(c: &Connector) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let bytes = c.workspace_id.as_str().bytes();
    for b in bytes.chain([b'#']).chain(c.incarnation.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The connector's day in the period: a full resend falls on the days `d` with
/// `d mod period == resend_day`.
pub fn resend_day(c: &Connector, period: i64) -> i64 {
    (stagger_hash(c) % period.max(1) as u64) as i64
}

/// Whether (and why) a run of `c` starting at `at` carries a full resend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum FullNeed {
    /// Not due (or deferred until later today by the budget).
    No,
    /// Today is the connector's day in the period.
    Day,
    /// `days` after the connector's day, with no full resend since: its run failed, did not
    /// happen, or the budget deferred it. Due now, before those whose day it merely is, the
    /// latest first.
    Overdue { days: i64 },
    /// After a connect or a re-token (or never done): always, never deferred.
    Required,
}

/// Why a run of `c` starting at `at` carries a full resend, if it does.
///
/// Due when no full resend was done since (12 hours before) the connector's latest day in the
/// period — on that day [`FullNeed::Day`], on the days after [`FullNeed::Overdue`] (its run
/// failed, did not happen, or was deferred). So no connector goes longer than the period plus a
/// day without one, and a failed one is due again on the next run.
pub fn full_need(c: &Connector, at: OffsetDateTime, policy: &SyncPolicy) -> FullNeed {
    let Some(last) = c.last_full_resend_at else {
        return FullNeed::Required;
    };
    if c.full_resend_due {
        return FullNeed::Required;
    }
    if c.full_resend_deferred_until.is_some_and(|until| at < until) {
        return FullNeed::No;
    }
    let period = period_days(policy);
    let today = day_number(at);
    let late = (today - resend_day(c, period)).rem_euclid(period);
    let day_start = OffsetDateTime::UNIX_EPOCH + Duration::days(today - late);
    if last >= day_start - MIN_GAP {
        return FullNeed::No;
    }
    match late {
        0 => FullNeed::Day,
        days => FullNeed::Overdue { days },
    }
}

/// Whether a run of `c` starting at `at` carries a full resend.
pub fn full_due(c: &Connector, at: OffsetDateTime, policy: &SyncPolicy) -> bool {
    full_need(c, at, policy) != FullNeed::No
}

/// Defers `c`'s full resend to its next run after `scheduled_at`'s day (tomorrow's scheduled
/// run, where it is overdue and goes first). A required one is never deferred.
pub fn defer(c: &mut Connector, scheduled_at: OffsetDateTime) -> bool {
    if c.full_resend_due || c.last_full_resend_at.is_none() {
        return false;
    }
    c.full_resend_deferred_until = Some(scheduled_at + Duration::days(1));
    true
}

/// Gradient calls a run of the connector is expected to make, from its last finished run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunEstimate {
    /// Set-up and the readings that go out anyway: changed, new, unmapped or failed last time.
    pub base: u64,
    /// What a full resend adds: the readings Gradient already has.
    pub full_extra: u64,
}

/// Expected calls of a run of `c`: the last run's counts (a full run's posts say nothing about
/// the delta, so [`ASSUMED_CHANGE_PER_MILLE`] of its readings are taken as changing).
pub fn estimate(c: &Connector) -> RunEstimate {
    let Some(last) = &c.last_sync else {
        return RunEstimate {
            base: SETUP_CALLS + NEW_CONNECTOR_READINGS,
            full_extra: 0,
        };
    };
    let n = &last.counts;
    let enabled = n.readings.saturating_sub(n.skipped_disabled);
    let setup = SETUP_CALLS + n.accounts_created.div_ceil(100) + n.accounts_renamed;
    let was_full = c.last_full_resend_at == Some(last.finished_at);
    let changed = if was_full {
        enabled * ASSUMED_CHANGE_PER_MILLE / 1000
    } else {
        (n.posted + n.unmapped + n.failed + n.held).min(enabled)
    };
    RunEstimate {
        base: setup + changed,
        full_extra: enabled - changed,
    }
}

/// The order of deferrable full resends when the budget is short: the most overdue first, then
/// by the stagger hash (stable and fair). Lower is first.
pub type Priority = (Reverse<i64>, u64);

/// The priority of `c`'s full resend, for a deferrable need.
pub fn priority(c: &Connector, need: FullNeed) -> Priority {
    let late = match need {
        FullNeed::Overdue { days } => days,
        _ => 0,
    };
    (Reverse(late), stagger_hash(c))
}

/// Which deferrable full resends the day's budget admits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "admit")]
pub enum Cutoff {
    /// Every one (the day fits).
    #[default]
    All,
    /// Those whose [`Priority`] is at most this (`late` days overdue, `hash`).
    UpTo { late: i64, hash: u64 },
    /// None (set-up, changes and required full resends already fill the day).
    Nothing,
}

impl Cutoff {
    pub fn admits(&self, p: Priority) -> bool {
        match *self {
            Cutoff::All => true,
            Cutoff::UpTo { late, hash } => p <= (Reverse(late), hash),
            Cutoff::Nothing => false,
        }
    }
}

/// The day's schedule against its budget (recorded with the scheduler's progress).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DayPlan {
    pub budget: u64,
    /// Set-up and changed readings of every run, and the required full resends.
    pub base_calls: u64,
    /// Deferrable full resends due today, and what they add.
    pub due: u64,
    pub due_calls: u64,
    pub admitted: u64,
    pub admitted_calls: u64,
    pub cutoff: Cutoff,
}

impl DayPlan {
    pub fn deferred(&self) -> u64 {
        self.due - self.admitted
    }

    pub fn planned_calls(&self) -> u64 {
        self.base_calls + self.admitted_calls
    }

    /// Whether the run of `c` at `at` carries its full resend; `None` = it is not due at all.
    pub fn admits(&self, c: &Connector, at: OffsetDateTime, policy: &SyncPolicy) -> Option<bool> {
        match full_need(c, at, policy) {
            FullNeed::No => None,
            FullNeed::Required => Some(true),
            need => Some(self.cutoff.admits(priority(c, need))),
        }
    }
}

/// Plans the day for the runs of `connectors` at `at` within `budget` calls: everything but
/// the deferrable full resends goes; those are admitted in [`priority`] order while they fit.
pub fn plan_day<'a>(
    connectors: impl IntoIterator<Item = &'a Connector>,
    at: OffsetDateTime,
    policy: &SyncPolicy,
    budget: u64,
) -> DayPlan {
    let mut plan = DayPlan {
        budget,
        ..DayPlan::default()
    };
    let mut deferrable: Vec<(Priority, u64)> = Vec::new();
    for c in connectors {
        let e = estimate(c);
        plan.base_calls += e.base;
        match full_need(c, at, policy) {
            FullNeed::No => {}
            FullNeed::Required => plan.base_calls += e.full_extra,
            need => deferrable.push((priority(c, need), e.full_extra)),
        }
    }
    deferrable.sort_unstable();
    plan.due = deferrable.len() as u64;
    plan.due_calls = deferrable.iter().map(|d| d.1).sum();
    let room = budget.saturating_sub(plan.base_calls);
    if plan.due_calls <= room {
        plan.admitted = plan.due;
        plan.admitted_calls = plan.due_calls;
        return plan;
    }
    let mut last = None;
    for (p, calls) in &deferrable {
        if plan.admitted_calls + calls > room {
            break;
        }
        plan.admitted += 1;
        plan.admitted_calls += calls;
        last = Some(*p);
    }
    plan.cutoff = match last {
        Some((Reverse(late), hash)) => Cutoff::UpTo { late, hash },
        None => Cutoff::Nothing,
    };
    plan
}

#[cfg(test)]
mod tests;
