//! What a night costs, as DynamoDB bills it (issue *Cost at scale*): every DynamoDB call of the
//! platform — API, worker, budget leases — goes through `env.meter`, which asks DynamoDB Local
//! for `ReturnConsumedCapacity: TOTAL` and adds it up. A run in which nothing changed costs at
//! most 0.1 write units per reading, all writes included.

use psa_tests::fixture::CH;
use psa_tests::meter::Bill;
use psa_tests::{TestEnv, workspace};
use serde_json::Value;

/// Every child has these ten services (four in users, six in devices).
const SERVICES: [&str; 10] = [
    "CLOUD_SECURITY",
    "EMAIL_SECURITY",
    "USER_DATA_GOVERNANCE",
    "SECURITY_AWARENESS_TRAINING",
    "ENDPOINT_SECURITY",
    "EDR",
    "ENDPOINT_DATA_GOVERNANCE",
    "MOBILE_DEVICE_MANAGEMENT",
    "NETWORK",
    "ZTNA",
];
const CHILDREN: usize = 60;

async fn seed(env: &TestEnv, bump: usize) {
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
            &SERVICES,
            5 + (i as u64 % 7) + changed,
            3 + (i as u64 % 5) + changed,
        ));
    }
    env.seed_workspaces(&items).await;
}

async fn billed_sync(env: &TestEnv) -> (Value, Bill) {
    let before = env.meter.bill();
    let run = psa_tests::fixture::sync_and_wait(env).await;
    (run, env.meter.bill().since(&before))
}

#[tokio::test]
async fn a_night_costs_what_changed() {
    let env = TestEnv::start("cost-night").await;
    seed(&env, 0).await;
    let org = env.sim.create_organization("Acme MSP");
    assert_eq!(env.connect(CH, &org.partner_key).await.status, 201);
    assert!(env.sim.map_all(&org.organization_id, &[]));
    let readings = (CHILDREN * SERVICES.len()) as f64;

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
    // A changed reading: its pair state (1) and its reading item (2, with `byOutcome`).
    assert!(
        five.write_units <= 3.0 * 30.0 + 0.1 * readings,
        "5 % changed: {five}"
    );
}
