//! `make bench`: sync throughput against the Gradient simulator on the local stack, printed as
//! plain text. Not a test: nothing here asserts a time; it prints numbers.
//!
//! Every simulator adds 50 ms to each vendor call. `GRADIENT_MAX_RPS` is the deployment's budget
//! (80 requests a second); every worker process leases its part of it on DynamoDB (see
//! `psa_domain::budget`). The floor of a sync is its vendor calls ÷ the budget. A run's time is
//! the worker's: from the SQS event handed over to its answer (set-up and tail included), as an
//! MSP waits for it. Measured one after the other in this one process:
//!
//! 1. one connector alone: a full sync of 2,000 readings (200 children × 10 enabled services)
//!    by the real `sync-worker` binary (release build, its own process fed by the Lambda Runtime
//!    API emulator), with the worker's default window of counts in flight, against the floor.
//!    Just before it, a second worker process ran a small MSP's job and then sits idle beside it;
//! 2. the same full sync in an identical second environment with one request in flight (the
//!    sequential pattern of existing integrations; an in-process worker, metered), and the ratio;
//! 3. a quiet re-sync and one after 5 % of the readings changed (in-process, metered: the cost
//!    per run as DynamoDB bills it);
//! 4. 4 and then 10 connectors syncing at once, each job handed to its own `sync-worker`
//!    process (only DynamoDB, SQS and the simulator are shared);
//! 5. adaptive rate: one connector, 2,000 readings, against a simulator that allows only 50
//!    requests a second while our budget says 80.
//!
//! After every run the simulator must hold exactly the expected count of every pair.

use futures::future::join_all;
use gradient_sim::{Faults, RequestsReport, SimConfig};
use psa_gradient::GradientConfig;
use psa_tests::fixture::{DEVICE_SERVICES, USER_SERVICES};
use psa_tests::meter::{Bill, Meter};
use psa_tests::runtime_api::{
    FunctionProcess, Outcome, contract_env, function_binary, sqs_event_json,
};
use psa_tests::{TestEnv, test_gradient_config, workspace};
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const GRADIENT: psa_domain::ConnectorType = psa_domain::ConnectorType::Gradient;

/// The deployment's request budget (requests a second).
const BUDGET: u32 = 80;
/// Latency the simulator adds to every vendor call.
const LATENCY_MS: u64 = 50;
/// What the simulator allows in the adaptive-rate case (less than our budget).
const SIM_LIMIT_LOW: u32 = 50;
const SERVICES_PER_CHILD: usize = USER_SERVICES.len() + DEVICE_SERVICES.len();

/// One child workspace of a benchmark MSP.
#[derive(Clone)]
struct Child {
    id: String,
    users: u64,
    devices: u64,
}

fn children(channel: &str, n: usize) -> Vec<Child> {
    (0..n)
        .map(|i| Child {
            id: format!("{channel}_w{i:03}"),
            users: 5 + (i as u64 % 7),
            devices: 3 + (i as u64 % 5),
        })
        .collect()
}

async fn seed(env: &TestEnv, channel: &str, kids: &[Child]) {
    let services: Vec<&str> = USER_SERVICES
        .iter()
        .chain(DEVICE_SERVICES.iter())
        .copied()
        .collect();
    let mut items = vec![workspace(
        channel,
        None,
        "channel",
        &format!("MSP {channel}"),
        "subscription",
        &[],
        0,
        0,
    )];
    for (i, c) in kids.iter().enumerate() {
        items.push(workspace(
            &c.id,
            Some(channel),
            "child",
            &format!("Customer {i}"),
            "subscription",
            &services,
            c.users,
            c.devices,
        ));
    }
    env.seed_workspaces(&items).await;
}

/// The benchmark's client settings: the test settings with a 10 s timeout and the budget.
fn gradient_config() -> GradientConfig {
    let mut c = test_gradient_config();
    c.request_timeout = Duration::from_secs(10);
    c.max_attempts = 6;
    c.max_rps = BUDGET;
    c
}

async fn start_env(label: &str, sim_limit: u32) -> TestEnv {
    let sim = SimConfig {
        max_rps: sim_limit,
        ..SimConfig::default()
    };
    TestEnv::start_with(label, sim, gradient_config(), BUDGET).await
}

/// A connected benchmark MSP: its children and its Gradient organization.
struct Msp {
    channel: String,
    org: String,
    kids: Vec<Child>,
}

