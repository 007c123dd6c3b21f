//! `make capacity`: the capacity model by simulation (no Gradient, no servers). A synthetic
//! population of connectors (default 10,000 MSPs × 300 accounts × 14 services = 42 M readings),
//! new connectors arriving, a daily change rate; every day the real planner (`plan_readings`)
//! decides the readings of a cohort of full-size MSPs whose usage the population replays, and
//! the real scheduling logic (`psa_domain::capacity`) decides each connector's full resend. It
//! prints Gradient calls per day against the budget (`MAX_RPS` × 86,400) for three policies:
//!
//! * `same-day`  — before: a full resend every period since the last one (all on the same day);
//! * `staggered` — each connector's day by a hash of the connector, no budget;
//! * `budgeted`  — staggered, and a day over the schedule's budget defers full resends.
//!
//! Settings (environment): MSPS, ACCOUNTS, SERVICES, CHANGE_PERCENT (of accounts whose counts
//! change per day), PERIOD_DAYS, DAYS, MAX_RPS, ARRIVALS (new connectors per day), COHORT,
//! RETRY_PERCENT, DAILY=1 (print every day).

use harness::population::connector;
use psa_domain::capacity::{self, FullNeed, SETUP_CALLS};
use psa_domain::connector::{Connector, LastSync};
use psa_domain::sync::{Accepted, AttemptOutcome, PairState, RunCounts, RunStatus};
use psa_domain::usecase::sync::{SyncPolicy, plan_readings};
use psa_domain::{Catalogue, RunId, Workspace, WorkspaceId, WorkspaceStatus, WorkspaceType};
use std::collections::{BTreeMap, BTreeSet};
use time::{Duration, OffsetDateTime};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A small deterministic generator (xorshift64*), so every run prints the same numbers.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The usage of one full-size MSP, day by day, through the real planner: per day the readings
/// a delta run sends (changed since yesterday) and the readings a full resend sends.
fn cohort_track(
    catalogue: &Catalogue,
    member: u64,
    accounts: u64,
    services: usize,
    change_percent: u64,
    days: usize,
) -> Vec<(u64, u64)> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (member + 1).wrapping_mul(0x1000_0001));
    let ids: BTreeMap<String, String> = catalogue
        .iter()
        .map(|s| (s.key.clone(), format!("svc_{}", s.key)))
        .collect();
    let keys: Vec<String> = catalogue
        .iter()
        .take(services)
        .map(|s| s.key.clone())
        .collect();
    let mut workspaces: Vec<Workspace> = (0..accounts)
        .map(|a| Workspace {
            id: WorkspaceId::parse(&format!("m{member}_a{a:04}")).unwrap(),
            parent: None,
            kind: WorkspaceType::Child,
            name: format!("Customer {a}"),
            domain: None,
            status: WorkspaceStatus::Subscription,
            services: keys.iter().cloned().collect(),
            protected_users: 5 + rng.below(200),
            protected_devices: 5 + rng.below(300),
        })
        .collect();
    let at = OffsetDateTime::UNIX_EPOCH;
    let run = RunId::parse("sim").unwrap();
    let mut pairs: BTreeMap<(String, String), PairState> = BTreeMap::new();
    let none = BTreeSet::new();
    let refused = BTreeMap::new();
    let mut track = Vec::with_capacity(days);
    // Day 0 is the state the population was synced to; it is not part of the track.
    for day in 0..=days {
        if day > 0 {
            for ws in &mut workspaces {
                if rng.below(1000) < change_percent * 10 {
                    ws.protected_users = (ws.protected_users + rng.below(5)).saturating_sub(2);
                    ws.protected_devices += rng.below(3);
                }
            }
        }
        let plan = plan_readings(catalogue, &workspaces, &ids, &pairs, &none, &refused, false);
        let unchanged = plan.decided.len() as u64;
        if day > 0 {
            track.push((plan.send.len() as u64, plan.send.len() as u64 + unchanged));
        }
        // Everything sent was accepted: the next day's delta is against today's values.
        for r in plan.send {
            pairs.insert(
                r.key(),
                PairState {
                    account_id: r.account_id.clone(),
                    service_key: r.service_key.clone(),
                    account_name: r.account_name.clone(),
                    accepted: Some(Accepted {
                        value: r.count,
                        service_id: r.service_id.clone(),
                        at,
                        run_id: run.clone(),
                    }),
                    last_attempt: AttemptOutcome::Posted,
                    last_attempt_at: at,
                },
            );
        }
    }
    track
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Policy {
    SameDay,
    Staggered,
    Budgeted,
}

