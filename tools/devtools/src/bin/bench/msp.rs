//! The benchmark's MSPs: children with every service, seeded, connected and mapped; and the
//! check that the simulator holds exactly what Coro would report.

use crate::{BUDGET, GRADIENT};
use gradient_sim::SimConfig;
use harness::fixture::{DEVICE_SERVICES, USER_SERVICES};
use harness::{TestEnv, test_gradient_config, workspace};
use psa_gradient::GradientConfig;
use std::collections::BTreeMap;
use std::time::Duration;

/// One child workspace of a benchmark MSP.
#[derive(Clone)]
pub struct Child {
    pub id: String,
    pub users: u64,
    pub devices: u64,
}

pub fn children(channel: &str, n: usize) -> Vec<Child> {
    (0..n)
        .map(|i| Child {
            id: format!("{channel}_w{i:03}"),
            users: 5 + (i as u64 % 7),
            devices: 3 + (i as u64 % 5),
        })
        .collect()
}

pub async fn seed(env: &TestEnv, channel: &str, kids: &[Child]) {
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
pub fn gradient_config() -> GradientConfig {
    let mut c = test_gradient_config();
    c.request_timeout = Duration::from_secs(10);
    c.max_attempts = 6;
    c.max_rps = BUDGET;
    c
}

pub async fn start_env(label: &str, sim_limit: u32) -> TestEnv {
    let sim = SimConfig {
        max_rps: sim_limit,
        ..SimConfig::default()
    };
    TestEnv::start_with(label, sim, gradient_config(), BUDGET).await
}

/// A connected benchmark MSP: its children and its Gradient organization.
pub struct Msp {
    pub channel: String,
    pub org: String,
    pub kids: Vec<Child>,
}

/// Seeds an MSP with `n` children, connects it (which creates the accounts and services) and maps
/// every account × service pair in the simulator.
pub async fn connected_msp(env: &TestEnv, channel: &str, n: usize) -> Result<Msp, String> {
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
pub async fn verify(env: &TestEnv, msp: &Msp) -> Result<String, String> {
    let ids = env
        .platform
        .psa_core()
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
