//! The daily schedule at scale, through the real handler over DynamoDB Local and moto: a firing
//! killed half-way resumes with exactly one run and one job per connector; a firing that runs
//! short of time stops with its position saved and the resume schedule finishes it; a day over
//! the Gradient budget defers full resends (never a required one). The benchmark (ignored by
//! default; `make schedule-bench`) times 10,000 connectors.

use harness::TestEnv;
use harness::population::{connector, queue_depth, seed_connectors};
use psa_domain::connector::{Connector, LastSync};
use psa_domain::ids::RunId;
use psa_domain::ports::{JobQueue, StoreError, SyncJob};
use psa_domain::sync::{RunCounts, RunStatus};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use sync_scheduled::{Request, Scheduler, handle_until};
use time::OffsetDateTime;
use time::macros::datetime;

const AT: OffsetDateTime = datetime!(2026-11-24 05:00 UTC);

fn daily() -> Request {
    Request::parse(harness::scheduled_event()).unwrap()
}

fn resume() -> Request {
    Request::parse(serde_json::json!({"resume": true})).unwrap()
}

/// A connector that finished a successful run of `readings` readings at `at` (a full resend).
fn synced(i: usize, at: OffsetDateTime, readings: u64) -> Connector {
    let mut c = connector(i, at - time::Duration::days(30));
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
    c
}

fn scheduler(env: &TestEnv, page_size: u32) -> Scheduler {
    let mut s = Scheduler::new(
        env.platform.queue_core(),
        env.platform.settings.sync.clone(),
        env.platform.settings.gradient_max_rps,
    );
    s.page_size = page_size;
    s
}

/// Run ids of the connectors' scheduled runs, per workspace, from the table itself.
async fn scheduled_runs(env: &TestEnv) -> BTreeMap<String, Vec<String>> {
    let mut runs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for item in env.psa_items().await {
        let sk = item["sk"].as_s().unwrap();
        if sk.starts_with("RUN#") {
            let pk = item["pk"].as_s().unwrap().clone();
            runs.entry(pk)
                .or_default()
                .push(sk.rsplit('#').next().unwrap().to_owned());
        }
    }
    runs
}

#[tokio::test]
async fn a_firing_killed_half_way_resumes_with_one_run_and_one_job_per_connector() {
    let env = TestEnv::start("sched-resume").await;
    let n = 230;
    let all: Vec<Connector> = (0..n)
        .map(|i| synced(i, AT - time::Duration::hours(20), 50))
        .collect();
    seed_connectors(&env, &all).await;

    // Killed in the third page of 50 (two pages' jobs go out, the third page's send fails): its
    // runs are created, their jobs not sent, no checkpoint, the lease left behind.
    let mut s = scheduler(&env, 50);
    s.options.lease_ttl = Duration::from_secs(6);
    let queue = s.core.queue.clone();
    s.core.queue = crate::faults::QueueDiesAfter::wrap(queue.clone(), 2);
    let killed = handle_until(&s, daily(), None, Some("first")).await;
    assert!(killed.is_err(), "{killed:?}");
    assert_eq!(
        queue_depth(&env).await,
        100,
        "two pages went out before the kill"
    );
    assert_eq!(
        scheduled_runs(&env).await.len(),
        150,
        "the third page's runs exist"
    );

    // A retried delivery while the lease lasts does nothing.
    s.core.queue = queue;
    let early = handle_until(&s, daily(), None, Some("second"))
        .await
        .unwrap();
    assert_eq!((early.connectors, early.complete), (0, false));

    // Once it expired, the resume schedule continues from the third page.
    tokio::time::sleep(Duration::from_millis(6_500)).await;
    let resumed = handle_until(&s, resume(), None, Some("third"))
        .await
        .unwrap();
    assert!(resumed.complete, "{resumed:?}");
    assert_eq!(resumed.connectors, n as u64 - 100, "{resumed:?}");
    assert_eq!(resumed.enqueued, n as u64 - 100, "{resumed:?}");
    assert_eq!(resumed.duplicates, 0);

    // Exactly one run per connector, all of this firing, and one job each.
    let runs = scheduled_runs(&env).await;
    assert_eq!(runs.len(), n);
    assert!(
        runs.values()
            .all(|r| r.len() == 1 && r[0] == "20261124T050000.000Z-scheduled")
    );
    let jobs = env.queued_jobs().await;
    assert_eq!(jobs.len(), n, "one job per connector");
    let workspaces: BTreeSet<_> = jobs.iter().map(|j| j.workspace_id.to_string()).collect();
    assert_eq!(workspaces.len(), n);

    // Another delivery after it completed: nothing new, nothing sent.
    let late = handle_until(&s, daily(), None, Some("fourth"))
        .await
        .unwrap();
    assert_eq!(
        (late.enqueued, late.duplicates, late.complete),
        (0, n as u64, true)
    );
    assert_eq!(queue_depth(&env).await, n as u64);
    // Nothing left to resume.
    let idle = handle_until(&s, resume(), None, Some("fifth"))
        .await
        .unwrap();
    assert_eq!(idle.connectors, 0);
}

