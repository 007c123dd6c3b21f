//! Several connectors at once, each job handed to its own `sync-worker` process.

use crate::measure::{rejected, worker_process};
use crate::msp::{connected_msp, start_env, verify};
use crate::report::densest_window;
use crate::{BUDGET, LATENCY_MS, SERVICES_PER_CHILD};
use futures::future::join_all;
use gradient_sim::Faults;
use harness::runtime_api::{Outcome, sqs_event_json};
use std::time::{Duration, Instant};

/// `msps` connectors syncing at once, each job handed to its own `sync-worker` process (the
/// real binary, measured from outside); prints each run's time and the window statistics. The
/// wall runs from the moment the jobs are handed over to the last worker's answer.
pub async fn concurrent(label: &str, msps: usize, children_each: usize) -> Result<bool, String> {
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
