//! "Sync now" through the real handler, then the real worker, with a progress bar of what
//! Gradient receives; the run's counts and their checks.

use crate::msp::CHANNEL;
use crate::{Failed, Step, expect};
use harness::TestEnv;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Requests a sync through the real handler, runs the real worker while drawing a progress bar
/// of the readings Gradient receives (counts accepted + 404s), and returns the finished run.
pub async fn sync(env: &TestEnv, org_id: &str, expected_sends: u64) -> Step<Value> {
    sync_ending(env, org_id, expected_sends, "succeeded").await
}

/// "Sync now", the worker, and the run's final status must be `want`.
pub async fn sync_ending(
    env: &TestEnv,
    org_id: &str,
    expected_sends: u64,
    want: &str,
) -> Step<Value> {
    let r = env.sync_now(CHANNEL).await;
    expect("sync now", &r, 202)?;
    let run_id = r.json()["runId"].as_str().unwrap_or_default().to_string();
    println!(
        "HTTP {}  runId {}  status {}",
        r.status,
        run_id,
        r.json()["status"].as_str().unwrap_or("?")
    );
    let received = |env: &TestEnv| {
        env.sim.organization(org_id).map_or(0, |o| {
            o.counts.iter().map(|c| c.history.len()).sum::<usize>() + o.not_found_counts.len()
        }) as u64
    };
    let base = received(env);
    let done = AtomicBool::new(false);
    let worker = async {
        let n = env.drain().await;
        done.store(true, Ordering::SeqCst);
        n
    };
    let bar = async {
        let mut shown = None;
        loop {
            let finished = done.load(Ordering::SeqCst);
            let n = received(env) - base;
            if shown != Some(n) {
                progress(n, expected_sends);
                shown = Some(n);
            }
            if finished {
                println!();
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let (invocations, ()) = tokio::join!(worker, bar);
    let run = env.run(CHANNEL, &run_id).await;
    println!(
        "worker invocations {invocations}; GET …/syncs/{run_id} → status {}",
        run["status"].as_str().unwrap_or("?")
    );
    if run["status"] != want {
        return Err(Failed(format!("sync run did not end {want}: {run}")));
    }
    Ok(run)
}

pub fn progress(n: u64, total: u64) {
    const WIDTH: u64 = 30;
    let filled = (n.min(total) * WIDTH).checked_div(total).unwrap_or(WIDTH);
    print!(
        "\r[{}{}] {n}/{total} readings sent to Gradient",
        "#".repeat(filled as usize),
        ".".repeat((WIDTH - filled) as usize)
    );
    let _ = std::io::stdout().flush();
}

pub fn counts(run: &Value) -> BTreeMap<String, u64> {
    run["counts"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default()
}

pub fn print_counts(run: &Value) {
    const ORDER: &[&str] = &[
        "readings",
        "posted",
        "unchanged",
        "unmapped",
        "skippedDisabled",
        "failed",
        "accounts",
        "accountsCreated",
        "accountsRenamed",
        "servicesCreated",
    ];
    let c = counts(run);
    let mut cells: Vec<String> = ORDER
        .iter()
        .filter_map(|k| c.get(*k).map(|v| format!("{k} {v}")))
        .collect();
    cells.extend(
        c.iter()
            .filter(|(k, _)| !ORDER.contains(&k.as_str()))
            .map(|(k, v)| format!("{k} {v}")),
    );
    println!("counts: {}", cells.join(" · "));
}

pub fn check(step: &str, c: &BTreeMap<String, u64>, want: &[(&str, u64)]) -> Step {
    for (k, v) in want {
        let got = c.get(*k).copied();
        if got != Some(*v) {
            return Err(Failed(format!(
                "{step}: counts.{k} is {got:?}, expected {v} (counts {c:?})"
            )));
        }
    }
    Ok(())
}
