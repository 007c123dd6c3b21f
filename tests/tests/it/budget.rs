//! The deployment-wide Gradient budget on DynamoDB Local: processes (here: separate budgets with
//! their own owner, as separate processes have) lease shares of one record, never hold more than
//! the whole between them, share fairly, and free a crashed holder's shares after its lease.

use harness::TestEnv;
use psa_domain::budget::BudgetLeases;
use psa_gradient::{Budget, LeaseTiming};
use psa_store::DynamoBudgetLeases;
use std::sync::Arc;
use std::time::Duration;

const TOTAL: u32 = 20;

/// Leases of 1.2 s renewed every 0.3 s: a renewal held up past its lease (a process starved of
/// the CPU by other tests) would drop the process from the record, so the tests that lease with
/// these timings have the machine to themselves (`harness::quiet::alone`).
fn timing() -> LeaseTiming {
    LeaseTiming {
        ttl: Duration::from_millis(1_200),
        renew_every: Duration::from_millis(300),
        watch_every: Duration::from_millis(100),
        skew: Duration::from_millis(300),
    }
}

async fn leases(env: &TestEnv) -> Arc<DynamoBudgetLeases> {
    Arc::new(DynamoBudgetLeases::new(
        env.platform.dynamo.clone(),
        &env.tables.psa,
        "gradient",
    ))
}

/// Keeps `b` busy (a request slot every pacing period) until aborted.
fn busy(b: &Arc<Budget>) -> tokio::task::JoinHandle<()> {
    let b = b.clone();
    tokio::spawn(async move {
        loop {
            b.acquire().await;
        }
    })
}

