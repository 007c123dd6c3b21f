//! One measured sync: "Sync now", then each SQS event of the run handed to a worker (the real
//! binary as its own process, or one in this process, metered), timed as Lambda would see it.

use crate::BUDGET;
use crate::msp::gradient_config;
use gradient_sim::RequestsReport;
use harness::TestEnv;
use harness::meter::{Bill, Meter};
use harness::runtime_api::{
    FunctionProcess, Outcome, contract_env, function_binary, sqs_event_json,
};
use std::time::{Duration, Instant};

/// What one measured sync did.
pub struct Measured {
    pub secs: f64,
    /// From the first event handed over to the first vendor call, and from the last vendor call
    /// to the worker's last answer (seconds).
    pub setup_tail: (f64, f64),
    /// What the worker's DynamoDB calls consumed during the run (an in-process worker only).
    pub bill: Option<Bill>,
    pub status: String,
    pub readings: u64,
    pub posted: u64,
    pub unchanged: u64,
    pub report: RequestsReport,
}

impl Measured {
    pub fn vendor_calls(&self) -> u64 {
        self.report.stats.total
    }
    pub fn count_calls(&self) -> u64 {
        self.report
            .requests
            .iter()
            .filter(|r| r.path.contains("/count"))
            .count() as u64
    }
    pub fn floor(&self) -> f64 {
        self.vendor_calls() as f64 / f64::from(BUDGET)
    }
    pub fn rps(&self) -> f64 {
        self.vendor_calls() as f64 / self.secs
    }
    pub fn utilisation(&self) -> f64 {
        100.0 * self.rps() / f64::from(BUDGET)
    }
    pub fn max_1s(&self) -> u64 {
        self.report.stats.max_in_one_second_total
    }
    pub fn rejected_429(&self) -> u64 {
        rejected(&self.report)
    }
    /// Seconds from the first to the last vendor call, and the rate of the calls in between.
    pub fn calls_span(&self) -> (f64, f64) {
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

pub fn rejected(report: &RequestsReport) -> u64 {
    report
        .stats
        .by_status
        .get(&429)
        .copied()
        .unwrap_or_default()
}

/// Who runs the jobs of a measured sync.
pub enum Runner<'a> {
    /// A worker platform of its own in this process, its DynamoDB calls metered.
    InProcess(&'a BenchWorker),
    /// The real `sync-worker` binary (release build) as its own process, fed by the Lambda
    /// Runtime API emulator: measured from outside, as Lambda would run it.
    Binary(&'a mut FunctionProcess),
}

/// Hands one SQS batch to `runner` as Lambda would; answers the ids of the failed messages.
pub async fn hand_over(
    runner: &mut Runner<'_>,
    batch: &[aws_sdk_sqs::types::Message],
) -> Result<Vec<String>, String> {
    match runner {
        Runner::InProcess(w) => {
            let resp = sync_worker::handle(
                &w.worker,
                harness::sqs_event(batch),
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
pub async fn timed_sync(
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
pub async fn worker_process(env: &TestEnv, n: usize) -> FunctionProcess {
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

/// A worker as its own process has it (own platform, budget lease and clients), whose DynamoDB
/// calls `meter` bills.
pub struct BenchWorker {
    pub worker: sync_worker::Worker,
    pub meter: Meter,
    pub platform: psa_runtime::Platform,
}

pub async fn bench_worker(env: &TestEnv, in_flight: Option<usize>) -> Result<BenchWorker, String> {
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
        platform.worker_core(),
        platform.settings.sync.clone(),
        Some(platform.budget_share()),
    );
    w.policy = env.worker().policy;
    w.policy.lease_ttl = Duration::from_secs(120);
    if let Some(n) = in_flight {
        w.policy.in_flight = n;
    }
    w.core.metrics = std::sync::Arc::new(psa_domain::ports::NoMetrics);
    Ok(BenchWorker {
        worker: w,
        meter,
        platform,
    })
}