#[tokio::test]
async fn a_firing_short_of_time_stops_with_its_position_saved() {
    let env = TestEnv::start("sched-deadline").await;
    let all: Vec<Connector> = (0..40)
        .map(|i| synced(i, AT - time::Duration::hours(20), 50))
        .collect();
    seed_connectors(&env, &all).await;
    let mut s = scheduler(&env, 10);
    s.options.margin = Duration::from_secs(20);
    // Less than the margin left: the day is planned and saved, no page is started.
    let first = handle_until(
        &s,
        daily(),
        Some(Instant::now() + Duration::from_secs(19)),
        Some("a"),
    )
    .await
    .unwrap();
    assert!(!first.complete, "{first:?}");
    assert_eq!((first.pages, first.enqueued), (0, 0), "{first:?}");
    assert!(first.plan.budget > 0);
    assert_eq!(queue_depth(&env).await, 0);
    // The lease was handed back: the resume schedule goes on at once.
    let rest = handle_until(&s, resume(), None, Some("b")).await.unwrap();
    assert!(rest.complete, "{rest:?}");
    assert_eq!(first.enqueued + rest.enqueued, 40);
    assert_eq!(queue_depth(&env).await, 40);
}

#[tokio::test]
async fn a_day_over_budget_defers_full_resends_but_never_a_required_one() {
    let env = TestEnv::start("sched-budget").await;
    // 60 connectors whose last full resend was 8 days ago (all due), 1,000 readings each; and
    // 5 connected just now (their first run is a full resend, never deferred).
    let mut all: Vec<Connector> = (0..60)
        .map(|i| synced(i, AT - time::Duration::days(8), 1_000))
        .collect();
    all.extend((60..65).map(|i| connector(i, AT)));
    seed_connectors(&env, &all).await;
    let mut s = scheduler(&env, 25);
    // Base (set-up + changes, and the new connectors) plus room for 20 resends of 980 calls.
    let base = 60 * 22 + 5 * (2 + 4_200);
    s.options.budget = base + 20 * 980 + 100;
    let report = handle_until(&s, daily(), None, Some("x")).await.unwrap();
    assert!(report.complete);
    assert_eq!(report.enqueued, 65);
    assert_eq!(
        (report.plan.due, report.plan.admitted),
        (60, 20),
        "{:?}",
        report.plan
    );
    assert_eq!(report.deferred, 40);
    assert!(report.plan.planned_calls() <= report.plan.budget);
    // The deferred ones carry it to tomorrow's run; the required ones were not touched.
    let mut deferred = 0;
    for item in env.psa_items().await {
        if item["sk"].as_s().unwrap() != "CONNECTOR#gradient" {
            continue;
        }
        let c: Value = serde_dynamo::from_item(item).unwrap();
        if let Some(until) = c.get("fullResendDeferredUntil") {
            deferred += 1;
            assert_eq!(until, "2026-11-25T05:00:00Z");
            assert_eq!(c["fullResendDue"], false);
        }
    }
    assert_eq!(deferred, 40);
}

struct TimedQueue {
    inner: Arc<dyn JobQueue>,
    spent: Mutex<Duration>,
}

#[async_trait::async_trait]
impl JobQueue for TimedQueue {
    async fn enqueue(&self, jobs: &[SyncJob]) -> Result<(), StoreError> {
        let t = Instant::now();
        let r = self.inner.enqueue(jobs).await;
        *self.spent.lock().unwrap() += t.elapsed();
        r
    }
}

/// `make schedule-bench`: 10,000 connected connectors (`SCHEDULE_BENCH_CONNECTORS`) through the
/// real handler; prints the time per 1,000.
#[tokio::test]
#[ignore = "benchmark: make schedule-bench"]
async fn bench_schedule_10k_connectors() {
    let n: usize = std::env::var("SCHEDULE_BENCH_CONNECTORS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let env = TestEnv::start("sched-bench").await;
    let all: Vec<Connector> = (0..n)
        .map(|i| synced(i, AT - time::Duration::hours(20), 4_200))
        .collect();
    let t = Instant::now();
    seed_connectors(&env, &all).await;
    let seeded = t.elapsed();
    let mut s = scheduler(&env, 100);
    // The real queue, timed: how much of the time is SQS (moto, single-threaded Python here).
    let timed = Arc::new(TimedQueue {
        inner: s.core.queue.clone(),
        spent: Mutex::new(Duration::ZERO),
    });
    s.core.queue = timed.clone();
    let t = Instant::now();
    let report = handle_until(&s, daily(), None, Some("bench"))
        .await
        .unwrap();
    let took = t.elapsed();
    let sqs = *timed.spent.lock().unwrap();
    assert!(report.complete);
    assert_eq!(report.enqueued, n as u64);
    assert_eq!(queue_depth(&env).await, n as u64);
    let t = Instant::now();
    let again = handle_until(&s, daily(), None, Some("bench-again"))
        .await
        .unwrap();
    let again_took = t.elapsed();
    assert_eq!((again.enqueued, again.duplicates), (0, n as u64));
    let per_k = |d: Duration| d.as_secs_f64() * 1000.0 / n as f64;
    println!(
        "schedule bench: {n} connectors seeded in {:.1} s; scheduled in {:.1} s ({:.2} s per 1,000, \
         of which SendMessageBatch {:.2} s; {} pages, planned {} of {} calls, {} full resends \
         due, {} deferred); a repeated event checked them all in {:.1} s ({:.2} s per 1,000)",
        seeded.as_secs_f64(),
        took.as_secs_f64(),
        per_k(took),
        per_k(sqs),
        report.pages,
        report.plan.planned_calls(),
        report.plan.budget,
        report.plan.due,
        report.deferred,
        again_took.as_secs_f64(),
        per_k(again_took),
    );
}
