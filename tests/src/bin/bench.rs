//! `make bench`: sync throughput against the Gradient simulator on the local stack, printed as
//! plain text. Not a test: nothing here asserts a time; it prints numbers.
//!
//! Every simulator adds 50 ms to each vendor call; the client's budget is 80 requests a second
//! (the process-wide limiter, shared by every client with that `max_rps`). Measured, one after the
//! other in this one process (never concurrently, so no phase borrows another's budget):
//!
//! 1. a full sync of 2,000 readings (200 children × 10 enabled services) with the worker's
//!    default of several counts in flight;
//! 2. the same full sync in an identical second environment with one request in flight (the
//!    sequential pattern of existing integrations), and the ratio of the two;
//! 3. a re-sync in the first environment after 5 % of the readings changed;
//! 4. four connectors (500 readings each) syncing at once in one environment.

use futures::future::join_all;
use gradient_sim::{Faults, RequestsReport};
use psa_gradient::GradientConfig;
use psa_tests::{TestEnv, test_gradient_config, workspace};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The client's request budget (requests a second).
const BUDGET: u32 = 80;
/// Latency the simulator adds to every vendor call.
const LATENCY_MS: u64 = 50;
/// Counted in protected users.
const USER_SERVICES: [&str; 4] = [
    "CLOUD_SECURITY",
    "EMAIL_SECURITY",
    "USER_DATA_GOVERNANCE",
    "SECURITY_AWARENESS_TRAINING",
];
/// Counted in protected devices.
const DEVICE_SERVICES: [&str; 6] = [
    "ENDPOINT_SECURITY",
    "EDR",
    "ENDPOINT_DATA_GOVERNANCE",
    "MOBILE_DEVICE_MANAGEMENT",
    "NETWORK",
    "ZTNA",
];
const SERVICES_PER_CHILD: usize = USER_SERVICES.len() + DEVICE_SERVICES.len();

/// One child workspace of a fixture MSP.
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

/// The benchmark's client settings: the test settings with a 10 s timeout and the 80 req/s budget.
fn gradient_config() -> GradientConfig {
    let mut c = test_gradient_config();
    c.request_timeout = Duration::from_secs(10);
    c.max_rps = BUDGET;
    c
}

async fn start_env(label: &str) -> TestEnv {
    TestEnv::start_with(
        label,
        gradient_sim::SimConfig::default(),
        gradient_config(),
        BUDGET,
    )
    .await
}

/// Seeds an MSP with `n` children, connects it (which creates the accounts and services) and maps
/// every account × service pair in the simulator.
async fn connected_msp(env: &TestEnv, channel: &str, n: usize) -> Result<Vec<Child>, String> {
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
    Ok(kids)
}

/// What one measured sync did.
struct Measured {
    secs: f64,
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
        self.report
            .stats
            .by_status
            .get(&429)
            .copied()
            .unwrap_or_default()
    }
}

