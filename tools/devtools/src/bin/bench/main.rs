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

mod concurrent;
mod measure;
mod msp;
mod report;

use concurrent::concurrent;
use gradient_sim::Faults;
use harness::fixture::{DEVICE_SERVICES, USER_SERVICES};
use measure::{Runner, bench_worker, timed_sync, worker_process};
use msp::{Msp, connected_msp, seed, start_env, verify};
use report::{cost_line, guard_cost, items_by_kind, line};
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
    let seq_lease = seq_worker.platform.budget.as_ref();
    let seq_lease = (seq_lease.lease_reads(), seq_lease.renewals());
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