/// Polls until `done` holds for the shares in the record (one per budget, by owner; at most
/// `secs`), checking at every poll that neither the record nor the leases in force hold more
/// than the whole budget; answers whether `done` came true.
async fn until_settled(
    store: &DynamoBudgetLeases,
    budgets: &[Arc<Budget>],
    secs: u64,
    done: impl Fn(&[u32]) -> bool,
) -> bool {
    let end = std::time::Instant::now() + Duration::from_secs(secs);
    while std::time::Instant::now() < end {
        let (recorded, sum) = held(store).await;
        assert!(sum <= TOTAL, "the record held {sum} shares");
        let local: Vec<u32> = budgets.iter().map(|b| b.shares().unwrap()).collect();
        assert!(
            local.iter().sum::<u32>() <= TOTAL,
            "processes send under leases of {local:?} shares"
        );
        if recorded.len() == budgets.len() && done(&recorded) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// The shares of live holders as the record says, and their sum.
async fn held(store: &DynamoBudgetLeases) -> (Vec<u32>, u32) {
    let record = store.read().await.expect("the lease record reads");
    let shares: Vec<u32> = record.holders.iter().map(|h| h.shares).collect();
    let sum = shares.iter().sum();
    (shares, sum)
}

#[tokio::test]
async fn processes_share_the_budget_fairly_and_never_exceed_it() {
    let _alone = harness::quiet::alone().await; // see timing()
    let env = TestEnv::start("budget-share").await;
    let store = leases(&env).await;
    let budgets: Vec<Arc<Budget>> = (0..4)
        .map(|i| Budget::leased(80, store.clone(), format!("p{i}"), TOTAL, timing()))
        .collect();
    // A lone process takes the whole budget.
    budgets[0].acquire().await;
    assert_eq!(budgets[0].shares(), Some(TOTAL));
    assert!((budgets[0].rate() - 80.0).abs() < 1e-9);
    // Four busy processes: the record never holds more than the whole, whatever the order of
    // their renewals, and they converge to a fair part each.
    let tasks: Vec<_> = budgets.iter().map(busy).collect();
    let fair = until_settled(&store, &budgets, 15, |s| s == [5, 5, 5, 5]).await;
    let (shares, _) = held(&store).await;
    assert!(fair, "fair parts after convergence: {shares:?}");
    let rate: f64 = budgets.iter().map(|b| b.rate()).sum();
    assert!(
        (rate - 80.0).abs() < 1e-6,
        "together they send at the budget: {rate}"
    );
    for t in tasks {
        t.abort();
        let _ = t.await; // stopped: no request of it is on its way any more
    }
    // Released shares go back at once: no process holds a share any more, and the record keeps
    // them only as give-backs cooling for the rest of their window.
    for b in &budgets {
        b.release().await;
        assert_eq!(b.shares(), Some(0));
    }
    only_cooling_then_all_to_a_newcomer(&store, "late").await;
}

/// The record holds only cooling give-backs (no live holder), and a newcomer, busy from now on,
/// holds the whole budget once they have cooled (not after the leases would have expired).
async fn only_cooling_then_all_to_a_newcomer(store: &Arc<DynamoBudgetLeases>, newcomer: &str) {
    let record = store.read().await.expect("the lease record reads");
    assert!(!record.holders.is_empty(), "a lease was taken");
    assert!(
        record.holders.iter().all(|h| h.cooling.is_some()),
        "a live holder is left after the release: {:?}",
        record.holders
    );
    let late = vec![Budget::leased(80, store.clone(), newcomer, TOTAL, timing())];
    let t = busy(&late[0]);
    let all = until_settled(store, &late, 10, |s| s == [TOTAL]).await;
    assert!(all, "{:?}", late[0].shares());
    t.abort();
}

#[tokio::test]
async fn a_crashed_holders_shares_are_free_after_its_lease_and_the_skew_margin() {
    let _alone = harness::quiet::alone().await; // see timing()
    let env = TestEnv::start("budget-crash").await;
    let store = leases(&env).await;
    let dead = Budget::leased(80, store.clone(), "dead", TOTAL, timing());
    dead.acquire().await;
    assert_eq!(dead.shares(), Some(TOTAL));
    // The process dies: no release, no renewal.
    drop(dead);
    let record = store.read().await.unwrap();
    let dead_until = record.holders[0].until_ms;
    let alive = Budget::leased(80, store.clone(), "alive", TOTAL, timing());
    let t = busy(&alive);
    // Until the dead lease's expiry plus the skew margin, the survivor takes nothing...
    let skew = timing().skew.as_millis() as i64;
    let epoch_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    };
    let mut polls = 0;
    while epoch_ms() < dead_until + skew - 50 {
        assert_eq!(alive.shares(), Some(0), "a share of a live lease was taken");
        polls += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(polls > 0, "the dead lease was checked while it was live");
    // ... then it holds everything.
    let alive = vec![alive];
    let all = until_settled(&store, &alive, 10, |s| s == [TOTAL]).await;
    assert!(all, "{:?}", alive[0].shares());
    let (shares, _) = held(&store).await;
    assert_eq!(
        shares,
        vec![TOTAL],
        "the dead holder is pruned from the record"
    );
    t.abort();
}

#[tokio::test]
async fn concurrent_writers_never_lose_an_update() {
    let _alone = harness::quiet::alone().await; // see timing()
    let env = TestEnv::start("budget-race").await;
    let store = leases(&env).await;
    // Ten processes start at the same moment: conditional writes serialise them.
    let budgets: Vec<Arc<Budget>> = (0..10)
        .map(|i| Budget::leased(80, store.clone(), format!("q{i}"), TOTAL, timing()))
        .collect();
    let tasks: Vec<_> = budgets.iter().map(busy).collect();
    let fair = until_settled(&store, &budgets, 30, |s| s == [2; 10]).await;
    let (shares, sum) = held(&store).await;
    assert!(fair, "two shares each: {shares:?}");
    assert_eq!(
        shares.len(),
        10,
        "every process is in the record: {shares:?}"
    );
    assert_eq!(sum, TOTAL);
    for t in tasks {
        t.abort();
    }
}

#[tokio::test]
async fn the_api_gives_its_shares_back_when_it_answers() {
    let env = TestEnv::start("budget-api").await;
    let store = leases(&env).await;
    let children = harness::fixture::fixture(3);
    harness::fixture::seed(&env, &children).await;
    let org = env.sim.create_organization("Acme MSP");
    // A connect calls Gradient (verify, services, accounts): the API process leases shares...
    let resp = env.connect(harness::fixture::CH, &org.partner_key).await;
    assert_eq!(resp.status, 201, "{}", resp.body);
    assert!(
        env.sim.requests().stats.total > 0,
        "the connect called Gradient"
    );
    // ... and holds none once it has answered (Lambda may freeze it then): the record keeps
    // them only as a give-back cooling for the rest of the window of its last request.
    let api = &env.platform.budget;
    assert_eq!(api.shares(), Some(0));
    assert_eq!(api.rate(), 0.0);
    // A worker arriving now gets the whole budget once that give-back has cooled.
    only_cooling_then_all_to_a_newcomer(&store, "worker").await;
}