/// Polls the run until it leaves `queued`/`running`; returns its final JSON and when that was seen.
async fn wait_finished(env: &TestEnv, channel: &str, run_id: &str) -> (serde_json::Value, Instant) {
    loop {
        let run = env.run(channel, run_id).await;
        if !matches!(run["status"].as_str(), Some("queued" | "running")) {
            return (run, Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// "Sync now" → the worker drains the queue → the run finishes. Timed from the request to the
/// moment the run is seen finished (the drain's idle rounds afterwards are not counted).
async fn timed_sync(
    env: &TestEnv,
    channel: &str,
    worker: &sync_worker::Worker,
) -> Result<Measured, String> {
    env.sim.clear_requests();
    let t0 = Instant::now();
    let r = env.sync_now(channel).await;
    if r.status != 202 {
        return Err(format!("sync now {channel}: {} {}", r.status, r.body));
    }
    let run_id = r.json()["runId"].as_str().unwrap_or_default().to_owned();
    let (_, (run, done)) = tokio::join!(
        env.drain_with(worker, 60, 30),
        wait_finished(env, channel, &run_id)
    );
    let report = env.sim.requests();
    let c = &run["counts"];
    Ok(Measured {
        secs: done.duration_since(t0).as_secs_f64(),
        status: run["status"].as_str().unwrap_or_default().to_owned(),
        readings: c["readings"].as_u64().unwrap_or_default(),
        posted: c["posted"].as_u64().unwrap_or_default(),
        unchanged: c["unchanged"].as_u64().unwrap_or_default(),
        report,
    })
}

/// Items of the project's table by the first part of their sort key (`READING`, `PAIR`, ...).
async fn items_by_kind(env: &TestEnv) -> std::collections::BTreeMap<String, u64> {
    let mut out = std::collections::BTreeMap::new();
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
        .get(&ws)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no connector")?;
    let workspaces = psa_domain::usecase::provision::managed_workspaces(core, &ws)
        .await
        .map_err(|e| e.to_string())?;
    let ids = core
        .psa
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

fn bench_worker(env: &TestEnv, in_flight: Option<usize>) -> sync_worker::Worker {
    let mut w = env.worker();
    w.policy.chunk = 100;
    w.policy.lease_ttl = Duration::from_secs(120);
    if let Some(n) = in_flight {
        w.policy.in_flight = n;
    }
    w
}

fn line(label: &str, m: &Measured) {
    println!(
        "  {label:<11} {:>7.1} s  status {:<9} readings {:>5}  posted {:>5}  vendor calls {:>5}  {:>5.1} req/s  utilisation {:>3.0} %  max/1s {:>3}  429s {}",
        m.secs,
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

async fn bench() -> Result<bool, String> {
    let mut ok = true;
    let latency = Faults {
        latency_ms: LATENCY_MS,
        ..Default::default()
    };
    const CH: &str = "bench_msp";
    const N: usize = 200;

    println!(
        "sync benchmark: simulator latency {LATENCY_MS} ms per vendor call, budget {BUDGET} req/s, chunk 100"
    );
    println!(
        "phases run one after the other in this process (never concurrently, so none shares another's budget)"
    );
    println!();

    // ---- 1 + 2: full sync, parallel vs sequential ------------------------------------------
    let par_env = start_env("bench-par").await;
    let kids = connected_msp(&par_env, CH, N).await?;
    let seq_env = start_env("bench-seq").await;
    connected_msp(&seq_env, CH, N).await?;

    let par_worker = bench_worker(&par_env, None);
    let in_flight = par_worker.policy.in_flight;
    par_env.sim.set_faults(latency.clone());
    let par = timed_sync(&par_env, CH, &par_worker).await?;

    let seq_worker = bench_worker(&seq_env, Some(1));
    seq_env.sim.set_faults(latency.clone());
    let seq = timed_sync(&seq_env, CH, &seq_worker).await?;
    seq_env.sim.clear_faults();
    drop(seq_env);

    let readings = N * SERVICES_PER_CHILD;
    println!(
        "full sync of {readings} readings ({N} children x {SERVICES_PER_CHILD} services), first run after connect = full resend"
    );
    line(&format!("parallel({in_flight})"), &par);
    line("sequential", &seq);
    println!(
        "full sync {readings} readings  parallel: {:.1} s  sequential: {:.1} s  ratio {:.2}x  utilisation {:.0} %  max/1s {}",
        par.secs,
        seq.secs,
        seq.secs / par.secs,
        par.utilisation(),
        par.max_1s(),
    );
    ok &= par.status == "succeeded" && seq.status == "succeeded";
    let items = items_by_kind(&par_env).await;
    println!(
        "DynamoDB items after the full sync: {} readings, {} pair states, {} run records (one write each; plus a lease renewal and a connector read per chunk of 100)",
        items.get("READING").copied().unwrap_or_default(),
        items.get("PAIR").copied().unwrap_or_default(),
        items.get("RUN").copied().unwrap_or_default(),
    );
    println!("{}", guard_cost(&par_env, CH).await?);
    println!();

    // ---- 3: re-sync with 5 % of the readings changed ---------------------------------------
    // 10 children get one more device (6 device readings each) and 10 one more user (4 each).
    let mut changed_kids = kids.clone();
    for c in &mut changed_kids[..10] {
        c.devices += 1;
    }
    for c in &mut changed_kids[10..20] {
        c.users += 1;
    }
    let changed = 10 * DEVICE_SERVICES.len() + 10 * USER_SERVICES.len();
    seed(&par_env, CH, &changed_kids).await;
    let re = timed_sync(&par_env, CH, &par_worker).await?;
    println!(
        "re-sync with {changed} of {readings} readings changed ({:.0} %)",
        100.0 * changed as f64 / readings as f64
    );
    line(&format!("parallel({in_flight})"), &re);
    println!(
        "re-sync  readings changed {changed}  count calls sent {}  posted {}  unchanged (not sent) {}  total vendor calls {}  {:.1} s",
        re.count_calls(),
        re.posted,
        re.unchanged,
        re.vendor_calls(),
        re.secs,
    );
    ok &= re.status == "succeeded";
    drop(par_env);
    println!();

    // ---- 4: several connectors at once -----------------------------------------------------
    const MSPS: [&str; 4] = ["bench_a", "bench_b", "bench_c", "bench_d"];
    const N_EACH: usize = 50;
    let env = start_env("bench-multi").await;
    for ch in MSPS {
        connected_msp(&env, ch, N_EACH).await?;
    }
    let worker = bench_worker(&env, None);
    env.sim.set_faults(latency);
    env.sim.clear_requests();
    let t0 = Instant::now();
    for ch in MSPS {
        let r = env.sync_now(ch).await;
        if r.status != 202 {
            return Err(format!("sync now {ch}: {} {}", r.status, r.body));
        }
    }
    let mut jobs = Vec::new();
    while jobs.len() < MSPS.len() {
        jobs = env.queued_jobs().await;
        if t0.elapsed() > Duration::from_secs(30) {
            return Err(format!("only {} of {} jobs queued", jobs.len(), MSPS.len()));
        }
    }
    // One task per connector, as separate worker invocations; they share the process's limiter.
    let tasks = jobs.into_iter().enumerate().map(|(i, job)| {
        let (core, policy) = (worker.core.clone(), worker.policy.clone());
        tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(300);
            let out = psa_domain::usecase::sync::run_job(
                &core,
                &policy,
                &job,
                &format!("bench-worker-{i}"),
                deadline,
            )
            .await;
            (job, out, Instant::now())
        })
    });
    let results = join_all(tasks).await;
    let total = t0.elapsed().as_secs_f64();
    let report = env.sim.requests();
    println!(
        "{} connectors x {} readings syncing at once (one worker task each, one shared limiter)",
        MSPS.len(),
        N_EACH * SERVICES_PER_CHILD
    );
    for r in results {
        let (job, out, done) = r.map_err(|e| format!("worker task: {e}"))?;
        let ch = job.workspace_id.as_str().to_owned();
        let run = env.run(&ch, job.run_id.as_str()).await;
        let status = run["status"].as_str().unwrap_or_default().to_owned();
        println!(
            "  {ch:<11} {:>7.1} s  status {status:<9} posted {:>5}  outcome {out:?}",
            done.duration_since(t0).as_secs_f64(),
            run["counts"]["posted"].as_u64().unwrap_or_default(),
        );
        ok &= status == "succeeded";
    }
    let max_1s = report.stats.max_in_one_second_total;
    let calls = report.stats.total;
    println!(
        "concurrent {} connectors  total {:.1} s  vendor calls {calls}  {:.1} req/s  utilisation {:.0} %  max/1s {max_1s} (budget {BUDGET}: {})  429s {}",
        MSPS.len(),
        total,
        calls as f64 / total,
        100.0 * calls as f64 / total / f64::from(BUDGET),
        if max_1s <= u64::from(BUDGET) {
            "within"
        } else {
            "OVER"
        },
        report
            .stats
            .by_status
            .get(&429)
            .copied()
            .unwrap_or_default(),
    );
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
            eprintln!("bench: a run did not succeed (see the status columns)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}