#[derive(Default)]
struct Stats {
    calls: Vec<u64>,
    deferred: Vec<u64>,
    backlog: Vec<u64>,
    fulls: Vec<u64>,
    max_gap_days: i64,
    changed_sent: u64,
}

struct Sim<'a> {
    policy: Policy,
    sync: &'a SyncPolicy,
    tracks: &'a [Vec<(u64, u64)>],
    shift: usize,
    connectors: Vec<(Connector, usize)>,
    stats: Stats,
    backlog: u64,
}

fn full_need(policy: Policy, c: &Connector, at: OffsetDateTime, sync: &SyncPolicy) -> FullNeed {
    match policy {
        // The rule before staggering: due once the period has passed since the last one.
        Policy::SameDay => {
            if c.full_resend_due || c.last_full_resend_at.is_none() {
                FullNeed::Required
            } else if c
                .last_full_resend_at
                .is_some_and(|l| at - l >= Duration::days(capacity::period_days(sync)))
            {
                FullNeed::Day
            } else {
                FullNeed::No
            }
        }
        _ => capacity::full_need(c, at, sync),
    }
}

impl Sim<'_> {
    fn day(
        &mut self,
        day: usize,
        at: OffsetDateTime,
        budget: u64,
        capacity_per_day: u64,
        retry: u64,
    ) {
        let plan = (self.policy == Policy::Budgeted).then(|| {
            capacity::plan_day(
                self.connectors.iter().map(|(c, _)| c),
                at,
                self.sync,
                budget,
            )
        });
        let (mut calls, mut deferred, mut fulls) = (0, 0, 0);
        for (c, i) in &mut self.connectors {
            let track = &self.tracks[*i % self.tracks.len()];
            let (delta, all) = track[day + (*i / self.tracks.len()) % self.shift];
            let need = full_need(self.policy, c, at, self.sync);
            let mut full = need != FullNeed::No;
            if let Some(plan) = &plan
                && plan.admits(c, at, self.sync) == Some(false)
            {
                full = !capacity::defer(c, at);
                deferred += u64::from(!full);
            }
            let first = c.last_sync.is_none();
            let sends = if full || first { all } else { delta };
            self.stats.changed_sent += if first { all } else { delta };
            calls += SETUP_CALLS + sends + sends * retry / 100;
            let finished = at + Duration::minutes(30);
            if full || first {
                fulls += 1;
                if let Some(last) = c.last_full_resend_at {
                    self.stats.max_gap_days =
                        self.stats.max_gap_days.max((finished - last).whole_days());
                }
                c.full_resend_due = false;
                c.last_full_resend_at = Some(finished);
                c.full_resend_deferred_until = None;
            }
            c.last_sync = Some(LastSync {
                run_id: RunId::new(at, "scheduled"),
                status: RunStatus::Succeeded,
                finished_at: finished,
                counts: RunCounts {
                    readings: all,
                    posted: sends,
                    unchanged: all - sends,
                    ..RunCounts::default()
                },
            });
        }
        // What the day cannot carry waits in the queue for the next.
        self.backlog = (self.backlog + calls).saturating_sub(capacity_per_day);
        self.stats.calls.push(calls);
        self.stats.deferred.push(deferred);
        self.stats.backlog.push(self.backlog);
        self.stats.fulls.push(fulls);
    }
}

