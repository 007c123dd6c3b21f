//! One fixture for the integration tests, the demo and the benchmark: a sample MSP (a channel, a
//! subchannel, children with mixed subscriptions and statuses), seeded into the read model,
//! connected through the real API, mapped in the simulator. Expected counts are computed here,
//! independently of the product's planning code, from a unit table written out in this file.

use crate::{Claims, TestEnv, workspace};
use gradient_sim::Pair;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

pub const CH: &str = "msp";

/// Services counted in protected users (the rest count protected devices) — written out here on
/// purpose, not read from the catalogue under test.
pub const USER_UNIT: &[&str] = &[
    "CLOUD_SECURITY",
    "EMAIL_SECURITY",
    "USER_DATA_GOVERNANCE",
    "SECURITY_AWARENESS_TRAINING",
    "INBOUND_GATEWAY",
    "EMAIL_ENCRYPTION",
];
/// Services counted in protected users (a benchmark MSP's child has these four ...).
pub const USER_SERVICES: [&str; 4] = [
    "CLOUD_SECURITY",
    "EMAIL_SECURITY",
    "USER_DATA_GOVERNANCE",
    "SECURITY_AWARENESS_TRAINING",
];
/// ... and these six, counted in protected devices.
pub const DEVICE_SERVICES: [&str; 6] = [
    "ENDPOINT_SECURITY",
    "EDR",
    "ENDPOINT_DATA_GOVERNANCE",
    "MOBILE_DEVICE_MANAGEMENT",
    "NETWORK",
    "ZTNA",
];

pub const ALL: &[&str] = &[
    "CLOUD_SECURITY",
    "EMAIL_SECURITY",
    "USER_DATA_GOVERNANCE",
    "SECURITY_AWARENESS_TRAINING",
    "ENDPOINT_SECURITY",
    "EDR",
    "ENDPOINT_DATA_GOVERNANCE",
    "MOBILE_DEVICE_MANAGEMENT",
    "NETWORK",
    "INBOUND_GATEWAY",
    "EMAIL_ENCRYPTION",
    "WIFI_PHISHING",
    "SECURE_WEB_GATEWAY",
    "ZTNA",
];

#[derive(Clone, Debug)]
pub struct Child {
    pub id: String,
    pub parent: String,
    pub name: String,
    pub status: &'static str,
    pub services: Vec<&'static str>,
    pub users: u64,
    pub devices: u64,
}

impl Child {
    pub fn reported(&self) -> bool {
        matches!(self.status, "trial" | "subscription")
    }
    pub fn expected(&self, service: &str) -> u64 {
        if USER_UNIT.contains(&service) {
            self.users
        } else {
            self.devices
        }
    }
}

/// A sample MSP: a channel, a subchannel, `n` children with mixed subscriptions and statuses.
pub fn fixture(n: usize) -> Vec<Child> {
    (0..n)
        .map(|i| Child {
            id: format!("{CH}_w{i:02}"),
            parent: if i < n * 2 / 3 {
                CH.to_string()
            } else {
                format!("{CH}_sub")
            },
            name: format!("Customer {i}"),
            status: if i % 7 == 3 {
                "inactive"
            } else if i % 5 == 0 {
                "trial"
            } else {
                "subscription"
            },
            services: ALL
                .iter()
                .enumerate()
                .filter(|(k, _)| (i + k) % 3 == 0 || (i * k) % 5 == 1)
                .map(|(_, s)| *s)
                .collect(),
            users: 3 + i as u64 * 2,
            devices: i as u64 % 4 * 3, // some zero: an enabled service with 0 is still reported
        })
        .collect()
}

pub async fn seed(env: &TestEnv, children: &[Child]) {
    let mut items = vec![
        workspace(CH, None, "channel", "Acme MSP", "subscription", &[], 0, 0),
        workspace(
            &format!("{CH}_sub"),
            Some(CH),
            "channel",
            "Acme West",
            "subscription",
            &[],
            0,
            0,
        ),
    ];
    for c in children {
        items.push(workspace(
            &c.id,
            Some(&c.parent),
            "child",
            &c.name,
            c.status,
            &c.services,
            c.users,
            c.devices,
        ));
    }
    env.seed_workspaces(&items).await;
}

/// Catalogue key → simulator service id, through the product's published names.
pub async fn service_ids(env: &TestEnv) -> BTreeMap<String, String> {
    let catalogue = env
        .call("GET", "/v1/psa/services", Some(&Claims::viewer(CH)), None)
        .await
        .json();
    let by_name: BTreeMap<String, String> = env
        .sim
        .state()
        .vendor
        .services
        .into_iter()
        .map(|s| (s.name, s.id))
        .collect();
    catalogue["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["key"].as_str().unwrap().to_string(),
                by_name[i["gradientName"].as_str().unwrap()].clone(),
            )
        })
        .collect()
}

/// Enabled (account, service key) pairs of reported children, with their expected counts.
pub fn expected_pairs(children: &[Child]) -> BTreeMap<(String, String), u64> {
    let mut out = BTreeMap::new();
    for c in children.iter().filter(|c| c.reported()) {
        for s in &c.services {
            out.insert((c.id.clone(), s.to_string()), c.expected(s));
        }
    }
    out
}

pub struct Msp {
    pub env: TestEnv,
    pub org: String,
    pub children: Vec<Child>,
    pub ids: BTreeMap<String, String>,
    pub unmapped: BTreeSet<(String, String)>,
}

/// Seeds, connects, and maps every pair in the simulator except those of every account whose id ends in 2 or 8.
pub async fn connected_msp(label: &str, n: usize) -> Msp {
    let env = TestEnv::start(label).await;
    let children = fixture(n);
    seed(&env, &children).await;
    let org = env.sim.create_organization("Acme MSP");
    let r = env.connect(CH, &org.partner_key).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let ids = service_ids(&env).await;
    let unmapped: BTreeSet<(String, String)> = expected_pairs(&children)
        .into_keys()
        .filter(|(acc, _)| acc.ends_with('2') || acc.ends_with('8'))
        .collect();
    let except: Vec<Pair> = unmapped
        .iter()
        .map(|(a, s)| Pair::new(a.clone(), ids[s].clone()))
        .collect();
    assert!(env.sim.map_all(&org.organization_id, &except));
    assert!(!unmapped.is_empty());
    Msp {
        env,
        org: org.organization_id,
        children,
        ids,
        unmapped,
    }
}

pub async fn sync_and_wait(env: &TestEnv) -> Value {
    let r = env.sync_now(CH).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let run_id = r.json()["runId"].as_str().unwrap().to_string();
    assert_eq!(r.json()["status"], "queued");
    assert_eq!(
        r.header("location").unwrap(),
        format!("/v1/psa/connectors/gradient/syncs/{run_id}")
    );
    assert!(env.drain().await >= 1);
    env.run(CH, &run_id).await
}

pub fn counts(run: &Value) -> BTreeMap<String, u64> {
    run["counts"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect()
}

pub fn outcomes_add_up(c: &BTreeMap<String, u64>) {
    assert_eq!(
        c["posted"] + c["unchanged"] + c["unmapped"] + c["skippedDisabled"] + c["failed"],
        c["readings"],
        "every reading ends in exactly one outcome: {c:?}"
    );
}
