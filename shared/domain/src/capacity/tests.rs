use super::*;
use crate::connector::{ConnectorSettings, LastSync};
use crate::ids::{RunId, UserId, WorkspaceId};
use crate::sync::{RunCounts, RunStatus};
use time::macros::datetime;

const T0: OffsetDateTime = datetime!(2026-11-24 05:00 UTC);

fn connector(i: usize, at: OffsetDateTime) -> Connector {
    Connector::new(
        crate::ConnectorType::Gradient,
        WorkspaceId::parse(&format!("msp_{i}")).unwrap(),
        UserId::parse("admin").unwrap(),
        "…abcd".into(),
        ConnectorSettings::default(),
        at,
    )
}

/// `c` finished a successful full run at `at`.
fn full_done(c: &mut Connector, at: OffsetDateTime, readings: u64) {
    let last = LastSync {
        run_id: RunId::new(at, "scheduled"),
        status: RunStatus::Succeeded,
        finished_at: at,
        counts: RunCounts {
            readings,
            posted: readings,
            ..RunCounts::default()
        },
    };
    c.finished_run(last, true);
}

fn policy() -> SyncPolicy {
    SyncPolicy::default()
}

fn days(n: i64) -> Duration {
    Duration::days(n)
}

#[test]
fn connectors_connected_the_same_day_spread_evenly_over_the_period() {
    let p = policy();
    let mut per_day = [0u32; 7];
    for i in 0..7_000 {
        let mut c = connector(i, T0);
        full_done(&mut c, T0, 10);
        // The first day in the period that carries one (then it would be done).
        let due = (1..=7)
            .find(|d| full_need(&c, T0 + days(*d), &p) != FullNeed::No)
            .unwrap();
        per_day[(due - 1) as usize] += 1;
    }
    for n in per_day {
        assert!((850..=1150).contains(&n), "uneven spread: {per_day:?}");
    }
}

#[test]
fn the_day_is_stable_and_depends_on_the_incarnation() {
    let a = connector(1, T0);
    let mut b = a.clone();
    assert_eq!(resend_day(&a, 7), resend_day(&b, 7));
    assert_eq!(stagger_hash(&a), stagger_hash(&a.clone()));
    // A new incarnation (delete + create) has its own day, independent of the old one.
    let days: std::collections::BTreeSet<i64> = (0..50)
        .map(|i| {
            b.incarnation = format!("inc{i}");
            resend_day(&b, 7)
        })
        .collect();
    assert!(days.len() > 3, "{days:?}");
}

#[test]
fn first_run_after_connect_or_retoken_is_required_and_never_deferred() {
    let p = policy();
    let mut c = connector(1, T0);
    assert_eq!(full_need(&c, T0, &p), FullNeed::Required);
    assert!(!defer(&mut c, T0));
    full_done(&mut c, T0, 10);
    c.retokened("…wxyz".into(), T0 + Duration::hours(25));
    assert_eq!(
        full_need(&c, T0 + Duration::hours(26), &p),
        FullNeed::Required
    );
    assert!(!defer(&mut c, T0));
}

#[test]
fn a_retoken_forces_at_most_one_full_resend_a_day() {
    let p = policy();
    let mut c = connector(1, T0);
    full_done(&mut c, T0, 10);
    // Re-tokened an hour after a full resend: the accepted values still stand (same
    // organization), so no second full resend that day...
    c.retokened("…wxyz".into(), T0 + Duration::hours(1));
    assert_eq!(c.token_version, 2);
    assert!(!c.full_resend_due);
    assert_ne!(
        full_need(&c, T0 + Duration::hours(2), &p),
        FullNeed::Required
    );
    // ...but a day later a re-token forces one again.
    c.retokened("…abcd".into(), T0 + Duration::hours(24));
    assert!(c.full_resend_due);
}

#[test]
fn a_failed_full_resend_is_due_again_the_next_run() {
    let p = policy();
    let mut c = connector(3, T0);
    full_done(&mut c, T0, 10);
    let day = (1..=7)
        .find(|d| full_need(&c, T0 + days(*d), &p) != FullNeed::No)
        .unwrap();
    // The run of its day failed: nothing recorded. Later that day it is still due…
    assert_ne!(
        full_need(&c, T0 + days(day) + Duration::hours(3), &p),
        FullNeed::No
    );
    // …and the next day too (overdue once the period is over).
    let next = full_need(&c, T0 + days(day + 1), &p);
    assert!(next != FullNeed::No, "{next:?}");
    // Done on its day: not due again until the same day of the next period.
    full_done(&mut c, T0 + days(day) + Duration::minutes(30), 10);
    for d in 1..7 {
        assert_eq!(
            full_need(&c, T0 + days(day + d), &p),
            FullNeed::No,
            "day +{d}"
        );
    }
    assert_eq!(full_need(&c, T0 + days(day + 7), &p), FullNeed::Day);
}