fn main() {
    let msps = env("MSPS", 10_000) as usize;
    let accounts = env("ACCOUNTS", 300);
    let services = env("SERVICES", 14) as usize;
    let change = env("CHANGE_PERCENT", 2);
    let period = env("PERIOD_DAYS", 7);
    let days = env("DAYS", 60) as usize;
    let max_rps = env("MAX_RPS", 100);
    let arrivals = env("ARRIVALS", 20) as usize;
    let cohort = env("COHORT", 40).max(1);
    let retry = env("RETRY_PERCENT", 1);
    let daily = env("DAILY", 0) == 1;
    let shift = 30;
    let capacity_per_day = max_rps * 86_400;
    let budget = capacity::daily_budget(max_rps as u32);
    let sync = SyncPolicy {
        full_resend_every: std::time::Duration::from_secs(period * 86_400),
        ..SyncPolicy::default()
    };
    let catalogue = Catalogue::builtin();
    let started = std::time::Instant::now();
    let tracks: Vec<Vec<(u64, u64)>> = (0..cohort)
        .map(|m| cohort_track(&catalogue, m, accounts, services, change, days + shift))
        .collect();
    let planned: u64 = tracks.iter().map(|t| t.len() as u64 * t[0].1).sum();
    let t0 = time::macros::datetime!(2026-12-01 05:00 UTC);
    // The population: connected and synced, every one's last full resend on the same day (a
    // launch or a migration), the period ago.
    let population: Vec<(Connector, usize)> = (0..msps)
        .map(|i| {
            let mut c = connector(i, t0 - Duration::days(90));
            let full_at = t0 - Duration::days(period as i64) + Duration::minutes(30);
            c.full_resend_due = false;
            c.last_full_resend_at = Some(full_at);
            let all = tracks[i % tracks.len()][0].1;
            c.last_sync = Some(LastSync {
                run_id: RunId::new(full_at, "scheduled"),
                status: RunStatus::Succeeded,
                finished_at: full_at,
                counts: RunCounts {
                    readings: all,
                    posted: all,
                    ..RunCounts::default()
                },
            });
            (c, i)
        })
        .collect();
    let readings: u64 = population
        .iter()
        .map(|(_, i)| tracks[i % tracks.len()][0].1)
        .sum();
    println!(
        "capacity: {msps} MSPs × {accounts} accounts × {services} services = {readings} readings; \
         {change} % of accounts change per day; full resend every {period} days; {arrivals} new \
         connectors a day; {retry} % retries; {days} days"
    );
    println!(
        "budget: {max_rps} req/s × 86,400 = {capacity_per_day} calls/day; the schedule plans with \
         {} % = {budget}",
        capacity::SCHEDULE_SHARE_PERCENT
    );
    let mut results = Vec::new();
    for policy in [Policy::SameDay, Policy::Staggered, Policy::Budgeted] {
        let mut sim = Sim {
            policy,
            sync: &sync,
            tracks: &tracks,
            shift,
            connectors: population.clone(),
            stats: Stats::default(),
            backlog: 0,
        };
        let mut next = msps;
        for day in 0..days {
            let at = t0 + Duration::days(day as i64);
            for _ in 0..arrivals {
                sim.connectors
                    .push((connector(next, at - Duration::hours(3)), next));
                next += 1;
            }
            sim.day(day, at, budget, capacity_per_day, retry);
        }
        results.push(sim.stats);
    }
    let names = ["same-day", "staggered", "budgeted"];
    if daily {
        println!(
            "day  same-day calls  staggered calls  budgeted calls  deferred  backlog(same-day)"
        );
        for d in 0..days {
            println!(
                "{d:>3}  {:>14}  {:>15}  {:>14}  {:>8}  {:>10}",
                results[0].calls[d],
                results[1].calls[d],
                results[2].calls[d],
                results[2].deferred[d],
                results[0].backlog[d]
            );
        }
    }
    // After the first two periods the transition from "everyone resent the same day" is over.
    let settled = (2 * period as usize).min(days.saturating_sub(1));
    println!(
        "{:<10} {:>11} {:>11} {:>8} {:>5} {:>11} {:>11} {:>9} {:>11} {:>9} {:>7}",
        "policy",
        "max/day",
        "mean/day",
        "max/cap",
        "over",
        "max settled",
        "min settled",
        "deferred",
        "max backlog",
        "fulls/day",
        "max gap"
    );
    for (name, s) in names.iter().zip(&results) {
        let max = *s.calls.iter().max().unwrap_or(&0);
        let mean = s.calls.iter().sum::<u64>() / s.calls.len().max(1) as u64;
        let over = s.calls.iter().filter(|c| **c > capacity_per_day).count();
        let tail = &s.calls[settled..];
        println!(
            "{:<10} {:>11} {:>11} {:>8.2} {:>5} {:>11} {:>11} {:>9} {:>11} {:>9} {:>6}d",
            name,
            max,
            mean,
            max as f64 / capacity_per_day as f64,
            over,
            tail.iter().max().unwrap_or(&0),
            tail.iter().min().unwrap_or(&0),
            s.deferred.iter().sum::<u64>(),
            s.backlog.iter().max().unwrap_or(&0),
            s.fulls.iter().max().unwrap_or(&0),
            s.max_gap_days,
        );
    }
    println!(
        "max/cap: the largest day against {capacity_per_day}; over: days above it; settled: \
         days {settled}..{days}; backlog: calls that spill into the next day(s); max gap: the \
         longest time between two full resends of one connector"
    );
    let changed: Vec<u64> = results.iter().map(|s| s.changed_sent).collect();
    println!(
        "changed readings sent (every policy sends every one the day it changes): {changed:?}; \
         planner decided {planned} readings of {cohort} full-size MSPs in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
