//! What the bench prints beside the times: items by kind, the guard's cost, the bill of a run,
//! and the densest second at the simulator.

use crate::GRADIENT;
use crate::measure::Measured;
use gradient_sim::RequestsReport;
use harness::TestEnv;
use std::collections::BTreeMap;
use std::time::Instant;

/// Items of the project's table by the first part of their sort key (`READING`, `PAIR`, ...).
pub async fn items_by_kind(env: &TestEnv) -> BTreeMap<String, u64> {
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
pub async fn guard_cost(env: &TestEnv, channel: &str) -> Result<String, String> {
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
    let ids = env
        .platform
        .psa_core()
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

/// Lambda's bill for a run: the worker's memory (the template's 256 MB) times its wall time.
pub const WORKER_GB: f64 = 0.25;

pub fn cost_line(label: &str, m: &Measured) {
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

pub fn line(label: &str, m: &Measured) {
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

/// Where the busiest 1-second window at the simulator was, and how its requests split by
/// organization (one per connector, so one per worker process here).
pub fn densest_window(report: &RequestsReport) -> Option<String> {
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