/// Seeds an MSP with `n` children, connects it (which creates the accounts and services) and maps
/// every account × service pair in the simulator.
async fn connected_msp(env: &TestEnv, channel: &str, n: usize) -> Result<Msp, String> {
    let kids = children(channel, n);
    seed(env, channel, &kids).await;
    let org = env.sim.create_organization(&format!("MSP {channel}"));
    let r = env.connect(channel, &org.partner_key).await;
    if r.status != 201 {
        return Err(format!("connect {channel}: {} {}", r.status, r.body));
    }
    if !env.sim.map_all(&org.organization_id, &[]) {
        return Err(format!("map_all {channel} failed"));
    }
    Ok(Msp {
        channel: channel.to_owned(),
        org: org.organization_id,
        kids,
    })
}

/// The simulator holds exactly the count Coro would report for every pair of `msp`.
async fn verify(env: &TestEnv, msp: &Msp) -> Result<String, String> {
    let ids = env
        .platform
        .core
        .psa(GRADIENT)
        .published_services()
        .await
        .map_err(|e| e.to_string())?;
    let service_key: BTreeMap<String, String> =
        ids.into_iter().map(|(key, id)| (id, key)).collect();
    let org = env.sim.organization(&msp.org).ok_or("no organization")?;
    let mut held = BTreeMap::new();
    for c in &org.counts {
        let Some(svc) = service_key.get(&c.service_id) else {
            return Err(format!("a count for an unknown service: {c:?}"));
        };
        held.insert((c.account_id.clone(), svc.clone()), c.unit_count);
    }
    let mut expected = BTreeMap::new();
    for k in &msp.kids {
        for s in USER_SERVICES {
            expected.insert((k.id.clone(), s.to_owned()), k.users);
        }
        for s in DEVICE_SERVICES {
            expected.insert((k.id.clone(), s.to_owned()), k.devices);
        }
    }
    if held == expected {
        Ok(format!("{} counts exactly as expected", held.len()))
    } else {
        let wrong = expected
            .iter()
            .filter(|(k, v)| held.get(*k) != Some(*v))
            .count();
        Err(format!(
            "{}: {wrong} of {} pairs differ from what Coro would report",
            msp.channel,
            expected.len()
        ))
    }
}

/// What one measured sync did.
struct Measured {
    secs: f64,
    /// From the first event handed over to the first vendor call, and from the last vendor call
    /// to the worker's last answer (seconds).
    setup_tail: (f64, f64),
    /// What the worker's DynamoDB calls consumed during the run (an in-process worker only).
    bill: Option<Bill>,
    status: String,
    readings: u64,
    posted: u64,
    unchanged: u64,
    report: RequestsReport,
}

impl Measured {
    fn vendor_calls(&self) -> u64 {
        self.report.stats.total
    }
    fn count_calls(&self) -> u64 {
        self.report
            .requests
            .iter()
            .filter(|r| r.path.contains("/count"))
            .count() as u64
    }
    fn floor(&self) -> f64 {
        self.vendor_calls() as f64 / f64::from(BUDGET)
    }
    fn rps(&self) -> f64 {
        self.vendor_calls() as f64 / self.secs
    }
    fn utilisation(&self) -> f64 {
        100.0 * self.rps() / f64::from(BUDGET)
    }
    fn max_1s(&self) -> u64 {
        self.report.stats.max_in_one_second_total
    }
    fn rejected_429(&self) -> u64 {
        rejected(&self.report)
    }
    /// Seconds from the first to the last vendor call, and the rate of the calls in between.
    fn calls_span(&self) -> (f64, f64) {
        let r = &self.report.requests;
        match (
            r.iter().map(|x| x.at_us).min(),
            r.iter().map(|x| x.at_us).max(),
        ) {
            (Some(a), Some(b)) if b > a => {
                let secs = (b - a) as f64 / 1e6;
                (secs, (r.len() - 1) as f64 / secs)
            }
            _ => (0.0, 0.0),
        }
    }
}

fn rejected(report: &RequestsReport) -> u64 {
    report
        .stats
        .by_status
        .get(&429)
        .copied()
        .unwrap_or_default()
}