#[test]
fn a_resend_just_before_midnight_is_not_repeated_just_after() {
    let p = policy();
    // Find a connector whose day is the day after T0.
    let mut c = (0..100)
        .map(|i| connector(i, T0))
        .find(|c| resend_day(c, 7) == (day_number(T0) + 1).rem_euclid(7))
        .unwrap();
    let late = datetime!(2026-11-24 23:59 UTC);
    full_done(&mut c, late, 10);
    assert_eq!(full_need(&c, late + Duration::minutes(2), &p), FullNeed::No);
    assert_eq!(
        full_need(&c, late + days(7) + Duration::hours(5), &p),
        FullNeed::Day
    );
}

#[test]
fn a_deferred_resend_goes_the_next_day_first_in_line() {
    let p = policy();
    let mut c = connector(5, T0);
    full_done(&mut c, T0, 10);
    let day = (1..=7)
        .find(|d| full_need(&c, T0 + days(*d), &p) != FullNeed::No)
        .unwrap();
    let at = T0 + days(day);
    assert!(defer(&mut c, at));
    assert_eq!(full_need(&c, at + Duration::hours(5), &p), FullNeed::No);
    let next = full_need(&c, at + days(1), &p);
    assert_eq!(next, FullNeed::Overdue { days: 1 });
    // Overdue ranks before any connector whose day it merely is.
    let other = connector(6, T0);
    assert!(priority(&c, next) < priority(&other, FullNeed::Day));
}

#[test]
fn a_day_over_budget_defers_full_resends_and_nothing_else() {
    let p = policy();
    let at = T0 + days(7);
    let mut all = Vec::new();
    for i in 0..700 {
        let mut c = connector(i, T0);
        full_done(&mut c, T0, 1_000);
        all.push(c);
    }
    // 10 new connectors: required full resends of unknown size.
    all.extend((700..710).map(|i| connector(i, at)));
    // Each connector's run: 2 set-up + 20 changed; a full resend adds 980.
    let e = estimate(&all[0]);
    assert_eq!(
        e,
        RunEstimate {
            base: 22,
            full_extra: 980
        }
    );
    let base = 700 * 22 + 10 * (SETUP_CALLS + NEW_CONNECTOR_READINGS);
    // Plenty: everything admitted.
    let roomy = plan_day(&all, at, &p, 10_000_000);
    assert_eq!(roomy.cutoff, Cutoff::All);
    assert_eq!(roomy.base_calls, base);
    assert!(roomy.due > 50 && roomy.due == roomy.admitted, "{roomy:?}");
    // Room for exactly 40 resends on top of the base: 40 admitted, the rest deferred.
    let tight = plan_day(&all, at, &p, base + 40 * 980 + 500);
    assert_eq!((tight.admitted, tight.deferred()), (40, roomy.due - 40));
    assert!(tight.planned_calls() <= tight.budget);
    let admitted = all
        .iter()
        .filter(|c| tight.admits(c, at, &p) == Some(true))
        .count();
    assert_eq!(admitted, 40 + 10, "plus the 10 required ones");
    // Not even the base fits: nothing deferrable goes, required ones still do.
    let none = plan_day(&all, at, &p, 100);
    assert_eq!(none.cutoff, Cutoff::Nothing);
    assert_eq!(none.admits(&all[705], at, &p), Some(true));
}

#[test]
fn the_estimate_uses_the_last_delta_run() {
    let mut c = connector(1, T0);
    full_done(&mut c, T0, 1_000);
    // A delta run afterwards posted 37 and found 3 unmapped.
    let ls = c.last_sync.as_mut().unwrap();
    ls.finished_at = T0 + days(1);
    ls.counts.posted = 37;
    ls.counts.unmapped = 3;
    ls.counts.accounts_created = 150;
    ls.counts.accounts_renamed = 2;
    let e = estimate(&c);
    assert_eq!(e.base, SETUP_CALLS + 2 + 2 + 40);
    assert_eq!(e.full_extra, 960);
    assert_eq!(daily_budget(100), 7_776_000);
}
