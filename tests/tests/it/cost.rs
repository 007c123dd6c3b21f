//! What a night costs, as DynamoDB bills it (issue *Cost at scale*): every DynamoDB call of the
//! platform — API, worker, budget leases — goes through `env.meter`, which asks DynamoDB Local
//! for `ReturnConsumedCapacity: TOTAL` and adds it up. A run in which nothing changed costs at
//! most 0.1 write units per reading, all writes included.

use harness::fixture::{CH, DEVICE_SERVICES, USER_SERVICES};
use harness::meter::Bill;
use harness::{Claims, TestEnv, workspace};
use serde_json::Value;

const CHILDREN: usize = 60;
const SERVICES: usize = USER_SERVICES.len() + DEVICE_SERVICES.len();

/// Every child has the benchmark's ten services (four in users, six in devices).
async fn seed(env: &TestEnv, bump: usize) {
    let services: Vec<&str> = USER_SERVICES
        .iter()
        .chain(&DEVICE_SERVICES)
        .copied()
        .collect();
    let mut items = vec![workspace(
        CH,
        None,
        "channel",
        "Acme MSP",
        "subscription",
        &[],
        0,
        0,
    )];
    for i in 0..CHILDREN {
        let changed = u64::from(i < bump);
        items.push(workspace(
            &format!("{CH}_w{i:03}"),
            Some(CH),
            "child",
            &format!("Customer {i}"),
            "subscription",
            &services,
            5 + (i as u64 % 7) + changed,
            3 + (i as u64 % 5) + changed,
        ));
    }
    env.seed_workspaces(&items).await;
}

async fn billed_sync(env: &TestEnv) -> (Value, Bill) {
    let before = env.meter.bill();
    let run = harness::fixture::sync_and_wait(env).await;
    (run, env.meter.bill().since(&before))
}

#[tokio::test]
async fn a_night_costs_what_changed() {
    let env = TestEnv::start("cost-night").await;
    seed(&env, 0).await;
    let org = env.sim.create_organization("Acme MSP");
    assert_eq!(env.connect(CH, &org.partner_key).await.status, 201);
    assert!(env.sim.map_all(&org.organization_id, &[]));
    let readings = (CHILDREN * SERVICES) as f64;

    let (first, full) = billed_sync(&env).await;
    assert_eq!(first["counts"]["posted"], readings as u64, "{first}");
    let (quiet, nothing) = billed_sync(&env).await;
    assert_eq!(quiet["counts"]["unchanged"], readings as u64, "{quiet}");
    // 5 % of the readings change (3 of 60 children, all their services).
    seed(&env, 3).await;
    let (moved, five) = billed_sync(&env).await;
    assert_eq!(moved["counts"]["posted"], 30, "{moved}");
    for (label, bill) in [
        ("first, full", &full),
        ("nothing changed", &nothing),
        ("5 % changed", &five),
    ] {
        eprintln!(
            "{label}: {bill}; {:.3} WCU and {:.3} RCU per reading",
            bill.write_units / readings,
            bill.read_units / readings
        );
    }
    assert!(
        nothing.write_units <= 0.1 * readings,
        "a quiet night: {nothing}"
    );
    // A changed reading: its pair state (1) and its posted reading (1, no index entry).
    assert!(
        five.write_units <= 2.0 * 30.0 + 0.1 * readings,
        "5 % changed: {five}"
    );
    assert!(full.write_units <= 2.2 * readings, "a full run: {full}");
}

/// What one request of a view costs (the API's DynamoDB calls).
async fn billed_get(env: &TestEnv, path: &str) -> (harness::ApiResponse, Bill) {
    let before = env.meter.bill();
    let r = env.call("GET", path, Some(&Claims::admin(CH)), None).await;
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    (r, env.meter.bill().since(&before))
}

/// Pages cost their size; walking every page of the usage costs one tree-and-pairs read per
/// page, and the CSV export reads it once.
#[tokio::test]
async fn pages_cost_their_size_and_the_export_reads_once() {
    let env = TestEnv::start("cost-pages").await;
    seed(&env, 0).await;
    let org = env.sim.create_organization("Acme MSP");
    assert_eq!(env.connect(CH, &org.partner_key).await.status, 201);
    assert!(env.sim.map_all(&org.organization_id, &[]));
    harness::fixture::sync_and_wait(&env).await;
    let run = harness::fixture::sync_and_wait(&env).await; // a quiet night: packed readings
    let run_id = run["runId"].as_str().unwrap();
    let readings = format!("/v1/psa/connectors/gradient/syncs/{run_id}/readings");

    let mut worst = Bill::default();
    for path in [
        format!("{readings}?limit=100"),
        format!("{readings}?limit=100&outcome=unchanged"),
        format!("{readings}?limit=100&outcome=failed"),
    ] {
        let (r, bill) = billed_get(&env, &path).await;
        eprintln!("{path}: {bill}");
        let (r2, bill2) = match r.json()["nextCursor"].as_str() {
            Some(c) => billed_get(&env, &format!("{path}&cursor={c}")).await,
            None => (r, bill.clone()),
        };
        let _ = r2;
        for b in [&bill, &bill2] {
            // Claims, the rate, the connector, the run, then the page itself.
            assert!(b.total_requests() <= 8, "{path}: {b}");
            assert!(b.read_units <= 12.0, "{path}: {b}");
            if b.read_units > worst.read_units {
                worst = b.clone();
            }
        }
    }
    eprintln!("worst readings page of 100: {worst}");

    let (first, page) = billed_get(&env, "/v1/psa/connectors/gradient/usage?limit=20").await;
    let mut pages = 1;
    let mut walk = page.clone();
    let mut cursor = first.json()["nextCursor"].as_str().map(str::to_owned);
    while let Some(c) = cursor {
        let (r, b) = billed_get(
            &env,
            &format!("/v1/psa/connectors/gradient/usage?limit=20&cursor={c}"),
        )
        .await;
        walk = Bill {
            requests: walk.requests.clone(),
            read_units: walk.read_units + b.read_units,
            write_units: walk.write_units + b.write_units,
        };
        pages += 1;
        cursor = r.json()["nextCursor"].as_str().map(str::to_owned);
    }
    let (_, csv) = billed_get(&env, "/v1/psa/connectors/gradient/usage?format=csv").await;
    eprintln!(
        "usage page of 20: {page}; all {pages} pages: {:.1} RCU; the CSV export: {csv}",
        walk.read_units
    );
    assert!(
        csv.read_units <= page.read_units + 1.0,
        "the export reads once: {csv} vs {page}"
    );
    assert!(walk.read_units >= (pages as f64 - 1.0) * page.read_units * 0.9);
}