/// Who runs the jobs of a measured sync.
enum Runner<'a> {
    /// A worker platform of its own in this process, its DynamoDB calls metered.
    InProcess(&'a BenchWorker),
    /// The real `sync-worker` binary (release build) as its own process, fed by the Lambda
    /// Runtime API emulator: measured from outside, as Lambda would run it.
    Binary(&'a mut FunctionProcess),
}

/// Hands one SQS batch to `runner` as Lambda would; answers the ids of the failed messages.
async fn hand_over(
    runner: &mut Runner<'_>,
    batch: &[aws_sdk_sqs::types::Message],
) -> Result<Vec<String>, String> {
    match runner {
        Runner::InProcess(w) => {
            let resp = sync_worker::handle(
                &w.worker,
                psa_tests::sqs_event(batch),
                "bench",
                Instant::now() + Duration::from_secs(300),
            )
            .await;
            Ok(resp
                .batch_item_failures
                .into_iter()
                .map(|f| f.item_identifier)
                .collect())
        }
        Runner::Binary(p) => {
            let answer = p.invoke(&sqs_event_json(batch)).await;
            let Outcome::Response(body) = &answer else {
                return Err(format!("the worker binary reported an error: {answer:?}"));
            };
            let v: serde_json::Value =
                serde_json::from_str(body).map_err(|e| format!("worker answer {body}: {e}"))?;
            Ok(v["batchItemFailures"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|f| f["itemIdentifier"].as_str().unwrap_or_default().to_owned())
                .collect())
        }
    }
}

/// "Sync now", then each SQS event of the run handed to the worker, as Lambda would. `secs` is
/// the worker's wall: from each event handed over to the worker's answer (set-up and the tail of
/// the run included; the API request and the queue are not), summed over the run's jobs (one,
/// unless it was continued).
async fn timed_sync(
    env: &TestEnv,
    channel: &str,
    mut runner: Runner<'_>,
) -> Result<Measured, String> {
    env.sim.clear_requests();
    let meter = match &runner {
        Runner::InProcess(w) => Some((w.meter.clone(), w.meter.bill())),
        Runner::Binary(_) => None,
    };
    let r = env.sync_now(channel).await;
    if r.status != 202 {
        return Err(format!("sync now {channel}: {} {}", r.status, r.body));
    }
    let run_id = r.json()["runId"].as_str().unwrap_or_default().to_owned();
    let mut secs = 0.0;
    let mut idle = 0;
    let (mut first_handed, mut last_answer) = (None, None);
    loop {
        let batch = env.receive(60).await;
        if batch.is_empty() {
            let run = env.run(channel, &run_id).await;
            if !matches!(run["status"].as_str(), Some("queued" | "running")) {
                break;
            }
            idle += 1;
            if idle > 600 {
                return Err(format!("run {run_id} never finished"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        let t = Instant::now();
        first_handed.get_or_insert(t);
        let failed = hand_over(&mut runner, &batch).await?;
        secs += t.elapsed().as_secs_f64();
        last_answer = Some(Instant::now());
        if !failed.is_empty() {
            return Err(format!("the worker failed a job: {failed:?}"));
        }
        for m in &batch {
            env.local
                .sqs()
                .delete_message()
                .queue_url(&env.queue_url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await
                .map_err(|e| format!("delete message: {e}"))?;
        }
    }
    let run = env.run(channel, &run_id).await;
    let report = env.sim.requests();
    let c = &run["counts"];
    let origin = env.sim.clock_origin();
    let at = |us: Option<u64>| us.map(|us| origin + Duration::from_micros(us));
    let first_call = at(report.requests.iter().map(|r| r.at_us).min());
    let last_call = at(report.requests.iter().map(|r| r.at_us).max());
    let setup_tail = match (first_handed, first_call, last_call, last_answer) {
        (Some(h), Some(f), Some(l), Some(a)) => (
            f.saturating_duration_since(h).as_secs_f64(),
            a.saturating_duration_since(l).as_secs_f64(),
        ),
        _ => (0.0, 0.0),
    };
    Ok(Measured {
        secs,
        setup_tail,
        bill: meter.map(|(m, before)| m.bill().since(&before)),
        status: run["status"].as_str().unwrap_or_default().to_owned(),
        readings: c["readings"].as_u64().unwrap_or_default(),
        posted: c["posted"].as_u64().unwrap_or_default(),
        unchanged: c["unchanged"].as_u64().unwrap_or_default(),
        report,
    })
}

/// The real `sync-worker` binary beside this bench (`target/release/sync-worker`, built by
/// `make bench`) as its own process against `env`, started and past its init.
async fn worker_process(env: &TestEnv, n: usize) -> FunctionProcess {
    let mut vars = contract_env(&env.platform.settings);
    let log = std::env::var("BENCH_WORKER_LOG").unwrap_or_else(|_| "warn".into());
    vars.push(("RUST_LOG".into(), log));
    let dump = std::env::temp_dir().join(format!("psa-bench-worker-{n}"));
    let mut p = FunctionProcess::spawn_program(
        "sync-worker",
        &function_binary("sync-worker"),
        &[],
        &vars,
        &dump,
    )
    .await;
    p.init_time().await;
    p
}

/// Items of the project's table by the first part of their sort key (`READING`, `PAIR`, ...).
async fn items_by_kind(env: &TestEnv) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for item in env.workspace_items().await {
        if let Some(sk) = item.get("sk").and_then(|v| v.as_s().ok()) {
            let kind = sk.split('#').next().unwrap_or_default().to_owned();
            *out.entry(kind).or_default() += 1;
        }
    }
    out
}

/// The billing guard's cost per run: it works on data the run already holds (workspaces,
/// service ids, pair states), so its cost is the pure computation, timed here on this MSP.
async fn guard_cost(env: &TestEnv, channel: &str) -> Result<String, String> {
    let core = &env.platform.core;
    let ws = psa_domain::WorkspaceId::parse(channel).map_err(|e| e.to_string())?;
    let connector = core
        .connectors
        .get(&ws, GRADIENT)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no connector")?;
    let workspaces = psa_domain::usecase::provision::managed_workspaces(core, &ws)
        .await
        .map_err(|e| e.to_string())?;
    let ids = core
        .psa(GRADIENT)
        .published_services()
        .await
        .map_err(|e| e.to_string())?;
    let pairs = core
        .pairs
        .pairs(&connector.reference())
        .await
        .map_err(|e| e.to_string())?;
    const ROUNDS: u32 = 200;
    let t = Instant::now();
    let mut g = Default::default();
    for _ in 0..ROUNDS {
        g = psa_domain::usecase::sync::guard_figures(&core.catalogue, &workspaces, &ids, &pairs);
    }
    let per_run = t.elapsed() / ROUNDS;
    Ok(format!(
        "billing guard over {} pair states: {:.0} µs per run (before {} after {}), no extra DynamoDB or Gradient call",
        pairs.len(),
        per_run.as_secs_f64() * 1e6,
        g.before,
        g.after
    ))
}

/// A worker as its own process has it (own platform, budget lease and clients), whose DynamoDB
/// calls `meter` bills.
struct BenchWorker {
    worker: sync_worker::Worker,
    meter: Meter,
    platform: psa_runtime::Platform,
}

async fn bench_worker(env: &TestEnv, in_flight: Option<usize>) -> Result<BenchWorker, String> {
    let meter = Meter::default();
    let platform = psa_runtime::Platform::build_on(
        env.platform.settings.clone(),
        &env.local.sdk,
        gradient_config(),
        meter.client(&env.local.sdk),
    )
    .await
    .map_err(|e| e.to_string())?;
    let mut w = sync_worker::Worker::new(
        platform.core.clone(),
        platform.settings.sync.clone(),
        platform.budget_share(),
    );
    w.policy = env.worker().policy;
    w.policy.lease_ttl = Duration::from_secs(120);
    if let Some(n) = in_flight {
        w.policy.in_flight = n;
    }
    w.core.metrics = std::sync::Arc::new(psa_domain::telemetry::NoMetrics);
    Ok(BenchWorker {
        worker: w,
        meter,
        platform,
    })
}

/// Lambda's bill for a run: the worker's memory (the template's 256 MB) times its wall time.
const WORKER_GB: f64 = 0.25;

fn cost_line(label: &str, m: &Measured) {
    let r = m.readings.max(1) as f64;
    let Some(bill) = &m.bill else {
        println!("  {label:<16} (not metered: run by the worker binary)");
        return;
    };
    println!(
        "  {label:<16} readings {:>5}  DynamoDB {:>7.1} WCU ({:.3}/reading) {:>6.1} RCU ({:.3}/reading) in {:>4} requests  Gradient calls {:>5}  Lambda {:.2} GB-s",
        m.readings,
        bill.write_units,
        bill.write_units / r,
        bill.read_units,
        bill.read_units / r,
        bill.total_requests(),
        m.vendor_calls(),
        m.secs * WORKER_GB,
    );
}

fn line(label: &str, m: &Measured) {
    println!(
        "  {label:<12} {:>6.1} s  floor {:>5.1} s ({:.3}x)  status {:<9} readings {:>5}  posted {:>5}  vendor calls {:>5}  {:>5.1} req/s  utilisation {:>3.0} %  max/1s {:>3}  429s {}",
        m.secs,
        m.floor(),
        m.secs / m.floor(),
        m.status,
        m.readings,
        m.posted,
        m.vendor_calls(),
        m.rps(),
        m.utilisation(),
        m.max_1s(),
        m.rejected_429(),
    );
}

/// `msps` connectors syncing at once, each job handed to its own `sync-worker` process (the
/// real binary, measured from outside); prints each run's time and the window statistics. The
/// wall runs from the moment the jobs are handed over to the last worker's answer.
async fn concurrent(label: &str, msps: usize, children_each: usize) -> Result<bool, String> {
    let env = start_env(label, gradient_sim::DEFAULT_MAX_RPS).await;
    let mut all = Vec::new();
    for i in 0..msps {
        all.push(connected_msp(&env, &format!("bench_{i:02}"), children_each).await?);
    }
    let mut workers = Vec::new();
    for i in 0..msps {
        workers.push(worker_process(&env, i).await);
    }
    for m in &all {
        let r = env.sync_now(&m.channel).await;
        if r.status != 202 {
            return Err(format!("sync now {}: {} {}", m.channel, r.status, r.body));
        }
    }
    let mut messages = Vec::new();
    let waited = Instant::now();
    while messages.len() < msps {
        messages.extend(env.receive(600).await);
        if waited.elapsed() > Duration::from_secs(30) {
            return Err(format!("only {} of {msps} jobs queued", messages.len()));
        }
    }
    env.sim.set_faults(Faults {
        latency_ms: LATENCY_MS,
        ..Default::default()
    });
    env.sim.clear_requests();
    let t0 = Instant::now();
    let tasks = messages.into_iter().zip(workers).map(|(m, mut w)| {
        tokio::spawn(async move {
            let answer = w.invoke(&sqs_event_json(std::slice::from_ref(&m))).await;
            let done = Instant::now();
            let job: psa_domain::ports::SyncJob =
                serde_json::from_str(m.body().unwrap_or_default()).expect("job body");
            (job, answer, done, w)
        })
    });
    let results = join_all(tasks).await;
    let total = t0.elapsed().as_secs_f64();
    let report = env.sim.requests();
    let calls = report.stats.total;
    let floor = calls as f64 / f64::from(BUDGET);
    println!(
        "{msps} connectors x {} readings syncing at once, one sync-worker process each (the real binary)",
        children_each * SERVICES_PER_CHILD
    );
    let mut ok = true;
    let mut times = Vec::new();
    let mut processes = Vec::new();
    for r in results {
        let (job, answer, done, w) = r.map_err(|e| format!("worker task: {e}"))?;
        processes.push(w);
        let ch = job.workspace_id.as_str().to_owned();
        let run = env.run(&ch, job.run_id.as_str()).await;
        let status = run["status"].as_str().unwrap_or_default().to_owned();
        let secs = done.duration_since(t0).as_secs_f64();
        times.push(secs);
        let failed =
            !matches!(&answer, Outcome::Response(b) if b.contains("\"batchItemFailures\":[]"));
        println!(
            "  {ch:<9} {secs:>6.1} s  status {status:<9} posted {:>5}{}",
            run["counts"]["posted"].as_u64().unwrap_or_default(),
            if failed {
                format!("  answer {answer:?}")
            } else {
                String::new()
            }
        );
        ok &= status == "succeeded" && !failed;
    }
    drop(processes);
    for m in &all {
        match verify(&env, m).await {
            Ok(_) => {}
            Err(e) => {
                println!("  WRONG: {e}");
                ok = false;
            }
        }
    }
    let max_1s = report.stats.max_in_one_second_total;
    let (fastest, slowest) = times
        .iter()
        .fold((f64::MAX, 0f64), |(lo, hi), &t| (lo.min(t), hi.max(t)));
    println!(
        "concurrent {msps}  total {total:.1} s  floor {floor:.1} s ({:.3}x)  vendor calls {calls}  {:.1} req/s  utilisation {:.0} %  max/1s {max_1s} (budget {BUDGET}: {})  429s {}  runs finished between {fastest:.1} s and {slowest:.1} s (slowest/fastest {:.2})  counts verified: {}",
        total / floor,
        calls as f64 / total,
        100.0 * calls as f64 / total / f64::from(BUDGET),
        if max_1s <= u64::from(BUDGET) {
            "within"
        } else {
            "OVER"
        },
        rejected(&report),
        slowest / fastest,
        if ok { "yes" } else { "NO" },
    );
    if let Some(w) = densest_window(&report) {
        println!("  {w}");
    }
    println!();
    Ok(ok)
}

/// Where the busiest 1-second window at the simulator was, and how its requests split by
/// organization (one per connector, so one per worker process here).
fn densest_window(report: &RequestsReport) -> Option<String> {
    let mut r: Vec<_> = report.requests.iter().collect();
    r.sort_by_key(|x| x.at_us);
    let t0 = r.first()?.at_us;
    let (mut best, mut best_i, mut j) = (0usize, 0usize, 0usize);
    for i in 0..r.len() {
        while r[i].at_us - r[j].at_us >= 1_000_000 {
            j += 1;
        }
        if i + 1 - j > best {
            best = i + 1 - j;
            best_i = j;
        }
    }
    let window = &r[best_i..best_i + best];
    let mut by_org: BTreeMap<String, usize> = BTreeMap::new();
    for x in window {
        *by_org
            .entry(x.organization_id.clone().unwrap_or_default())
            .or_default() += 1;
    }
    let split: Vec<String> = by_org.values().map(|n| n.to_string()).collect();
    Some(format!(
        "busiest 1 s window: {best} requests from {:.2} s after the first, by connector [{}]",
        (window[0].at_us - t0) as f64 / 1e6,
        split.join(" ")
    ))
}

async fn bench() -> Result<bool, String> {
    let mut ok = true;
    let latency = Faults {
        latency_ms: LATENCY_MS,
        ..Default::default()
    };
    const CH: &str = "bench_msp";
    const N: usize = 200;

    println!(
        "sync benchmark: simulator latency {LATENCY_MS} ms per vendor call, deployment budget {BUDGET} req/s (floor = vendor calls / budget)"
    );
    println!();
    // BENCH_ONLY=concurrent runs only the several-connectors phase, BENCH_ONLY=lone only the
    // lone full sync (for quick checks).
    let only_lone = std::env::var("BENCH_ONLY").as_deref() == Ok("lone");
    if std::env::var("BENCH_ONLY").as_deref() == Ok("concurrent") {
        ok &= concurrent("bench-4", 4, 50).await?;
        ok &= concurrent("bench-10", 10, 30).await?;
        return Ok(ok);
    }

    // ---- 1 + 2: one connector alone, full sync, window vs sequential -----------------------
    // The full sync runs on the real worker binary, measured from outside. Just before it,
    // another worker process runs a small MSP's job and then sits idle beside it: the lone
    // connector must still get the whole budget (a worker that has answered holds no share).
    let par_env = start_env("bench-par", gradient_sim::DEFAULT_MAX_RPS).await;
    let msp = connected_msp(&par_env, CH, N).await?;
    let small = connected_msp(&par_env, "bench_idle", 20).await?;
    let alone_msp = connected_msp(&par_env, "bench_alone", N).await?;
    let seq_env = start_env("bench-seq", gradient_sim::DEFAULT_MAX_RPS).await;
    let seq_msp = connected_msp(&seq_env, CH, N).await?;

    let in_flight = par_env.platform.settings.sync.in_flight;
    let mut idle_process = worker_process(&par_env, 0).await;
    let mut main_process = worker_process(&par_env, 1).await;
    par_env.sim.set_faults(latency.clone());
    // Alone: no other process has called Gradient for seconds (the connects were before).
    let alone = timed_sync(
        &par_env,
        &alone_msp.channel,
        Runner::Binary(&mut main_process),
    )
    .await?;
    let alone_ok = verify(&par_env, &alone_msp).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let first = timed_sync(&par_env, &small.channel, Runner::Binary(&mut idle_process)).await?;
    let first_ok = verify(&par_env, &small).await;
    let par = timed_sync(&par_env, CH, Runner::Binary(&mut main_process)).await?;
    let par_ok = verify(&par_env, &msp).await;
    drop((idle_process, main_process));
    if only_lone {
        for (label, m) in [("alone", &alone), ("beside idle", &par)] {
            let (span, span_rps) = m.calls_span();
            line(label, m);
            println!(
                "  {span:.1} s between the first and the last call ({span_rps:.1} req/s), set-up {:.2} s, tail {:.2} s",
                m.setup_tail.0, m.setup_tail.1
            );
        }
        return Ok(par_ok.is_ok() && first_ok.is_ok() && alone_ok.is_ok());
    }

    // The sequential peer: an in-process worker with one request in flight, metered (a full
    // resend costs the same whatever the window, so its bill is the full run's).
    let seq_worker = bench_worker(&seq_env, Some(1)).await?;
    seq_env.sim.set_faults(latency.clone());
    let seq = timed_sync(&seq_env, CH, Runner::InProcess(&seq_worker)).await?;
    let seq_ok = verify(&seq_env, &seq_msp).await;
    let seq_lease = seq_worker
        .platform
        .budget
        .as_ref()
        .map_or((0, 0), |b| (b.lease_reads(), b.renewals()));
    seq_env.sim.clear_faults();
    drop(seq_env);

    let readings = N * SERVICES_PER_CHILD;
    println!(
        "one connector alone: full sync of {readings} readings ({N} children x {SERVICES_PER_CHILD} services), first run after connect = full resend"
    );
    line(&format!("window({in_flight})"), &alone);
    line("sequential", &seq);
    line("beside idle", &par);
    println!(
        "full sync {readings} readings  window (sync-worker binary, alone): {:.1} s = {:.3}x the floor of {:.1} s  sequential: {:.1} s  window is {:.2}x faster  utilisation {:.0} % of the whole budget  max/1s {}  429s {}",
        alone.secs,
        alone.secs / alone.floor(),
        alone.floor(),
        seq.secs,
        seq.secs / alone.secs,
        alone.utilisation(),
        alone.max_1s(),
        alone.rejected_429(),
    );
    println!(
        "  beside another sync-worker process that had just answered its own job ({} readings, {} vendor calls, {:.1} s, status {}) and sits idle: {:.1} s = {:.3}x the floor, the lone connector used {:.1} % of the budget",
        first.readings,
        first.vendor_calls(),
        first.secs,
        first.status,
        par.secs,
        par.secs / par.floor(),
        par.utilisation(),
    );
    for (label, m) in [("alone", &alone), ("beside idle", &par)] {
        let (span, span_rps) = m.calls_span();
        println!(
            "  {label}: of the worker's {:.1} s (SQS event handed over → answer), {span:.1} s from the first to the last vendor call ({span_rps:.1} req/s between them = {:.1} % of the budget); set-up before the first call {:.2} s, the run's tail after the last {:.2} s",
            m.secs,
            100.0 * span_rps / f64::from(BUDGET),
            m.setup_tail.0,
            m.setup_tail.1,
        );
    }
    println!(
        "  budget lease of the sequential worker: {} reads and {} writes in {:.1} s ({:.2} DynamoDB requests per second of sync)",
        seq_lease.0,
        seq_lease.1,
        seq.secs,
        (seq_lease.0 + seq_lease.1) as f64 / seq.secs
    );
    for (label, v) in [
        ("window alone", &alone_ok),
        ("window beside idle", &par_ok),
        ("sequential", &seq_ok),
        ("the idle worker's MSP", &first_ok),
    ] {
        match v {
            Ok(m) => println!("  {label}: {m}"),
            Err(e) => println!("  {label}: WRONG {e}"),
        }
    }
    ok &= par.status == "succeeded"
        && alone.status == "succeeded"
        && alone_ok.is_ok()
        && seq.status == "succeeded"
        && first.status == "succeeded"
        && par_ok.is_ok()
        && seq_ok.is_ok()
        && first_ok.is_ok();
    let items = items_by_kind(&par_env).await;
    println!(
        "  DynamoDB items after the full syncs of both MSPs: {} reading items ({} posted), {} packed chunks, {} pair states, {} run records (checkpoints in the background every 200 results or 2 s)",
        items.get("READING").copied().unwrap_or_default()
            + items.get("RPOSTED").copied().unwrap_or_default(),
        items.get("RPOSTED").copied().unwrap_or_default(),
        items.get("RCHUNK").copied().unwrap_or_default(),
        items.get("PAIR").copied().unwrap_or_default(),
        items.get("RUN").copied().unwrap_or_default(),
    );
    println!("  {}", guard_cost(&par_env, CH).await?);
    println!();

    // ---- 3: a quiet night (nothing changed), then 5 % of the readings changed -------------
    let cost_worker = bench_worker(&par_env, None).await?;
    let quiet = timed_sync(&par_env, CH, Runner::InProcess(&cost_worker)).await?;
    let quiet_ok = verify(&par_env, &msp).await;
    ok &= quiet.status == "succeeded" && quiet_ok.is_ok() && quiet.unchanged == quiet.readings;

    // 10 children get one more device (6 device readings each) and 10 one more user (4 each).
    let mut changed = Msp {
        channel: msp.channel.clone(),
        org: msp.org.clone(),
        kids: msp.kids.clone(),
    };
    for c in &mut changed.kids[..10] {
        c.devices += 1;
    }
    for c in &mut changed.kids[10..20] {
        c.users += 1;
    }
    let n_changed = 10 * DEVICE_SERVICES.len() + 10 * USER_SERVICES.len();
    seed(&par_env, CH, &changed.kids).await;
    let re = timed_sync(&par_env, CH, Runner::InProcess(&cost_worker)).await?;
    println!(
        "re-sync with {n_changed} of {readings} readings changed ({:.0} %)",
        100.0 * n_changed as f64 / readings as f64
    );
    line(&format!("window({in_flight})"), &re);
    let re_ok = verify(&par_env, &changed).await;
    println!(
        "re-sync  readings changed {n_changed}  count calls sent {}  posted {}  unchanged (not sent) {}  total vendor calls {}  {:.1} s  {}",
        re.count_calls(),
        re.posted,
        re.unchanged,
        re.vendor_calls(),
        re.secs,
        re_ok.clone().unwrap_or_else(|e| format!("WRONG {e}")),
    );
    ok &= re.status == "succeeded" && re_ok.is_ok();
    println!();
    println!(
        "cost per run, as DynamoDB Local bills it (ReturnConsumedCapacity TOTAL on every call of the worker, budget leases included; the API's request not counted)"
    );
    cost_line("full (first)", &seq); // the sequential peer's first run
    cost_line("nothing changed", &quiet);
    cost_line(&format!("{n_changed} changed"), &re);
    let items = items_by_kind(&par_env).await;
    println!(
        "  items after these 3 runs (full, quiet, 5 %): {items:?} — kept 40 days: a reading item (READING, RPOSTED) per reading that is not unchanged, a chunk (RCHUNK) per 250 unchanged ones"
    );
    drop(par_env);
    println!();

    // ---- 4: several connectors at once, one worker process each -----------------------------
    ok &= concurrent("bench-4", 4, 50).await?;
    ok &= concurrent("bench-10", 10, 30).await?;

    // ---- 5: adaptive rate: Gradient allows less than our budget ----------------------------
    let low_env = start_env("bench-low", SIM_LIMIT_LOW).await;
    let low_msp = connected_msp(&low_env, CH, N).await?;
    let low_worker = bench_worker(&low_env, None).await?;
    low_env.sim.set_faults(latency);
    let low = timed_sync(&low_env, CH, Runner::InProcess(&low_worker)).await?;
    let low_ok = verify(&low_env, &low_msp).await;
    let share = 100.0 * low.rejected_429() as f64 / low.vendor_calls() as f64;
    let low_floor = (low.vendor_calls() - low.rejected_429()) as f64 / f64::from(SIM_LIMIT_LOW);
    println!(
        "adaptive rate: Gradient allows {SIM_LIMIT_LOW} req/s, our budget says {BUDGET}: full sync of {readings} readings"
    );
    line(&format!("window({in_flight})"), &low);
    println!(
        "adaptive  {:.1} s = {:.3}x the floor at Gradient's real limit ({low_floor:.1} s)  429s {} of {} requests ({share:.1} %)  max accepted/1s {}  status {}  {}",
        low.secs,
        low.secs / low_floor,
        low.rejected_429(),
        low.vendor_calls(),
        low.report.stats.max_in_one_second_accepted,
        low.status,
        low_ok.clone().unwrap_or_else(|e| format!("WRONG {e}")),
    );
    ok &= low.status == "succeeded" && low_ok.is_ok();
    Ok(ok)
}

#[tokio::main]
async fn main() -> ExitCode {
    let started = Instant::now();
    let result = bench().await;
    println!();
    println!("bench wall time {:.1} s", started.elapsed().as_secs_f64());
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("bench: a run did not succeed or left wrong counts (see above)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}
